//! The fade engine: per-slot 16-bit fades computed from an `Instant`.
//!
//! Sans-IO: every method takes `now`; nothing sleeps or counts ticks, so the
//! value at a given instant does not depend on how often `render` is called
//! (a late or skipped frame loses nothing), and tests drive it with paused
//! time.

use std::time::Duration;

use tokio::time::Instant;

use super::fixture::Attribute;
use super::patch::{to_u16, to_unit, Frame, Patch, UNIVERSE_SIZE};
use super::Look;

/// A linear fade of one slot: `from + (to − from) × clamp((t − start) / duration)`.
#[derive(Debug, Clone, Copy)]
struct Fade {
    from: u16,
    to: u16,
    start: Instant,
    duration: Duration,
    /// The normalised target as given, kept so the persisted look and
    /// `current_values` after the fade are exactly what the caller set.
    target: f64,
}

/// Below this fade length (2^46 ns ≈ 19.5 h) the interpolation fits in i64:
/// 2 × 65535 × d + d < 2^63.
const FAST_FADE_LIMIT_NS: u128 = 1 << 46;

impl Fade {
    fn value(&self, now: Instant) -> u16 {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= self.duration {
            return self.to;
        }
        // Integer arithmetic in nanoseconds: exact, so 25 % of a 0→65535
        // fade is always 16384 (16383.75 rounded), whatever the float noise.
        // v × d = from × d + (to − from) × e, rounded half up, in either direction.
        let d = self.duration.as_nanos();
        if d < FAST_FADE_LIMIT_NS {
            // The same sums in i64 (all terms stay below 2^63 for fades under
            // ~19 h): this runs for every slot of every frame, and 128-bit
            // division is several times slower.
            let (e, d) = (elapsed.as_nanos() as i64, d as i64);
            let (from, to) = (i64::from(self.from), i64::from(self.to));
            let num = from * d + (to - from) * e;
            return ((2 * num + d) / (2 * d)) as u16;
        }
        let (e, d) = (elapsed.as_nanos() as i128, d as i128);
        let (from, to) = (i128::from(self.from), i128::from(self.to));
        let num = from * d + (to - from) * e;
        ((2 * num + d) / (2 * d)) as u16
    }

    fn done(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) >= self.duration
    }
}

/// The output of one [`FadeEngine::render`].
pub struct Rendered<'a> {
    /// One 512-byte frame per output, in config order.
    pub frames: &'a [Frame],
    /// Per output: did its frame change since the previous render? (All true
    /// on the first render.)
    pub changed: &'a [bool],
}

/// Owns the patch and the fade state of every slot.
#[derive(Debug)]
pub struct FadeEngine {
    patch: Patch,
    fades: Vec<Fade>,
    grand_master: f64,
    /// Scratch buffer of current slot values, reused to avoid allocating per frame.
    values: Vec<u16>,
    frames: Vec<Frame>,
    previous: Vec<Frame>,
    changed: Vec<bool>,
    rendered_once: bool,
}

impl FadeEngine {
    /// Every slot starts at its profile default, fully faded in.
    pub fn new(patch: Patch, now: Instant) -> FadeEngine {
        let fades = patch
            .slots()
            .iter()
            .map(|s| {
                let v = to_u16(s.default);
                Fade { from: v, to: v, start: now, duration: Duration::ZERO, target: s.default }
            })
            .collect();
        let n = patch.universe_count();
        FadeEngine {
            values: vec![0; patch.slots().len()],
            fades,
            patch,
            grand_master: 1.0,
            frames: vec![[0; UNIVERSE_SIZE]; n],
            previous: vec![[0; UNIVERSE_SIZE]; n],
            changed: vec![true; n],
            rendered_once: false,
        }
    }

    pub fn patch(&self) -> &Patch {
        &self.patch
    }

