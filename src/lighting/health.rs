//! Health of a lighting output, as far as it can be verified: a sans-IO
//! state machine on `Instant`s (no sockets, no sleeping).
//!
//! An Art-Net node is asked with a unicast ArtPoll every [`POLL_INTERVAL`];
//! it is online while ArtPollReplies come, offline after [`OFFLINE_AFTER`]
//! without one, and online again by itself at the next reply. Outputs whose
//! protocol never answers (sACN, Art-Net with `poll = false`) stay
//! [`HealthState::Unverified`]: never shown as online.

use std::time::Duration;

use tokio::time::Instant;

/// How often a node is polled (the contract allows at most 3 s).
pub const POLL_INTERVAL: Duration = Duration::from_millis(2500);
/// A node is offline after this long without an ArtPollReply.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(10);

/// What a node says about itself in its ArtPollReply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub short_name: String,
    pub long_name: String,
    /// VersInfo: the node's firmware revision.
    pub firmware: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    /// Nothing answers on this protocol (or not yet): not known to be up.
    Unverified,
    Online,
    /// With the reason in plain language.
    Offline(String),
}

/// One output's health and what its node last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputHealth {
    pub state: HealthState,
    /// When `state` last changed.
    pub since: Instant,
    /// The last ArtPollReply's identity (kept while offline).
    pub node: Option<NodeInfo>,
}

/// The poll/timeout machine for one node (one target address).
#[derive(Debug, Clone)]
pub struct NodeHealth {
    poll: bool,
    health: OutputHealth,
    /// The last reply, or when polling started (the timeout runs from there).
    last_heard: Instant,
    next_poll: Instant,
    /// A send error seen since the last reply (ICMP port unreachable, …).
    send_error: Option<String>,
}

impl NodeHealth {
    /// `poll = false`: a node that does not answer ArtPoll (or a protocol
    /// without replies): unverified for good.
    pub fn new(poll: bool, now: Instant) -> NodeHealth {
        NodeHealth {
            poll,
            health: OutputHealth { state: HealthState::Unverified, since: now, node: None },
            last_heard: now,
            next_poll: now,
            send_error: None,
        }
    }

    pub fn health(&self) -> &OutputHealth {
        &self.health
    }

    pub fn polls(&self) -> bool {
        self.poll
    }

    /// Whether an ArtPoll is due now; when it is, the next is scheduled
    /// [`POLL_INTERVAL`] later (the caller sends it).
    pub fn poll_due(&mut self, now: Instant) -> bool {
        if !self.poll || now < self.next_poll {
            return false;
        }
        self.next_poll = now + POLL_INTERVAL;
        true
    }

    /// The next instant something may change: a poll or the timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.poll.then(|| self.next_poll.min(self.last_heard + OFFLINE_AFTER))
    }

    /// An ArtPollReply arrived. True when the health changed.
    pub fn on_reply(&mut self, info: NodeInfo, now: Instant) -> bool {
        if !self.poll {
            return false;
        }
        self.last_heard = now;
        self.send_error = None;
        let changed_node = self.health.node.as_ref() != Some(&info);
        self.health.node = Some(info);
        self.set(HealthState::Online, now) || changed_node
    }

    /// A send to the node failed (e.g. its port is closed): remembered as
    /// the reason should it go offline. Does not by itself change health.
    pub fn on_send_error(&mut self, error: &std::io::Error) {
        let why = match error.kind() {
            std::io::ErrorKind::ConnectionRefused => "its Art-Net port is closed (ICMP port unreachable)".to_string(),
            _ => format!("sending to it fails ({error})"),
        };
        self.send_error = Some(why);
    }

    /// Advance time. True when the health changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if !self.poll {
            return false;
        }
        let quiet = now.saturating_duration_since(self.last_heard);
        if quiet < OFFLINE_AFTER {
            return false;
        }
        let mut reason = match self.health.node {
            Some(_) => format!("no ArtPollReply for {} s", quiet.as_secs()),
            None => format!("never answered ArtPoll ({} s)", quiet.as_secs()),
        };
        if let Some(e) = &self.send_error {
            reason = format!("{reason}; {e}");
        }
        // The reason's seconds grow; only the first crossing is a change.
        match &self.health.state {
            HealthState::Offline(_) => false,
            _ => self.set(HealthState::Offline(reason), now),
        }
    }

    fn set(&mut self, state: HealthState, now: Instant) -> bool {
        if self.health.state == state {
            return false;
        }
        self.health.state = state;
        self.health.since = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo { short_name: "node1".into(), long_name: "Booth node 1".into(), firmware: 0x0102 }
    }

    #[test]
    fn polls_every_interval_and_is_unverified_until_the_first_reply() {
        let t0 = Instant::now();
        let mut h = NodeHealth::new(true, t0);
        assert!(h.poll_due(t0), "first poll at once");
        assert!(!h.poll_due(t0 + Duration::from_millis(2499)));
        assert!(h.poll_due(t0 + POLL_INTERVAL));
        assert!(POLL_INTERVAL <= Duration::from_secs(3));
        assert_eq!(h.health().state, HealthState::Unverified);
        assert!(h.on_reply(node(), t0 + Duration::from_millis(3)));
        assert_eq!(h.health().state, HealthState::Online);
        assert_eq!(h.health().since, t0 + Duration::from_millis(3));
        assert_eq!(h.health().node, Some(node()));
        assert!(!h.on_reply(node(), t0 + Duration::from_secs(1)), "same reply again: no change");
    }

    #[test]
    fn offline_after_ten_seconds_without_a_reply_and_back_by_itself() {
        let t0 = Instant::now();
        let mut h = NodeHealth::new(true, t0);
        h.on_reply(node(), t0);
        assert!(!h.tick(t0 + OFFLINE_AFTER - Duration::from_millis(1)));
        assert_eq!(h.health().state, HealthState::Online);
        let t_off = t0 + OFFLINE_AFTER;
        assert!(h.tick(t_off));
        match &h.health().state {
            HealthState::Offline(r) => assert_eq!(r, "no ArtPollReply for 10 s"),
            s => panic!("{s:?}"),
        }
        assert_eq!(h.health().since, t_off);
        assert!(!h.tick(t_off + Duration::from_secs(5)), "still offline, since unchanged");
        assert_eq!(h.health().since, t_off);
        assert_eq!(h.health().node, Some(node()), "last identity kept");
        let t_back = t_off + Duration::from_secs(7);
        assert!(h.on_reply(node(), t_back));
        assert_eq!((h.health().state.clone(), h.health().since), (HealthState::Online, t_back));
    }

    #[test]
    fn a_node_that_never_answers_goes_offline_with_the_send_error_as_reason() {
        let t0 = Instant::now();
        let mut h = NodeHealth::new(true, t0);
        assert_eq!(h.next_deadline(), Some(t0));
        h.poll_due(t0);
        assert_eq!(h.next_deadline(), Some(t0 + POLL_INTERVAL));
        h.on_send_error(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(h.tick(t0 + OFFLINE_AFTER));
        match &h.health().state {
            HealthState::Offline(r) => {
                assert_eq!(r, "never answered ArtPoll (10 s); its Art-Net port is closed (ICMP port unreachable)")
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn without_poll_it_stays_unverified() {
        let t0 = Instant::now();
        let mut h = NodeHealth::new(false, t0);
        assert!(!h.poll_due(t0));
        assert!(!h.tick(t0 + Duration::from_secs(60)));
        assert!(!h.on_reply(node(), t0));
        assert_eq!(h.health().state, HealthState::Unverified);
        assert_eq!(h.next_deadline(), None);
    }
}
