//! Device profiles (`device-profiles/cameras/*.toml`, `…/fixtures/*.toml`):
//! raw → typed, with every problem reported against the profile file.
//! Schema: device-profiles/README.md.

use std::path::Path;
use std::time::Duration;

use super::raw::{self, S};
use super::toml_src;
use crate::config::model::{
    Attribute, AttributeChannels, Axis, CameraIdentity, CameraProfile, CameraTiming, FixtureMode, FixtureProfile, Zoom,
};
use crate::diag::{Diagnostics, Source};

/// Read and validate one camera profile file.
pub fn load_camera(path: &Path, id: &str) -> Result<CameraProfile, Diagnostics> {
    let (src, doc) = read(path)?;
    let mut d = Diagnostics::default();
    let Some(r) = toml_src::de_table::<raw::CameraProfile>(&src, doc.as_table(), "camera profile", &mut d) else {
        return Err(d);
    };
    let mut int = |v: &Option<S<i64>>, default: i64, lo: i64, hi: i64, key: &str| -> i64 {
        match v {
            None => default,
            Some(s) if (lo..=hi).contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                d.push(src.diag(Some(s.span()), format!("`{key}` must be {lo}–{hi}, got {}", s.get_ref())));
                default
            }
        }
    };
    let preset_count = int(&Some(r.preset_count.clone()), 16, 1, 128, "preset_count") as u8;
    let preset_memory_offset = int(&r.preset_memory_offset, 0, 0, 127, "preset_memory_offset") as u8;
    let pan_tilt_nibbles = int(&r.pan_tilt_nibbles, 4, 4, 5, "pan_tilt_nibbles") as u8;
    let max_pan_speed = int(&r.max_pan_speed, 0x18, 1, 0x7F, "max_pan_speed") as u8;
    let max_tilt_speed = int(&r.max_tilt_speed, 0x14, 1, 0x7F, "max_tilt_speed") as u8;
    let absolute_tilt_speed = r.absolute_tilt_speed.as_ref().map(|_| int(&r.absolute_tilt_speed, 0, 0, 0x7F, "absolute_tilt_speed") as u8);
    if (preset_memory_offset as u16) + (preset_count as u16) > 128 {
        d.push(src.diag(Some(r.preset_count.span()), "presets would map past memory byte 0x7F"));
    }
    let defaults = CameraTiming::default();
    let ms = |v: &Option<S<i64>>, default: Duration, key: &str, d: &mut Diagnostics| -> Duration {
        match v {
            None => default,
            Some(s) if (1..=600_000).contains(s.get_ref()) => Duration::from_millis(*s.get_ref() as u64),
            Some(s) => {
                d.push(src.diag(Some(s.span()), format!("`{key}` must be 1–600000 ms, got {}", s.get_ref())));
                default
            }
        }
    };
    let timing = match &r.timing {
        None => defaults,
        Some(t) => CameraTiming {
            ack: ms(&t.ack_ms, defaults.ack, "timing.ack_ms", &mut d),
            completion_short: ms(&t.completion_short_ms, defaults.completion_short, "timing.completion_short_ms", &mut d),
            completion_move: ms(&t.completion_move_ms, defaults.completion_move, "timing.completion_move_ms", &mut d),
            completion_power: ms(&t.completion_power_ms, defaults.completion_power, "timing.completion_power_ms", &mut d),
        },
    };
    let pan = axis(&src, &r.pan, "pan", &mut d);
    let tilt = axis(&src, &r.tilt, "tilt", &mut d);
    let zoom_span = doc.get("zoom").and_then(|z| z.get("table")).and_then(|t| t.span());
    let zoom = zoom(&src, &r.zoom, zoom_span, &mut d);
    let transports = transports(&src, &doc, &mut d);
    let identity = r.identity.as_ref().and_then(|i| {
        let fits = |v: i64| (0..=0xFFFF).contains(&v);
        if !fits(*i.vendor.get_ref()) {
            d.push(src.diag(Some(i.vendor.span()), format!("`identity.vendor` must be 0x0000–0xFFFF, got {}", i.vendor.get_ref())));
            return None;
        }
        if i.models.get_ref().is_empty() || !i.models.get_ref().iter().all(|m| fits(*m)) {
            d.push(src.diag(Some(i.models.span()), "`identity.models` must list model ids 0x0000–0xFFFF"));
            return None;
        }
        Some(CameraIdentity { vendor: *i.vendor.get_ref() as u16, models: i.models.get_ref().iter().map(|m| *m as u16).collect() })
    });
    let unconfirmed = unconfirmed(&src, &doc, &mut d);
    if !d.is_empty() {
        return Err(d);
    }
    Ok(CameraProfile {
        id: id.to_string(),
        label: r.label.into_inner(),
        preset_count,
        preset_memory_offset,
        pan,
        tilt,
        zoom,
        pan_tilt_nibbles,
        max_pan_speed,
        max_tilt_speed,
        absolute_tilt_speed,
        timing,
        completion_without_ack: r.completion_without_ack.unwrap_or(false),
        transports,
        identity,
        unconfirmed,
    })
}

