//! The task log's single way out: every line is masked, timestamped and handed
//! to one [`LogSink`].
//!
//! [`TaskLog`] owns the deployment's [`Masker`]; it is the only type that
//! builds [`LogLine`]s, so no line can reach a sink without passing the masker.
//! Sinks decide what to do with lines: print them (`tako run`), keep them in
//! memory (tests), and in the server, store and broadcast them.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use tako_core::Masker;
use tako_core::log::{LogLevel, LogLine, LogStream};

/// Receives what a deployment shows: the masked lines of its task log, in
/// order, and its steps' progress.
///
/// Implementations must be cheap per line (a step may print a million lines)
/// and must not block for long: buffer, batch and flush on their own schedule.
pub trait LogSink: Send + Sync {
    /// Takes one masked line.
    fn append(&self, line: LogLine);

    /// Step `index` (from 0) of the process starts running.
    fn step_started(&self, index: usize, name: &str) {
        let _ = (index, name);
    }

    /// Step `index` ended (or was skipped); its report is masked.
    fn step_finished(&self, index: usize, report: &tako_core::step::StepReport) {
        let _ = (index, report);
    }

    /// Step `index` set these output variables (values in the clear, as
    /// the engine keeps them: a sink that stores them must seal them). The
    /// server keeps them so a deployment resumed after a restart has them.
    fn step_outputs(&self, index: usize, outputs: &[crate::executor::StepOutput]) {
        let _ = (index, outputs);
    }

    /// Called at the end of each step and of the deployment: make everything
    /// appended so far visible (flush buffers).
    fn flush(&self) {}
}

/// Keeps every line in memory (for tests and small tools).
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: Mutex<Vec<LogLine>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A copy of every line appended so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    /// Every line's text joined with newlines.
    pub fn text(&self) -> String {
        self.lines()
            .iter()
            .map(LogLine::text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl LogSink for MemorySink {
    fn append(&self, line: LogLine) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }
}

/// A deployment's task log: masks, timestamps and forwards to a sink.
pub struct TaskLog<'s> {
    sink: &'s dyn LogSink,
    masker: Masker,
    /// The values given to [`TaskLog::add_secret`], in order.
    added: Vec<String>,
    step: Option<Arc<str>>,
}

impl<'s> TaskLog<'s> {
    /// A task log writing to `sink`, masking what `masker` knows.
    pub fn new(sink: &'s dyn LogSink, masker: Masker) -> TaskLog<'s> {
        TaskLog {
            sink,
            masker,
            added: Vec::new(),
            step: None,
        }
    }

    /// Lines written from now on belong to `step` (`None`: the deployment).
    pub fn set_step(&mut self, step: Option<&str>) {
        self.step = step.map(Arc::from);
    }

    /// Registers another sensitive value of the deployment (a sensitive
    /// output, a script's `mask`): it is masked from the next line on, and
    /// it is among the values to mask of every later agent job
    /// ([`TaskLog::added_secrets`]).
    pub fn add_secret(&mut self, value: &str) {
        self.masker.add(value);
        if !self.added.iter().any(|v| v == value) {
            self.added.push(value.to_owned());
        }
    }

    /// Registers a sensitive value that one step derived (a step
    /// template's sensitive parameter): masked in this log from the next
    /// line on, but not handed to other jobs, since it may be made of
    /// values scoped to roles their agents lack.
    pub fn mask_also(&mut self, value: &str) {
        self.masker.add(value);
    }

    /// The values given to [`TaskLog::add_secret`] so far (the masker's
    /// starting values and [`TaskLog::mask_also`]'s are not among them).
    pub fn added_secrets(&self) -> &[String] {
        &self.added
    }

    /// The masker, for text that leaves the deployment by another way than
    /// the log (the summary, outputs, error messages).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Writes one line (masked first).
    pub fn write(&self, stream: LogStream, level: LogLevel, text: &str) {
        self.sink.append(LogLine::masked(
            &self.masker,
            Utc::now(),
            self.step.clone(),
            stream,
            level,
            text,
        ));
    }

    /// Writes one of Tako's own lines.
    pub fn tako(&self, level: LogLevel, text: &str) {
        self.write(LogStream::Tako, level, text);
    }

    /// Flushes the sink.
    pub fn flush(&self) {
        self.sink.flush();
    }

    /// Reports that step `index` starts running.
    pub fn step_started(&self, index: usize, name: &str) {
        self.sink.step_started(index, name);
    }

    /// Reports a step's end (its report is already masked).
    pub fn step_finished(&self, index: usize, report: &tako_core::step::StepReport) {
        self.sink.step_finished(index, report);
    }

    /// Reports the output variables step `index` set.
    pub fn step_outputs(&self, index: usize, outputs: &[crate::executor::StepOutput]) {
        if !outputs.is_empty() {
            self.sink.step_outputs(index, outputs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_reaches_the_sink_unmasked() {
        let sink = MemorySink::new();
        let mut log = TaskLog::new(&sink, Masker::with_values(["s3cr3t-value"]));
        log.set_step(Some("Deploy"));
        log.write(LogStream::Stdout, LogLevel::Info, "token s3cr3t-value here");
        log.add_secret("later-secret");
        log.tako(LogLevel::Error, "failed with later-secret");
        let lines = sink.lines();
        assert_eq!(lines[0].text(), "token ******** here");
        assert_eq!(lines[0].step(), Some("Deploy"));
        assert_eq!(lines[1].text(), "failed with ********");
    }
}
