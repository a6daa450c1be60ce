//! Planning: what a command asks of each device, decided from the
//! configuration and the cameras' profiles alone (no I/O), or the refusal
//! that is the command's whole answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::camera::CameraHandle;
use crate::command::{Command, CommandError, ErrorCode, LightValue};
use crate::config::model::{Camera, CameraProfile, Config};
use crate::config::scenes::{convert_light, KnownDevices as SceneDevices, LightInput};
use crate::lighting::Look;
use crate::osc::OscMessage;
use crate::scene::{CameraTarget, Scene};
use crate::visca::{Direction, ZoomDrive};

/// What the engine is to do for one command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Apply a scene now.
    Scene(ScenePlan),
    /// Apply a scene at `at` (slot start); planned again when due, against
    /// the configuration then in force.
    Schedule {
        at: SystemTime,
        scene: SceneRef,
    },
    /// All lights to zero; the booth then shows no scene.
    Blackout(Vec<Step>),
    /// Camera control or a live light: device parts, no change of scene.
    Devices(Vec<Step>),
    Status,
    Reload,
    /// Withdraw the scheduled scene of this command id.
    Cancel(String),
    /// A validated scene to save at `path` (the TOML as sent).
    PutScene {
        name: String,
        scene: Scene,
        path: PathBuf,
        toml: String,
    },
    DeleteScene {
        name: String,
        path: PathBuf,
    },
}

/// An `apply_scene` as asked, before the scene is looked up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SceneRef {
    pub name: String,
    pub fade: Option<Duration>,
    pub slot: Option<serde_json::Value>,
}

/// A scene resolved against the configuration: its steps in start order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScenePlan {
    pub name: String,
    pub label: String,
    pub slot: Option<serde_json::Value>,
    pub fade: Duration,
    pub steps: Vec<Step>,
}

/// One part of a command on the devices, in the order it is started.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// One call to the lighting actor; its result is each named fixture's result.
    Lights {
        call: LightCall,
        fade: Duration,
        fixtures: Vec<String>,
    },
    Camera {
        camera: String,
        action: CameraAction,
    },
    Osc {
        to: String,
        msg: OscMessage,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LightCall {
    Look(Look),
    Blackout,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CameraAction {
    /// A scene's framing; it must complete within the profile's move time.
    Frame(CameraTarget),
    Recall(u8),
    Store(u8),
    Drive {
        direction: Direction,
        pan_speed: u8,
        tilt_speed: u8,
    },
    Zoom(ZoomDrive),
}

/// Where planning finds a camera's profile: the running camera handles in
/// the engine, the configured cameras in tests.
pub(crate) trait CameraProfiles {
    fn camera_profile(&self, name: &str) -> Option<&CameraProfile>;
}

impl CameraProfiles for BTreeMap<String, CameraHandle> {
    fn camera_profile(&self, name: &str) -> Option<&CameraProfile> {
        self.get(name).map(CameraHandle::profile)
    }
}

impl CameraProfiles for [Camera] {
    fn camera_profile(&self, name: &str) -> Option<&CameraProfile> {
        self.iter().find(|c| c.name == name).map(|c| &c.profile)
    }
}

fn refusal(code: ErrorCode, msg: impl Into<String>) -> CommandError {
    CommandError::new(code, msg)
}

/// The one "camera by name, or `unknown_device`" lookup.
fn camera<'a, C: CameraProfiles + ?Sized>(cameras: &'a C, name: &str) -> Result<&'a CameraProfile, CommandError> {
    cameras.camera_profile(name).ok_or_else(|| refusal(ErrorCode::UnknownDevice, format!("unknown camera `{name}`")))
}

