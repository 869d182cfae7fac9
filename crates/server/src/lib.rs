//! `tako serve`: the server. Webhook intake, the router that turns deliveries
//! into releases, the scheduler that runs deployments through `tako-exec`,
//! the HTTP API and the web UI.
//!
//! Layers inside the crate: the HTTP front ends (`http` composing `api` and
//! `web`) call the `services`, which know nothing of HTTP; the services and
//! the background workers (`router`, `scheduler`, `sweep`, `statuses`) share `releases`,
//! `lifecycle`, `policy` and `repository`. Handlers extract, call one service function
//! and answer; rules live in the services and below.

pub mod api;
pub mod caches;
pub mod config;
pub mod freezes;
pub mod http;
pub mod intake;
pub mod keys;
pub mod lease_sweep;
pub mod lifecycle;
pub mod migrate;
pub mod octopus;
pub mod plans;
pub mod policy;
pub mod releases;
pub mod repository;
pub mod retention;
pub mod router;
pub mod scheduler;
pub mod serve;
pub mod services;
pub mod startup;
pub mod state;
pub mod statuses;
pub mod sweep;
pub mod tls;
pub mod wakeups;
pub mod web;
