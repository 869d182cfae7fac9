//! Running one script as a real process.
//!
//! [`run_script`] writes the script and its script API files
//! ([`crate::script_api`]) into the request's private scratch directory and
//! starts the interpreter:
//!
//! - in its **own process group** (the child is the group leader), so that
//!   everything the script starts can be signalled at once;
//! - with **standard input closed** (`/dev/null`), the working directory as
//!   cwd and a **cleared environment**: only the request's `env`, plus
//!   `PATH`, `HOME` and `LANG` copied from our own environment when the
//!   request does not set them. The interpreter is looked up on the child's
//!   `PATH`; not finding it is an [`ExecError`], not a script failure.
//!
//! Each pipe is read by its own small thread (blocking reads in chunks of up
//! to 256 KiB, the pipe enlarged to 1 MiB when the kernel allows, a 1 ms pause
//! after a small read so that a script printing many short lines is not
//! slowed by a wake-up per line); the chunks reach the calling task through a
//! bounded channel (backpressure: a consumer that falls behind eventually
//! blocks the script's writes, never loses output). There they are split
//! into lines (`\n`, a trailing `\r` removed; a last line without newline
//! still counts; invalid UTF-8 is replaced lossily; a line longer than
//! [`MAX_LINE`] bytes is cut into pieces of at most that size). A line
//! carrying a service message (on either stream) is consumed and reported as
//! [`ScriptEvent::Message`] instead of a line. Events reach `on_event` in
//! order of arrival, one at a time, from the task that called
//! [`run_script`]; the order between the two streams is only as good as the
//! arrival order.
//!
//! **Ending.** On timeout or cancellation the whole group gets SIGTERM, then
//! SIGKILL once `kill_grace` has passed with members still alive; the result
//! is [`ScriptEnd::TimedOut`] or [`ScriptEnd::Cancelled`]. When the main
//! process exits by itself, output is drained for up to [`DRAIN`] (until both
//! pipes reach end of file); then any process still alive in its group
//! (`sleep 1000 &`) is terminated the same way, like GitHub Actions' orphan
//! clean-up. So a step never leaves processes of its group behind and
//! reading never hangs on a pipe held open by a background child. The result
//! is still the main process's exit. A process that left the group
//! (`setsid`) is out of reach; if it holds the pipes open, reading stops
//! [`CLOSE_WAIT`] after the group is gone. Group members are counted from
//! `/proc`, ignoring zombies, which a container's init may never reap.
//! Dropping the future of [`run_script`] before it finishes sends SIGKILL to
//! the group. The group id is the main process's pid; once that process is
//! reaped, the id stays in use as long as a member lives, so signalling it
//! reaches no stranger unless the group emptied and the pid was recycled in
//! the few milliseconds before the check (Linux allocates pids cyclically).
//!
//! An exit code is reported, not judged: the caller decides that non-zero
//! fails the step. Text on standard error alone is not a failure.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tako_core::log::LogStream;
use tako_takofile::Shell;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::script_api;
use crate::service_message::{self, ServiceMessage};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

/// The longest line reported as one; longer ones are cut into pieces.
pub const MAX_LINE: usize = 64 * 1024;
/// How long output may keep flowing after the main process exited before
/// the processes left in its group are terminated.
pub const DRAIN: Duration = Duration::from_millis(100);
/// How long to keep reading after the group is gone, in case a process
/// outside it still holds the pipes.
pub const CLOSE_WAIT: Duration = Duration::from_millis(500);
/// How long to wait for the group to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often the group is checked while it is being terminated.
const POLL: Duration = Duration::from_millis(10);
/// The size of each read from a pipe.
const READ_CHUNK: usize = 256 * 1024;
/// A read smaller than this is followed by a [`COALESCE`] pause.
const COALESCE_BELOW: usize = 16 * 1024;
/// How long a reader waits after a small read, letting output gather.
const COALESCE: Duration = Duration::from_millis(1);
/// Chunks in flight from the reader threads (backpressure beyond that).
const CHANNEL_CHUNKS: usize = 16;
/// Variables copied from our own environment unless the request sets them.
#[cfg(not(windows))]
const INHERITED: &[&str] = &["PATH", "HOME", "LANG"];
/// Variables copied from our own environment unless the request sets them
/// (on Windows, what programs need to start at all).
#[cfg(windows)]
const INHERITED: &[&str] = &[
    "PATH",
    "PATHEXT",
    "SystemRoot",
    "SystemDrive",
    "WINDIR",
    "COMSPEC",
    "TEMP",
    "TMP",
    "USERPROFILE",
    "HOME",
    "LANG",
];

