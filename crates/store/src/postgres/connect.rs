//! How the pool opens a connection: on the runtime that opened the store.
//!
//! `tokio-postgres` splits a connection into a client and a driver task
//! that does the socket's I/O. Left to `deadpool-postgres`, the driver is
//! spawned on whichever runtime asked for the connection first, and the
//! socket is registered with that runtime's reactor. `tako serve` runs
//! deployments on a second runtime whose threads have a lower CPU priority
//! than the intake's (`crates/tako/src/priority.rs`): a connection a
//! deployment happened to open would then be driven by low-priority threads
//! while an intake request waits on it. [`OnRuntime`] connects and spawns
//! the driver on the runtime captured when the store was opened (the
//! server's own), whoever asks.

use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config};

use super::tls::RustlsTls;

/// Connects on `runtime`, with `tls`.
pub(super) struct OnRuntime {
    pub(super) runtime: Handle,
    pub(super) tls: RustlsTls,
}

impl Connect for OnRuntime {
    fn connect(
        &self,
        config: &Config,
    ) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let config = config.clone();
        let tls = self.tls.clone();
        let opening = self.runtime.spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "a database connection failed");
                }
            });
            Ok((client, driver))
        });
        Box::pin(async move {
            match opening.await {
                Ok(opened) => opened,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // The server's runtime is shutting down: the pool's create
                // timeout answers the caller.
                Err(_) => std::future::pending().await,
            }
        })
    }
}
