//! Latency distributions for the benches: each measure is summarised from
//! its own samples (p50/p90/p99/max). Never subtract one percentile from
//! another; a per-command difference is computed sample by sample and then
//! summarised as its own distribution.
#![allow(dead_code)]

use std::time::Duration;

/// Fewer samples than this and p90/p99 would be one of the last few samples:
/// the summary says so instead of printing them.
pub const MIN_FOR_PERCENTILES: usize = 100;

pub struct Dist {
    sorted: Vec<Duration>,
}

impl Dist {
    pub fn new(mut samples: Vec<Duration>) -> Dist {
        assert!(!samples.is_empty(), "no samples");
        samples.sort();
        Dist { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Nearest-rank percentile (`p` in 0–1).
    pub fn pct(&self, p: f64) -> Duration {
        let n = self.sorted.len();
        self.sorted[((n as f64 * p).ceil() as usize).clamp(1, n) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted[self.sorted.len() - 1]
    }

    /// `p50 … p90 … p99 … max …` in ms with microsecond precision, or, for
    /// a smoke round, the median and max with a note that n is too small.
    pub fn summary(&self) -> String {
        if self.len() < MIN_FOR_PERCENTILES {
            return format!(
                "median {}  max {}  (smoke round: n = {} is too small for p90/p99)",
                ms(self.pct(0.5)),
                ms(self.max()),
                self.len()
            );
        }
        format!(
            "p50 {}  p90 {}  p99 {}  max {}  (n = {})",
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99)),
            ms(self.max()),
            self.len()
        )
    }
}

/// Milliseconds with microsecond precision.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