/// One script to run. Its `Debug` output names variables and environment
/// entries without their values, which may be sensitive.
#[derive(Clone)]
pub struct ScriptRequest {
    /// The interpreter: bash (the default), sh, python, pwsh or a command
    /// template.
    pub shell: Shell,
    /// The script text, already substituted.
    pub body: String,
    /// The child's working directory; must exist.
    pub working_dir: PathBuf,
    /// A private directory outside `working_dir` for the script and the
    /// script API files; created with mode 0700 when missing. The caller
    /// removes it.
    pub scratch_dir: PathBuf,
    /// The step's environment (`TAKO_*` and the step's `Env`). The child
    /// gets only these, plus `PATH`, `HOME` and `LANG` from our environment
    /// when not given here.
    pub env: Vec<(String, String)>,
    /// Exact name to evaluated value, for `get_octopusvariable`,
    /// `octopusvariables` and `$OctopusParameters`.
    pub variables: Vec<(String, String)>,
    /// How long the script may run.
    pub timeout: Duration,
    /// How long after SIGTERM the group gets SIGKILL.
    pub kill_grace: Duration,
}

impl fmt::Debug for ScriptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs.iter().map(|(name, _)| name.clone()).collect()
        };
        f.debug_struct("ScriptRequest")
            .field("shell", &self.shell)
            .field("body_len", &self.body.len())
            .field("working_dir", &self.working_dir)
            .field("scratch_dir", &self.scratch_dir)
            .field("env", &names(&self.env))
            .field("variables", &names(&self.variables))
            .field("timeout", &self.timeout)
            .field("kill_grace", &self.kill_grace)
            .finish()
    }
}

/// Something the script produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEvent {
    /// An ordinary line of output, without its line end.
    Line {
        /// Where it was written.
        stream: LogStream,
        /// The text (invalid UTF-8 replaced).
        text: String,
    },
    /// A service message; its line is not reported.
    Message(ServiceMessage),
}

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptEnd {
    /// The main process exited with this code.
    Exited(i32),
    /// The main process was killed by this signal (not by us).
    Signalled(i32),
    /// The timeout passed; the group was terminated.
    TimedOut,
    /// The cancellation token fired; the group was terminated.
    Cancelled,
}

