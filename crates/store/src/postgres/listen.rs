//! The PostgreSQL side of [`crate::wakeups`]: one connection of its own
//! (outside the pool) that `LISTEN`s on `tako_wakeup` and turns each
//! notification the triggers of migration 0020 send into a [`Wakeup`].
//!
//! Started by the first [`crate::Store::wakeups`] call inside a runtime
//! (a store used only for a copy or a check opens no such connection);
//! stopped when the store is dropped. When the connection is lost (the
//! database restarts, the network fails) it is made again every second,
//! and each new one sends [`Wakeup::Missed`]: what happened meanwhile was
//! not heard, so waiters look at everything.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::poll_fn;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use super::tls::RustlsTls;
use crate::wakeups::{Hub, Wakeup};

/// How long to wait before connecting again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// What the listener needs; the task runs until `stop` is dropped.
pub(super) struct Listener {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: RustlsTls,
    pub(super) hub: Arc<Hub>,
    pub(super) stop: watch::Receiver<()>,
    /// The database, without its password, for messages.
    pub(super) target: String,
}

impl Listener {
    /// Listens, reconnecting, until the store is dropped.
    pub(super) async fn run(mut self) {
        let mut first = true;
        loop {
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = stop.changed() => return,
                () = self.listen_once(first) => {}
            }
            first = false;
            tokio::select! {
                _ = self.stop.changed() => return,
                () = tokio::time::sleep(RECONNECT_EVERY) => {}
            }
        }
    }

    /// One connection's life: connect, `LISTEN`, pass notifications on
    /// until the connection ends.
    async fn listen_once(&self, first: bool) {
        let (client, mut connection) = match self.config.connect(self.tls.clone()).await {
            Ok(connected) => connected,
            Err(error) => {
                tracing::debug!(database = %self.target, error = %super::ops::describe(&error),
                    "cannot connect to listen for wake-ups; polling meanwhile");
                return;
            }
        };
        let hub = Arc::clone(&self.hub);
        // The connection is driven here: it carries the LISTEN's answer and
        // then the notifications.
        let pump = tokio::spawn(async move {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(note)) => {
                        if let Some(wakeup) = Wakeup::parse(note.payload()) {
                            hub.send(wakeup);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(error = %super::ops::describe(&error),
                            "the wake-up connection failed; polling until it is made again");
                        return;
                    }
                }
            }
        });
        if let Err(error) = client.batch_execute("LISTEN tako_wakeup").await {
            tracing::warn!(database = %self.target, error = %super::ops::describe(&error),
                "cannot listen for wake-ups; polling meanwhile");
            pump.abort();
            return;
        }
        if !first {
            tracing::info!(database = %self.target, "listening for wake-ups again");
            self.hub.send(Wakeup::Missed);
        }
        let _ = pump.await;
        drop(client);
    }
}
