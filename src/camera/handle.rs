//! [`CameraHandle`]: what the rest of the daemon holds to drive one camera.
//!
//! Requests travel over a bounded channel to the port actor; each gets its
//! answer on a oneshot. Dropping a request's future drops that oneshot's
//! receiver, which withdraws the request: if it has not gone on the wire
//! yet, it never will (a caller that timed out does not move the camera
//! later). Unit conversion (degrees, magnification, preset
//! numbers) happens here, with the camera's profile, so the link below only
//! ever sees VISCA values.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, instrument};

use super::error::{AxisName, BadAnswer, CameraError, Failure, InvalidRequest};
use super::link::{LinkOutcome, Request};
use super::profile::CameraProfile;
use crate::visca::{Address, Answer, Direction, FocusMode, Inquiry, MemoryOp, Nibbles, PowerState, Version, ViscaCommand, ZoomDrive};

/// A camera's health, published on a `watch` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub online: bool,
    /// Why it is offline (None when online): the text of a [`LinkDown`](super::LinkDown).
    pub reason: Option<String>,
    /// The last failed request's message, kept after the camera recovers.
    pub last_error: Option<String>,
    /// When `online` last changed.
    pub since: Instant,
    /// What the camera reported to CAM_VersionInq when it came online
    /// (vendor, model, ROM version), when read (`PortOptions::read_identity`).
    pub identity: Option<String>,
}

/// Pan/tilt in degrees and zoom as optical magnification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub pan_deg: f64,
    pub tilt_deg: f64,
    pub zoom: f64,
}

/// Messages from handles to the port actor.
#[derive(Debug)]
pub(crate) enum Msg {
    Request { address: Address, request: Request, reply: oneshot::Sender<Result<LinkOutcome, Failure>> },
    Cancel { address: Address },
}

/// A clonable handle to one camera on a port.
#[derive(Debug, Clone)]
pub struct CameraHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    address: Address,
    port: String,
    profile: CameraProfile,
    tx: mpsc::Sender<Msg>,
    health: watch::Receiver<Health>,
}

impl CameraHandle {
    pub(crate) fn new(
        name: String,
        address: Address,
        port: String,
        profile: CameraProfile,
        tx: mpsc::Sender<Msg>,
        health: watch::Receiver<Health>,
    ) -> CameraHandle {
        CameraHandle { inner: Arc::new(Inner { name, address, port, profile, tx, health }) }
    }

    /// A handle whose requests come to the test instead of a port actor,
    /// which answers them when it wants (a move that completes late).
    #[cfg(test)]
    pub(crate) fn held(name: &str, profile: CameraProfile) -> (CameraHandle, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel(8);
        let health = Health { online: true, reason: None, last_error: None, since: Instant::now(), identity: None };
        let (_, health) = watch::channel(health);
        let address = Address::new(1).expect("address 1");
        (CameraHandle::new(name.into(), address, "held".into(), profile, tx, health), rx)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn address(&self) -> Address {
        self.inner.address
    }
    /// The serial port this camera hangs off.
    pub fn port(&self) -> &str {
        &self.inner.port
    }
    pub fn profile(&self) -> &CameraProfile {
        &self.inner.profile
    }
    /// A receiver that sees every health change.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.inner.health.clone()
    }
    pub fn is_online(&self) -> bool {
        self.inner.health.borrow().online
    }

    // --- raw VISCA ----------------------------------------------------

    /// Sends one command and waits for its completion.
    pub async fn command(&self, command: ViscaCommand) -> Result<(), CameraError> {
        match self.request(Request::ViscaCommand(command)).await? {
            LinkOutcome::Completed => Ok(()),
            LinkOutcome::Answer(a) => Err(BadAnswer::AnswerToCommand(a).into()),
        }
    }

    /// Sends one inquiry and returns the decoded answer.
    pub async fn inquire(&self, inquiry: Inquiry) -> Result<Answer, CameraError> {
        match self.request(Request::Inquiry(inquiry)).await? {
            LinkOutcome::Answer(a) => Ok(a),
            LinkOutcome::Completed => Err(BadAnswer::CompletionToInquiry.into()),
        }
    }

    /// Cancels everything queued or executing on this camera (VISCA Cancel
    /// for running commands); their callers get [`CameraError::Cancelled`].
    pub async fn cancel(&self) -> Result<(), CameraError> {
        self.inner.tx.send(Msg::Cancel { address: self.inner.address }).await.map_err(|_| CameraError::Stopped)
    }

    async fn request(&self, request: Request) -> Result<LinkOutcome, CameraError> {
        self.enqueue(request).await?.await
    }

