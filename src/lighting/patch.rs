//! The patch: where each fixture attribute lands in which DMX universe.
//!
//! Pure data and arithmetic, no I/O. The fade engine keeps one 16-bit value
//! per attribute *slot*; [`Patch::render_into`] turns those values into the
//! 512-byte frames that go on the wire.

use std::collections::HashMap;

use super::fixture::{Attribute, Fixture};
use super::output::Output;

/// DMX slots in one universe.
pub const UNIVERSE_SIZE: usize = 512;

/// One universe's DMX data (slot 1 is index 0).
pub type Frame = [u8; UNIVERSE_SIZE];

/// Normalised 0.0–1.0 → 16-bit: `round(x × 65535)`, clamped.
///
/// NaN maps to 0 so a bad value can never drive a fixture to full.
pub fn to_u16(x: f64) -> u16 {
    if x.is_nan() {
        return 0;
    }
    (x.clamp(0.0, 1.0) * 65535.0).round() as u16
}

/// 16-bit → normalised 0.0–1.0.
pub fn to_unit(v: u16) -> f64 {
    f64::from(v) / 65535.0
}

/// 16-bit → 8-bit for single-channel attributes: `round(v / 257)`.
///
/// 257 (not 256) because 65535 = 255 × 257: the mapping is exact at both ends
/// (0 → 0, 65535 → 255) and `k × 257 → k` for every 8-bit `k`, so a value that
/// came from an 8-bit level round-trips. Since 257 is odd, `v / 257` is never
/// exactly `k + 0.5` for an integer `v`: the nearest integers to a midpoint,
/// `257k + 128` and `257k + 129`, go to `k` and `k + 1`. No tie-breaking rule
/// is needed, which is why the integer form `(v + 128) / 257` is exact.
pub fn to_u8(v: u16) -> u8 {
    ((u32::from(v) + 128) / 257) as u8
}

/// Scale a 16-bit level by a 16-bit master, rounding to nearest.
pub fn scale(v: u16, master: u16) -> u16 {
    ((u32::from(v) * u32::from(master) + 32767) / 65535) as u16
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    #[error("fixture {fixture:?} uses unknown output {output:?}")]
    UnknownOutput { fixture: String, output: String },
    #[error("fixture {fixture:?}: channel {channel} is outside the universe (1–512)")]
    ChannelOutOfRange { fixture: String, channel: u32 },
    #[error("fixture {fixture:?}: mode index {mode} does not exist in its profile")]
    UnknownMode { fixture: String, mode: usize },
}

/// One attribute of one fixture: where its value goes.
#[derive(Debug, Clone)]
pub struct Slot {
    pub fixture: usize,
    pub attribute: Attribute,
    /// Index into the patch's outputs (= universe index).
    pub universe: usize,
    /// 0-based DMX index of the coarse byte.
    pub coarse: usize,
    /// 0-based DMX index of the fine byte (16-bit attributes).
    pub fine: Option<usize>,
    /// Profile default (normalised), the value before any look sets it.
    pub default: f64,
}

impl Slot {
    /// The grand master scales intensity only: colour and CCT must not drift
    /// when the room is dimmed.
    pub fn is_intensity(&self) -> bool {
        self.attribute == Attribute::Intensity
    }
}

#[derive(Debug, Clone)]
struct PatchedFixture {
    name: String,
    universe: usize,
    /// (0-based DMX index, value) written on every frame.
    fixed: Vec<(usize, u8)>,
}

/// Fixtures' attributes mapped onto the universes of the Art-Net outputs.
#[derive(Debug, Clone)]
pub struct Patch {
    outputs: Vec<Output>,
    fixtures: Vec<PatchedFixture>,
    slots: Vec<Slot>,
    by_name: HashMap<String, usize>,
    /// (fixture index, attribute) → slot index.
    by_attr: HashMap<(usize, Attribute), usize>,
}

