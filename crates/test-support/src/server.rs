//! A real `tako serve` process for end-to-end tests: started on
//! `127.0.0.1:0` in a temporary data directory, its address and first admin
//! token read from its output, killed when dropped (or on purpose, with
//! SIGKILL, to test recovery).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running server.
pub struct TakoServer {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// `http://127.0.0.1:PORT`, or `https://…` when it terminates TLS.
    pub url: String,
    /// The admin token printed on the first start (`None` on a restart).
    pub token: Option<String>,
    /// Everything it printed on standard output so far (after start-up).
    pub startup_output: String,
}

impl TakoServer {
    /// Starts `binary serve --listen 127.0.0.1:0 --data-dir <data_dir>` plus
    /// `args`, with `env` added to a clean environment (PATH, HOME kept).
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> TakoServer {
        Self::start_inner(binary, data_dir, args, env, Stdio::inherit())
    }

    /// Like [`TakoServer::start`], with the server's own log (its standard
    /// error) appended to `log_file`, to be searched by the test.
    pub fn start_logging_to(
        binary: &Path,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log_file: &Path,
    ) -> TakoServer {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .expect("the log file opens");
        Self::start_inner(binary, data_dir, args, env, Stdio::from(file))
    }

    fn start_inner(
        binary: &Path,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> TakoServer {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/tmp".to_owned()),
            )
            .env("TAKO_LOG", "warn")
            .current_dir(data_dir.parent().unwrap_or(data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("tako serve starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut output = String::new();
        let mut token = None;
        loop {
            let line = match received.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("tako serve did not report its address; output so far:\n{output}");
                }
            };
            output.push_str(&line);
            output.push('\n');
            let trimmed = line.trim();
            if trimmed.starts_with("tako_") {
                token = Some(trimmed.to_owned());
            }
            if let Some(rest) = line.strip_prefix("Tako listening on ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let address = url
                    .split_once("://")
                    .map(|(_, address)| address.to_owned())
                    .unwrap_or_default();
                // Keep draining its output so it never blocks on a full pipe.
                std::thread::spawn(move || while received.recv().is_ok() {});
                return TakoServer {
                    child,
                    address,
                    url,
                    token,
                    startup_output: output,
                };
            }
        }
    }

    /// Kills the server with SIGKILL (no chance to clean up) and waits.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (what systemd sends to stop a service) with the
    /// system's `kill` and waits up to `deadline` for the exit; `None` if it
    /// was still running then (it is killed).
    pub fn terminate(mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TakoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh data directory inside a temporary directory (removed on drop).
pub struct DataDir {
    _root: tempfile::TempDir,
    /// The data directory's path.
    pub path: PathBuf,
}

impl DataDir {
    /// A new, not yet existing data directory.
    pub fn new() -> DataDir {
        let root = tempfile::Builder::new()
            .prefix("tako-server-")
            .tempdir()
            .expect("temp dir");
        let path = root.path().join("data");
        DataDir { _root: root, path }
    }
}

impl Default for DataDir {
    fn default() -> Self {
        DataDir::new()
    }
}
