//! The task log model: timestamped lines, each with its step, stream and level.
//!
//! Every line a deployment produces (script output, Tako's own messages) is a
//! [`LogLine`]. A line can only be built through [`LogLine::masked`], which
//! masks its text (`tako_exec::sink::TaskLog` is the one caller), so a
//! `LogLine` never holds a sensitive value.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::Masker;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// The step's standard output.
    Stdout,
    /// The step's standard error.
    Stderr,
    /// Tako itself (step start and end, skips, warnings, errors).
    Tako,
}

impl LogStream {
    /// A short lowercase name (`stdout`, `stderr`, `tako`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Tako => "tako",
        }
    }
}

impl std::fmt::Display for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How important a line is (Octopus's log levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Detail shown only on request (`write_verbose`).
    Verbose,
    /// Ordinary output.
    Info,
    /// A line to stand out (`write_highlight`).
    Highlight,
    /// Waiting for something (`write_wait`).
    Wait,
    /// Something worth a look.
    Warning,
    /// An error (standard error lines by default).
    Error,
}

impl LogLevel {
    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Verbose => "verbose",
            LogLevel::Info => "info",
            LogLevel::Highlight => "highlight",
            LogLevel::Wait => "wait",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
}

/// One line of a deployment's task log.
///
/// Its fields are private and its only constructor, [`LogLine::masked`],
/// takes the deployment's [`Masker`]: a line cannot be built unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    timestamp: DateTime<Utc>,
    step: Option<Arc<str>>,
    stream: LogStream,
    level: LogLevel,
    text: String,
}

impl LogLine {
    /// A line whose `text` is masked with `masker` first.
    pub fn masked(
        masker: &Masker,
        timestamp: DateTime<Utc>,
        step: Option<Arc<str>>,
        stream: LogStream,
        level: LogLevel,
        text: &str,
    ) -> LogLine {
        LogLine {
            timestamp,
            step,
            stream,
            level,
            text: masker.mask(text).into_owned(),
        }
    }

    /// When Tako read or wrote the line.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// The step the line belongs to; `None` for deployment-level lines.
    pub fn step(&self) -> Option<&str> {
        self.step.as_deref()
    }

    /// Where it came from.
    pub fn stream(&self) -> LogStream {
        self.stream
    }

    /// How important it is.
    pub fn level(&self) -> LogLevel {
        self.level
    }

    /// The masked text, without its line ending.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_masked_when_it_is_built() {
        let masker = Masker::with_values(["hunter2-secret"]);
        let line = LogLine::masked(
            &masker,
            Utc::now(),
            Some(Arc::from("Deploy")),
            LogStream::Stdout,
            LogLevel::Info,
            "password hunter2-secret",
        );
        assert_eq!(line.text(), "password ********");
        assert_eq!(line.step(), Some("Deploy"));
        assert_eq!(line.stream(), LogStream::Stdout);
        assert_eq!(line.level(), LogLevel::Info);
    }
}
