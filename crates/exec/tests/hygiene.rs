//! Process hygiene under load: many deployments run at once through
//! `run_deployment`, their scripts killed by step timeouts and by cancels
//! while they print, spawn background children and hold pipes open. After
//! them: 0 processes left (counted in `/proc`) and 0 file descriptors leaked
//! (`/proc/self/fd` counted before and after).
//!
//! One test in its own binary, so no other test opens descriptors meanwhile.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tako_core::system::DeploymentFacts;
use tako_exec::engine::{DeploymentOutcome, DeploymentPlan, RunSettings, run_deployment};
use tako_exec::sink::MemorySink;
use tako_test_support::{processes_with, wait_until};
use tokio_util::sync::CancellationToken;

/// How many deployments run at once, of each kind.
const EACH: usize = 12;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn plan(marker: &str, timeout: &str) -> DeploymentPlan {
    // A script that prints, leaves children in the background (one holding
    // the stdout pipe open, one detached from it, one grandchild) and then
    // sleeps far beyond its timeout. `exec -a` puts the marker in each process's command line.
    let takofile = format!(
        "Project: Demo\nSteps:\n  - Name: Busy\n    Shell: bash\n    Timeout: {timeout}\n    Run: |\n      \
         for i in 1 2 3; do echo \"line $i\"; done\n      \
         (exec -a {marker}-background sleep 300) &\n      \
         (exec -a {marker}-detached sleep 300 >/dev/null 2>&1 </dev/null) &\n      \
         sh -c 'sleep 300; true' {marker}-grandchild &\n      \
         exec -a {marker}-foreground sleep 300\n  - Name: After\n    Run: echo after\n"
    );
    let takofile = tako_takofile::parse("takofile", &takofile).unwrap_or_else(|d| panic!("{d}"));
    let variables = tako_core::variables::from_takofile(&takofile);
    DeploymentPlan {
        steps: takofile.steps.unwrap(),
        facts: DeploymentFacts {
            project: "Demo".into(),
            environment: "Production".into(),
            release_number: "1.0.0".into(),
            deployment_id: "deployments-1".into(),
            ..Default::default()
        },
        variables,
    }
}

fn settings(root: &std::path::Path, n: usize) -> RunSettings {
    let working_dir = root.join(format!("work-{n}"));
    let scratch_dir = root.join(format!("scratch-{n}"));
    std::fs::create_dir_all(&working_dir).unwrap();
    std::fs::create_dir_all(&scratch_dir).unwrap();
    RunSettings {
        working_dir,
        scratch_dir,
        kill_grace: Duration::from_millis(500),
    }
}

#[test]
fn timeouts_and_cancels_under_load_leave_no_process_and_no_descriptor() {
    let marker = format!(
        "tako-hygiene-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let root = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();

    // Warm up (lazy statics, the runtime's own descriptors), then count.
    let warm = plan(&marker, "1s");
    let warm_settings = settings(root.path(), 10_000);
    let sink = MemorySink::new();
    let report = runtime.block_on(run_deployment(
        &warm,
        &warm_settings,
        &sink,
        &CancellationToken::new(),
    ));
    assert!(matches!(report.outcome, DeploymentOutcome::Failed { .. }));
    assert!(wait_until(Duration::from_secs(10), || processes_with(
        &marker
    )
    .is_empty()));
    let fds_before = open_fds();

    // Sample the marked processes while the load runs, so the count below
    // is known to see them.
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (running, marker) = (running.clone(), marker.clone());
        std::thread::spawn(move || {
            let mut most = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(processes_with(&marker).len());
                std::thread::sleep(Duration::from_millis(50));
            }
            most
        })
    };
    let started = Instant::now();
    let outcomes = runtime.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..EACH * 2 {
            let cancel = CancellationToken::new();
            let timed_out = n % 2 == 0;
            // Timeouts of 1 to 3 s; cancels 100 ms to 1.2 s in.
            let plan = Arc::new(plan(&marker, if timed_out { "1s" } else { "5m" }));
            let settings = Arc::new(settings(root.path(), n));
            if !timed_out {
                let cancel = cancel.clone();
                let delay = Duration::from_millis(100 + (n as u64 * 97) % 1100);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    cancel.cancel();
                });
            }
            tasks.push(tokio::spawn(async move {
                let sink = MemorySink::new();
                let report = run_deployment(&plan, &settings, &sink, &cancel).await;
                (timed_out, report.outcome, sink.text())
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    });
    let elapsed = started.elapsed();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let most_at_once = sampler.join().unwrap();

    for (timed_out, outcome, log) in &outcomes {
        if *timed_out {
            assert!(
                matches!(outcome, DeploymentOutcome::Failed { error } if error.contains("Busy")),
                "{outcome:?}\n{log}"
            );
        } else {
            assert_eq!(*outcome, DeploymentOutcome::Cancelled, "{log}");
        }
        assert!(
            !log.contains("Step 'After' started"),
            "a later step ran:\n{log}"
        );
    }

    // The process groups are killed; give the kernel a moment to reap.
    let gone = wait_until(Duration::from_secs(10), || {
        processes_with(&marker).is_empty()
    });
    let left = processes_with(&marker);
    let fds_after = open_fds();
    eprintln!(
        "hygiene: {} deployments ({} timed out, {} cancelled) in {:.1}s; \
         at most {most_at_once} marked processes at once; processes left {}, \
         descriptors before {fds_before}, after {fds_after}",
        outcomes.len(),
        EACH,
        EACH,
        elapsed.as_secs_f64(),
        left.len(),
    );
    assert!(
        most_at_once >= EACH,
        "the scripts' processes were never seen: the count proves nothing"
    );
    assert!(gone, "processes left behind: {left:?}");
    assert!(
        fds_after <= fds_before,
        "file descriptors leaked: {fds_before} before, {fds_after} after"
    );
}
