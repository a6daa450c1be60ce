//! The way back to a command's caller: the one place every outcome passes,
//! whichever path produced it (refused, at once, completed in the
//! background, scheduled), so the command count covers each command once.

use tokio::sync::oneshot;

use super::Request;
use crate::command::Outcome;
use crate::metrics::{self, Metrics};

pub(crate) struct Reply {
    tx: Option<oneshot::Sender<Outcome>>,
    metrics: Metrics,
    action: &'static str,
    origin: &'static str,
}

impl Reply {
    pub fn new(tx: oneshot::Sender<Outcome>, metrics: &Metrics, req: &Request) -> Reply {
        Reply { tx: Some(tx), metrics: metrics.clone(), action: req.command.action(), origin: req.origin.as_str() }
    }

    /// For a scheduled command restored after a restart: its caller is
    /// gone, but its result is still counted.
    pub fn detached(metrics: &Metrics, req: &Request) -> Reply {
        Reply { tx: None, metrics: metrics.clone(), action: req.command.action(), origin: req.origin.as_str() }
    }

    /// Answer the caller now without counting: a scheduled command's
    /// acknowledgement. Its result is counted by the later [`send`](Self::send),
    /// which then only counts (the caller has had its answer).
    pub fn acknowledge(&mut self, ack: Outcome) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(ack);
        }
    }

    /// Count the outcome and hand it to the caller (who may have gone: fine).
    pub fn send(mut self, out: Outcome) {
        self.count(out.error.as_ref().map_or("ok", |e| e.code.as_str()));
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(out);
        }
    }

    fn count(&self, result: &str) {
        self.metrics.inc(metrics::COMMANDS_TOTAL, &[("action", self.action), ("result", result), ("origin", self.origin)]);
    }
}

impl Drop for Reply {
    /// Dropped unanswered (a completion stopped at shutdown): the caller
    /// hears so from its handle; the count says "dropped".
    fn drop(&mut self) {
        if self.tx.take().is_some() {
            self.count("dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, CommandError, ErrorCode, Origin};

    fn count(m: &Metrics, result: &str) -> f64 {
        m.get(metrics::COMMANDS_TOTAL, &[("action", "status"), ("result", result), ("origin", "cli")])
    }

    #[tokio::test]
    async fn every_reply_is_counted_once_by_its_result() {
        let m = Metrics::new();
        let req = Request::new(None, Origin::Cli, Command::Status);
        let (tx, rx) = oneshot::channel();
        Reply::new(tx, &m, &req).send(Outcome::from_devices(&req.command, Default::default(), Default::default()));
        assert!(rx.await.unwrap().ok);
        let (tx, _) = oneshot::channel();
        Reply::new(tx, &m, &req).send(Outcome::refused(&req.command, CommandError::new(ErrorCode::Busy, "x")));
        let (tx, rx) = oneshot::channel();
        drop(Reply::new(tx, &m, &req));
        assert!(rx.await.is_err());
        assert_eq!((count(&m, "ok"), count(&m, "busy"), count(&m, "dropped")), (1.0, 1.0, 1.0));
        // Acknowledged now, counted once by its result later; a detached
        // reply (restored after a restart) is counted the same way.
        let (tx, rx) = oneshot::channel();
        let mut r = Reply::new(tx, &m, &req);
        r.acknowledge(Outcome::from_devices(&req.command, Default::default(), Default::default()));
        assert!(rx.await.unwrap().ok);
        assert_eq!(count(&m, "ok"), 1.0);
        r.send(Outcome::refused(&req.command, CommandError::new(ErrorCode::Cancelled, "x")));
        Reply::detached(&m, &req).send(Outcome::refused(&req.command, CommandError::new(ErrorCode::Cancelled, "x")));
        drop(Reply::detached(&m, &req));
        assert_eq!((count(&m, "cancelled"), count(&m, "dropped")), (2.0, 1.0));
    }
}