/// The machinery broke: the script could not be run or watched. A script
/// that fails is not an error.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The scratch directory could not be created.
    #[error("cannot create scratch directory {}: {source}", path.display())]
    ScratchDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A script or script API file could not be written.
    #[error(transparent)]
    WriteFile(#[from] script_api::WriteError),
    /// The working directory is missing or not a directory.
    #[error("working directory {} is not a directory", path.display())]
    WorkingDir {
        /// The directory.
        path: PathBuf,
    },
    /// The interpreter (or a command template's program) is not on `PATH`.
    #[error("{program} not found on PATH")]
    NotFound {
        /// The program's name.
        program: String,
    },
    /// The process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A pipe could not be read.
    #[error("cannot read the script's {stream}: {source}")]
    Read {
        /// Which pipe.
        stream: LogStream,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Waiting for the process failed.
    #[error("cannot wait for the script process: {source}")]
    Wait {
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Whether `shell`'s interpreter (and a command template's program) is on
/// our `PATH`.
pub fn shell_available(shell: &Shell) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = path.to_string_lossy();
    let template_ok = match shell {
        Shell::Command(template) => script_api::template_program(template)
            .is_none_or(|program| find_program(program, &path).is_some()),
        _ => true,
    };
    template_ok && find_program(script_api::interpreter(shell), &path).is_some()
}

/// Runs one script to its end; see the module documentation.
///
/// Returns how the script ended; `Err` only when the machinery broke.
pub async fn run_script(
    request: ScriptRequest,
    cancel: &CancellationToken,
    on_event: &mut (dyn FnMut(ScriptEvent) + Send),
) -> Result<ScriptEnd, ExecError> {
    platform::create_scratch_dir(&request.scratch_dir)?;
    if !request.working_dir.is_dir() {
        return Err(ExecError::WorkingDir {
            path: request.working_dir.clone(),
        });
    }
    let env = child_env(request.env);
    let path = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let invocation = script_api::prepare(
        &request.shell,
        &request.body,
        &request.variables,
        &request.scratch_dir,
    )?;
    let program = find_program(&invocation.program, path).ok_or_else(|| ExecError::NotFound {
        program: invocation.program.clone(),
    })?;
    if let Some(required) = &invocation.also_requires {
        find_program(required, path).ok_or_else(|| ExecError::NotFound {
            program: required.clone(),
        })?;
    }

    let mut command = tokio::process::Command::new(&program);
    command
        .args(&invocation.args)
        .current_dir(&request.working_dir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    platform::own_group(&mut command);
    let mut child = command.spawn().map_err(|source| ExecError::Spawn {
        program: invocation.program.clone(),
        source,
    })?;
    let pid = child.id().ok_or_else(|| ExecError::Wait {
        source: io::Error::other("the process exited before it was watched"),
    })?;
    let group = GroupGuard {
        group: platform::Group::new(pid),
        armed: true,
    };
    // Left behind only if this process dies with the script running (a
    // server killed mid-deployment): its recovery finds the group here.
    let _ = std::fs::write(
        request.scratch_dir.join(PROCESS_GROUP_FILE),
        pid.to_string(),
    );
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let stdout = child
        .stdout
        .take()
        .map(|pipe| (LogStream::Stdout, platform::stdout_file(pipe)));
    let stderr = child
        .stderr
        .take()
        .map(|pipe| (LogStream::Stderr, platform::stderr_file(pipe)));
    let mut watch = Watch {
        stdout: Pipe::new(LogStream::Stdout),
        stderr: Pipe::new(LogStream::Stderr),
        chunks: receiver,
        on_event,
    };
    for (stream, fd) in [stdout, stderr].into_iter().flatten() {
        let fd = fd.map_err(|source| ExecError::Read { stream, source })?;
        spawn_reader(stream, fd, sender.clone(), Arc::clone(&stop.0))
            .map_err(|source| ExecError::Read { stream, source })?;
        watch.pipe(stream).open = true;
    }
    drop(sender);
    let result = watch_child(
        &mut child,
        &group,
        &mut watch,
        request.timeout,
        request.kill_grace,
        cancel,
    )
    .await;
    let mut group = group;
    group.armed = false;
    result
}

/// What the watch loop is doing.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The main process is running.
    Running,
    /// The main process exited; output may still flow until the deadline.
    Draining(Instant),
    /// SIGTERM was sent; SIGKILL follows at the deadline.
    Terminating(Instant),
    /// SIGKILL was sent; waiting for the group to vanish until the deadline.
    Killed(Instant),
    /// The group is gone; reading what is left until the deadline.
    Closing(Instant),
}

/// The pipes' line splitters, the chunks the reader threads send, and the
/// event sink.
struct Watch<'a> {
    stdout: Pipe,
    stderr: Pipe,
    chunks: mpsc::Receiver<Chunk>,
    on_event: &'a mut (dyn FnMut(ScriptEvent) + Send),
}

impl Watch<'_> {
    fn pipe(&mut self, stream: LogStream) -> &mut Pipe {
        match stream {
            LogStream::Stderr => &mut self.stderr,
            LogStream::Stdout | LogStream::Tako => &mut self.stdout,
        }
    }

    fn pipes_closed(&self) -> bool {
        !self.stdout.open && !self.stderr.open
    }

    /// Handles what a reader thread sent (`None`: all of them are gone).
    fn receive(&mut self, chunk: Option<Chunk>) -> Result<(), ExecError> {
        let Some(Chunk { stream, data }) = chunk else {
            self.close();
            return Ok(());
        };
        let on_event = &mut *self.on_event;
        let pipe = match stream {
            LogStream::Stderr => &mut self.stderr,
            LogStream::Stdout | LogStream::Tako => &mut self.stdout,
        };
        match data {
            Ok(bytes) if bytes.is_empty() => pipe.close(on_event),
            Ok(bytes) => pipe.split(&bytes, on_event),
            Err(source) => return Err(ExecError::Read { stream, source }),
        }
        Ok(())
    }

    /// Stops reading: reports partial lines.
    fn close(&mut self) {
        self.stdout.close(self.on_event);
        self.stderr.close(self.on_event);
    }
}

