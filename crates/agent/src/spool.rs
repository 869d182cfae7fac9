//! The agent's spool: what a job has produced and the server has not yet
//! acknowledged, on disk, so that nothing is lost when the agent, the server
//! or the network fails (`agents.md` §4).
//!
//! One file per job under the spool directory (`<job id>.jsonl`, mode
//! 0600 in a 0700 directory), a JSON record per line:
//!
//! - a log **chunk**, numbered from 1 without gaps, written as it is cut
//!   and synced before it is sent;
//! - **stored**: the server's acknowledgement, everything up to a number
//!   is stored and may be forgotten;
//! - the job's **outcome**, written and synced before it is sent.
//!
//! **The file is the buffer.** A chunk is not kept in memory once written:
//! the sender asks for what is owed ([`JobSpool::owed`]) and gets the next
//! chunks read back from the file, as their JSON, at most one request's
//! worth (a [`MAX_BATCH_CHUNKS`] / byte bound). The spool remembers only
//! offsets: where the first chunk still owed may start, and where each
//! chunk of the last batch read starts. So however far the server falls
//! behind (a slow server, a network cut of hours), the agent's memory stays
//! the same; only the file grows. The step is never held back by the
//! network: its output goes to disk at disk speed.
//!
//! Reopening a job's file after a crash finds the chunks still to send and
//! the outcome; a line torn by the crash is cut off. Acknowledged chunks are
//! dropped from the file once they make up at least half of it (and 4 MiB):
//! it is rewritten with only what is still owed, atomically, copied from
//! the file itself. When the server has the outcome the file is removed, so
//! the spool holds nothing of a finished job.
//!
//! Log lines are masked before they reach the spool. A sensitive output
//! variable's value is the one secret an outcome carries: it is sealed
//! (XChaCha20-Poly1305) under a key that lives only in this process's
//! memory, so the disk never holds it in the clear. After a crash that key
//! is gone: such a value cannot be sent again, and the outcome says which
//! outputs were lost rather than inventing them.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use tako_protocol::agent::{
    JobLogLine, JobOutcome, JobOutput, JobState, LogChunk, MAX_BATCH_CHUNKS,
};

/// Once acknowledged chunks make up this many bytes (and at least half of
/// the file), the file is rewritten with only what is still owed.
const COMPACT_AFTER_BYTES: u64 = 4 * 1024 * 1024;
/// The longest job id (ids are chosen by the server).
const MAX_JOB_ID: usize = 64;
/// How a chunk's record starts and ends in the file: its JSON is in between.
const CHUNK_PREFIX: &[u8] = b"{\"chunk\":";
const CHUNK_SUFFIX: &[u8] = b"}\n";

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory or a job's file cannot be read or written.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A job id the spool cannot name a file after.
    #[error(
        "job id {0:?} is not a valid job id (1 to 64 letters, digits, '-' or '_'): the server sent something unexpected"
    )]
    JobId(String),
    /// A record in a job's file is not one the spool wrote.
    #[error(
        "spool {path} line {line}: not a spool record ({message}); move the file away to start afresh"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line, from 1 (0: the record being written).
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// The random source for the sealing key failed.
    #[error("cannot get random bytes from the system: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One line of a job's file, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    /// A chunk to send.
    Chunk(LogChunk),
    /// The server stored every chunk up to this one.
    Stored(u64),
    /// The next chunk's number (written first in a compacted file).
    Next(u64),
    /// The job's outcome, its sensitive values sealed.
    Outcome(SpooledOutcome),
}

/// One line of a job's file, as read: a chunk only by its number (its
/// lines are skipped by the parser, never built).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Peek {
    Chunk(PeekChunk),
    Stored(u64),
    Next(u64),
    Outcome(SpooledOutcome),
}