    /// Fade the attributes named in `look` to their new values. Attributes the
    /// look omits keep their current target (and any fade in progress).
    ///
    /// Returns the `fixture.attribute` names the patch does not know; they
    /// are skipped (scenes are validated upstream, so this is a safety net).
    pub fn set_target(&mut self, look: &Look, fade: Duration, now: Instant) -> Vec<String> {
        let mut unknown = Vec::new();
        for (fixture, attrs) in look {
            let Some(fi) = self.patch.fixture_index(fixture) else {
                unknown.push(fixture.clone());
                continue;
            };
            for (attr, &x) in attrs {
                match self.patch.slot(fi, attr) {
                    Some(si) => self.retarget(si, x, fade, now),
                    None => unknown.push(format!("{fixture}.{}", attr.name())),
                }
            }
        }
        unknown
    }

    /// Like [`set_target`](Self::set_target), but every attribute the look
    /// omits fades back to its profile default: a known state whatever came
    /// before (used for the safe scene).
    pub fn set_target_full(&mut self, look: &Look, fade: Duration, now: Instant) -> Vec<String> {
        for si in 0..self.fades.len() {
            let default = self.patch.slots()[si].default;
            self.retarget(si, default, fade, now);
        }
        self.set_target(look, fade, now)
    }

    /// Fade to black. Intensity attributes go to 0; a fixture with no
    /// intensity attribute (plain RGB) has its colour emitters zeroed instead.
    /// CCT, tint and other parameters are left alone so the fixture comes back
    /// in the same colour.
    pub fn blackout(&mut self, fade: Duration, now: Instant) {
        let slots = self.patch.slots();
        let has_intensity: Vec<bool> =
            (0..self.patch.fixture_count()).map(|fi| self.patch.slot(fi, &Attribute::Intensity).is_some()).collect();
        let dark: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| match s.attribute {
                Attribute::Intensity => true,
                Attribute::Red | Attribute::Green | Attribute::Blue | Attribute::White | Attribute::Amber => !has_intensity[s.fixture],
                _ => false,
            })
            .map(|(i, _)| i)
            .collect();
        for si in dark {
            self.retarget(si, 0.0, fade, now);
        }
    }

    /// Grand master, 0.0–1.0 (clamped; NaN → 0). Scales intensity only and
    /// applies immediately: it is a fader, not a cue.
    pub fn set_grand_master(&mut self, x: f64) {
        self.grand_master = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    }

    pub fn grand_master(&self) -> f64 {
        self.grand_master
    }

    /// Jump every fade to its end (used for the final frame at shutdown, so
    /// the nodes hold the look that was asked for, which is also the one
    /// persisted for the next start).
    pub fn finish_fades(&mut self, now: Instant) {
        for f in &mut self.fades {
            if !f.done(now) {
                f.from = f.to;
                f.duration = Duration::ZERO;
            }
        }
    }

    /// Are any fades still running at `now`?
    pub fn fading(&self, now: Instant) -> bool {
        self.fades.iter().any(|f| !f.done(now))
    }

    /// Render all universes at `now`.
    pub fn render(&mut self, now: Instant) -> Rendered<'_> {
        for (v, f) in self.values.iter_mut().zip(&self.fades) {
            *v = f.value(now);
        }
        std::mem::swap(&mut self.frames, &mut self.previous);
        self.patch.render_into(&self.values, to_u16(self.grand_master), &mut self.frames);
        for ((c, new), old) in self.changed.iter_mut().zip(&self.frames).zip(&self.previous) {
            *c = !self.rendered_once || new != old;
        }
        self.rendered_once = true;
        Rendered { frames: &self.frames, changed: &self.changed }
    }

    /// The look as it stands at `now` (before the grand master), normalised.
    /// A finished fade reports the exact value that was set.
    pub fn current_values(&self, now: Instant) -> Look {
        self.collect(|f| if f.done(now) { f.target } else { to_unit(f.value(now)) })
    }

    /// The look being faded to (what gets persisted).
    pub fn target_look(&self) -> Look {
        self.collect(|f| f.target)
    }

    fn collect(&self, value: impl Fn(&Fade) -> f64) -> Look {
        let mut look = Look::new();
        for (slot, fade) in self.patch.slots().iter().zip(&self.fades) {
            look.entry(self.patch.fixture_name(slot.fixture).to_string()).or_default().insert(slot.attribute.clone(), value(fade));
        }
        look
    }

    /// Start a fade of one slot from wherever it is *now* (no jump when a new
    /// look interrupts a fade).
    fn retarget(&mut self, si: usize, x: f64, fade: Duration, now: Instant) {
        let current = self.fades[si].value(now);
        let target = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        self.fades[si] = Fade { from: current, to: to_u16(target), start: now, duration: fade, target };
    }
}

