//! Tako's domain, free of I/O: variables and their scoping, release numbering,
//! masking of sensitive values and the task log model.

pub mod release;
