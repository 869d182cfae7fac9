//! A running script's events turned into task log lines and effects.
//!
//! Ordinary lines go to the [`TaskLog`] at the level the script chose
//! (Octopus's `stdout-*`/`stderr-*` directives); service messages set output
//! variables (sensitive ones become secrets of the log first), fail the step,
//! register artifacts, add secrets or report progress.

use tako_core::MASK;
use tako_core::log::{LogLevel, LogStream};

use crate::engine::Artifact;
use crate::executor::StepOutput;
use crate::process::ScriptEvent;
use crate::service_message::{FailureKind, ServiceMessage};
use crate::sink::TaskLog;

/// Turns a running script's events into log lines and recorded effects.
pub(crate) struct EventHandler<'a, 'l, 's> {
    step: &'a str,
    log: &'l mut TaskLog<'s>,
    stdout_level: Option<LogLevel>,
    stderr_level: Option<LogLevel>,
    failure_message: Option<String>,
    failed_by_helper: bool,
    outputs: Vec<StepOutput>,
    artifacts: Vec<Artifact>,
}

/// What a script's messages decided: its failure message, whether
/// `fail_step` was called, its outputs and artifacts.
pub(crate) type Effects = (Option<String>, bool, Vec<StepOutput>, Vec<Artifact>);

impl<'a, 'l, 's> EventHandler<'a, 'l, 's> {
    /// A handler for step `step`, writing to `log`.
    pub(crate) fn new(step: &'a str, log: &'l mut TaskLog<'s>) -> Self {
        EventHandler {
            step,
            log,
            stdout_level: Some(LogLevel::Info),
            stderr_level: Some(LogLevel::Error),
            failure_message: None,
            failed_by_helper: false,
            outputs: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// What the script's messages decided.
    pub(crate) fn finish(self) -> Effects {
        (
            self.failure_message,
            self.failed_by_helper,
            self.outputs,
            self.artifacts,
        )
    }

    /// Handles one event of the running script.
    pub(crate) fn handle(&mut self, event: ScriptEvent) {
        match event {
            ScriptEvent::Line { stream, text } => {
                let level = match stream {
                    LogStream::Stdout => self.stdout_level,
                    LogStream::Stderr => self.stderr_level,
                    LogStream::Tako => Some(LogLevel::Info),
                };
                if let Some(level) = level {
                    self.log.write(stream, level, &text);
                }
            }
            ScriptEvent::Message(message) => self.message(message),
        }
    }

    fn message(&mut self, message: ServiceMessage) {
        match message {
            ServiceMessage::SetVariable {
                name,
                value,
                sensitive,
            } => {
                if sensitive {
                    self.log.add_secret(&value);
                }
                let shown = if sensitive {
                    MASK.to_owned()
                } else {
                    value.clone()
                };
                self.log.tako(
                    LogLevel::Verbose,
                    &format!(
                        "Output variable Octopus.Action[{}].Output.{name} = {shown}",
                        self.step
                    ),
                );
                self.outputs.retain(|o| o.name != name);
                self.outputs.push(StepOutput {
                    machine: None,
                    name,
                    value,
                    sensitive,
                });
            }
            ServiceMessage::StepFailed { message, kind } => {
                // Tako's `stepFailed` fails the step whatever the exit code;
                // Octopus's `resultMessage` only words the failure that the
                // exit code decides, as in Calamari.
                self.failed_by_helper |= kind == FailureKind::StepFailed;
                if !message.is_empty() {
                    self.failure_message = Some(message);
                } else if kind == FailureKind::StepFailed {
                    self.failure_message = Some("the script called fail_step".to_owned());
                }
            }
            ServiceMessage::Mask { value } => self.log.add_secret(&value),
            ServiceMessage::CreateArtifact { path, name, .. } => {
                self.log.tako(
                    LogLevel::Info,
                    &format!("Artifact {name} will be collected from {path}"),
                );
                self.artifacts.push(Artifact {
                    step: self.step.to_owned(),
                    path,
                    name,
                });
            }
            ServiceMessage::Progress {
                percentage,
                message,
            } => {
                self.log.tako(
                    LogLevel::Verbose,
                    &format!("Progress {percentage}%: {message}"),
                );
            }
            ServiceMessage::LogLevel { stream, level } => {
                let level = level_named(&level, stream);
                match stream {
                    LogStream::Stdout => self.stdout_level = level,
                    LogStream::Stderr => self.stderr_level = level,
                    LogStream::Tako => {}
                }
            }
            ServiceMessage::Other { .. } => {}
        }
    }
}

/// Octopus's `stdout-*` / `stderr-*` directives; `None` drops the lines.
fn level_named(level: &str, stream: LogStream) -> Option<LogLevel> {
    match (level.to_ascii_lowercase().as_str(), stream) {
        ("ignore", _) => None,
        ("verbose", _) | ("progress", LogStream::Stderr) => Some(LogLevel::Verbose),
        ("highlight", _) => Some(LogLevel::Highlight),
        ("wait", _) => Some(LogLevel::Wait),
        ("warning", _) => Some(LogLevel::Warning),
        ("error", _) | ("default", LogStream::Stderr) => Some(LogLevel::Error),
        _ => Some(LogLevel::Info),
    }
}