/// Plan `cmd`; `now` decides whether an `at` is still ahead.
pub(crate) fn plan<C: CameraProfiles + ?Sized>(config: &Config, cameras: &C, cmd: &Command, now: SystemTime) -> Result<Plan, CommandError> {
    let device = |camera: &str, action| Plan::Devices(vec![Step::Camera { camera: camera.to_string(), action }]);
    Ok(match cmd {
        Command::ApplyScene { scene, fade, at, slot } => {
            let scene = SceneRef { name: scene.clone(), fade: *fade, slot: slot.clone() };
            match at {
                Some(at) if at.duration_since(now).is_ok_and(|ahead| ahead > super::schedule::HORIZON) => {
                    return Err(refusal(
                        ErrorCode::InvalidCommand,
                        format!("`at` is more than {} days ahead; send it later", super::schedule::HORIZON.as_secs() / 86_400),
                    ))
                }
                Some(at) if *at > now => {
                    known_scene(config, &scene.name)?;
                    Plan::Schedule { at: *at, scene }
                }
                _ => Plan::Scene(scene_plan(config, &scene)?),
            }
        }
        Command::Blackout { fade } => Plan::Blackout(vec![Step::Lights {
            call: LightCall::Blackout,
            fade: fade.unwrap_or(Duration::ZERO),
            fixtures: config.fixtures.iter().map(|f| f.name.clone()).collect(),
        }]),
        Command::RecallPreset { camera: name, preset } | Command::StorePreset { camera: name, preset } => {
            let count = camera(cameras, name)?.preset_count;
            if *preset == 0 || *preset > count {
                return Err(refusal(ErrorCode::InvalidCommand, format!("preset must be 1–{count} for camera `{name}`")));
            }
            let action =
                if matches!(cmd, Command::StorePreset { .. }) { CameraAction::Store(*preset) } else { CameraAction::Recall(*preset) };
            device(name, action)
        }
        Command::Jog { camera: name, pan, tilt } => {
            let p = camera(cameras, name)?;
            let (direction, pan_speed, tilt_speed) = jog_drive(*pan, *tilt, p.max_pan_speed, p.max_tilt_speed);
            device(name, CameraAction::Drive { direction, pan_speed, tilt_speed })
        }
        Command::JogStop { camera: name } => {
            camera(cameras, name)?;
            device(name, CameraAction::Drive { direction: Direction::Stop, pan_speed: 1, tilt_speed: 1 })
        }
        Command::Zoom { camera: name, speed } => {
            camera(cameras, name)?;
            device(name, CameraAction::Zoom(zoom_drive(*speed)))
        }
        Command::SetLight { fixture, values, fade } => {
            let Some(fx) = config.fixtures.iter().find(|f| &f.name == fixture) else {
                return Err(refusal(ErrorCode::UnknownDevice, format!("unknown fixture `{fixture}`")));
            };
            let entries = values.iter().map(|(k, v)| {
                let input = match v {
                    LightValue::Number(x) => LightInput::Number(*x),
                    LightValue::Text(t) => LightInput::Text(t.as_str()),
                };
                (k.as_str(), input, ())
            });
            let (look, problems) = convert_light(fx, entries);
            if !problems.is_empty() {
                let msg = problems.into_iter().map(|(_, _, m)| m).collect::<Vec<_>>().join("; ");
                return Err(refusal(ErrorCode::InvalidCommand, msg));
            }
            Plan::Devices(vec![Step::Lights {
                call: LightCall::Look(Look::from([(fixture.clone(), look)])),
                fade: fade.unwrap_or(Duration::ZERO),
                fixtures: vec![fixture.clone()],
            }])
        }
        Command::Status => Plan::Status,
        Command::Reload => Plan::Reload,
        Command::Cancel { target } => Plan::Cancel(target.clone()),
        Command::PutScene { scene: name, toml } => {
            let path = config.studio.scenes_dir.join(format!("{name}.toml"));
            let declared = Default::default();
            let devices = SceneDevices { cameras: &config.cameras, fixtures: &config.fixtures, osc: &config.osc, declared: &declared };
            let src = crate::diag::Source::new(path.clone(), toml.as_str());
            let scene = crate::config::scenes::parse(name, &src, &devices)
                .map_err(|diags| refusal(ErrorCode::SceneInvalid, crate::diag::for_client(&diags.sorted(), config.dir())))?;
            Plan::PutScene { name: name.clone(), scene, path, toml: toml.clone() }
        }
        Command::DeleteScene { scene: name } => {
            known_scene(config, name)?;
            if config.studio.safe_scene.as_deref() == Some(name) || config.lighting.shutdown_scene.as_deref() == Some(name) {
                return Err(refusal(
                    ErrorCode::InvalidCommand,
                    format!("scene `{name}` is the configured safe/shutdown scene and cannot be deleted"),
                ));
            }
            Plan::DeleteScene { name: name.clone(), path: config.studio.scenes_dir.join(format!("{name}.toml")) }
        }
    })
}

fn known_scene<'a>(config: &'a Config, name: &str) -> Result<&'a Scene, CommandError> {
    config.scenes.get(name).ok_or_else(|| refusal(ErrorCode::UnknownScene, format!("unknown scene `{name}`")))
}

