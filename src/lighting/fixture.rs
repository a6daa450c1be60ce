//! What a fixture is: a profile mode patched at a DMX address on an output,
//! and the attributes its channels control. Read from
//! `device-profiles/fixtures/` by the config loader; lighting never sees TOML.

/// A patched fixture: a profile mode at a DMX start address on an output.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    pub name: String,
    pub profile: FixtureProfile,
    /// Index into `profile.modes`.
    pub mode: usize,
    /// Name of the `[[artnet]]` output.
    pub artnet: String,
    /// DMX start channel, 1–512; `address + footprint - 1 <= 512` is guaranteed.
    pub address: u16,
}

impl Fixture {
    pub fn mode(&self) -> &FixtureMode {
        &self.profile.modes[self.mode]
    }

    /// A fixture with a one-mode profile made on the spot, for tests, benches
    /// and tools (real fixtures come from profile files): attributes as
    /// (attribute, coarse offset, fine offset), fixed channels as (offset,
    /// value), offsets 0-based; the footprint covers the highest channel.
    pub fn with_channels(name: &str, output: &str, address: u16, attrs: &[(Attribute, u16, Option<u16>)], fixed: &[(u16, u8)]) -> Fixture {
        let footprint =
            attrs.iter().flat_map(|(_, c, f)| std::iter::once(*c).chain(*f)).chain(fixed.iter().map(|x| x.0)).max().map_or(0, |m| m + 1);
        let attributes =
            attrs.iter().map(|(a, c, f)| AttributeChannels { attribute: a.clone(), coarse: *c, fine: *f, default: 0.0 }).collect();
        Fixture {
            name: name.into(),
            profile: FixtureProfile {
                id: "ad-hoc".into(),
                label: "ad-hoc".into(),
                cct_range: None,
                modes: vec![FixtureMode { name: "default".into(), footprint, attributes, fixed: fixed.to_vec() }],
                unconfirmed: Vec::new(),
            },
            mode: 0,
            artnet: output.into(),
            address,
        }
    }
}

/// A fixture model with one or more DMX modes.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureProfile {
    pub id: String,
    pub label: String,
    /// Colour-temperature range in kelvin, when the fixture has a `cct` attribute.
    pub cct_range: Option<(u32, u32)>,
    pub modes: Vec<FixtureMode>,
    /// Dotted keys of the profile file whose values no source confirms
    /// (`studiod check` warns about them).
    pub unconfirmed: Vec<String>,
}

impl FixtureProfile {
    pub fn mode_index(&self, name: &str) -> Option<usize> {
        self.modes.iter().position(|m| m.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FixtureMode {
    pub name: String,
    /// Number of DMX channels the mode occupies.
    pub footprint: u16,
    /// Controllable attributes and where they sit in the footprint.
    pub attributes: Vec<AttributeChannels>,
    /// Fixed values for channels that are not attributes (0-based offset, value),
    /// e.g. a strobe channel that must sit at "open".
    pub fixed: Vec<(u16, u8)>,
}

impl FixtureMode {
    pub fn attribute(&self, a: &Attribute) -> Option<&AttributeChannels> {
        self.attributes.iter().find(|c| &c.attribute == a)
    }
}

/// One attribute's DMX channels: a coarse channel and, for 16-bit, a fine one.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeChannels {
    pub attribute: Attribute,
    /// 0-based offset from the fixture's start address.
    pub coarse: u16,
    /// 0-based offset of the fine byte for 16-bit attributes.
    pub fine: Option<u16>,
    /// Normalised value (0.0–1.0) the attribute takes when a look does not set it.
    pub default: f64,
}

/// What a DMX channel controls. Values are always normalised 0.0–1.0 at the
/// lighting layer; scenes use physical units (kelvin, #rrggbb) and the scene
/// compiler converts using the profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    Intensity,
    Cct,
    Red,
    Green,
    Blue,
    White,
    Amber,
    /// Green–magenta tint and other profile-declared channels, by name.
    Other(String),
}

impl Attribute {
    pub fn parse(s: &str) -> Attribute {
        match s {
            "intensity" => Attribute::Intensity,
            "cct" => Attribute::Cct,
            "red" => Attribute::Red,
            "green" => Attribute::Green,
            "blue" => Attribute::Blue,
            "white" => Attribute::White,
            "amber" => Attribute::Amber,
            other => Attribute::Other(other.to_string()),
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Attribute::Intensity => "intensity",
            Attribute::Cct => "cct",
            Attribute::Red => "red",
            Attribute::Green => "green",
            Attribute::Blue => "blue",
            Attribute::White => "white",
            Attribute::Amber => "amber",
            Attribute::Other(s) => s,
        }
    }
}