/// The loop that reads output and watches the process and the clock.
async fn watch_child(
    child: &mut tokio::process::Child,
    group: &GroupGuard,
    watch: &mut Watch<'_>,
    timeout: Duration,
    kill_grace: Duration,
    cancel: &CancellationToken,
) -> Result<ScriptEnd, ExecError> {
    let deadline = after(Instant::now(), timeout);
    let mut phase = Phase::Running;
    let mut end: Option<ScriptEnd> = None;
    let mut exited = false;

    loop {
        // Transitions that need no waiting.
        let now = Instant::now();
        phase = match phase {
            Phase::Draining(until) if watch.pipes_closed() || now >= until => {
                if group.has_live_members() {
                    group.terminate();
                    Phase::Terminating(after(now, kill_grace))
                } else {
                    Phase::Closing(now + CLOSE_WAIT)
                }
            }
            Phase::Terminating(_) | Phase::Killed(_) if exited && !group.has_live_members() => {
                Phase::Closing(now + CLOSE_WAIT)
            }
            Phase::Terminating(until) if now >= until => {
                group.kill();
                Phase::Killed(now + KILL_WAIT)
            }
            Phase::Killed(until) if now >= until => Phase::Closing(now + CLOSE_WAIT),
            other => other,
        };
        if let Phase::Closing(until) = phase {
            if exited && (watch.pipes_closed() || now >= until) {
                break;
            }
            if !exited && now >= until {
                // The main process survived SIGKILL (uninterruptible sleep):
                // stop watching; tokio reaps it later.
                break;
            }
        }
        let wake = match phase {
            Phase::Running => deadline,
            Phase::Draining(until) | Phase::Closing(until) => until,
            Phase::Terminating(until) | Phase::Killed(until) => until.min(now + POLL),
        };

        tokio::select! {
            chunk = watch.chunks.recv(), if !watch.pipes_closed() => {
                watch.receive(chunk)?;
            }
            status = child.wait(), if !exited => {
                let status = status.map_err(|source| ExecError::Wait { source })?;
                exited = true;
                if end.is_none() {
                    end = Some(platform::exit_end(status));
                }
                if matches!(phase, Phase::Running) {
                    phase = Phase::Draining(Instant::now() + DRAIN);
                }
            }
            () = cancel.cancelled(), if matches!(phase, Phase::Running) => {
                end = Some(ScriptEnd::Cancelled);
                group.terminate();
                phase = Phase::Terminating(after(Instant::now(), kill_grace));
            }
            () = sleep_until(wake) => {
                if matches!(phase, Phase::Running) && Instant::now() >= deadline {
                    end = Some(ScriptEnd::TimedOut);
                    group.terminate();
                    phase = Phase::Terminating(after(Instant::now(), kill_grace));
                }
            }
        }
    }
    watch.close();
    Ok(end.unwrap_or(ScriptEnd::Cancelled))
}