/// A scene's steps: lights first (what the creator sees change "at once"),
/// then each camera in the scene's order, then the OSC cues.
pub(crate) fn scene_plan(config: &Config, scene: &SceneRef) -> Result<ScenePlan, CommandError> {
    let sc = known_scene(config, &scene.name)?;
    let fade = scene.fade.unwrap_or(sc.fade);
    let mut steps = Vec::with_capacity(1 + sc.cameras.len() + sc.osc.len());
    if !sc.lights.is_empty() {
        let fixtures = sc.lights.keys().cloned().collect();
        steps.push(Step::Lights { call: LightCall::Look(sc.lights.clone()), fade, fixtures });
    }
    for (name, target) in &sc.cameras {
        steps.push(Step::Camera { camera: name.clone(), action: CameraAction::Frame(target.clone()) });
    }
    for (to, msg) in &sc.osc {
        steps.push(Step::Osc { to: to.clone(), msg: msg.clone() });
    }
    Ok(ScenePlan { name: sc.name.clone(), label: sc.label.clone(), slot: scene.slot.clone(), fade, steps })
}

/// The code for a reload refused because the new configuration is invalid:
/// `scene_invalid` when every problem is in a scene file of `scenes_dir`
/// (the booth's config itself is fine), else `config_invalid`.
pub(crate) fn invalid_reload_code<'a>(problems: impl IntoIterator<Item = &'a std::path::Path>, scenes_dir: &std::path::Path) -> ErrorCode {
    let mut problems = problems.into_iter().peekable();
    let only_scenes = problems.peek().is_some() && problems.all(|file| file.parent() == Some(scenes_dir));
    if only_scenes {
        ErrorCode::SceneInvalid
    } else {
        ErrorCode::ConfigInvalid
    }
}

/// Zoom speed fraction (-1.0 wide … 1.0 tele) → VISCA variable zoom; 0 stops.
fn zoom_drive(speed: f64) -> ZoomDrive {
    let step = ((speed.abs() * 7.0).round() as u8).min(7);
    if speed > 0.0 {
        ZoomDrive::TeleVariable(step)
    } else if speed < 0.0 {
        ZoomDrive::WideVariable(step)
    } else {
        ZoomDrive::Stop
    }
}

