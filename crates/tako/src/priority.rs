//! The CPU priority of the threads that run deployments in `tako serve`.
//!
//! Linux keeps a nice value per thread, and a process started by a thread
//! inherits that thread's. The deployments' runtime lowers its threads'
//! priority when each starts, so its tasks, its blocking work (checkouts)
//! and the scripts and `git` processes they start yield the CPU to the
//! intake and the API when both want it, and take all of it when the intake
//! is idle (docs/decisions.md, "The intake before the deployments").
//! Elsewhere the nice value is per process: nothing is changed there.

/// Lowers the calling thread's CPU priority by `nice` (0: unchanged). A
/// refusal is logged once per thread and the thread runs on as it was.
#[cfg(target_os = "linux")]
pub(crate) fn lower_this_thread(nice: u8) {
    if nice == 0 {
        return;
    }
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    let wanted = current.saturating_add(i32::from(nice)).min(19);
    if let Err(error) = rustix::process::setpriority_process(Some(thread), wanted) {
        tracing::warn!(%error, nice, "cannot lower a deployment thread's CPU priority");
    }
}

/// Other systems keep one nice value per process: left unchanged.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_this_thread(_nice: u8) {}
