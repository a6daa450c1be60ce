//! Starting a plan's steps on the device handles, in order: lights and OSC
//! are done when their call returns; camera requests are *queued* now (so a
//! newer command's requests always follow an older one's) and their
//! completions are left pending for [`super::collect`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::error::{device_result, DeviceError};
use super::plan::{CameraAction, LightCall, Step};
use super::DeviceHandles;
use crate::camera::{CameraError, CameraHandle};
use crate::command::DeviceResult;
use crate::config::model::CameraProfile;
use crate::lighting::FirstFrame;
use crate::scene::CameraTarget;
use crate::visca::{Direction, MemoryOp, ViscaCommand as Visca};

/// Extra time allowed on top of the profile's completion timeout before the
/// engine gives up on a camera (the link has its own, finer timeouts).
pub(crate) const CAMERA_GRACE: Duration = Duration::from_secs(2);

/// The rest of a device's part, still running.
pub(crate) type Completion = Pin<Box<dyn Future<Output = Result<(), DeviceError>> + Send>>;

/// One device's part once started.
pub(crate) enum Part {
    Done(DeviceResult),
    /// Awaited by [`super::collect`], within `limit` when there is one.
    Pending {
        completion: Completion,
        limit: Option<Duration>,
    },
}

/// Every device's part of one command, in start order.
#[derive(Default)]
pub(crate) struct Started {
    pub parts: Vec<(String, Part)>,
}

impl Started {
    /// Nothing left to wait for: the outcome can be given at once.
    pub fn is_done(&self) -> bool {
        self.parts.iter().all(|(_, p)| matches!(p, Part::Done(_)))
    }
}

/// Start each step on the devices, in the plan's order.
pub(crate) async fn start(devices: &DeviceHandles, steps: &[Step], mut first_frame: Option<FirstFrame>) -> Started {
    let mut started = Started::default();
    for step in steps {
        match step {
            Step::Lights { call, fade, fixtures } => {
                let r = match &devices.lighting {
                    Some(l) => match call {
                        // Only the command's first light change is timed from its receipt.
                        LightCall::Look(look) => l.set_look_timed(look.clone(), *fade, first_frame.take()).await.map(drop),
                        LightCall::Blackout => l.blackout_timed(*fade, first_frame.take()).await,
                    }
                    .map_err(DeviceError::from),
                    None => Err(DeviceError::NotRunning("lighting output")),
                };
                let r = device_result(r);
                // The look is set either way (a node that comes back gets
                // it), but a fixture whose node is offline did not follow.
                started.parts.extend(fixtures.iter().map(|f| {
                    let offline = if r.ok { devices.lighting.as_ref().and_then(|l| l.fixture_offline(f)) } else { None };
                    (f.clone(), Part::Done(offline.map(DeviceResult::failed).unwrap_or_else(|| r.clone())))
                }));
            }
            Step::Camera { camera, action } => {
                let part = match devices.cameras.get(camera) {
                    Some(cam) => start_camera(cam, action).await,
                    None => Part::Done(device_result::<(), _>(Err(DeviceError::NotRunning("camera")))),
                };
                started.parts.push((camera.clone(), part));
            }
            Step::Osc { to, msg } => {
                let r = match &devices.osc {
                    Some(osc) => osc.send(to, msg).await.map_err(DeviceError::from),
                    None => Err(DeviceError::NotRunning("OSC output")),
                };
                started.parts.push((to.clone(), Part::Done(device_result(r))));
            }
        }
    }
    started
}

/// How a camera action reaches the camera.
enum CameraMove {
    /// VISCA commands built up front: queued now, in this order.
    Queue(Vec<Visca>),
    /// One axis only: the other comes from a position inquiry first, so
    /// nothing can be queued before that answer.
    FromPosition { pan: Option<f64>, tilt: Option<f64>, zoom: Option<f64> },
}

fn camera_move(cam: &CameraHandle, action: &CameraAction) -> Result<CameraMove, CameraError> {
    let memory = |op, preset| Ok::<_, CameraError>(Visca::Memory { op, memory: cam.memory_byte(preset)? });
    Ok(CameraMove::Queue(match action {
        CameraAction::Recall(p) => vec![memory(MemoryOp::Recall, *p)?],
        CameraAction::Store(p) => vec![memory(MemoryOp::Set, *p)?],
        CameraAction::Drive { direction, pan_speed, tilt_speed } => vec![drive(cam.profile(), *direction, *pan_speed, *tilt_speed)],
        CameraAction::Zoom(z) => vec![Visca::Zoom(*z)],
        CameraAction::Frame(CameraTarget::Preset(p)) => vec![memory(MemoryOp::Recall, *p)?],
        CameraAction::Frame(CameraTarget::Absolute { pan: Some(pan), tilt: Some(tilt), zoom }) => {
            let mut v = vec![cam.absolute_command(*pan, *tilt)?];
            if let Some(z) = zoom {
                v.push(Visca::ZoomDirect(cam.zoom_position(*z)?));
            }
            v
        }
        CameraAction::Frame(CameraTarget::Absolute { pan: None, tilt: None, zoom: Some(z) }) => {
            vec![Visca::ZoomDirect(cam.zoom_position(*z)?)]
        }
        CameraAction::Frame(CameraTarget::Absolute { pan, tilt, zoom }) => {
            return Ok(CameraMove::FromPosition { pan: *pan, tilt: *tilt, zoom: *zoom })
        }
    }))
}

