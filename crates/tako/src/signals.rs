//! The stop signals a long-running command (`tako serve`, `tako agent run`)
//! obeys: Ctrl-C (SIGINT) and, on Unix, SIGTERM (what systemd sends).

/// Resolves at the next Ctrl-C or SIGTERM.
#[cfg(unix)]
pub(crate) async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
pub(crate) async fn stop_requested() {
    let _ = tokio::signal::ctrl_c().await;
}
