//! The frame clock: ticks on a fixed 1/frame_rate grid.
//!
//! Two sources. `Tokio` uses `tokio::time::interval`, which follows tokio's
//! paused clock (tests of fades and keep-alives use it) but only has
//! millisecond resolution: ticks land on whole milliseconds, ±0.5 ms of the
//! grid. `Os` runs a small thread that sleeps with the OS's high-resolution
//! timer to each grid instant and wakes the lighting task, so frames leave
//! within tens of microseconds of the grid. The daemon uses `Os`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

/// Which timer drives the frame clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockSource {
    /// tokio's timer (follows paused time; 1 ms resolution).
    Tokio,
    /// A thread on the OS's high-resolution timer.
    #[default]
    Os,
}

pub(crate) enum FrameClock {
    Tokio(Interval),
    Os { ticks: mpsc::Receiver<()>, stop: Arc<AtomicBool> },
}

impl FrameClock {
    pub(crate) fn new(source: ClockSource, period: Duration) -> FrameClock {
        match source {
            ClockSource::Tokio => {
                // Skip, not Delay or Burst: frames are snapshots computed from
                // the Instant, so a missed tick loses nothing and must not be
                // replayed (Burst would flood the nodes), and Skip keeps the
                // grid, so one stall costs one late frame instead of shifting
                // every later frame as Delay does.
                let mut i = tokio::time::interval(period);
                i.set_missed_tick_behavior(MissedTickBehavior::Skip);
                FrameClock::Tokio(i)
            }
            ClockSource::Os => {
                // Capacity 1 and try_send: a tick the task has not taken yet is
                // not queued twice (the same Skip behaviour as above).
                let (tx, ticks) = mpsc::channel(1);
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                let spawned = std::thread::Builder::new().name("frame-clock".into()).spawn(move || {
                    let start = std::time::Instant::now();
                    let mut k: u32 = 0;
                    while !flag.load(Ordering::Relaxed) {
                        k = k.wrapping_add(1);
                        let mut next = start + period * k;
                        let now = std::time::Instant::now();
                        if next < now {
                            // Missed slots are skipped, keeping the grid.
                            let behind = ((now - start).as_nanos() / period.as_nanos().max(1)) as u32;
                            k = behind + 1;
                            next = start + period * k;
                        }
                        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
                        match tx.try_send(()) {
                            Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
                            Err(mpsc::error::TrySendError::Closed(())) => break,
                        }
                    }
                });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start the frame-clock thread; using tokio's timer");
                    return FrameClock::new(ClockSource::Tokio, period);
                }
                FrameClock::Os { ticks, stop }
            }
        }
    }

    pub(crate) async fn tick(&mut self) {
        match self {
            FrameClock::Tokio(i) => {
                i.tick().await;
            }
            FrameClock::Os { ticks, .. } => {
                // The thread only stops after we are dropped.
                if ticks.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Restart the period from now (after a frame sent out of turn), so the
    /// next tick is a whole period away. The OS clock keeps its grid; the
    /// task skips ticks that come too soon after an out-of-turn frame.
    pub(crate) fn reset(&mut self) {
        if let FrameClock::Tokio(i) = self {
            i.reset();
        }
    }
}

impl Drop for FrameClock {
    fn drop(&mut self) {
        if let FrameClock::Os { stop, .. } = self {
            stop.store(true, Ordering::Relaxed);
        }
    }
}