/// The transports a camera profile may name.
pub const TRANSPORTS: &[&str] = &["serial", "visca-udp", "visca-tcp"];

/// `transports = ["serial", "visca-udp", …]`: known values, each once.
fn transports(src: &Source, doc: &toml_edit::ImDocument<String>, d: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    let Some(arr) = doc.get("transports").and_then(|t| t.as_array()) else { return out };
    for v in arr.iter() {
        let Some(t) = v.as_str() else { continue };
        if !TRANSPORTS.contains(&t) {
            d.push(src.diag(v.span(), format!("unknown transport `{t}` (expected {})", TRANSPORTS.join(", "))));
        } else if out.iter().any(|o| o == t) {
            d.push(src.diag(v.span(), format!("transport `{t}` is listed twice")));
        } else {
            out.push(t.to_string());
        }
    }
    out
}

/// `unconfirmed = ["pan.units_per_degree", "zoom.table", …]`: each entry must
/// name a key that this file sets. A `[[mode]]` is addressed by its name:
/// `mode.cct-16bit.footprint`.
fn unconfirmed(src: &Source, doc: &toml_edit::ImDocument<String>, d: &mut Diagnostics) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(arr) = doc.get("unconfirmed").and_then(|t| t.as_array()) else { return out };
    for v in arr.iter() {
        let Some(k) = v.as_str() else { continue };
        let segs: Vec<&str> = k.split('.').collect();
        if k == "unconfirmed" || segs.iter().any(|s| s.is_empty()) || !key_exists(doc.as_table(), &segs) {
            d.push(src.diag(v.span(), format!("`unconfirmed` names `{k}`, which is not a key of this profile")));
        } else if out.iter().any(|o| o == k) {
            d.push(src.diag(v.span(), format!("`unconfirmed` lists `{k}` twice")));
        } else {
            out.push(k.to_string());
        }
    }
    out
}

fn key_exists(t: &toml_edit::Table, segs: &[&str]) -> bool {
    use toml_edit::Item;
    let Some((first, rest)) = segs.split_first() else { return true };
    match t.get(first) {
        None => false,
        Some(_) if rest.is_empty() => true,
        Some(Item::Table(sub)) => key_exists(sub, rest),
        Some(Item::Value(toml_edit::Value::InlineTable(it))) => key_exists(&it.clone().into_table(), rest),
        Some(Item::ArrayOfTables(a)) => {
            let (name, rest) = rest.split_first().expect("rest is not empty");
            a.iter().any(|m| m.get("name").and_then(|n| n.as_str()) == Some(name) && key_exists(m, rest))
        }
        Some(_) => false,
    }
}

fn axis(src: &Source, r: &raw::Axis, name: &str, d: &mut Diagnostics) -> Axis {
    let (lo, hi, u) = (*r.min_deg.get_ref(), *r.max_deg.get_ref(), *r.units_per_degree.get_ref());
    // Written so that NaN bounds are refused too.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(lo < hi) {
        d.push(src.diag(Some(r.min_deg.span()), format!("`{name}.min_deg` must be below `{name}.max_deg`")));
    }
    if !(u > 0.0 && u.is_finite()) {
        d.push(src.diag(Some(r.units_per_degree.span()), format!("`{name}.units_per_degree` must be positive")));
    }
    Axis { min_deg: lo, max_deg: hi, units_per_degree: u }
}

fn zoom(src: &Source, z: &raw::Zoom, span: Option<std::ops::Range<usize>>, d: &mut Diagnostics) -> Zoom {
    let t = &z.table;
    let points: Vec<(f64, u16)> = t.iter().map(|&(m, p)| (m, p.clamp(0, 0xFFFF) as u16)).collect();
    let increasing = points.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1);
    let in_range = t.iter().all(|&(m, p)| m >= 1.0 && (0..=0xFFFF).contains(&p));
    if points.len() < 2 || !increasing || !in_range {
        d.push(src.diag(span, "`zoom.table` needs at least two [magnification ≥ 1.0, position 0–0xFFFF] points, both increasing"));
        return Zoom { table: vec![(1.0, 0), (2.0, 1)] };
    }
    Zoom { table: points }
}