/// Jog fractions (-1.0–1.0, positive = right/up) → VISCA drive.
fn jog_drive(pan: f64, tilt: f64, max_pan: u8, max_tilt: u8) -> (Direction, u8, u8) {
    use std::cmp::Ordering::{Greater, Less};
    use Direction::*;
    let speed = |x: f64, max: u8| ((x.abs() * max as f64).round() as u8).clamp(1, max);
    let dir = match (pan.partial_cmp(&0.0), tilt.partial_cmp(&0.0)) {
        (Some(Greater), Some(Greater)) => UpRight,
        (Some(Greater), Some(Less)) => DownRight,
        (Some(Less), Some(Greater)) => UpLeft,
        (Some(Less), Some(Less)) => DownLeft,
        (Some(Greater), _) => Right,
        (Some(Less), _) => Left,
        (_, Some(Greater)) => Up,
        (_, Some(Less)) => Down,
        _ => Stop,
    };
    (dir, speed(pan, max_pan), speed(tilt, max_tilt))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::{Arc, OnceLock};

    /// The example booth (studiod.example.toml with the shipped scenes and profiles).
    pub(crate) fn example() -> Arc<Config> {
        static CONFIG: OnceLock<Arc<Config>> = OnceLock::new();
        CONFIG
            .get_or_init(|| {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("studiod.example.toml");
                Arc::new(crate::config::load(&path).unwrap_or_else(|d| panic!("example config: {:?}", d.sorted())))
            })
            .clone()
    }

    fn plan_of(cmd: Command) -> Result<Plan, CommandError> {
        let c = example();
        plan(&c, c.cameras.as_slice(), &cmd, SystemTime::now())
    }

    fn code(r: Result<Plan, CommandError>) -> ErrorCode {
        r.expect_err("refused").code
    }

    fn apply(scene: &str, at: Option<SystemTime>) -> Command {
        Command::ApplyScene { scene: scene.into(), fade: None, at, slot: None }
    }

    #[test]
    fn scene_starts_lights_then_cameras_in_order_then_osc() {
        let Ok(Plan::Scene(p)) = plan_of(apply("flash-sale", None)) else { panic!("not a scene plan") };
        assert_eq!((p.name.as_str(), p.label.as_str(), p.fade), ("flash-sale", "Flash sale", Duration::from_millis(300)));
        let kinds: Vec<String> = p
            .steps
            .iter()
            .map(|s| match s {
                Step::Lights { fixtures, .. } => format!("lights:{}", fixtures.join(",")),
                Step::Camera { camera, action } => format!("{camera}:{action:?}"),
                Step::Osc { to, msg } => format!("osc:{to}{}", msg.address),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "lights:back,backdrop,fill,hair,key,product",
                "front:Frame(Preset(4))",
                "overhead:Frame(Preset(4))",
                "side:Frame(Preset(4))",
                "osc:console/studiod/flash-sale",
            ]
        );
    }

    #[test]
    fn a_fade_given_with_the_command_overrides_the_scenes() {
        let cmd =
            Command::ApplyScene { scene: "house".into(), fade: Some(Duration::ZERO), at: None, slot: Some(serde_json::json!({"b": 1})) };
        let Ok(Plan::Scene(p)) = plan_of(cmd) else { panic!("not a scene plan") };
        assert_eq!(p.fade, Duration::ZERO);
        assert_eq!(p.slot, Some(serde_json::json!({"b": 1})));
        assert!(matches!(&p.steps[0], Step::Lights { fade, .. } if fade.is_zero()));
    }

    #[test]
    fn at_in_the_future_schedules_and_in_the_past_applies_now() {
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let c = example();
        let p = plan(&c, c.cameras.as_slice(), &apply("house", Some(later)), now).unwrap();
        assert!(matches!(p, Plan::Schedule { at, ref scene } if at == later && scene.name == "house"));
        let p = plan(&c, c.cameras.as_slice(), &apply("house", Some(now - Duration::from_secs(1))), now).unwrap();
        assert!(matches!(p, Plan::Scene(_)));
        // `at` = now is not ahead: applied now.
        assert!(matches!(plan(&c, c.cameras.as_slice(), &apply("house", Some(now)), now), Ok(Plan::Scene(_))));
        // Up to 7 days ahead, not beyond.
        let week = now + super::super::schedule::HORIZON;
        assert!(matches!(plan(&c, c.cameras.as_slice(), &apply("house", Some(week)), now), Ok(Plan::Schedule { .. })));
        let beyond = plan(&c, c.cameras.as_slice(), &apply("house", Some(week + Duration::from_millis(1))), now);
        assert!(matches!(&beyond, Err(e) if e.code == ErrorCode::InvalidCommand && e.message.contains("7 days")), "{beyond:?}");
        // Unknown scenes are refused whether scheduled or not.
        assert_eq!(code(plan(&c, c.cameras.as_slice(), &apply("nope", Some(later)), now)), ErrorCode::UnknownScene);
        assert_eq!(code(plan_of(apply("nope", None))), ErrorCode::UnknownScene);
    }

    #[test]
    fn camera_commands_need_a_known_camera_and_a_preset_in_range() {
        let recall = |camera: &str, preset| Command::RecallPreset { camera: camera.into(), preset };
        assert_eq!(code(plan_of(recall("nope", 1))), ErrorCode::UnknownDevice);
        assert_eq!(code(plan_of(Command::Jog { camera: "nope".into(), pan: 1.0, tilt: 0.0 })), ErrorCode::UnknownDevice);
        assert_eq!(code(plan_of(Command::JogStop { camera: "nope".into() })), ErrorCode::UnknownDevice);
        assert_eq!(code(plan_of(Command::Zoom { camera: "nope".into(), speed: 1.0 })), ErrorCode::UnknownDevice);
        let err = plan_of(recall("front", 0)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCommand);
        assert!(err.message.starts_with("preset must be 1–"), "{}", err.message);
        let count = example().cameras[0].profile.preset_count;
        assert_eq!(code(plan_of(recall("front", count + 1))), ErrorCode::InvalidCommand);
        // The last preset is in range.
        let last = plan_of(recall("front", count)).unwrap();
        assert_eq!(last, Plan::Devices(vec![Step::Camera { camera: "front".into(), action: CameraAction::Recall(count) }]));
        let store = plan_of(Command::StorePreset { camera: "side".into(), preset: 2 }).unwrap();
        assert_eq!(store, Plan::Devices(vec![Step::Camera { camera: "side".into(), action: CameraAction::Store(2) }]));
    }

    #[test]
    fn jog_and_zoom_map_fractions_to_visca_speeds() {
        let max = example().cameras[0].profile.max_pan_speed;
        let p = plan_of(Command::Jog { camera: "front".into(), pan: 1.0, tilt: 0.0 }).unwrap();
        let want = CameraAction::Drive { direction: Direction::Right, pan_speed: max, tilt_speed: 1 };
        assert_eq!(p, Plan::Devices(vec![Step::Camera { camera: "front".into(), action: want }]));
        // Every direction of the pad: pan right/left, tilt up/down.
        use Direction::*;
        let pad = [
            ((1.0, 1.0), UpRight),
            ((1.0, -1.0), DownRight),
            ((-0.5, 0.5), UpLeft),
            ((-1.0, -1.0), DownLeft),
            ((1.0, 0.0), Right),
            ((-1.0, 0.0), Left),
            ((0.0, 1.0), Up),
            ((0.0, -1.0), Down),
        ];
        for ((pan, tilt), want) in pad {
            assert_eq!(jog_drive(pan, tilt, 24, 20).0, want, "pan {pan}, tilt {tilt}");
        }
        assert_eq!(jog_drive(0.0, 0.0, 24, 20), (Direction::Stop, 1, 1));
        assert_eq!(zoom_drive(1.0), ZoomDrive::TeleVariable(7));
        assert_eq!(zoom_drive(-0.5), ZoomDrive::WideVariable(4));
        assert_eq!(zoom_drive(0.0), ZoomDrive::Stop);
    }

    #[test]
    fn set_light_converts_scene_units_or_refuses() {
        let set = |fixture: &str, k: &str, v: LightValue| Command::SetLight {
            fixture: fixture.into(),
            values: BTreeMap::from([(k.to_string(), v)]),
            fade: None,
        };
        assert_eq!(code(plan_of(set("nope", "intensity", LightValue::Number(0.5)))), ErrorCode::UnknownDevice);
        assert_eq!(code(plan_of(set("key", "intensity", LightValue::Number(2.0)))), ErrorCode::InvalidCommand);
        let Ok(Plan::Devices(steps)) = plan_of(set("key", "intensity", LightValue::Number(0.5))) else { panic!("not planned") };
        let [Step::Lights { call: LightCall::Look(look), fixtures, .. }] = steps.as_slice() else { panic!("{steps:?}") };
        assert_eq!(fixtures, &["key"]);
        assert_eq!(look.keys().collect::<Vec<_>>(), ["key"]);
    }

    #[test]
    fn blackout_reports_every_fixture() {
        let Ok(Plan::Blackout(steps)) = plan_of(Command::Blackout { fade: None }) else { panic!("not a blackout") };
        let [Step::Lights { call: LightCall::Blackout, fixtures, fade }] = steps.as_slice() else { panic!("{steps:?}") };
        assert_eq!(fixtures.len(), example().fixtures.len());
        assert!(fade.is_zero());
    }

    #[test]
    fn put_and_delete_scene_are_validated_before_any_io() {
        let put = |toml: &str| Command::PutScene { scene: "x".into(), toml: toml.into() };
        assert_eq!(code(plan_of(put("[light.key]\nintensity = 1.5\n"))), ErrorCode::SceneInvalid);
        let Ok(Plan::PutScene { path, scene, .. }) = plan_of(put("label = \"X\"\n[light.key]\nintensity = 0.5\n")) else { panic!() };
        assert_eq!(path, example().studio.scenes_dir.join("x.toml"));
        assert_eq!(scene.label, "X");
        let delete = |s: &str| Command::DeleteScene { scene: s.into() };
        assert_eq!(code(plan_of(delete("nope"))), ErrorCode::UnknownScene);
        // `house` is the example's safe scene.
        assert_eq!(code(plan_of(delete("house"))), ErrorCode::InvalidCommand);
        assert!(matches!(plan_of(delete("intro")), Ok(Plan::DeleteScene { .. })));
    }

    #[test]
    fn a_bad_reload_is_scene_invalid_only_when_every_problem_is_in_a_scene_file() {
        let scenes = Path::new("/etc/studiod/scenes");
        let (scene, config) = (Path::new("/etc/studiod/scenes/a.toml"), Path::new("/etc/studiod/studiod.toml"));
        assert_eq!(invalid_reload_code([scene, scene], scenes), ErrorCode::SceneInvalid);
        assert_eq!(invalid_reload_code([scene, config], scenes), ErrorCode::ConfigInvalid);
        assert_eq!(invalid_reload_code([config], scenes), ErrorCode::ConfigInvalid);
        assert_eq!(invalid_reload_code([Path::new("/etc/studiod/device-profiles/cameras/x.toml")], scenes), ErrorCode::ConfigInvalid);
        assert_eq!(invalid_reload_code([], scenes), ErrorCode::ConfigInvalid);
    }
}