/// `start + duration`, saturating far in the future (`Duration::MAX` means
/// no limit).
fn after(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The line splitter of one output pipe.
struct Pipe {
    stream: LogStream,
    /// Whether the reader thread may still send data.
    open: bool,
    /// An unfinished line carried over from earlier chunks.
    pending: Vec<u8>,
}

impl Pipe {
    fn new(stream: LogStream) -> Self {
        Pipe {
            stream,
            open: false,
            pending: Vec::new(),
        }
    }

    /// Reports the complete lines of a chunk and keeps the rest.
    fn split(&mut self, mut chunk: &[u8], on_event: &mut (dyn FnMut(ScriptEvent) + Send)) {
        let stream = self.stream;
        let mut complete_lines = true;
        if !self.pending.is_empty() {
            // Finish the line carried over from the last read first.
            if let Some(position) = chunk.iter().position(|b| *b == b'\n') {
                self.pending.extend_from_slice(&chunk[..position]);
                emit_bounded(stream, &self.pending, on_event);
                self.pending.clear();
                chunk = &chunk[position + 1..];
            } else {
                complete_lines = false;
            }
        }
        if complete_lines && let Some(last) = chunk.iter().rposition(|b| *b == b'\n') {
            // The complete lines of the chunk, validated as UTF-8 at once
            // ('\n' never occurs inside a multi-byte sequence).
            let complete = &chunk[..last];
            let messages = complete.contains(&b'#');
            match std::str::from_utf8(complete) {
                Ok(text) => {
                    for line in text.split('\n') {
                        emit_str(stream, line, messages, on_event);
                    }
                }
                Err(_) => {
                    for line in complete.split(|b| *b == b'\n') {
                        emit_bounded(stream, line, on_event);
                    }
                }
            }
            chunk = &chunk[last + 1..];
        }
        self.pending.extend_from_slice(chunk);
        while self.pending.len() >= MAX_LINE {
            let cut = char_boundary(&self.pending, MAX_LINE);
            emit(stream, &self.pending[..cut], on_event);
            self.pending.drain(..cut);
        }
    }

    /// Reports an unfinished line, if any.
    fn flush(&mut self, on_event: &mut (dyn FnMut(ScriptEvent) + Send)) {
        if !self.pending.is_empty() {
            emit(self.stream, &self.pending, on_event);
            self.pending.clear();
        }
    }

    /// Stops reading: the pipe is at end of file or abandoned.
    fn close(&mut self, on_event: &mut (dyn FnMut(ScriptEvent) + Send)) {
        self.open = false;
        self.flush(on_event);
    }
}

/// What a reader thread sends: data, end of file (empty data) or an error.
struct Chunk {
    stream: LogStream,
    data: io::Result<Vec<u8>>,
}

/// Sets the reader threads' stop flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Starts the thread that reads one pipe.
fn spawn_reader(
    stream: LogStream,
    file: std::fs::File,
    sender: mpsc::Sender<Chunk>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("tako-script-{stream}"))
        .spawn(move || platform::read_pipe(stream, file, &sender, &stop))
        .map(drop)
}

/// Reports a complete line, in pieces of at most [`MAX_LINE`] bytes.
fn emit_bounded(
    stream: LogStream,
    mut line: &[u8],
    on_event: &mut (dyn FnMut(ScriptEvent) + Send),
) {
    while line.len() > MAX_LINE {
        let cut = char_boundary(line, MAX_LINE);
        emit(stream, &line[..cut], on_event);
        line = &line[cut..];
    }
    emit(stream, line, on_event);
}

/// Where to cut `bytes` at most `limit` bytes in, without splitting a UTF-8
/// sequence when one straddles the limit.
fn char_boundary(bytes: &[u8], limit: usize) -> usize {
    let is_continuation = |i: usize| bytes.get(i).is_some_and(|b| b & 0xC0 == 0x80);
    (limit.saturating_sub(3)..=limit)
        .rev()
        .find(|i| !is_continuation(*i))
        .filter(|i| *i > 0)
        .unwrap_or(limit)
}

/// Reports one line already known to be UTF-8 (the fast path); `messages`
/// says whether its chunk holds a `#` at all.
fn emit_str(
    stream: LogStream,
    line: &str,
    messages: bool,
    on_event: &mut (dyn FnMut(ScriptEvent) + Send),
) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > MAX_LINE || (messages && line.contains("##octopus[")) {
        emit_bounded(stream, line.as_bytes(), on_event);
        return;
    }
    on_event(ScriptEvent::Line {
        stream,
        text: line.to_owned(),
    });
}

