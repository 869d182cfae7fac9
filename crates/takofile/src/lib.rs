//! The takofile: a YAML document at a repository's root that names the project,
//! routes branches and tags to environments and (optionally) holds the process.
//!
//! Raw YAML is parsed once, with positions, into a validated [`Takofile`] plan;
//! nothing downstream ever sees YAML. All problems are reported as
//! [`Diagnostic`]s carrying file, line, column and a hint, and validation
//! reports every problem, not just the first.
//!
//! ```
//! let text = "Project: StatuscakeDSC\nMappings:\n  - Branch: master\n    Environment: Production\n";
//! let takofile = tako_takofile::parse("takofile", text).expect("valid");
//! assert_eq!(takofile.environment_for_branch("master"), Some("Production"));
//! assert_eq!(takofile.environment_for_branch("develop"), None);
//! ```
//!
//! This crate does no I/O: callers read the file (trying [`FILE_NAMES`] in
//! order) and pass its text to [`parse`].

mod diagnostic;
mod glob;
mod lifecycle;
mod model;
mod retention;
mod shell;
mod validate;
mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use glob::{Glob, GlobError, RefPattern};
pub use lifecycle::{
    APPROVAL_ROLES, Approval, DEFAULT_APPROVAL_TIMEOUT, Lifecycle, NotBy, Phase, Refusal,
};
pub use model::{
    Condition, Mapping, OnFailure, Retry, SERVER_IGNORED, Step, StepAction, StepTargets, Takofile,
    Timeout, UsesKind, VariableDecl, WhenNoAgents, WithValue,
};
pub use retention::{KeepFor, KeepReleases, Retention};
pub use shell::Shell;
pub use validate::ACCEPTED_KEYS;

/// The names a takofile may have at the repository root, in lookup order:
/// the first that exists is used.
pub const FILE_NAMES: [&str; 3] = ["takofile", "takofile.yml", "takofile.yaml"];

/// Parses and validates a takofile. `file_name` only labels diagnostics.
///
/// `Ok` carries the plan and its warnings ([`Takofile::warnings`]); `Err`
/// carries every error and every warning found, ordered by position.
/// Never panics, whatever the input.
pub fn parse(file_name: &str, text: &str) -> Result<Takofile, Diagnostics> {
    validate::parse(file_name, text)
}
