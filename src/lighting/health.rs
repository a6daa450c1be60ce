//! Health of a lighting output, as far as it can be verified: a sans-IO
//! state machine on `Instant`s (no sockets, no sleeping).
//!
//! An Art-Net node is asked with a unicast ArtPoll every [`POLL_INTERVAL`];
//! it is online while ArtPollReplies come, offline after [`OFFLINE_AFTER`]
//! without one, and online again by itself at the next reply. Outputs whose
//! protocol never answers (sACN, Art-Net with `poll = false`) stay
//! [`HealthState::Unverified`]: never shown as online.
//!
//! Replies all arrive on one socket (the Art-Net port), so which node a
//! reply is from is decided here too: [`reply_from`].

use std::net::SocketAddr;
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
    /// Why replies may not reach us at all (the Art-Net port could not be
    /// bound): part of the offline reason while it lasts.
    listen_problem: Option<String>,
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
            listen_problem: None,
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

    /// Replies cannot be received (`Some`, in plain words), or can again
    /// (`None`). True when the health changed: an offline node's reason is
    /// rewritten, since one naming a problem that is gone (or not naming the
    /// one that keeps its replies out) would mislead.
    pub fn set_listen_problem(&mut self, problem: Option<String>, now: Instant) -> bool {
        if self.listen_problem == problem {
            return false;
        }
        self.listen_problem = problem;
        match &self.health.state {
            HealthState::Offline(_) if self.poll => {
                // Still offline since the same instant: only the words change.
                self.health.state = HealthState::Offline(self.offline_reason(now));
                true
            }
            _ => false,
        }
    }

    /// Advance time. True when the health changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if !self.poll {
            return false;
        }
        if now.saturating_duration_since(self.last_heard) < OFFLINE_AFTER {
            return false;
        }
        // The reason's seconds grow; only the first crossing is a change.
        match &self.health.state {
            HealthState::Offline(_) => false,
            _ => {
                let reason = self.offline_reason(now);
                self.set(HealthState::Offline(reason), now)
            }
        }
    }

    fn offline_reason(&self, now: Instant) -> String {
        let quiet = now.saturating_duration_since(self.last_heard);
        let mut reason = match self.health.node {
            Some(_) => format!("no ArtPollReply for {} s", quiet.as_secs()),
            None => format!("never answered ArtPoll ({} s)", quiet.as_secs()),
        };
        for note in [&self.send_error, &self.listen_problem].into_iter().flatten() {
            reason = format!("{reason}; {note}");
        }
        reason
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

/// Which node an ArtPollReply is from, by its source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplySource {
    /// The index of the target it is from.
    Target(usize),
    /// From an IP several targets share, at none's exact address: crediting
    /// any of them could show a dead node as online.
    Ambiguous,
    /// From no target's IP (another controller's node, a stray packet).
    Unknown,
}

/// The target `from` is: the one at exactly that address; else the only
/// one at that IP, since a node replies from its own Art-Net port (6454),
/// whatever port it is sent to; else none.
pub fn reply_from(targets: &[SocketAddr], from: SocketAddr) -> ReplySource {
    if let Some(i) = targets.iter().position(|t| *t == from) {
        return ReplySource::Target(i);
    }
    let mut same_ip = targets.iter().enumerate().filter(|(_, t)| t.ip() == from.ip());
    match (same_ip.next(), same_ip.next()) {
        (Some((i, _)), None) => ReplySource::Target(i),
        (Some(_), Some(_)) => ReplySource::Ambiguous,
        (None, _) => ReplySource::Unknown,
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

    #[test]
    fn a_listen_problem_is_part_of_the_offline_reason_and_goes_with_it() {
        let t0 = Instant::now();
        let mut h = NodeHealth::new(true, t0);
        let problem = "cannot listen for ArtPollReply on 0.0.0.0:6454: Address already in use".to_string();
        assert!(!h.set_listen_problem(Some(problem.clone()), t0), "unverified: nothing shown changes");
        let t_off = t0 + OFFLINE_AFTER;
        assert!(h.tick(t_off));
        assert_eq!(h.health().state, HealthState::Offline(format!("never answered ArtPoll (10 s); {problem}")));
        // The port is bound again: the reason no longer blames it; still offline since then.
        assert!(h.set_listen_problem(None, t_off + Duration::from_secs(5)));
        assert_eq!(h.health().state, HealthState::Offline("never answered ArtPoll (15 s)".into()));
        assert_eq!(h.health().since, t_off);
        assert!(!h.set_listen_problem(None, t_off + Duration::from_secs(6)), "no change");
        // Online: a new problem changes nothing shown until it goes offline again.
        assert!(h.on_reply(node(), t_off + Duration::from_secs(7)));
        assert!(!h.set_listen_problem(Some(problem), t_off + Duration::from_secs(8)));
        assert_eq!(h.health().state, HealthState::Online);
        let mut quiet = NodeHealth::new(false, t0);
        assert!(!quiet.set_listen_problem(Some("x".into()), t0), "without poll: unverified for good");
        assert_eq!(quiet.health().state, HealthState::Unverified);
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_reply_is_credited_to_the_exact_address_first() {
        let targets = [addr("10.0.0.7:6454"), addr("10.0.0.7:6455"), addr("10.0.0.8:6454")];
        assert_eq!(reply_from(&targets, addr("10.0.0.7:6455")), ReplySource::Target(1));
        assert_eq!(reply_from(&targets, addr("10.0.0.7:6454")), ReplySource::Target(0));
        assert_eq!(reply_from(&targets, addr("10.0.0.8:6454")), ReplySource::Target(2));
    }

    #[test]
    fn else_to_the_only_target_at_that_ip_whatever_its_port() {
        // A node sent to a non-standard port still replies from 6454.
        let targets = [addr("127.0.0.1:40001"), addr("127.0.0.2:40002")];
        assert_eq!(reply_from(&targets, addr("127.0.0.1:6454")), ReplySource::Target(0));
        assert_eq!(reply_from(&targets, addr("127.0.0.2:6454")), ReplySource::Target(1));
    }

    #[test]
    fn several_targets_at_that_ip_and_none_exact_credits_none() {
        let targets = [addr("127.0.0.1:40001"), addr("127.0.0.1:40002"), addr("127.0.0.3:6454")];
        assert_eq!(reply_from(&targets, addr("127.0.0.1:6454")), ReplySource::Ambiguous);
        assert_eq!(reply_from(&targets, addr("127.0.0.1:40002")), ReplySource::Target(1), "exact still wins");
    }

    #[test]
    fn a_reply_from_no_target_ip_is_unknown() {
        let targets = [addr("10.0.0.7:6454")];
        assert_eq!(reply_from(&targets, addr("10.0.0.9:6454")), ReplySource::Unknown);
        assert_eq!(reply_from(&[], addr("10.0.0.9:6454")), ReplySource::Unknown);
    }
}
