//! The takofile: a YAML document at a repository's root that names the project,
//! routes branches and tags to environments and (optionally) holds the process.
//!
//! Raw YAML is parsed once, with positions, into a validated [`Takofile`] plan;
//! nothing downstream ever sees YAML. All problems are reported as
//! [`Diagnostic`]s carrying file, line, column and a hint.

mod shell;

pub use shell::Shell;