    /// Put a request in the port's queue now; the returned future resolves
    /// with its outcome. Splitting the two lets a caller keep the order of
    /// requests (queued in sequence) while awaiting their outcomes together.
    /// A full camera queue answers [`CameraError::Busy`] at once; dropping
    /// the returned future withdraws the request.
    async fn enqueue(
        &self,
        request: Request,
    ) -> Result<impl std::future::Future<Output = Result<LinkOutcome, CameraError>> + Send + 'static, CameraError> {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Request { address: self.inner.address, request, reply };
        self.inner.tx.send(msg).await.map_err(|_| CameraError::Stopped)?;
        let name = self.inner.name.clone();
        Ok(async move {
            let result = rx.await.map_err(|_| CameraError::Stopped)?;
            if let Err(e) = &result {
                debug!(camera = %name, error = %e, "request failed");
            }
            result.map_err(CameraError::from)
        })
    }

    /// Queue a command now; the returned future resolves at its completion.
    /// The scene engine uses this so that a newer scene's moves are always
    /// queued after an older scene's, whatever order the completions come in.
    /// Dropping the returned future withdraws the command if it has not been
    /// sent yet.
    pub async fn submit(
        &self,
        command: ViscaCommand,
    ) -> Result<impl std::future::Future<Output = Result<(), CameraError>> + Send + 'static, CameraError> {
        let pending = self.enqueue(Request::ViscaCommand(command)).await?;
        Ok(async move {
            match pending.await? {
                LinkOutcome::Completed => Ok(()),
                LinkOutcome::Answer(a) => Err(BadAnswer::AnswerToCommand(a).into()),
            }
        })
    }

    // --- presets --------------------------------------------------------

    /// The memory byte for a user preset number (1-based, as on remotes).
    pub fn memory_byte(&self, preset: u8) -> Result<u8, CameraError> {
        Ok(self.inner.profile.memory_byte(preset)?)
    }

    #[instrument(skip(self), fields(camera = %self.inner.name, address = %self.inner.address, port = %self.inner.port))]
    pub async fn recall_preset(&self, preset: u8) -> Result<(), CameraError> {
        let memory = self.memory_byte(preset)?;
        self.command(ViscaCommand::Memory { op: MemoryOp::Recall, memory }).await
    }

    #[instrument(skip(self), fields(camera = %self.inner.name, address = %self.inner.address, port = %self.inner.port))]
    pub async fn store_preset(&self, preset: u8) -> Result<(), CameraError> {
        let memory = self.memory_byte(preset)?;
        self.command(ViscaCommand::Memory { op: MemoryOp::Set, memory }).await
    }

    #[instrument(skip(self), fields(camera = %self.inner.name, address = %self.inner.address, port = %self.inner.port))]
    pub async fn reset_preset(&self, preset: u8) -> Result<(), CameraError> {
        let memory = self.memory_byte(preset)?;
        self.command(ViscaCommand::Memory { op: MemoryOp::Reset, memory }).await
    }

    // --- movement -------------------------------------------------------

    fn nibbles(&self) -> Nibbles {
        Nibbles::from_profile(self.inner.profile.pan_tilt_nibbles)
    }

    fn check_units(&self, pan: i32, tilt: i32) -> Result<(), CameraError> {
        let n = self.nibbles();
        if !n.pan_range().contains(&pan) || !n.tilt_range().contains(&tilt) {
            return Err(InvalidRequest::UnitsOverflow { pan, tilt }.into());
        }
        Ok(())
    }

    /// Builds the absolute pan-tilt command for a position in degrees.
    pub fn absolute_command(&self, pan_deg: f64, tilt_deg: f64) -> Result<ViscaCommand, CameraError> {
        let p = &self.inner.profile;
        for (name, axis, value) in [(AxisName::Pan, &p.pan, pan_deg), (AxisName::Tilt, &p.tilt, tilt_deg)] {
            if !value.is_finite() || !axis.contains(value) {
                return Err(InvalidRequest::AxisOutOfRange { axis: name, value, min: axis.min_deg, max: axis.max_deg }.into());
            }
        }
        let (pan, tilt) = (p.pan.to_units(pan_deg), p.tilt.to_units(tilt_deg));
        self.check_units(pan, tilt)?;
        let (pan_speed, tilt_speed) = p.absolute_speeds();
        Ok(ViscaCommand::PanTiltAbsolute { pan_speed, tilt_speed, pan, tilt, nibbles: self.nibbles() })
    }

    /// The VISCA zoom position for a magnification, checked against the profile.
    pub fn zoom_position(&self, magnification: f64) -> Result<u16, CameraError> {
        let z = &self.inner.profile.zoom;
        if !magnification.is_finite() || !z.contains(magnification) {
            let min = z.table.first().map(|t| t.0).unwrap_or(1.0);
            return Err(InvalidRequest::ZoomOutOfRange { value: magnification, min, max: z.max_magnification() }.into());
        }
        Ok(z.to_position(magnification))
    }

    /// Moves to pan/tilt degrees at the profile's top speed and, if given,
    /// zooms to a magnification at the same time (the camera runs both in
    /// its two sockets). Returns when both completed.
    #[instrument(skip(self), fields(camera = %self.inner.name, address = %self.inner.address, port = %self.inner.port))]
    pub async fn move_absolute(&self, pan_deg: f64, tilt_deg: f64, zoom: Option<f64>) -> Result<(), CameraError> {
        let pt = self.absolute_command(pan_deg, tilt_deg)?;
        match zoom {
            None => self.command(pt).await,
            Some(m) => {
                let z = ViscaCommand::ZoomDirect(self.zoom_position(m)?);
                // Both are queued now, so the camera gets them back to back.
                let (a, b) = tokio::join!(self.command(pt), self.command(z));
                a.and(b)
            }
        }
    }

    /// Moves by the given degrees from where the camera is.
    #[instrument(skip(self), fields(camera = %self.inner.name, address = %self.inner.address, port = %self.inner.port))]
    pub async fn move_relative(&self, pan_deg: f64, tilt_deg: f64) -> Result<(), CameraError> {
        let p = &self.inner.profile;
        let span = |a: &super::profile::Axis| a.max_deg - a.min_deg;
        if !pan_deg.is_finite() || !tilt_deg.is_finite() || pan_deg.abs() > span(&p.pan) || tilt_deg.abs() > span(&p.tilt) {
            return Err(InvalidRequest::RelativeTooLarge { pan: pan_deg, tilt: tilt_deg }.into());
        }
        let pan = (pan_deg * p.pan.units_per_degree).round() as i32;
        let tilt = (tilt_deg * p.tilt.units_per_degree).round() as i32;
        self.check_units(pan, tilt)?;
        self.command(ViscaCommand::PanTiltRelative {
            pan_speed: p.max_pan_speed,
            tilt_speed: p.max_tilt_speed,
            pan,
            tilt,
            nibbles: self.nibbles(),
        })
        .await
    }

    /// Starts (or, with [`Direction::Stop`], stops) a continuous pan/tilt
    /// drive. Speeds are VISCA speed bytes, capped at the profile's maximum.
    pub async fn drive(&self, direction: Direction, pan_speed: u8, tilt_speed: u8) -> Result<(), CameraError> {
        let p = &self.inner.profile;
        self.command(ViscaCommand::PanTiltDrive {
            direction,
            pan_speed: pan_speed.clamp(1, p.max_pan_speed.max(1)),
            tilt_speed: tilt_speed.clamp(1, p.max_tilt_speed.max(1)),
        })
        .await
    }

    /// Stops pan/tilt drive.
    pub async fn stop(&self) -> Result<(), CameraError> {
        self.drive(Direction::Stop, 1, 1).await
    }

    pub async fn zoom(&self, drive: ZoomDrive) -> Result<(), CameraError> {
        self.command(ViscaCommand::Zoom(drive)).await
    }

    /// Zooms to an optical magnification using the profile's table.
    pub async fn zoom_to(&self, magnification: f64) -> Result<(), CameraError> {
        let pos = self.zoom_position(magnification)?;
        self.command(ViscaCommand::ZoomDirect(pos)).await
    }

    pub async fn focus_auto(&self) -> Result<(), CameraError> {
        self.command(ViscaCommand::FocusAuto).await
    }

    pub async fn focus_manual(&self) -> Result<(), CameraError> {
        self.command(ViscaCommand::FocusManual).await
    }

    pub async fn focus_one_push(&self) -> Result<(), CameraError> {
        self.command(ViscaCommand::FocusOnePush).await
    }

    pub async fn home(&self) -> Result<(), CameraError> {
        self.command(ViscaCommand::Home).await
    }

    pub async fn power(&self, on: bool) -> Result<(), CameraError> {
        self.command(ViscaCommand::Power(on)).await
    }

    // --- inquiries ------------------------------------------------------

    /// Current pan/tilt in degrees and zoom magnification (two inquiries).
    pub async fn position(&self) -> Result<Position, CameraError> {
        let p = &self.inner.profile;
        let (pt, z) = tokio::join!(self.inquire(Inquiry::PanTiltPosition), self.inquire(Inquiry::ZoomPosition));
        let (pan, tilt) = match pt? {
            Answer::PanTiltPosition { pan, tilt } => (pan, tilt),
            other => return Err(BadAnswer::Unexpected(other).into()),
        };
        let zoom = match z? {
            Answer::ZoomPosition(pos) => pos,
            other => return Err(BadAnswer::Unexpected(other).into()),
        };
        Ok(Position { pan_deg: p.pan.to_degrees(pan), tilt_deg: p.tilt.to_degrees(tilt), zoom: p.zoom.to_magnification(zoom) })
    }

    pub async fn power_state(&self) -> Result<PowerState, CameraError> {
        match self.inquire(Inquiry::Power).await? {
            Answer::Power(s) => Ok(s),
            other => Err(BadAnswer::Unexpected(other).into()),
        }
    }

    pub async fn focus_mode(&self) -> Result<FocusMode, CameraError> {
        match self.inquire(Inquiry::FocusMode).await? {
            Answer::FocusMode(m) => Ok(m),
            other => Err(BadAnswer::Unexpected(other).into()),
        }
    }

    pub async fn version(&self) -> Result<Version, CameraError> {
        match self.inquire(Inquiry::Version).await? {
            Answer::Version(v) => Ok(v),
            other => Err(BadAnswer::Unexpected(other).into()),
        }
    }
}
