//! The agent's spool: what a job has produced and the server has not yet
//! acknowledged, on disk, so that nothing is lost when the agent, the server
//! or the network fails (`agents.md` §4).
//!
//! One file per job under the spool directory (`<job id>.jsonl`, mode
//! 0600 in a 0700 directory), a JSON record per line:
//!
//! - a log **chunk**, numbered from 1 without gaps, written and synced
//!   before it is sent;
//! - **stored**: the server's acknowledgement, everything up to a number
//!   is stored and may be forgotten;
//! - the job's **outcome**, written and synced before it is sent.
//!
//! Reopening a job's file after a crash finds the chunks still to send and
//! the outcome; a line torn by the crash is cut off. Acknowledged chunks are
//! dropped from the file as it grows (it is rewritten with only what is
//! still owed, atomically). When the server has the outcome the file is
//! removed, so the spool holds nothing of a finished job.
//!
//! Log lines are masked before they reach the spool. A sensitive output
//! variable's value is the one secret an outcome carries: it is sealed
//! (XChaCha20-Poly1305) under a key that lives only in this process's
//! memory, so the disk never holds it in the clear. After a crash that key
//! is gone: such a value cannot be sent again, and the outcome says which
//! outputs were lost rather than inventing them.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use tako_protocol::agent::{JobLogLine, JobOutcome, JobOutput, JobState, LogChunk};

/// Once this many bytes of acknowledged chunks have piled up in a job's
/// file, it is rewritten with only what is still owed.
const COMPACT_AFTER_BYTES: u64 = 4 * 1024 * 1024;
/// The longest job id (ids are chosen by the server).
const MAX_JOB_ID: usize = 64;

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
        /// The line, from 1.
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

/// One line of a job's file.
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
            next_seq: 1,
            stored_through: 0,
            unacked: BTreeMap::new(),
            outcome: None,
            acked_bytes: 0,
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

