//! `tako agent`: the polling tentacle. An agent runs on another machine
//! (behind NAT, on a home network, on Windows with PowerShell), connects
//! out to the server, takes the steps meant for it, runs them with the same
//! exec code the server uses, and sends their log and outcome back.
//!
//! What is here so far is the part that keeps the protocol's promises
//! whatever fails (`../shared/spec/agents.md` §4): the [`spool`] (every log
//! chunk and the outcome on disk before they are sent, kept until the server
//! acknowledges them, no secret left behind), the [`backoff`] between
//! retries, and the [`transport`] rules for the server's URL.

pub mod backoff;
pub mod spool;
pub mod transport;
