//! The running device actors the engine drives.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::camera::CameraHandle;
use crate::lighting::LightingHandle;
use crate::osc::OscSender;

/// Handles to the device actors of the configuration in force.
#[derive(Clone, Default)]
pub struct DeviceHandles {
    pub cameras: BTreeMap<String, CameraHandle>,
    pub lighting: Option<LightingHandle>,
    pub osc: Option<Arc<OscSender>>,
}
