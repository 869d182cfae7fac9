//! Built-in step kinds (`Uses:`), each Rust code rather than a script.
//!
//! Every kind is a function from a [`StepContext`] (its substituted `With:`
//! parameters, where it runs, what the deployment knows so far) to a
//! [`StepResult`]: the outputs it sets on success, or a [`StepError`] (a
//! parameter error, a refused path, a cancel, or any other failure). A
//! failure is the step's failure, never the engine's; messages pass the
//! masker before they are shown. Kinds write to the task log only through
//! `ctx.log`, which masks.

pub mod git_checkout;
pub mod git_tag;
pub mod http;
pub mod publish_psmodule;
pub mod slack;
pub mod step_template;
pub mod write_file;

use std::path::Path;

use tako_core::system::DeploymentFacts;
use tako_takofile::WithValue;
use tokio_util::sync::CancellationToken;

use crate::confine::ConfineError;
use crate::sink::TaskLog;

/// Why a built-in step (or the engine's preparation of a step) failed. The
/// texts are the step's failure reasons as shown in the task log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A `With:` parameter is missing or malformed.
    #[error("{0}")]
    Parameter(String),
    /// A path was refused by [`crate::confine`]; `shown` names the
    /// parameter and the path as given (`Path "link/x"`).
    #[error("{shown} {source}")]
    Confine {
        /// The parameter and path, as the message starts.
        shown: String,
        /// Why it was refused.
        source: ConfineError,
    },
    /// The deployment was cancelled while the step ran.
    #[error("cancelled")]
    Cancelled,
    /// Anything else: I/O, the network, git, a feed, a substitution.
    #[error("{0}")]
    Failed(String),
}

impl StepError {
    /// A refused path of parameter `parameter` (`Path "x" must ...`).
    pub fn path(parameter: &str, path: &str, source: ConfineError) -> StepError {
        StepError::Confine {
            shown: format!("{parameter} {path:?}"),
            source,
        }
    }

    /// The same error with its free text passed through `mask` (refused
    /// paths and cancels keep their kind).
    pub fn masked(self, mask: impl Fn(&str) -> String) -> StepError {
        match self {
            StepError::Parameter(text) => StepError::Parameter(mask(&text)),
            StepError::Failed(text) => StepError::Failed(mask(&text)),
            other => other,
        }
    }
}

impl From<String> for StepError {
    fn from(message: String) -> StepError {
        StepError::Failed(message)
    }
}

/// Everything a built-in step may use.
pub struct StepContext<'a, 'l> {
    /// The step's name.
    pub step: &'a str,
    /// The deployment's checkout (the root every path is confined to).
    pub root: &'a Path,
    /// The step's working directory (inside `root`).
    pub working_dir: &'a Path,
    /// A private directory outside the checkout for temporary files; removed
    /// after the step.
    pub scratch_dir: &'a Path,
    /// The `With:` parameters, substituted.
    pub parameters: &'a [(String, WithValue)],
    /// Facts about the deployment (project, environment, release, git, web links).
    pub facts: &'a DeploymentFacts,
    /// The first failure so far (`Step 'X' failed: ...`, masked), if any.
    pub error: Option<&'a str>,
    /// Every step so far with its state (name, `Success`/`Failed`/`Skipped`).
    pub steps_so_far: &'a [(String, String)],
    /// The task log (masks every line).
    pub log: &'a TaskLog<'l>,
    /// Cancelled when the deployment is cancelled: stop and return promptly.
    pub cancel: &'a CancellationToken,
}

impl StepContext<'_, '_> {
    /// The text of parameter `name` (case-insensitive), if given.
    pub fn text(&self, name: &str) -> Result<Option<&str>, StepError> {
        text(self.parameters, name)
    }

    /// The text of a required parameter.
    pub fn required(&self, name: &str) -> Result<&str, StepError> {
        required(self.parameters, name)
    }

    /// A parameter given as a map (`Headers:`), as ordered pairs; a missing
    /// parameter is empty.
    pub fn map(&self, name: &str) -> Result<Vec<(String, String)>, StepError> {
        match self
            .parameters
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
        {
            None => Ok(Vec::new()),
            Some((_, WithValue::Map(entries))) => entries
                .iter()
                .map(|(k, v)| match v {
                    WithValue::Text(text) => Ok((k.clone(), text.clone())),
                    _ => Err(StepError::Parameter(format!(
                        "parameter {name}.{k} must be text"
                    ))),
                })
                .collect(),
            Some((key, _)) => Err(StepError::Parameter(format!(
                "parameter {key} must be a map of names to values"
            ))),
        }
    }

    /// A boolean parameter (`true`/`false`, `True`/`False`, `yes`/`no`, `1`/`0`).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, StepError> {
        match self.text(name)? {
            None => Ok(default),
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(StepError::Parameter(format!(
                    "parameter {name} must be true or false, not {value:?}"
                ))),
            },
        }
    }
}

/// What a built-in step produced: its output variables on success (readable
/// later as `Octopus.Action[Step].Output.Name`), or why it failed.
pub type StepResult = Result<Vec<(String, String)>, StepError>;

/// The text of parameter `name` (case-insensitive), if given.
pub(crate) fn text<'a>(
    parameters: &'a [(String, WithValue)],
    name: &str,
) -> Result<Option<&'a str>, StepError> {
    match parameters
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
    {
        None => Ok(None),
        Some((_, WithValue::Text(text))) => Ok(Some(text)),
        Some((key, _)) => Err(StepError::Parameter(format!(
            "parameter {key} must be text, not a list or map"
        ))),
    }
}

/// The text of required parameter `name`.
pub(crate) fn required<'a>(
    parameters: &'a [(String, WithValue)],
    name: &str,
) -> Result<&'a str, StepError> {
    text(parameters, name)?
        .ok_or_else(|| StepError::Parameter(format!("parameter {name} is required")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_errors_are_typed_and_keep_their_texts() {
        let parameters = vec![
            ("Path".to_owned(), WithValue::List(Vec::new())),
            ("Flag".to_owned(), WithValue::Text("maybe".to_owned())),
        ];
        assert_eq!(
            text(&parameters, "path"),
            Err(StepError::Parameter(
                "parameter Path must be text, not a list or map".to_owned()
            ))
        );
        let missing = required(&parameters, "Content").unwrap_err();
        assert_eq!(missing.to_string(), "parameter Content is required");
        assert!(matches!(missing, StepError::Parameter(_)));
    }

    #[test]
    fn masking_keeps_the_kind_of_an_error() {
        let mask = |text: &str| text.replace("s3cret-token", "********");
        assert_eq!(
            StepError::Failed("refused s3cret-token".to_owned()).masked(mask),
            StepError::Failed("refused ********".to_owned())
        );
        assert_eq!(StepError::Cancelled.masked(mask), StepError::Cancelled);
        let refused = StepError::path("Path", "link/x", ConfineError::Escapes);
        assert!(refused.to_string().starts_with(
            "Path \"link/x\" leads outside the working directory through a symbolic link"
        ));
        assert!(matches!(refused.masked(mask), StepError::Confine { .. }));
    }
}
