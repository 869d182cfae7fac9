//! The Windows side of running a script, a documented simpler fallback to
//! the Unix process groups: Windows has no group to signal, and its Job
//! Objects need `unsafe` calls, which the workspace forbids. So the script
//! is started in a new process group (`CREATE_NEW_PROCESS_GROUP`, so a
//! Ctrl-C meant for the agent does not reach it) and stopped with
//! `taskkill /T /F`, which kills the main process and the processes it
//! started (by parent process id, so a process whose parent already exited
//! is out of reach). There is no gentle stop: a terminate is a kill. The
//! pipes are read with blocking reads (no `poll`; the reader stops at end
//! of file, which comes when the tree is gone). A process left behind by a
//! crashed agent is not looked for. None of this is tested here (no
//! Windows machine or toolchain to run it; it is only compiled for
//! `x86_64-pc-windows-gnu`): see `docs/manual/src/agents.md`.

use std::fs::File;
use std::io;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use tako_core::log::LogStream;
use tokio::sync::mpsc;

use super::{COALESCE, COALESCE_BELOW, Chunk, ExecError, READ_CHUNK, ScriptEnd};

/// `CREATE_NEW_PROCESS_GROUP` (`winbase.h`).
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;

/// Starts the child in a new process group of its own.
pub(super) fn own_group(command: &mut tokio::process::Command) {
    command.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// The child's standard output as a file to read from a thread.
pub(super) fn stdout_file(pipe: tokio::process::ChildStdout) -> io::Result<File> {
    pipe.into_owned_handle().map(File::from)
}

/// The child's standard error as a file to read from a thread.
pub(super) fn stderr_file(pipe: tokio::process::ChildStderr) -> io::Result<File> {
    pipe.into_owned_handle().map(File::from)
}

/// A script's process tree, by its main process's id.
pub(super) struct Group {
    pid: u32,
}

impl Group {
    pub(super) fn new(pid: u32) -> Group {
        Group { pid }
    }

    fn taskkill(&self) -> bool {
        std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &self.pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Kills the tree (Windows has no SIGTERM for console programs).
    pub(super) fn terminate(&self) {
        self.taskkill();
    }

    /// Kills the tree.
    pub(super) fn kill(&self) {
        self.taskkill();
    }

    /// Whether the main process is still there (`tasklist` names it);
    /// the processes it started are not followed once it is gone.
    pub(super) fn has_live_members(&self) -> bool {
        std::process::Command::new("tasklist")
            .args(["/NH", "/FI", &format!("PID eq {}", self.pid)])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .any(|word| word == self.pid.to_string())
            })
    }
}

/// How the main process's exit status reads (Windows has exit codes only).
pub(super) fn exit_end(status: ExitStatus) -> ScriptEnd {
    ScriptEnd::Exited(status.code().unwrap_or(-1))
}

/// Reads a pipe (blocking) until end of file, an error, the stop flag (seen
/// between reads) or the receiver's end, sending what it reads.
pub(super) fn read_pipe(
    stream: LogStream,
    mut file: File,
    sender: &mpsc::Sender<Chunk>,
    stop: &AtomicBool,
) {
    let mut buffer = vec![0; READ_CHUNK];
    let send = |data| sender.blocking_send(Chunk { stream, data }).is_ok();
    while !stop.load(Ordering::Relaxed) {
        match file.read(&mut buffer) {
            // A closed pipe reads as end of file (or as "broken pipe").
            Ok(0) => {
                send(Ok(Vec::new()));
                return;
            }
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                send(Ok(Vec::new()));
                return;
            }
            Ok(n) => {
                if !send(Ok(buffer[..n].to_vec())) {
                    return;
                }
                if n < COALESCE_BELOW {
                    std::thread::sleep(COALESCE);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                send(Err(error));
                return;
            }
        }
    }
}

/// Kills the scripts a dead process left running under `root`: not done on
/// Windows (a process id cannot be checked against its working directory
/// there without `unsafe` calls, and killing a recycled id would hit a
/// stranger); the group files are removed. Returns 0.
pub fn kill_leftover_groups(root: &Path) -> usize {
    let mut pending = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < 4 {
                pending.push((path, depth + 1));
            } else if kind.is_file() && entry.file_name() == super::PROCESS_GROUP_FILE {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    0
}

/// Creates the scratch directory when it is missing (private to the user
/// by the profile directory's default ACL; no mode bits on Windows).
pub(super) fn create_scratch_dir(path: &Path) -> Result<(), ExecError> {
    std::fs::create_dir_all(path).map_err(|source| ExecError::ScratchDir {
        path: path.to_path_buf(),
        source,
    })
}

/// `candidate`, or `candidate` with one of `PATHEXT`'s extensions, if it
/// is a file.
pub(super) fn executable(candidate: &Path) -> Option<PathBuf> {
    if candidate.extension().is_some() && candidate.is_file() {
        return Some(candidate.to_path_buf());
    }
    let extensions = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".into());
    extensions
        .split(';')
        .filter(|e| !e.is_empty())
        .map(|e| candidate.with_extension(e.trim_start_matches('.')))
        .find(|c| c.is_file())
}
