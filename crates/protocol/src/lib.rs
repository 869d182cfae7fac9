//! The wire: every type that crosses a process boundary, owned by neither
//! side. [`api`] is the JSON of the HTTP API (`/api/v1`) that the server
//! answers and the `tako` client reads; [`agent`] is what a server and a
//! `tako agent` on another machine say to each other (a job, its log in
//! numbered chunks, its outcome).
//!
//! Only serde types live here: no I/O, no conversions from the store (the
//! server converts its stored values at its boundary). A type that carries a
//! secret prints `********` in its `Debug` form.

pub mod agent;
pub mod api;

/// What a sensitive value reads as wherever it would otherwise be shown.
pub const MASKED_VALUE: &str = "********";