/// What one job owes the server.
pub struct JobSpool<'s> {
    spool: &'s Spool,
    job: String,
    path: PathBuf,
    file: Option<File>,
    next_seq: u64,
    stored_through: u64,
    unacked: BTreeMap<u64, (LogChunk, u64)>,
    outcome: Option<SpooledOutcome>,
    acked_bytes: u64,
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

    /// Reads what a previous run wrote, cutting off a line torn by a crash.
    fn replay(&mut self) -> Result<(), SpoolError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io(&self.path)(error)),
        };
        let mut reader = BufReader::new(file);
        let mut good_bytes = 0u64;
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io(&self.path))?;
            if read == 0 {
                break;
            }
            number += 1;
            if !line.ends_with('\n') {
                // Torn by a crash in the middle of a write: never synced, so
                // never sent either.
                break;
            }
            let record: Record =
                serde_json::from_str(line.trim_end()).map_err(|e| SpoolError::Corrupt {
                    path: self.path.clone(),
                    line: number,
                    message: e.to_string(),
                })?;
            self.apply(record, read as u64);
            good_bytes += read as u64;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        file.set_len(good_bytes).map_err(io(&self.path))?;
        Ok(())
    }

    fn apply(&mut self, record: Record, bytes: u64) {
        match record {
            Record::Chunk(chunk) => {
                self.next_seq = self.next_seq.max(chunk.seq + 1);
                if chunk.seq > self.stored_through {
                    self.unacked.insert(chunk.seq, (chunk, bytes));
                } else {
                    self.acked_bytes += bytes;
                }
            }
            Record::Stored(through) => self.forget_through(through),
            Record::Next(seq) => self.next_seq = self.next_seq.max(seq),
            Record::Outcome(outcome) => self.outcome = Some(outcome),
        }
    }

    fn forget_through(&mut self, through: u64) {
        self.stored_through = self.stored_through.max(through);
        let still_owed = self.unacked.split_off(&(self.stored_through + 1));
        let forgotten = std::mem::replace(&mut self.unacked, still_owed);
        self.acked_bytes += forgotten.values().map(|(_, bytes)| bytes).sum::<u64>();
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

    /// Appends one record; `sync` waits until it is on disk.
    fn write(&mut self, record: &Record, sync: bool) -> Result<u64, SpoolError> {
        let mut line = serde_json::to_string(record).map_err(|e| SpoolError::Corrupt {
            path: self.path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push('\n');
        let path = self.path.clone();
        let file = self.file()?;
        file.write_all(line.as_bytes()).map_err(io(&path))?;
        if sync {
            file.sync_data().map_err(io(&path))?;
        }
        Ok(line.len() as u64)
    }

    /// Numbers `lines` as the next chunk and keeps it (on disk) until the
    /// server has stored it.
    pub fn append(&mut self, lines: Vec<JobLogLine>) -> Result<LogChunk, SpoolError> {
        let chunk = LogChunk {
            job: self.job.clone(),
            seq: self.next_seq,
            lines,
        };
        let bytes = self.write(&Record::Chunk(chunk.clone()), true)?;
        self.next_seq += 1;
        self.unacked.insert(chunk.seq, (chunk.clone(), bytes));
        Ok(chunk)
    }

    /// The chunks the server has not acknowledged, in order.
    pub fn unacked(&self) -> Vec<&LogChunk> {
        self.unacked.values().map(|(chunk, _)| chunk).collect()
    }

    /// The number of the last chunk made (0: none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The server stored every chunk up to `through`: forget them.
    pub fn stored(&mut self, through: u64) -> Result<(), SpoolError> {
        if through <= self.stored_through {
            return Ok(());
        }
        self.forget_through(through);
        self.write(&Record::Stored(self.stored_through), false)?;
        if self.acked_bytes >= COMPACT_AFTER_BYTES {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only what is still owed.
    fn compact(&mut self) -> Result<(), SpoolError> {
        let temporary = self.path.with_extension("compacting");
        let mut records = vec![
            Record::Next(self.next_seq),
            Record::Stored(self.stored_through),
        ];
        records.extend(
            self.unacked
                .values()
                .map(|(chunk, _)| Record::Chunk(chunk.clone())),
        );
        if let Some(outcome) = &self.outcome {
            records.push(Record::Outcome(outcome.clone()));
        }
        let mut text = String::new();
        for record in &records {
            let line = serde_json::to_string(record).map_err(|e| SpoolError::Corrupt {
                path: self.path.clone(),
                line: 0,
                message: e.to_string(),
            })?;
            text.push_str(&line);
            text.push('\n');
        }
        {
            let mut options = OpenOptions::new();
            options.create(true).write(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary).map_err(io(&temporary))?;
            file.write_all(text.as_bytes()).map_err(io(&temporary))?;
            file.sync_all().map_err(io(&temporary))?;
        }
        self.file = None;
        fs::rename(&temporary, &self.path).map_err(io(&self.path))?;
        self.acked_bytes = 0;
        Ok(())
    }

    /// Keeps the job's outcome (on disk, sensitive values sealed) until the
    /// server has it. `last_seq` is filled in.
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

    #[test]
    fn chunks_are_numbered_kept_until_stored_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path()).unwrap();
            let mut job = spool.job("job-1").unwrap();
            assert_eq!(job.append(vec![line("one")]).unwrap().seq, 1);
            assert_eq!(job.append(vec![line("two")]).unwrap().seq, 2);
            assert_eq!(job.append(vec![line("three")]).unwrap().seq, 3);
            job.stored(1).unwrap();
            let owed: Vec<u64> = job.unacked().iter().map(|c| c.seq).collect();
            assert_eq!(owed, [2, 3]);
        }
        // A new process (the agent restarted): what is owed is still there.
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.pending().unwrap(), ["job-1"]);
        let mut job = spool.job("job-1").unwrap();
        let owed: Vec<u64> = job.unacked().iter().map(|c| c.seq).collect();
        assert_eq!(owed, [2, 3]);
        assert_eq!(job.unacked()[0].lines[0].text, "two");
        // Numbering goes on without a gap or a repeat.
        assert_eq!(job.append(vec![line("four")]).unwrap().seq, 4);
        // An old acknowledgement changes nothing.
        job.stored(1).unwrap();
        assert_eq!(job.unacked().len(), 3);
        job.stored(4).unwrap();
        assert!(job.unacked().is_empty());
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
        assert_eq!(job.unacked().len(), 1);
        assert_eq!(job.append(vec![line("next")]).unwrap().seq, 2);
        drop(job);
        let job = spool.job("job-2").unwrap();
        assert_eq!(
            job.unacked().len(),
            2,
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
            let chunk = job.append(vec![line(&text)]).unwrap();
            if chunk.seq.is_multiple_of(100) {
                job.stored(chunk.seq - 1).unwrap();
            }
        }
        let size = fs::metadata(dir.path().join("job-6.jsonl")).unwrap().len();
        assert!(size < 2 * COMPACT_AFTER_BYTES, "{size} bytes");
        drop(job);
        let mut job = spool.job("job-6").unwrap();
        assert_eq!(job.unacked().len(), 1);
        assert_eq!(job.unacked()[0].seq, 6000);
        assert_eq!(job.append(vec![line("next")]).unwrap().seq, 6001);
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
