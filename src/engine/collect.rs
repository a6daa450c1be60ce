//! Collecting: await every device's pending part (each within its limit,
//! all at once, none stopping the others) and fold the results into the
//! command's one [`Outcome`].

use std::collections::BTreeMap;
use std::time::Instant;

use super::error::{device_result, DeviceError};
use super::start::{Part, Started};
use crate::command::{Command, DeviceResult, Outcome};

impl Part {
    async fn finish(self) -> DeviceResult {
        match self {
            Part::Done(r) => r,
            Part::Pending { completion, limit: None } => device_result(completion.await),
            Part::Pending { completion, limit: Some(limit) } => match tokio::time::timeout(limit, completion).await {
                Ok(r) => device_result(r),
                Err(_) => device_result::<(), _>(Err(DeviceError::Timeout(limit))),
            },
        }
    }
}

/// Every device's result, by device name.
pub(crate) async fn results(started: Started) -> BTreeMap<String, DeviceResult> {
    let parts = started.parts.into_iter().map(|(name, part)| async move { (name, part.finish().await) });
    futures::future::join_all(parts).await.into_iter().collect()
}

/// The command's outcome once every part has finished; `received` is when
/// the engine got the command (the reply's duration counts from there).
pub(crate) async fn collect(cmd: &Command, started: Started, received: Instant) -> Outcome {
    let devices = results(started).await;
    Outcome::from_devices(cmd, devices, received.elapsed())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::camera::CameraError;
    use crate::command::ErrorCode;

    fn pending(after: Duration, r: Result<(), DeviceError>, limit: Option<Duration>) -> Part {
        Part::Pending {
            completion: Box::pin(async move {
                tokio::time::sleep(after).await;
                r
            }),
            limit,
        }
    }

    fn started(parts: Vec<(&str, Part)>) -> Started {
        Started { parts: parts.into_iter().map(|(n, p)| (n.to_string(), p)).collect() }
    }

    const CMD: Command = Command::Status;

    #[tokio::test(start_paused = true)]
    async fn all_ok_is_ok_and_parts_run_together() {
        let s = started(vec![
            ("key", Part::Done(DeviceResult::ok())),
            ("front", pending(Duration::from_secs(3), Ok(()), Some(Duration::from_secs(5)))),
            ("side", pending(Duration::from_secs(3), Ok(()), None)),
        ]);
        assert!(!s.is_done());
        let t0 = tokio::time::Instant::now();
        let out = collect(&CMD, s, Instant::now()).await;
        assert!(out.ok && out.error.is_none(), "{out:?}");
        assert_eq!(out.devices.len(), 3);
        // Awaited at once, not one after the other.
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn one_failed_device_fails_the_command_not_the_others() {
        let s = started(vec![
            ("key", Part::Done(DeviceResult::ok())),
            (
                "front",
                pending(
                    Duration::from_millis(10),
                    Err(CameraError::Offline {
                        reason: crate::camera::LinkDown::Silent { waited: crate::camera::Waited::Ack, after: Duration::from_millis(200) },
                    }
                    .into()),
                    None,
                ),
            ),
            ("side", pending(Duration::from_secs(1), Ok(()), None)),
        ]);
        let out = collect(&CMD, s, Instant::now()).await;
        assert!(!out.ok);
        assert_eq!(out.error.as_ref().map(|e| (e.code, e.message.as_str())), Some((ErrorCode::DeviceFailed, "1 of 3 devices failed")));
        assert_eq!(out.devices["front"], DeviceResult::failed("camera offline: no ACK within 200 ms"));
        assert!(out.devices["key"].ok && out.devices["side"].ok);
    }

    #[tokio::test(start_paused = true)]
    async fn a_part_past_its_limit_times_out() {
        let t0 = tokio::time::Instant::now();
        let s = started(vec![
            ("front", pending(Duration::from_secs(60), Ok(()), Some(Duration::from_millis(2500)))),
            ("side", pending(Duration::from_secs(1), Ok(()), Some(Duration::from_millis(2500)))),
        ]);
        let r = results(s).await;
        assert_eq!(r["front"], DeviceResult::failed("no completion within 2500 ms"));
        assert!(r["side"].ok);
        assert_eq!(t0.elapsed(), Duration::from_millis(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_superseded_camera_request_reads_cancelled() {
        // The link cancels an older scene's queued move when a newer one
        // takes the camera; that part reads "cancelled", the rest is unaffected.
        let s = started(vec![
            ("front", pending(Duration::from_millis(5), Err(CameraError::Cancelled.into()), Some(Duration::from_secs(5)))),
            ("key", Part::Done(DeviceResult::ok())),
        ]);
        let out = collect(&CMD, s, Instant::now()).await;
        assert_eq!(out.devices["front"], DeviceResult::failed("cancelled"));
        assert_eq!(out.error.map(|e| e.code), Some(ErrorCode::DeviceFailed));
    }

    #[tokio::test]
    async fn nothing_to_do_is_ok_at_once() {
        let s = Started::default();
        assert!(s.is_done());
        let out = collect(&CMD, s, Instant::now()).await;
        assert!(out.ok && out.devices.is_empty());
    }
}
