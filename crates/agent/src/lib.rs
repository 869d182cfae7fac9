//! `tako agent`: the polling tentacle. An agent runs on another machine
//! (behind NAT, on a home network, on Windows with PowerShell), connects
//! out to the server, takes the steps meant for it, runs them with the same
//! exec code the server uses, and sends their log and outcome back
//! (`../shared/spec/agents.md`).
//!
//! [`run`] is the agent's life: enroll once ([`state`] keeps the
//! credential), deliver what the [`spool`] still owes, then poll for jobs
//! and run each in a fresh copy of the release commit's files
//! ([`source`]), its log spooled and sent in numbered chunks, heartbeats
//! carrying cancel requests, the outcome sent until acknowledged. The
//! [`client`] makes the HTTP calls; [`tls`] decides whom to trust (system
//! roots, a CA file, or a pinned fingerprint); [`transport`] the server
//! URL's rules; [`backoff`] the wait between retries.

pub mod backoff;
pub mod client;
pub mod run;
pub mod source;
pub mod spool;
pub mod state;
pub mod tls;
pub mod transport;
