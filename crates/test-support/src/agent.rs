//! A real `tako agent run` process for end-to-end tests: its output
//! collected line by line (standard output and error), killed with SIGKILL
//! when dropped or on purpose.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::wait_until;

/// A running agent.
pub struct AgentProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl AgentProcess {
    /// Starts `binary` with `args` (`agent run …`), without the client
    /// variables `TAKO_SERVER` and `TAKO_TOKEN` of the test's environment.
    pub fn start(binary: &Path, args: &[&str]) -> AgentProcess {
        let mut child = Command::new(binary)
            .args(args)
            .env_remove("TAKO_SERVER")
            .env_remove("TAKO_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tako agent run starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout is piped")),
            Box::new(child.stderr.take().expect("stderr is piped")),
        ];
        for pipe in pipes {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            });
        }
        AgentProcess { child, lines }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits up to 60 s for a line containing `needle`; panics with the
    /// output when none comes.
    pub fn wait_for_line(&self, needle: &str) {
        let seen = wait_until(Duration::from_secs(60), || {
            self.output().iter().any(|l| l.contains(needle))
        });
        assert!(
            seen,
            "the agent never printed {needle:?}: {:?}",
            self.output()
        );
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL (no chance to clean up) and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
