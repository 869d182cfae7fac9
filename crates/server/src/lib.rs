//! `tako serve`: the server. Webhook intake, the router that turns deliveries
//! into releases, the scheduler that runs deployments through `tako-exec`,
//! the HTTP API and the web UI.
//!
//! The web layer is thin: handlers extract, call one service function and
//! return; rules live in the services and below.

mod actions;
pub mod api;
pub mod config;
pub mod frozen;
pub mod http;
pub mod intake;
pub mod keys;
pub mod limits;
pub mod policy;
pub mod releases;
pub mod router;
pub mod scheduler;
pub mod serve;
pub mod startup;
pub mod web;