#[derive(Debug, Deserialize)]
struct PeekChunk {
    seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpooledOutcome {
    job: String,
    state: JobState,
    reason: Option<String>,
    outputs: Vec<SpooledOutput>,
    duration_ms: u64,
    last_seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SpooledOutput {
    Public { name: String, value: String },
    Sealed { name: String, sealed: String },
}

/// Seals sensitive values under a key held only in memory.
struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    fn new() -> Result<Sealer, SpoolError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| SpoolError::Random(e.to_string()))?;
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    fn seal(&self, value: &str) -> Result<String, SpoolError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| SpoolError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), value.as_bytes())
            .map_err(|_| SpoolError::Random("sealing failed".to_owned()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(BASE64.encode(bytes))
    }

    /// The value, or `None` when it was sealed by another process.
    fn open(&self, sealed: &str) -> Option<String> {
        let bytes = BASE64.decode(sealed).ok()?;
        let (nonce, body) = bytes.split_at_checked(24)?;
        let plain = self.cipher.decrypt(XNonce::from_slice(nonce), body).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// The spool directory of an agent.
pub struct Spool {
    dir: PathBuf,
    sealer: Sealer,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish()
    }
}

impl Spool {
    /// Opens (creating, private to this user) the spool directory `dir`.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
        Ok(Spool {
            dir: dir.to_owned(),
            sealer: Sealer::new()?,
        })
    }

    /// The jobs that still owe the server something (after a restart: what
    /// to report before asking for work), by id.
    pub fn pending(&self) -> Result<Vec<String>, SpoolError> {
        let mut jobs = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name();
            let Some(job) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if valid_job_id(job) {
                jobs.push(job.to_owned());
            }
        }
        jobs.sort();
        Ok(jobs)
    }

    /// The spool of job `id`: a new one, or what a previous run left.
    pub fn job(&self, id: &str) -> Result<JobSpool<'_>, SpoolError> {
        if !valid_job_id(id) {
            return Err(SpoolError::JobId(id.to_owned()));
        }
        let path = self.dir.join(format!("{id}.jsonl"));
        let mut spool = JobSpool {
            spool: self,
            job: id.to_owned(),
            path,
            file: None,
            unsynced: false,
            len: 0,
            next_seq: 1,
            stored_through: 0,
            read_from: 0,
            window: VecDeque::new(),
            window_end: 0,
            outcome: None,
        };
        spool.replay()?;
        Ok(spool)
    }
}

fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_JOB_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A chunk read back from the spool, as the JSON of its [`LogChunk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledChunk {
    /// Its number.
    pub seq: u64,
    json: String,
}

impl SpooledChunk {
    /// The chunk as JSON (a [`LogChunk`]), ready to go into a request.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The chunk itself.
    pub fn decode(&self) -> Result<LogChunk, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// What one job owes the server. Its memory does not grow with the log:
/// chunks live in the file, only the offsets of the last batch read are
/// kept.
pub struct JobSpool<'s> {
    spool: &'s Spool,
    job: String,
    path: PathBuf,
    /// The file, open for appending.
    file: Option<File>,
    /// Chunks were written since the last sync.
    unsynced: bool,
    /// The file's length (complete records only).
    len: u64,
    next_seq: u64,
    stored_through: u64,
    /// No chunk still owed starts before this offset.
    read_from: u64,
    /// The chunks of the last batch read: number and offset, at most
    /// [`MAX_BATCH_CHUNKS`].
    window: VecDeque<(u64, u64)>,
    /// Where the record after the last batch's last chunk starts.
    window_end: u64,
    outcome: Option<SpooledOutcome>,
}

/// A job's outcome read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledJobOutcome {
    /// The outcome to send.
    pub outcome: JobOutcome,
    /// Sensitive outputs whose values were sealed by a process that is gone
    /// (the agent crashed before the server had them): they are left out.
    pub lost_outputs: Vec<String>,
}

impl JobSpool<'_> {
    /// The job's id.
    pub fn job(&self) -> &str {
        &self.job
    }

    fn corrupt(&self, line: usize, message: impl ToString) -> SpoolError {
        SpoolError::Corrupt {
            path: self.path.clone(),
            line,
            message: message.to_string(),
        }
    }

    /// Reads what a previous run wrote, cutting off a line torn by a crash.
    /// Only the numbers and the outcome are kept; the chunks stay on disk.
    fn replay(&mut self) -> Result<(), SpoolError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io(&self.path)(error)),
        };
        let mut reader = BufReader::new(file);
        let mut good_bytes = 0u64;
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(io(&self.path))?;
            if read == 0 {
                break;
            }
            number += 1;
            if line.last() != Some(&b'\n') {
                // Torn by a crash in the middle of a write: never synced, so
                // never sent either.
                break;
            }
            let record: Peek =
                serde_json::from_slice(&line).map_err(|e| self.corrupt(number, e))?;
            match record {
                Peek::Chunk(chunk) => self.next_seq = self.next_seq.max(chunk.seq + 1),
                Peek::Stored(through) => self.stored_through = self.stored_through.max(through),
                Peek::Next(seq) => self.next_seq = self.next_seq.max(seq),
                Peek::Outcome(outcome) => self.outcome = Some(outcome),
            }
            good_bytes += read as u64;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        file.set_len(good_bytes).map_err(io(&self.path))?;
        self.len = good_bytes;
        Ok(())
    }

    fn file(&mut self) -> Result<&mut File, SpoolError> {
        if self.file.is_none() {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            self.file = Some(options.open(&self.path).map_err(io(&self.path))?);
        }
        match self.file.as_mut() {
            Some(file) => Ok(file),
            None => Err(io(&self.path)(std::io::Error::other("not open"))),
        }
    }

    /// Appends one record; `sync` waits until it (and everything before
    /// it) is on disk.
    fn write(&mut self, record: &Record, sync: bool) -> Result<(), SpoolError> {
        let mut line = serde_json::to_vec(record).map_err(|e| self.corrupt(0, e))?;
        line.push(b'\n');
        let path = self.path.clone();
        let file = self.file()?;
        file.write_all(&line).map_err(io(&path))?;
        if sync {
            file.sync_data().map_err(io(&path))?;
        }
        self.unsynced = !sync;
        self.len += line.len() as u64;
        Ok(())
    }

    /// Makes sure everything written is on disk (before it is sent).
    fn sync(&mut self) -> Result<(), SpoolError> {
        if self.unsynced {
            let path = self.path.clone();
            self.file()?.sync_data().map_err(io(&path))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Numbers `lines` as the next chunk and keeps it (on disk, not in
    /// memory) until the server has stored it; returns its number.
    pub fn append(&mut self, lines: Vec<JobLogLine>) -> Result<u64, SpoolError> {
        let seq = self.next_seq;
        let record = Record::Chunk(LogChunk {
            job: self.job.clone(),
            seq,
            lines,
        });
        self.write(&record, false)?;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Whether a chunk is still owed.
    pub fn has_owed(&self) -> bool {
        self.stored_through < self.last_seq()
    }

    /// The next chunks the server has not acknowledged, in order, read
    /// back from the file (synced first): at most [`MAX_BATCH_CHUNKS`], and
    /// no more than `max_bytes` of JSON unless the first chunk alone is
    /// larger. Empty when nothing is owed. Asking again before an
    /// acknowledgement gives the same chunks again.
    pub fn owed(&mut self, max_bytes: usize) -> Result<Vec<SpooledChunk>, SpoolError> {
        self.window.clear();
        if !self.has_owed() {
            return Ok(Vec::new());
        }
        self.sync()?;
        let mut file = File::open(&self.path).map_err(io(&self.path))?;
        file.seek(SeekFrom::Start(self.read_from))
            .map_err(io(&self.path))?;
        let mut reader = BufReader::new(file.take(self.len - self.read_from));
        let mut offset = self.read_from;
        let mut chunks: Vec<SpooledChunk> = Vec::new();
        let mut bytes = 0usize;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(io(&self.path))?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            let peek: Peek = serde_json::from_slice(&line).map_err(|e| self.corrupt(0, e))?;
            if let Peek::Chunk(PeekChunk { seq }) = peek
                && seq > self.stored_through
            {
                let expected = chunks
                    .last()
                    .map_or(self.stored_through + 1, |last| last.seq + 1);
                if seq != expected {
                    return Err(self.corrupt(
                        0,
                        format!("chunk {seq} found where chunk {expected} was expected"),
                    ));
                }
                let json = chunk_json(&line).ok_or_else(|| self.corrupt(0, "a chunk record"))?;
                if !chunks.is_empty() && bytes + json.len() > max_bytes {
                    break;
                }
                bytes += json.len();
                self.window.push_back((seq, offset));
                chunks.push(SpooledChunk { seq, json });
                offset += read as u64;
                self.window_end = offset;
                if chunks.len() >= MAX_BATCH_CHUNKS {
                    break;
                }
                continue;
            }
            offset += read as u64;
        }
        if chunks.is_empty() {
            return Err(self.corrupt(
                0,
                format!(
                    "chunk {} is owed but not in the file",
                    self.stored_through + 1
                ),
            ));
        }
        Ok(chunks)
    }

    /// The number of the last chunk made (0: none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// How many chunks the spool holds in memory (offsets of the last
    /// batch read; never more than [`MAX_BATCH_CHUNKS`]), whatever the
    /// length of the log.
    pub fn chunks_in_memory(&self) -> usize {
        self.window.len()
    }

    /// The server stored every chunk up to `through`: forget them.
    pub fn stored(&mut self, through: u64) -> Result<(), SpoolError> {
        let through = through.min(self.last_seq());
        if through <= self.stored_through {
            return Ok(());
        }
        self.stored_through = through;
        let mut advanced = false;
        while self.window.front().is_some_and(|(seq, _)| *seq <= through) {
            self.window.pop_front();
            advanced = true;
        }
        match self.window.front() {
            Some((_, offset)) => self.read_from = *offset,
            None if advanced => self.read_from = self.window_end,
            None => {}
        }
        self.write(&Record::Stored(self.stored_through), false)?;
        if self.read_from >= COMPACT_AFTER_BYTES && self.read_from >= self.len - self.read_from {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only what may still be owed: a header, then
    /// the file's bytes from the first chunk still owed on.
    fn compact(&mut self) -> Result<(), SpoolError> {
        let temporary = self.path.with_extension("compacting");
        let mut header = Vec::new();
        let mut records = vec![
            Record::Next(self.next_seq),
            Record::Stored(self.stored_through),
        ];
        if let Some(outcome) = &self.outcome {
            records.push(Record::Outcome(outcome.clone()));
        }
        for record in &records {
            serde_json::to_writer(&mut header, record).map_err(|e| self.corrupt(0, e))?;
            header.push(b'\n');
        }
        let kept = self.len - self.read_from;
        {
            let mut options = OpenOptions::new();
            options.create(true).write(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut out = options.open(&temporary).map_err(io(&temporary))?;
            out.write_all(&header).map_err(io(&temporary))?;
            let mut source = File::open(&self.path).map_err(io(&self.path))?;
            source
                .seek(SeekFrom::Start(self.read_from))
                .map_err(io(&self.path))?;
            let copied = std::io::copy(&mut source.take(kept), &mut out).map_err(io(&temporary))?;
            if copied != kept {
                return Err(io(&self.path)(std::io::Error::other(
                    "the file shrank while it was compacted",
                )));
            }
            out.sync_all().map_err(io(&temporary))?;
        }
        self.file = None;
        fs::rename(&temporary, &self.path).map_err(io(&self.path))?;
        let header_len = header.len() as u64;
        let shift = |offset: u64, from: u64| offset - from + header_len;
        let from = self.read_from;
        for (_, offset) in &mut self.window {
            *offset = shift(*offset, from);
        }
        if self.window_end >= from {
            self.window_end = shift(self.window_end, from);
        }
        self.read_from = header_len;
        self.len = header_len + kept;
        self.unsynced = false;
        Ok(())
    }

    /// Keeps the job's outcome (on disk, synced with every chunk before
    /// it, sensitive values sealed) until the server has it. `last_seq` is
    /// filled in.
    pub fn finish(&mut self, mut outcome: JobOutcome) -> Result<(), SpoolError> {
        outcome.last_seq = self.last_seq();
        let mut outputs = Vec::with_capacity(outcome.outputs.len());
        for output in outcome.outputs {
            outputs.push(if output.sensitive {
                SpooledOutput::Sealed {
                    sealed: self.spool.sealer.seal(&output.value)?,
                    name: output.name,
                }
            } else {
                SpooledOutput::Public {
                    name: output.name,
                    value: output.value,
                }
            });
        }
        let spooled = SpooledOutcome {
            job: outcome.job,
            state: outcome.state,
            reason: outcome.reason,
            outputs,
            duration_ms: outcome.duration_ms,
            last_seq: outcome.last_seq,
        };
        self.write(&Record::Outcome(spooled.clone()), true)?;
        self.outcome = Some(spooled);
        Ok(())
    }

    /// The outcome to send, if the job has ended.
    pub fn outcome(&self) -> Option<SpooledJobOutcome> {
        let spooled = self.outcome.as_ref()?;
        let mut lost_outputs = Vec::new();
        let mut outputs = Vec::with_capacity(spooled.outputs.len());
        for output in &spooled.outputs {
            match output {
                SpooledOutput::Public { name, value } => outputs.push(JobOutput {
                    name: name.clone(),
                    value: value.clone(),
                    sensitive: false,
                }),
                SpooledOutput::Sealed { name, sealed } => match self.spool.sealer.open(sealed) {
                    Some(value) => outputs.push(JobOutput {
                        name: name.clone(),
                        value,
                        sensitive: true,
                    }),
                    None => lost_outputs.push(name.clone()),
                },
            }
        }
        Some(SpooledJobOutcome {
            outcome: JobOutcome {
                job: spooled.job.clone(),
                state: spooled.state,
                reason: spooled.reason.clone(),
                outputs,
                duration_ms: spooled.duration_ms,
                last_seq: spooled.last_seq,
            },
            lost_outputs,
        })
    }

    /// The server has the outcome and every chunk: nothing is owed, the
    /// job's file is removed.
    pub fn complete(mut self) -> Result<(), SpoolError> {
        self.file = None;
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io(&self.path)(error)),
        }
    }
}

/// The JSON of the chunk in a chunk record's line (`{"chunk":…}\n`).
fn chunk_json(line: &[u8]) -> Option<String> {
    let inner = line
        .strip_prefix(CHUNK_PREFIX)?
        .strip_suffix(CHUNK_SUFFIX)?;
    String::from_utf8(inner.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> JobLogLine {
        JobLogLine {
            timestamp: "2026-12-06T08:00:00.000Z".to_owned(),
            stream: "stdout".to_owned(),
            level: "info".to_owned(),
            text: text.to_owned(),
        }
    }

    fn outcome(job: &str) -> JobOutcome {
        JobOutcome {
            job: job.to_owned(),
            state: JobState::Success,
            reason: None,
            outputs: vec![
                JobOutput {
                    name: "Version".to_owned(),
                    value: "1.2.3".to_owned(),
                    sensitive: false,
                },
                JobOutput {
                    name: "Token".to_owned(),
                    value: "canary-output-secret".to_owned(),
                    sensitive: true,
                },
            ],
            duration_ms: 10,
            last_seq: 0,
        }
    }

    fn files_contain(dir: &Path, needle: &str) -> bool {
        fs::read_dir(dir).unwrap().flatten().any(|entry| {
            fs::read(entry.path())
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
        })
    }

    /// The numbers of what is owed, and the first line of each, read back.
    fn owed(job: &mut JobSpool<'_>) -> Vec<(u64, String)> {
        job.owed(usize::MAX)
            .unwrap()
            .iter()
            .map(|c| {
                let chunk = c.decode().unwrap();
                assert_eq!(chunk.seq, c.seq);
                (c.seq, chunk.lines[0].text.clone())
            })
            .collect()
    }

    fn seqs(job: &mut JobSpool<'_>) -> Vec<u64> {
        owed(job).into_iter().map(|(seq, _)| seq).collect()
    }

    #[test]
    fn chunks_are_numbered_kept_until_stored_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path()).unwrap();
            let mut job = spool.job("job-1").unwrap();
            assert_eq!(job.append(vec![line("one")]).unwrap(), 1);
            assert_eq!(job.append(vec![line("two")]).unwrap(), 2);
            assert_eq!(job.append(vec![line("three")]).unwrap(), 3);
            assert_eq!(seqs(&mut job), [1, 2, 3]);
            job.stored(1).unwrap();
            assert_eq!(seqs(&mut job), [2, 3]);
            assert!(job.has_owed());
        }
        // A new process (the agent restarted): what is owed is still there.
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.pending().unwrap(), ["job-1"]);
        let mut job = spool.job("job-1").unwrap();
        assert_eq!(
            owed(&mut job),
            [(2, "two".to_owned()), (3, "three".to_owned())]
        );
        // Numbering goes on without a gap or a repeat.
        assert_eq!(job.append(vec![line("four")]).unwrap(), 4);
        // An old acknowledgement changes nothing.
        job.stored(1).unwrap();
        assert_eq!(seqs(&mut job), [2, 3, 4]);
        // Part of a batch stored: the rest is sent again.
        job.stored(3).unwrap();
        assert_eq!(owed(&mut job), [(4, "four".to_owned())]);
        job.stored(4).unwrap();
        assert!(!job.has_owed());
        assert!(job.owed(usize::MAX).unwrap().is_empty());
    }

    #[test]
    fn a_batch_is_bounded_by_bytes_and_chunks_but_holds_at_least_one() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut job = spool.job("job-b").unwrap();
        let text = "y".repeat(1000);
        for _ in 0..(MAX_BATCH_CHUNKS + 10) {
            job.append(vec![line(&text)]).unwrap();
        }
        let batch = job.owed(usize::MAX).unwrap();
        assert_eq!(batch.len(), MAX_BATCH_CHUNKS);
        let one = batch[0].json().len();
        let batch = job.owed(3 * one + 10).unwrap();
        assert_eq!(batch.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let batch = job.owed(1).unwrap();
        assert_eq!(batch.len(), 1, "a chunk larger than the bound still goes");
        job.stored(2).unwrap();
        assert_eq!(job.owed(3 * one + 10).unwrap()[0].seq, 3);
    }

    #[test]
    fn memory_does_not_grow_with_the_log_only_the_file_does() {
        // A server that never answers (a network cut): every chunk stays
        // owed. The spool keeps none of them in memory; what the sender
        // reads back is one bounded batch at a time.
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut job = spool.job("job-m").unwrap();
        let text = "z".repeat(200);
        const BATCH_BYTES: usize = 256 * 1024;
        for round in 0..20 {
            let held = job.chunks_in_memory();
            for _ in 0..100 {
                job.append((0..50).map(|_| line(&text)).collect()).unwrap();
            }
            assert_eq!(
                job.chunks_in_memory(),
                held,
                "round {round}: appending holds nothing"
            );
            let batch = job.owed(BATCH_BYTES).unwrap();
            let bytes: usize = batch.iter().map(|c| c.json().len()).sum();
            assert!(bytes <= BATCH_BYTES, "{bytes}");
            assert_eq!(batch[0].seq, 1, "nothing was acknowledged");
            assert!(job.chunks_in_memory() <= MAX_BATCH_CHUNKS);
        }
        assert_eq!(job.last_seq(), 2000);
        let size = fs::metadata(dir.path().join("job-m.jsonl")).unwrap().len();
        assert!(size > 20_000_000, "the log is on disk: {size} bytes");
        // The server comes back: everything goes, in order, batch by batch,
        // and the file is compacted on the way.
        let mut next = 1;
        while job.has_owed() {
            let batch = job.owed(BATCH_BYTES).unwrap();
            for chunk in &batch {
                assert_eq!(chunk.seq, next);
                next += 1;
            }
            job.stored(batch.last().unwrap().seq).unwrap();
            assert!(job.chunks_in_memory() <= MAX_BATCH_CHUNKS);
        }
        assert_eq!(next, 2001);
        let size = fs::metadata(dir.path().join("job-m.jsonl")).unwrap().len();
        assert!(size < 2 * COMPACT_AFTER_BYTES, "{size} bytes left");
    }

    #[test]
    fn a_line_torn_by_a_crash_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path()).unwrap();
            let mut job = spool.job("job-2").unwrap();
            job.append(vec![line("whole")]).unwrap();
        }
        let path = dir.path().join("job-2.jsonl");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"chunk":{"job":"job-2","seq":2,"li"#)
            .unwrap();
        drop(file);
        let spool = Spool::open(dir.path()).unwrap();
        let mut job = spool.job("job-2").unwrap();
        assert_eq!(seqs(&mut job), [1]);
        assert_eq!(job.append(vec![line("next")]).unwrap(), 2);
        drop(job);
        let mut job = spool.job("job-2").unwrap();
        assert_eq!(
            owed(&mut job),
            [(1, "whole".to_owned()), (2, "next".to_owned())],
            "the torn line is gone, the new one kept"
        );
    }

    #[test]
    fn garbage_in_a_spool_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("job-3.jsonl"), "not json\n").unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let error = spool.job("job-3").err().unwrap().to_string();
        assert!(error.contains("line 1: not a spool record"), "{error}");
        for bad in ["", "../escape", "a/b", &"x".repeat(65)] {
            assert!(
                matches!(spool.job(bad), Err(SpoolError::JobId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_sensitive_output_never_reaches_the_disk_and_nothing_stays_after_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut job = spool.job("job-4").unwrap();
        job.append(vec![line("masked ********")]).unwrap();
        job.finish(outcome("job-4")).unwrap();
        assert!(!files_contain(dir.path(), "canary-output-secret"));
        let read = job.outcome().unwrap();
        assert!(read.lost_outputs.is_empty());
        assert_eq!(read.outcome.last_seq, 1);
        assert_eq!(read.outcome.outputs[1].value, "canary-output-secret");
        job.complete().unwrap();
        assert!(spool.pending().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn after_a_crash_a_sealed_output_is_reported_lost_not_invented() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path()).unwrap();
            let mut job = spool.job("job-5").unwrap();
            job.finish(outcome("job-5")).unwrap();
        }
        let spool = Spool::open(dir.path()).unwrap();
        let job = spool.job("job-5").unwrap();
        let read = job.outcome().unwrap();
        assert_eq!(read.lost_outputs, ["Token"]);
        assert_eq!(read.outcome.outputs.len(), 1);
        assert_eq!(read.outcome.outputs[0].name, "Version");
    }

    #[test]
    fn acknowledged_chunks_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut job = spool.job("job-6").unwrap();
        let text = "x".repeat(1000);
        for _ in 0..6000 {
            let seq = job.append(vec![line(&text)]).unwrap();
            if seq.is_multiple_of(100) {
                let batch = job.owed(usize::MAX).unwrap();
                assert_eq!(batch[0].seq, if seq == 100 { 1 } else { seq - 100 });
                job.stored(seq - 1).unwrap();
            }
        }
        let size = fs::metadata(dir.path().join("job-6.jsonl")).unwrap().len();
        assert!(size < 2 * COMPACT_AFTER_BYTES, "{size} bytes");
        drop(job);
        let mut job = spool.job("job-6").unwrap();
        assert_eq!(seqs(&mut job), [6000]);
        assert_eq!(job.append(vec![line("next")]).unwrap(), 6001);
        assert_eq!(seqs(&mut job), [6000, 6001]);
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        let spool = Spool::open(&root).unwrap();
        spool.job("job-7").unwrap().append(vec![line("x")]).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("job-7.jsonl")), 0o600);
    }
}
