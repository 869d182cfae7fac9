//! The task log model: timestamped lines, each with its step, stream and level.
//!
//! Every line a deployment produces (script output, Tako's own messages) is a
//! [`LogLine`]. Lines are built only after masking (see `tako_exec::sink`), so
//! a `LogLine` never holds a sensitive value.

use std::sync::Arc;

use chrono::{DateTime, Utc};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When Tako read or wrote the line.
    pub timestamp: DateTime<Utc>,
    /// The step the line belongs to; `None` for deployment-level lines.
    pub step: Option<Arc<str>>,
    /// Where it came from.
    pub stream: LogStream,
    /// How important it is.
    pub level: LogLevel,
    /// The masked text, without its line ending.
    pub text: String,
}