/// Read and validate one fixture profile file.
pub fn load_fixture(path: &Path, id: &str) -> Result<FixtureProfile, Diagnostics> {
    let (src, doc) = read(path)?;
    let mut d = Diagnostics::default();
    let Some(r) = toml_src::de_table::<raw::FixtureProfile>(&src, doc.as_table(), "fixture profile", &mut d) else {
        return Err(d);
    };
    let cct_range = r.cct_range.map(|(lo, hi)| {
        if !(1000..=20000).contains(&lo) || !(1000..=20000).contains(&hi) || lo > hi {
            d.push(src.diag(doc.get("cct_range").and_then(|c| c.span()), "`cct_range` must be [low, high] kelvin within 1000–20000"));
        }
        (lo.clamp(0, u32::MAX as i64) as u32, hi.clamp(0, u32::MAX as i64) as u32)
    });
    if r.mode.is_empty() {
        d.push(src.diag(None, "a fixture profile needs at least one [[mode]]"));
    }
    let mut modes = Vec::new();
    for m in &r.mode {
        let name = m.name.get_ref().clone();
        if modes.iter().any(|x: &FixtureMode| x.name == name) {
            d.push(src.diag(Some(m.name.span()), format!("mode `{name}` is defined twice")));
        }
        let mut used: Vec<(u16, String)> = Vec::new();
        let mut claim = |ch: &S<i64>, what: String, d: &mut Diagnostics| -> u16 {
            let c = *ch.get_ref();
            if !(1..=512).contains(&c) {
                d.push(src.diag(Some(ch.span()), format!("channel must be 1–512, got {c}")));
                return 0;
            }
            if let Some((_, other)) = used.iter().find(|(u, _)| *u == c as u16) {
                d.push(src.diag(Some(ch.span()), format!("channel {c} is used by both {other} and {what}")));
            }
            used.push((c as u16, what));
            (c - 1) as u16
        };
        let mut attributes: Vec<AttributeChannels> = Vec::new();
        for c_ref in &m.channels {
            let attr_name = c_ref.attribute.get_ref();
            if !valid_attribute_name(attr_name) {
                d.push(src.diag(Some(c_ref.attribute.span()), format!("attribute `{attr_name}` must match [a-z][a-z0-9_]*")));
            }
            let attribute = Attribute::parse(attr_name);
            if attributes.iter().any(|a| a.attribute == attribute) {
                d.push(src.diag(Some(c_ref.attribute.span()), format!("attribute `{attr_name}` appears twice in mode `{name}`")));
            }
            if attribute == Attribute::Cct && cct_range.is_none() {
                d.push(src.diag(Some(c_ref.attribute.span()), "a `cct` attribute needs `cct_range` in the profile"));
            }
            let coarse = claim(&c_ref.coarse, format!("`{attr_name}`"), &mut d);
            let fine = c_ref.fine.as_ref().map(|f| claim(f, format!("`{attr_name}` (fine)"), &mut d));
            let default = match &c_ref.default {
                Some(v) if !(0.0..=1.0).contains(v.get_ref()) => {
                    d.push(src.diag(Some(v.span()), "`default` must be 0.0–1.0"));
                    0.0
                }
                Some(v) => *v.get_ref(),
                None => 0.0,
            };
            attributes.push(AttributeChannels { attribute, coarse, fine, default });
        }
        let mut fixed = Vec::new();
        for f_ref in &m.fixed {
            let ch = claim(&f_ref.channel, "a fixed channel".into(), &mut d);
            let v = *f_ref.value.get_ref();
            if !(0..=255).contains(&v) {
                d.push(src.diag(Some(f_ref.value.span()), format!("fixed value must be 0–255, got {v}")));
            }
            fixed.push((ch, v.clamp(0, 255) as u8));
        }
        let highest = used.iter().map(|(c, _)| *c).max().unwrap_or(0);
        let footprint = match &m.footprint {
            Some(f) if (*f.get_ref() as i128) < highest as i128 || *f.get_ref() > 512 => {
                d.push(src.diag(Some(f.span()), format!("`footprint` must be {highest}–512")));
                highest
            }
            Some(f) => *f.get_ref() as u16,
            None => highest,
        };
        modes.push(FixtureMode { name, footprint, attributes, fixed });
    }
    let unconfirmed = unconfirmed(&src, &doc, &mut d);
    if !d.is_empty() {
        return Err(d);
    }
    Ok(FixtureProfile { id: id.to_string(), label: r.label.into_inner(), cct_range, modes, unconfirmed })
}

pub fn valid_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z')) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn read(path: &Path) -> Result<(Source, toml_edit::ImDocument<String>), Diagnostics> {
    let src = Source::read(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(Source::new(path, "").diag(None, format!("cannot read profile: {e}")));
        d
    })?;
    let doc = toml_src::parse(&src).map_err(|e| Diagnostics(vec![e]))?;
    Ok((src, doc))
}
