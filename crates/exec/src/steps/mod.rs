//! Built-in step kinds (`Uses:`), each Rust code rather than a script.
//!
//! Every kind is a function from a [`StepContext`] (its substituted `With:`
//! parameters, where it runs, what the deployment knows so far) to a
//! [`StepResult`]: the outputs it sets on success, or a failure message. A
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

use crate::sink::TaskLog;

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
    pub fn text(&self, name: &str) -> Result<Option<&str>, String> {
        text(self.parameters, name)
    }

    /// The text of a required parameter.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        required(self.parameters, name)
    }

    /// A parameter given as a map (`Headers:`), as ordered pairs; a missing
    /// parameter is empty.
    pub fn map(&self, name: &str) -> Result<Vec<(String, String)>, String> {
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
                    _ => Err(format!("parameter {name}.{k} must be text")),
                })
                .collect(),
            Some((key, _)) => Err(format!("parameter {key} must be a map of names to values")),
        }
    }

    /// A boolean parameter (`true`/`false`, `True`/`False`, `yes`/`no`, `1`/`0`).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.text(name)? {
            None => Ok(default),
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(format!(
                    "parameter {name} must be true or false, not {value:?}"
                )),
            },
        }
    }
}

/// What a built-in step produced: its output variables on success (readable
/// later as `Octopus.Action[Step].Output.Name`), or why it failed.
pub type StepResult = Result<Vec<(String, String)>, String>;

/// The text of parameter `name` (case-insensitive), if given.
pub(crate) fn text<'a>(
    parameters: &'a [(String, WithValue)],
    name: &str,
) -> Result<Option<&'a str>, String> {
    match parameters
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
    {
        None => Ok(None),
        Some((_, WithValue::Text(text))) => Ok(Some(text)),
        Some((key, _)) => Err(format!("parameter {key} must be text, not a list or map")),
    }
}

/// The text of required parameter `name`.
pub(crate) fn required<'a>(
    parameters: &'a [(String, WithValue)],
    name: &str,
) -> Result<&'a str, String> {
    text(parameters, name)?.ok_or_else(|| format!("parameter {name} is required"))
}
