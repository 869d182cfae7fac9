//! Recovery after the process running a script died: its process group is
//! found through the scratch directory and killed, and nothing else is.

#![allow(clippy::unwrap_used)]

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use tako_exec::process::{PROCESS_GROUP_FILE, kill_leftover_groups};
use tako_test_support::{processes_with, unique_marker, wait_until};

fn spawn_group(cwd: &std::path::Path, marker: &str) -> std::process::Child {
    Command::new("bash")
        .args(["-c", &format!("exec -a {marker} sleep 60")])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

#[test]
fn leftover_groups_under_a_deployment_are_killed_and_others_are_not() {
    let deployment = tempfile::tempdir().unwrap();
    let checkout = deployment.path().join("checkout");
    let scratch = deployment.path().join("scratch/step-Test");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    let ours = unique_marker("leftover");
    let theirs = unique_marker("unrelated");
    let mut orphan = spawn_group(&checkout, &ours);
    let mut unrelated = spawn_group(elsewhere.path(), &theirs);
    // Both running (their command lines read while `exec` replaces bash
    // may be momentarily empty, so each is waited for).
    for marker in [&ours, &theirs] {
        assert!(wait_until(Duration::from_secs(5), || !processes_with(
            marker
        )
        .is_empty()));
    }

    // The group file names the unrelated group: its members work elsewhere,
    // so it survives; then ours.
    std::fs::write(scratch.join(PROCESS_GROUP_FILE), unrelated.id().to_string()).unwrap();
    assert_eq!(kill_leftover_groups(deployment.path()), 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "an unrelated group was killed"
    );
    assert!(
        !scratch.join(PROCESS_GROUP_FILE).exists(),
        "a stale group file is removed"
    );

    std::fs::write(scratch.join(PROCESS_GROUP_FILE), orphan.id().to_string()).unwrap();
    assert_eq!(kill_leftover_groups(deployment.path()), 1);
    let _ = orphan.wait();
    assert!(wait_until(Duration::from_secs(5), || processes_with(&ours).is_empty()));

    let _ = unrelated.kill();
    let _ = unrelated.wait();
}
