//! Runs a validated process: steps, scripts in process groups, the script API
//! and the log sink.
//!
//! [`process`] runs one script as a real process in its own process group and
//! reports its output line by line; [`script_api`] writes the helper files
//! (Octopus's `get_octopusvariable`, `set_octopusvariable`, ...) that are
//! defined before the user's script runs; [`service_message`] parses the
//! `##octopus[...]` lines through which a script talks back. [`engine`] runs a
//! whole process step by step: it decides and substitutes, and hands each
//! resolved step to an [`executor`] ([`executor::LocalExecutor`] runs it on
//! this machine with the modules above); [`sink`] is the task log's one way
//! out (masking first); [`steps`] holds the built-in step kinds; [`confine`]
//! turns every path from the takofile into a file path; [`clock`] is the one
//! evaluation context for templates; [`wire`] is a resolved step as the agent
//! protocol carries it, both ways; [`forecast`] is what a deployment would
//! do, decided by the engine without running anything (`tako plan`).

pub mod clock;
pub mod confine;
pub mod engine;
pub mod executor;
pub mod forecast;
pub mod prepare;
pub mod process;
pub mod script_api;
mod script_events;
pub mod service_message;
pub mod sink;
pub mod steps;
pub mod wire;
