//! The agent's memory does not grow with a job's log: a spool takes 30 MB
//! of log that the server never acknowledges (a network cut), then
//! delivers it batch by batch, and the process's peak resident memory
//! grows by a few batches' worth, not by the log (kept in memory, 200,000
//! lines as `JobLogLine`s are ~60 MB). The log is on disk.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use tako_agent::spool::Spool;
use tako_protocol::agent::JobLogLine;

/// The process's peak resident memory so far (`VmHWM`), in bytes; each
/// test runs in a process of its own under nextest, and this file has one.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

fn lines(n: usize, text: &str) -> Vec<JobLogLine> {
    (0..n)
        .map(|i| JobLogLine {
            timestamp: "2026-12-06T08:00:00.000Z".to_owned(),
            stream: "stdout".to_owned(),
            level: "info".to_owned(),
            text: format!("{i} {text}"),
        })
        .collect()
}

#[test]
fn a_spooled_log_lives_on_disk_not_in_memory() {
    const BATCH_BYTES: usize = 960 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let mut job = spool.job("job-memory").unwrap();
    let text = "x".repeat(100);
    // Warm up the allocator with one chunk and one batch first.
    let mut warm = spool.job("job-warm").unwrap();
    warm.append(lines(1000, &text)).unwrap();
    warm.owed(BATCH_BYTES).unwrap();
    warm.complete().unwrap();
    let baseline = peak_rss();
    // 200 chunks of 1,000 lines (~30 MB of JSON), none acknowledged; the
    // sender keeps asking for what is owed, as it does during a cut.
    for _ in 0..200 {
        job.append(lines(1000, &text)).unwrap();
        let batch = job.owed(BATCH_BYTES).unwrap();
        assert_eq!(batch[0].seq, 1);
    }
    let on_disk = std::fs::metadata(dir.path().join("job-memory.jsonl"))
        .unwrap()
        .len();
    assert!(on_disk > 30_000_000, "{on_disk} bytes spooled");
    // Then it is delivered, batch by batch.
    let mut next = 1;
    while job.has_owed() {
        let batch = job.owed(BATCH_BYTES).unwrap();
        for chunk in &batch {
            assert_eq!(chunk.seq, next);
            next += 1;
        }
        job.stored(batch.last().unwrap().seq).unwrap();
    }
    assert_eq!(next, 201);
    let grown = peak_rss().saturating_sub(baseline);
    // A chunk being built (~250 KB as lines), one batch read back (~1 MB)
    // and the reader's buffers: a few MB, against 30 MB of log.
    assert!(
        grown < 12 * 1024 * 1024,
        "the heap grew by {grown} bytes for {on_disk} bytes of log"
    );
    job.complete().unwrap();
}