impl Patch {
    /// Build the patch. Config validation has already run, but a bad fixture
    /// is still an error here rather than a panic or a silent write into the
    /// wrong universe.
    pub fn new(outputs: &[Output], fixtures: &[Fixture]) -> Result<Patch, PatchError> {
        let mut patch = Patch {
            outputs: outputs.to_vec(),
            fixtures: Vec::with_capacity(fixtures.len()),
            slots: Vec::new(),
            by_name: HashMap::new(),
            by_attr: HashMap::new(),
        };
        for (fi, f) in fixtures.iter().enumerate() {
            let universe = outputs
                .iter()
                .position(|o| o.name() == f.artnet)
                .ok_or_else(|| PatchError::UnknownOutput { fixture: f.name.clone(), output: f.artnet.clone() })?;
            let mode = f.profile.modes.get(f.mode).ok_or(PatchError::UnknownMode { fixture: f.name.clone(), mode: f.mode })?;
            // DMX addresses are 1-based; offsets are 0-based within the footprint.
            let index = |offset: u16| -> Result<usize, PatchError> {
                let channel = u32::from(f.address) + u32::from(offset);
                if f.address == 0 || channel > UNIVERSE_SIZE as u32 {
                    return Err(PatchError::ChannelOutOfRange { fixture: f.name.clone(), channel });
                }
                Ok(channel as usize - 1)
            };
            for a in &mode.attributes {
                let slot = Slot {
                    fixture: fi,
                    attribute: a.attribute.clone(),
                    universe,
                    coarse: index(a.coarse)?,
                    fine: a.fine.map(index).transpose()?,
                    default: a.default,
                };
                patch.by_attr.insert((fi, a.attribute.clone()), patch.slots.len());
                patch.slots.push(slot);
            }
            let fixed = mode.fixed.iter().map(|&(offset, value)| Ok((index(offset)?, value))).collect::<Result<Vec<_>, PatchError>>()?;
            patch.by_name.insert(f.name.clone(), fi);
            patch.fixtures.push(PatchedFixture { name: f.name.clone(), universe, fixed });
        }
        Ok(patch)
    }

    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    pub fn universe_count(&self) -> usize {
        self.outputs.len()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn fixture_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn fixture_name(&self, index: usize) -> &str {
        &self.fixtures[index].name
    }

    pub fn fixture_count(&self) -> usize {
        self.fixtures.len()
    }

    /// Slot index of a fixture's attribute, if its mode has that attribute.
    pub fn slot(&self, fixture: usize, attribute: &Attribute) -> Option<usize> {
        self.by_attr.get(&(fixture, attribute.clone())).copied()
    }

    /// Fill `frames` (one per output) from 16-bit slot values.
    ///
    /// Unpatched channels are 0; fixed channels are written first so that a
    /// (misconfigured) overlap with an attribute is deterministic.
    pub fn render_into(&self, values: &[u16], grand_master: u16, frames: &mut [Frame]) {
        for frame in frames.iter_mut() {
            frame.fill(0);
        }
        for f in &self.fixtures {
            if let Some(frame) = frames.get_mut(f.universe) {
                for &(i, v) in &f.fixed {
                    frame[i] = v;
                }
            }
        }
        for (slot, &v) in self.slots.iter().zip(values) {
            let Some(frame) = frames.get_mut(slot.universe) else {
                continue;
            };
            let v = if slot.is_intensity() { scale(v, grand_master) } else { v };
            match slot.fine {
                Some(fine) => {
                    frame[slot.coarse] = (v >> 8) as u8;
                    frame[fine] = (v & 0xFF) as u8;
                }
                None => frame[slot.coarse] = to_u8(v),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn output(name: &str, universe: u16) -> Output {
        Output::ArtNet(crate::lighting::artnet::ArtNetOutput::new(name, "127.0.0.1:6454".parse().unwrap(), universe))
    }

    pub(crate) fn fixture(name: &str, output: &str, address: u16, attrs: &[(Attribute, u16, Option<u16>)], fixed: &[(u16, u8)]) -> Fixture {
        Fixture::with_channels(name, output, address, attrs, fixed)
    }

    #[test]
    fn u8_rounding_ends_and_midpoints() {
        assert_eq!(to_u8(0), 0);
        assert_eq!(to_u8(65535), 255);
        assert_eq!(to_u8(128), 0, "128/257 = 0.498");
        assert_eq!(to_u8(129), 1, "129/257 = 0.502");
        // Around the 127/128 midpoint (127.5 × 257 = 32767.5).
        assert_eq!(to_u8(32767), 127);
        assert_eq!(to_u8(32768), 128);
        for k in 0..=255u16 {
            assert_eq!(to_u8(k * 257), k as u8, "exact multiples round-trip");
        }
        for v in 0..=65535u16 {
            assert_eq!(to_u8(v), (f64::from(v) / 257.0).round() as u8, "v = {v}");
        }
    }

    #[test]
    fn normalised_to_u16() {
        assert_eq!(to_u16(0.0), 0);
        assert_eq!(to_u16(1.0), 65535);
        assert_eq!(to_u16(0.5), 32768, "32767.5 rounds away from zero");
        assert_eq!(to_u16(-0.2), 0);
        assert_eq!(to_u16(7.0), 65535);
        assert_eq!(to_u16(f64::NAN), 0);
        assert_eq!(to_u16(f64::INFINITY), 65535);
        // And back: the exact ends, the midpoint, and a round trip.
        assert_eq!([to_unit(0), to_unit(65535), to_unit(32768)], [0.0, 1.0, 32768.0 / 65535.0]);
        assert_eq!(to_u16(to_unit(12345)), 12345);
    }

    #[test]
    fn scale_by_master() {
        assert_eq!(scale(65535, 65535), 65535);
        assert_eq!(scale(65535, 0), 0);
        assert_eq!(scale(40000, 65535), 40000);
        assert_eq!(scale(65535, 32768), 32768);
    }

    #[test]
    fn renders_16bit_8bit_fixed_and_master() {
        let outputs = [output("a", 0), output("b", 1)];
        let fixtures = [
            fixture("key", "a", 10, &[(Attribute::Intensity, 0, Some(1))], &[]),
            fixture("rgb", "b", 1, &[(Attribute::Red, 0, None), (Attribute::Green, 1, None)], &[(2, 0xFF)]),
        ];
        let patch = Patch::new(&outputs, &fixtures).unwrap();
        assert_eq!((patch.outputs(), patch.universe_count()), (&outputs[..], 2));
        assert_eq!(patch.slots().len(), 3);
        let key = patch.slot(0, &Attribute::Intensity).unwrap();
        let red = patch.slot(1, &Attribute::Red).unwrap();
        let green = patch.slot(1, &Attribute::Green).unwrap();
        let mut values = vec![0u16; 3];
        values[key] = 0x1234;
        values[red] = 65535;
        values[green] = 129;
        let mut frames = vec![[0u8; 512]; 2];
        patch.render_into(&values, 65535, &mut frames);
        assert_eq!(&frames[0][9..11], &[0x12, 0x34]);
        assert_eq!(&frames[1][0..3], &[255, 1, 0xFF]);
        assert!(frames[0].iter().enumerate().all(|(i, &b)| b == 0 || i == 9 || i == 10));

        // Half master: intensity halves, colour untouched.
        patch.render_into(&values, 32768, &mut frames);
        assert_eq!(u16::from(frames[0][9]) << 8 | u16::from(frames[0][10]), scale(0x1234, 32768));
        assert_eq!(&frames[1][0..3], &[255, 1, 0xFF]);
    }

    #[test]
    fn bad_fixtures_are_errors_not_panics() {
        let outputs = [output("a", 0)];
        let f = fixture("x", "nope", 1, &[(Attribute::Intensity, 0, None)], &[]);
        assert!(matches!(Patch::new(&outputs, &[f]), Err(PatchError::UnknownOutput { .. })));
        let f = fixture("x", "a", 512, &[(Attribute::Intensity, 0, Some(1))], &[]);
        assert!(matches!(Patch::new(&outputs, &[f]), Err(PatchError::ChannelOutOfRange { .. })));
        let mut f = fixture("x", "a", 1, &[(Attribute::Intensity, 0, None)], &[]);
        f.mode = 3;
        assert!(matches!(Patch::new(&outputs, &[f]), Err(PatchError::UnknownMode { .. })));
    }
}
