//! Tako's domain, free of I/O: variables and their scoping, system variables,
//! release numbering, masking of sensitive values, step outcomes, the task
//! log model and deployment freezes.
//!
//! Nothing here reads files, the clock or the network; callers pass facts in.

pub mod freeze;
pub mod log;
pub mod mask;
pub mod octopus;
pub mod release;
pub mod state;
pub mod step;
pub mod system;
pub mod variables;

pub use mask::{MASK, Masker};