/// Reports one line: a service message, or text.
fn emit(stream: LogStream, line: &[u8], on_event: &mut (dyn FnMut(ScriptEvent) + Send)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = match std::str::from_utf8(line) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    };
    // A cheap test first: most lines have no `#` at all.
    if line.contains(&b'#')
        && let Some(message) = service_message::parse_line(&text)
    {
        on_event(ScriptEvent::Message(message));
        return;
    }
    on_event(ScriptEvent::Line { stream, text });
}

/// The script's process group; killed on drop while armed.
struct GroupGuard {
    group: platform::Group,
    armed: bool,
}

impl GroupGuard {
    /// Asks every process of the group to stop (SIGTERM; on Windows the
    /// tree is killed at once).
    fn terminate(&self) {
        self.group.terminate();
    }

    /// Kills every process of the group.
    fn kill(&self) {
        self.group.kill();
    }

    /// Whether a process of the group is alive (zombies do not count).
    fn has_live_members(&self) -> bool {
        self.group.has_live_members()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.group.kill();
        }
    }
}

/// The file in a step's scratch directory naming its process group while
/// the script runs.
pub const PROCESS_GROUP_FILE: &str = "process-group";

pub use platform::kill_leftover_groups;

/// The child's environment: the request's, plus `PATH`, `HOME` and `LANG`
/// from ours when the request does not set them.
fn child_env(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    let given: HashSet<String> = env.iter().map(|(name, _)| name.clone()).collect();
    for name in INHERITED.iter().copied() {
        if !given.contains(name)
            && let Ok(value) = std::env::var(name)
        {
            env.push((name.to_owned(), value));
        }
    }
    env
}

/// Finds `program` on `path` (a `PATH` value); a name with a path
/// separator is taken as a path.
fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') || program.contains(std::path::MAIN_SEPARATOR) {
        let candidate = PathBuf::from(program);
        return platform::executable(&candidate);
    }
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .find_map(|dir| platform::executable(&dir.join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<ScriptEvent> {
        let mut pipe = Pipe::new(LogStream::Stdout);
        let mut events = Vec::new();
        let mut sink = |event| events.push(event);
        for chunk in chunks {
            pipe.split(chunk, &mut sink);
        }
        pipe.close(&mut sink);
        events
    }

    fn texts(events: &[ScriptEvent]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                ScriptEvent::Line { text, .. } => text.clone(),
                ScriptEvent::Message(message) => format!("{message:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_across_chunks_and_without_final_newline() {
        let events = lines(&[b"a\r\nb", b"c\n\nd"]);
        assert_eq!(texts(&events), ["a", "bc", "", "d"]);
    }

    #[test]
    fn long_lines_are_cut_at_char_boundaries() {
        let mut long = vec![b'x'; MAX_LINE - 1];
        long.extend_from_slice("é".as_bytes());
        long.extend_from_slice(b"tail\n");
        let events = lines(&[&long]);
        let texts = texts(&events);
        assert_eq!(texts.len(), 2);
        assert_eq!(texts[0].len(), MAX_LINE - 1);
        assert_eq!(texts[1], "étail");
    }

    #[test]
    fn unfinished_long_lines_are_bounded() {
        let chunk = vec![b'y'; MAX_LINE / 2 + 1];
        let events = lines(&[&chunk, &chunk, &chunk]);
        let lengths: Vec<usize> = texts(&events).iter().map(String::len).collect();
        assert_eq!(lengths, [MAX_LINE, 3 * (MAX_LINE / 2 + 1) - MAX_LINE]);
    }

    #[test]
    fn request_debug_hides_values() {
        let request = ScriptRequest {
            shell: Shell::Bash,
            body: "echo hunter22".into(),
            working_dir: PathBuf::from("/w"),
            scratch_dir: PathBuf::from("/s"),
            env: vec![("TOKEN".into(), "hunter22".into())],
            variables: vec![("Secret".into(), "hunter22".into())],
            timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(1),
        };
        let text = format!("{request:?}");
        assert!(text.contains("Secret") && text.contains("TOKEN"));
        assert!(!text.contains("hunter22"), "{text}");
    }

    #[test]
    fn find_program_uses_the_given_path() {
        assert!(find_program("sh", "/nonexistent:/bin:/usr/bin").is_some());
        assert!(find_program("sh", "/nonexistent").is_none());
    }
}
