//! Test harness shared by every crate's tests: temporary git repositories
//! with a pinned environment, and helpers to look at the machine's processes.
//!
//! Only ever a dev-dependency. Everything here talks to real programs (git,
//! the kernel's `/proc`), never to fakes.

pub mod agent;
pub mod browser;
pub mod fault_proxy;
pub mod forge_api;
pub mod git_server;
pub mod github;
pub mod http;
pub mod nuget;
pub mod octopus;
pub mod origin;
pub mod postgres;
pub mod server;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A git work tree in a temporary directory, with author, committer and
/// configuration pinned so tests do not depend on the machine's settings.
pub struct TempGitRepo {
    dir: TempDir,
}

impl TempGitRepo {
    /// `git init -b main` in a fresh temporary directory.
    pub fn new() -> TempGitRepo {
        let dir = tempfile::Builder::new()
            .prefix("tako-test-repo-")
            .tempdir()
            .expect("a temporary directory can be created");
        let repo = TempGitRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The work tree's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `relative` (creating directories).
    pub fn write(&self, relative: &str, content: &str) -> &Self {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent directories can be created");
        }
        std::fs::write(&path, content).expect("fixture file can be written");
        self
    }

    /// Commits everything with `message`; returns the new commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Creates and switches to `branch`.
    pub fn checkout_new_branch(&self, branch: &str) {
        self.git(&["checkout", "-q", "-b", branch]);
    }

    /// Runs git with the pinned environment; panics with git's stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let output = git_command(self.dir.path())
            .args(args)
            .output()
            .expect("git can be run");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Default for TempGitRepo {
    fn default() -> Self {
        TempGitRepo::new()
    }
}

/// A `git` command in `dir` with a pinned, hermetic environment.
pub fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Tako Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "Tako Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
    command
}

/// PIDs of live processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Zombies (state Z) are dead already, waiting to be reaped by init.
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'));
            !zombie
                && String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(marker)
        })
        .collect()
}

/// Polls `condition` until it holds or `deadline` passes; returns whether it held.
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A unique marker for a test's processes (`tako-test-<pid>-<n>`).
pub fn unique_marker(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "tako-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Output of a finished command as text, for assertions.
pub fn text_of(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The workspace's root directory (for tests that read repository files).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}
