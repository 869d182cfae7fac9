//! Wake-ups (cluster §3): what a store tells the nodes using it when
//! something they wait for may have happened: deliveries stored, a
//! deployment queued (or one leaving `running`, so its environment's queue
//! may move), a cancel requested, log lines stored, a job created for an
//! agent, the cache generation moved.
//!
//! Store-neutral: [`Wakeups`] is a stream of [`Wakeup`]s every
//! implementation provides. SQLite's is in-process (the store sends one
//! after each such write commits; one node uses the file). PostgreSQL's
//! comes from `LISTEN tako_wakeup` (triggers `NOTIFY` on commit, so a
//! change made through any node wakes every node). A wake-up is a hint,
//! never the truth: waiters read the store afterwards, and also poll, so a
//! lost one costs latency, never correctness. [`Wakeup::Missed`] says that
//! some may have been lost (a slow receiver, a reconnected listener): look
//! at everything.

use tokio::sync::broadcast;

use crate::model::DeploymentId;

/// How many wake-ups a slow receiver may fall behind before it is told
/// [`Wakeup::Missed`].
const CAPACITY: usize = 1024;

/// Something a node may be waiting for happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// Deliveries were stored.
    Deliveries,
    /// A deployment was queued, or one left `running`.
    Deployments,
    /// A cancel was requested for this deployment.
    Cancel(DeploymentId),
    /// Log lines of this deployment were stored.
    Log(DeploymentId),
    /// A job was created for an agent.
    Jobs,
    /// What nodes cache (projects, policies, tokens) changed.
    Caches,
    /// Wake-ups may have been lost: anything may have happened.
    Missed,
}

impl Wakeup {
    /// A `NOTIFY` payload read back (`deliveries`, `cancel:42`, …); `None`
    /// for anything else.
    pub(crate) fn parse(payload: &str) -> Option<Wakeup> {
        let id = |text: &str| text.parse::<i64>().ok().map(DeploymentId);
        match payload.split_once(':') {
            None => match payload {
                "deliveries" => Some(Wakeup::Deliveries),
                "deployments" => Some(Wakeup::Deployments),
                "jobs" => Some(Wakeup::Jobs),
                "caches" => Some(Wakeup::Caches),
                _ => None,
            },
            Some(("cancel", rest)) => id(rest).map(Wakeup::Cancel),
            Some(("log", rest)) => id(rest).map(Wakeup::Log),
            Some(_) => None,
        }
    }
}

/// Where a store sends its wake-ups; each [`Wakeups`] receives them all.
#[derive(Debug)]
pub(crate) struct Hub(broadcast::Sender<Wakeup>);

impl Default for Hub {
    fn default() -> Hub {
        Hub(broadcast::channel(CAPACITY).0)
    }
}

impl Hub {
    /// Sends `wakeup` to every receiver (none listening is fine).
    pub(crate) fn send(&self, wakeup: Wakeup) {
        let _ = self.0.send(wakeup);
    }

    /// A new receiver, from now on.
    pub(crate) fn subscribe(&self) -> Wakeups {
        Wakeups(self.0.subscribe())
    }
}

/// One receiver of a store's wake-ups.
#[derive(Debug)]
pub struct Wakeups(broadcast::Receiver<Wakeup>);

impl Wakeups {
    /// The next wake-up. Waits for ever once the store is gone (its waiters
    /// then live on their polls).
    pub async fn next(&mut self) -> Wakeup {
        match self.0.recv().await {
            Ok(wakeup) => wakeup,
            Err(broadcast::error::RecvError::Lagged(_)) => Wakeup::Missed,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    /// Waits for a wake-up about deployment `id`'s log (or a possibly missed
    /// one).
    pub async fn log_of(&mut self, id: DeploymentId) {
        loop {
            match self.next().await {
                Wakeup::Log(of) if of == id => return,
                Wakeup::Missed => return,
                _ => {}
            }
        }
    }

    /// Waits for a cancel request of deployment `id` (or a possibly missed
    /// one).
    pub async fn cancel_of(&mut self, id: DeploymentId) {
        loop {
            match self.next().await {
                Wakeup::Cancel(of) if of == id => return,
                Wakeup::Missed => return,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn payloads_are_read_back_and_anything_else_is_not_a_wakeup() {
        assert_eq!(Wakeup::parse("deliveries"), Some(Wakeup::Deliveries));
        assert_eq!(Wakeup::parse("deployments"), Some(Wakeup::Deployments));
        assert_eq!(Wakeup::parse("jobs"), Some(Wakeup::Jobs));
        assert_eq!(Wakeup::parse("caches"), Some(Wakeup::Caches));
        assert_eq!(
            Wakeup::parse("cancel:42"),
            Some(Wakeup::Cancel(DeploymentId(42)))
        );
        assert_eq!(Wakeup::parse("log:7"), Some(Wakeup::Log(DeploymentId(7))));
        for bad in ["", "log:", "log:x", "cancel", "other:1", "Deliveries"] {
            assert_eq!(Wakeup::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_receiver_that_fell_behind_is_told_it_missed_some() {
        let hub = Hub::default();
        let mut wakeups = hub.subscribe();
        for _ in 0..=CAPACITY {
            hub.send(Wakeup::Jobs);
        }
        assert_eq!(wakeups.next().await, Wakeup::Missed);
        assert_eq!(wakeups.next().await, Wakeup::Jobs);
    }
}