/// Pan/tilt drive with speeds capped at the profile's (as `CameraHandle::drive`).
fn drive(p: &CameraProfile, direction: Direction, pan_speed: u8, tilt_speed: u8) -> Visca {
    Visca::PanTiltDrive {
        direction,
        pan_speed: pan_speed.clamp(1, p.max_pan_speed.max(1)),
        tilt_speed: tilt_speed.clamp(1, p.max_tilt_speed.max(1)),
    }
}

/// The engine's limit on a scene's camera move: the profile's completion
/// time, its ACK time for a few retries, and a grace.
pub(crate) fn frame_limit(p: &CameraProfile) -> Duration {
    p.timing.completion_move + p.timing.ack * 3 + CAMERA_GRACE
}

async fn start_camera(cam: &CameraHandle, action: &CameraAction) -> Part {
    // Only a scene's framing has an engine-side limit; control commands
    // (jog, zoom, presets) rely on the link's own timeouts, as they always have.
    let limit = matches!(action, CameraAction::Frame(_)).then(|| frame_limit(cam.profile()));
    let mv = match camera_move(cam, action) {
        Ok(mv) => mv,
        Err(e) => return Part::Done(DeviceResult::failed(e)),
    };
    let completion: Completion = match mv {
        CameraMove::Queue(cmds) => {
            let mut pending = Vec::with_capacity(cmds.len());
            for c in cmds {
                match cam.submit(c).await {
                    Ok(p) => pending.push(p),
                    Err(e) => return Part::Done(DeviceResult::failed(e)),
                }
            }
            Box::pin(async move {
                for r in futures::future::join_all(pending).await {
                    r?;
                }
                Ok(())
            })
        }
        CameraMove::FromPosition { pan, tilt, zoom } => {
            let cam = cam.clone();
            Box::pin(async move {
                let now = cam.position().await?;
                Ok(cam.move_absolute(pan.unwrap_or(now.pan_deg), tilt.unwrap_or(now.tilt_deg), zoom).await?)
            })
        }
    };
    Part::Pending { completion, limit }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{plan, scene_plan, tests::example, Plan, SceneRef};

    fn results(s: &Started) -> Vec<(String, Option<DeviceResult>)> {
        s.parts
            .iter()
            .map(|(n, p)| {
                (
                    n.clone(),
                    match p {
                        Part::Done(r) => Some(r.clone()),
                        Part::Pending { .. } => None,
                    },
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn every_step_without_its_device_fails_alone_and_in_order() {
        let c = example();
        let p = scene_plan(&c, &SceneRef { name: "flash-sale".into(), fade: None, slot: None }).unwrap();
        let s = start(&DeviceHandles::default(), &p.steps, None).await;
        assert!(s.is_done());
        let got = results(&s);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["back", "backdrop", "fill", "hair", "key", "product", "front", "overhead", "side", "console"]);
        let error = |n: &str| got.iter().find(|(x, _)| x == n).and_then(|(_, r)| r.clone()).and_then(|r| r.error).unwrap();
        assert_eq!(error("key"), "lighting output is not running");
        assert_eq!(error("front"), "camera is not running");
        assert_eq!(error("console"), "OSC output is not running");
    }

    #[tokio::test]
    async fn blackout_without_lighting_fails_every_fixture() {
        let c = example();
        let Ok(Plan::Blackout(steps)) =
            plan(&c, c.cameras.as_slice(), &crate::command::Command::Blackout { fade: None }, std::time::SystemTime::now())
        else {
            panic!("not a blackout")
        };
        let s = start(&DeviceHandles::default(), &steps, None).await;
        assert_eq!(s.parts.len(), c.fixtures.len());
        assert!(results(&s).iter().all(|(_, r)| r.as_ref().is_some_and(|r| !r.ok)));
    }

    #[test]
    fn a_frame_may_take_the_profiles_move_time_plus_grace() {
        let p = &example().cameras[0].profile;
        assert_eq!(frame_limit(p), p.timing.completion_move + p.timing.ack * 3 + CAMERA_GRACE);
        let d = drive(p, Direction::Stop, 0, 255);
        assert_eq!(d, Visca::PanTiltDrive { direction: Direction::Stop, pan_speed: 1, tilt_speed: p.max_tilt_speed });
    }
}
