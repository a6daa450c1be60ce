//! A DMX output of either protocol, as the patch and the lighting task see
//! it: a name fixtures are patched to, and one universe on one target.

use std::net::SocketAddr;

use super::artnet::ArtNetOutput;
use super::sacn::SacnOutput;

/// Which protocol an output speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    ArtNet,
    Sacn,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::ArtNet => "artnet",
            Protocol::Sacn => "sacn",
        }
    }
}

/// One `[[artnet]]` or `[[sacn]]` output.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    ArtNet(ArtNetOutput),
    Sacn(SacnOutput),
}

impl Output {
    pub fn name(&self) -> &str {
        match self {
            Output::ArtNet(o) => &o.name,
            Output::Sacn(o) => &o.name,
        }
    }

    pub fn target(&self) -> SocketAddr {
        match self {
            Output::ArtNet(o) => o.target,
            Output::Sacn(o) => o.target,
        }
    }

    /// The Art-Net port-address or the sACN universe.
    pub fn universe(&self) -> u16 {
        match self {
            Output::ArtNet(o) => o.universe,
            Output::Sacn(o) => o.universe,
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Output::ArtNet(_) => Protocol::ArtNet,
            Output::Sacn(_) => Protocol::Sacn,
        }
    }
}

impl From<ArtNetOutput> for Output {
    fn from(o: ArtNetOutput) -> Output {
        Output::ArtNet(o)
    }
}

impl From<SacnOutput> for Output {
    fn from(o: SacnOutput) -> Output {
        Output::Sacn(o)
    }
}