#[cfg(test)]
mod tests {
    use super::super::patch::tests::{fixture, output};
    use super::*;

    fn look(entries: &[(&str, Attribute, f64)]) -> Look {
        let mut l = Look::new();
        for (f, a, v) in entries {
            l.entry(f.to_string()).or_default().insert(a.clone(), *v);
        }
        l
    }

    /// One 16-bit dimmer "key" at 1–2 and one 8-bit RGB "rgb" at 3–5 on universe 0.
    fn engine(now: Instant) -> FadeEngine {
        let fixtures = [
            fixture("key", "a", 1, &[(Attribute::Intensity, 0, Some(1))], &[]),
            fixture("rgb", "a", 3, &[(Attribute::Red, 0, None), (Attribute::Green, 1, None), (Attribute::Blue, 2, None)], &[]),
        ];
        FadeEngine::new(Patch::new(&[output("a", 0)], &fixtures).unwrap(), now)
    }

    fn key16(e: &mut FadeEngine, now: Instant) -> u16 {
        let f = &e.render(now).frames[0];
        u16::from(f[0]) << 8 | u16::from(f[1])
    }

    #[tokio::test(start_paused = true)]
    async fn exact_intermediate_values() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        assert_eq!(key16(&mut e, t0), 0);
        e.set_target(&look(&[("key", Attribute::Intensity, 1.0)]), Duration::from_secs(1), t0);
        assert_eq!(key16(&mut e, t0), 0);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(key16(&mut e, Instant::now()), 16384, "16383.75 rounded");
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(key16(&mut e, Instant::now()), 32768, "32767.5 rounded");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(key16(&mut e, Instant::now()), 65535);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(key16(&mut e, Instant::now()), 65535);
        assert_eq!(e.current_values(Instant::now())["key"][&Attribute::Intensity], 1.0);
    }

    /// A day-long fade (a slow sunrise look) takes the 128-bit path.
    #[test]
    fn a_day_long_fade_is_exact_at_its_quarter_points() {
        let t0 = Instant::now();
        let day = Duration::from_secs(24 * 3600);
        assert!(day.as_nanos() >= FAST_FADE_LIMIT_NS, "past the fast path");
        let up = Fade { from: 0, to: 65535, start: t0, duration: day, target: 1.0 };
        let down = Fade { from: 65535, to: 0, start: t0, duration: day, target: 0.0 };
        assert_eq!([up.value(t0 + day / 4), up.value(t0 + day / 2), up.value(t0 + day)], [16384, 32768, 65535]);
        assert_eq!([down.value(t0 + day / 4), down.value(t0 + day / 2), down.value(t0 + day)], [49151, 32768, 0]);
    }

    /// The end of a fade, frame by frame at 44 Hz: a fade that ended one
    /// frame early would pass the quarter points above, not this.
    #[test]
    fn a_fade_runs_to_its_exact_end_and_not_a_frame_less() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        let second = Duration::from_secs(1);
        e.set_target(&look(&[("key", Attribute::Intensity, 1.0)]), second, t0);
        let period = second / 44;
        // Ticks at t0 + k·period while k·period < 1 s: k = 0..=44 (44 periods
        // are 999.99997 ms), so 45 frames carry the fade and the 46th does not.
        let fading = (0..100u32).take_while(|&k| e.fading(t0 + period * k)).count();
        assert_eq!(fading, 45);
        // The last full period before the end is still exactly on the line…
        let t = t0 + second - period;
        let (e_ns, d_ns) = ((second - period).as_nanos() as u64, second.as_nanos() as u64);
        let exact = (2 * 65535 * e_ns + d_ns) / (2 * d_ns); // rounded half up, as `Fade::value`
        assert_eq!(u64::from(key16(&mut e, t)), exact, "{:?} before the end", period);
        // … one nanosecond before the end it is still fading, and at the end it is the target.
        assert!(e.fading(t0 + second - Duration::from_nanos(1)));
        assert!(!e.fading(t0 + second));
        assert_eq!(key16(&mut e, t0 + second), 65535);
        assert_eq!(e.current_values(t0 + second)["key"][&Attribute::Intensity], 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn retarget_mid_fade_starts_from_current_value() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        e.set_target(&look(&[("key", Attribute::Intensity, 1.0)]), Duration::from_secs(1), t0);
        tokio::time::advance(Duration::from_millis(500)).await;
        let t1 = Instant::now();
        let before = key16(&mut e, t1);
        assert_eq!(before, 32768);
        // Fade back down to 0 over 1 s: no jump at t1, then linear from 32768.
        e.set_target(&look(&[("key", Attribute::Intensity, 0.0)]), Duration::from_secs(1), t1);
        assert_eq!(key16(&mut e, t1), before);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(key16(&mut e, Instant::now()), 16384);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(key16(&mut e, Instant::now()), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn omitted_attributes_keep_their_target() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        e.set_target(&look(&[("rgb", Attribute::Red, 1.0), ("rgb", Attribute::Green, 1.0)]), Duration::from_secs(1), t0);
        tokio::time::advance(Duration::from_millis(500)).await;
        // Only green changes; red's fade continues to full.
        e.set_target(&look(&[("rgb", Attribute::Green, 0.0)]), Duration::ZERO, Instant::now());
        tokio::time::advance(Duration::from_millis(500)).await;
        let f = e.render(Instant::now()).frames[0];
        assert_eq!(&f[2..5], &[255, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn blackout_and_grand_master() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        let full = look(&[("key", Attribute::Intensity, 1.0), ("rgb", Attribute::Red, 1.0), ("rgb", Attribute::Blue, 0.5)]);
        e.set_target(&full, Duration::ZERO, t0);
        e.set_grand_master(0.5);
        assert_eq!(e.grand_master(), 0.5, "kept as set (it is persisted with the look)");
        let f = e.render(t0).frames[0];
        assert_eq!(&f[0..2], &[0x80, 0x00], "intensity scaled: 32768");
        assert_eq!(&f[2..5], &[255, 0, 128], "colour not scaled by the master");

        e.set_grand_master(1.0);
        e.blackout(Duration::from_secs(2), t0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(key16(&mut e, Instant::now()), 32768);
        tokio::time::advance(Duration::from_secs(1)).await;
        let f = e.render(Instant::now()).frames[0];
        // The RGB fixture has no intensity channel, so its emitters went dark too.
        assert_eq!(&f[0..5], &[0, 0, 0, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn changed_flags_and_target_look() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        assert_eq!(e.render(t0).changed, &[true], "first render is always 'changed'");
        assert_eq!(e.render(t0).changed, &[false]);
        e.set_target(&look(&[("key", Attribute::Intensity, 0.3)]), Duration::from_secs(1), t0);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(e.render(Instant::now()).changed, &[true]);
        assert_eq!(e.target_look()["key"][&Attribute::Intensity], 0.3);
        e.finish_fades(Instant::now());
        assert_eq!(key16(&mut e, Instant::now()), to_u16(0.3));
        assert_eq!(e.render(Instant::now()).changed, &[false]);
    }

    #[tokio::test(start_paused = true)]
    async fn full_target_resets_omitted_to_defaults_and_unknown_is_reported() {
        let t0 = Instant::now();
        let mut e = engine(t0);
        e.set_target(&look(&[("rgb", Attribute::Red, 1.0)]), Duration::ZERO, t0);
        let unknown = e.set_target_full(&look(&[("key", Attribute::Intensity, 1.0), ("ghost", Attribute::Red, 1.0)]), Duration::ZERO, t0);
        assert_eq!(unknown, vec!["ghost".to_string()]);
        let f = e.render(t0).frames[0];
        assert_eq!(&f[0..5], &[255, 255, 0, 0, 0]);
    }

    proptest::proptest! {
        /// Any fade stays between its ends, moves only towards `to`, and
        /// lands exactly on it.
        #[test]
        fn fades_are_bounded_monotonic_and_exact_at_the_end(
            from in 0u16.., to in 0u16.., ms in 1u64..20_000, a in 0u64..25_000, b in 0u64..25_000,
        ) {
            let start = Instant::now();
            let f = Fade { from, to, start, duration: Duration::from_millis(ms), target: 0.0 };
            let (t1, t2) = (a.min(b), a.max(b));
            let v1 = f.value(start + Duration::from_millis(t1));
            let v2 = f.value(start + Duration::from_millis(t2));
            proptest::prop_assert!(v1 >= from.min(to) && v1 <= from.max(to));
            if to >= from { proptest::prop_assert!(v1 <= v2) } else { proptest::prop_assert!(v1 >= v2) }
            proptest::prop_assert_eq!(f.value(start + Duration::from_millis(ms)), to);
            proptest::prop_assert_eq!(f.value(start), from);
        }

        /// The i64 fast path gives exactly what the 128-bit formula gives,
        /// up to the longest fade it is used for.
        #[test]
        fn fast_path_matches_the_128_bit_formula(from in 0u16.., to in 0u16.., d in 1u64..(1u64 << 46), frac in 0.0f64..1.0) {
            let start = Instant::now();
            let f = Fade { from, to, start, duration: Duration::from_nanos(d), target: 0.0 };
            let e = (d as f64 * frac) as u64;
            let (ei, di) = (i128::from(e), i128::from(d));
            let num = i128::from(from) * di + (i128::from(to) - i128::from(from)) * ei;
            let reference = ((2 * num + di) / (2 * di)) as u16;
            proptest::prop_assert_eq!(f.value(start + Duration::from_nanos(e)), reference);
        }

        /// Fades too long for the fast path (over ~19.5 h) are just as exact.
        #[test]
        fn long_fades_match_the_128_bit_formula(from in 0u16.., to in 0u16.., d in (1u64 << 46)..(1u64 << 52), frac in 0.0f64..1.0) {
            let start = Instant::now();
            let f = Fade { from, to, start, duration: Duration::from_nanos(d), target: 0.0 };
            let e = (d as f64 * frac) as u64;
            let (ei, di) = (i128::from(e), i128::from(d));
            let num = i128::from(from) * di + (i128::from(to) - i128::from(from)) * ei;
            proptest::prop_assert_eq!(f.value(start + Duration::from_nanos(e)), ((2 * num + di) / (2 * di)) as u16);
        }

        /// Interrupting a fade with a new look never jumps.
        #[test]
        fn retarget_is_continuous(x in 0.0f64..=1.0, y in 0.0f64..=1.0, at in 0u64..2_000) {
            let t0 = Instant::now();
            let mut e = engine(t0);
            e.set_target(&look(&[("key", Attribute::Intensity, x)]), Duration::from_secs(1), t0);
            let t1 = t0 + Duration::from_millis(at);
            let before = key16(&mut e, t1);
            e.set_target(&look(&[("key", Attribute::Intensity, y)]), Duration::from_millis(700), t1);
            proptest::prop_assert_eq!(key16(&mut e, t1), before);
            proptest::prop_assert_eq!(key16(&mut e, t1 + Duration::from_millis(700)), to_u16(y));
        }
    }
}
