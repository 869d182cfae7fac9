//! The node's side of the store's wake-ups (cluster §3): one task passes
//! each [`Wakeup`] to what waits for it here — the router for stored
//! deliveries, the scheduler for queued deployments and freed
//! environments, the agents' long polls for new jobs, the cache reload for
//! a moved generation. On PostgreSQL they come from every node (`NOTIFY`),
//! on SQLite from this process. Cancel requests and log lines are waited
//! for where they are needed (the lease watch, a followed log), each with
//! a receiver of its own. Every waiter also polls: a lost wake-up costs
//! latency, never correctness.

use std::sync::Arc;

use tako_store::{Store, Wakeup};
use tokio::sync::Notify;

/// What the wake-ups wake.
pub struct Wakers {
    /// The router (deliveries stored).
    pub deliveries: Arc<Notify>,
    /// The scheduler (a deployment queued, or one left `running`).
    pub deployments: Arc<Notify>,
    /// The agents' long polls (a job created).
    pub jobs: Arc<Notify>,
    /// The cache reload (the generation moved).
    pub caches: Arc<Notify>,
}

impl Wakers {
    /// Passes `store`'s wake-ups on until the task is dropped.
    pub async fn run(self, store: Arc<dyn Store>) {
        let mut wakeups = store.wakeups();
        drop(store);
        loop {
            let wakeup = wakeups.next().await;
            self.wake(wakeup);
        }
    }

    /// Wakes what waits for `wakeup`.
    pub fn wake(&self, wakeup: Wakeup) {
        match wakeup {
            Wakeup::Deliveries => self.deliveries.notify_one(),
            Wakeup::Deployments => self.deployments.notify_one(),
            Wakeup::Jobs => self.jobs.notify_waiters(),
            Wakeup::Caches => self.caches.notify_one(),
            Wakeup::Missed => {
                self.deliveries.notify_one();
                self.deployments.notify_one();
                self.jobs.notify_waiters();
                self.caches.notify_one();
            }
            Wakeup::Cancel(_) | Wakeup::Log(_) => {}
        }
    }
}
