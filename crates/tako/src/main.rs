//! `tako`: the one binary. Parses the command line, runs the command, maps the
//! result to an exit code. How anything is done lives in the library crates.

// Printing to the terminal is this crate's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod agent;
mod cli;
mod client;
mod console;
mod local;
mod migrate;
mod plan;
mod priority;
mod reference;
mod run;
mod serve;
mod signals;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // An agent's process parses only its own arguments (cli::agent_run_alone).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((client, run)) = cli::agent_run_alone(&args) {
        return exit_code(agent::run(client.server, run));
    }
    let cli = cli::Cli::parse_from(args);
    let result = match cli.command {
        cli::Command::Validate(args) => validate::validate(&args),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Plan(args) => plan::plan(args),
        cli::Command::Freeze(args) => client::freeze(args),
        cli::Command::Serve(args) => serve::serve(args),
        cli::Command::Project(args) => client::project(args),
        cli::Command::Var(args) => client::var(args),
        cli::Command::Release(args) => client::release(args),
        cli::Command::Deploy(args) => client::deploy(args),
        cli::Command::Logs(args) => client::logs(args),
        cli::Command::Cancel(args) => client::cancel(args),
        cli::Command::Approve(args) => client::decide(args, true),
        cli::Command::Reject(args) => client::decide(args, false),
        cli::Command::Approvals(args) => client::approvals(args),
        cli::Command::Intervention(args) => client::intervention(args),
        cli::Command::Token(args) => client::token(args),
        cli::Command::Admin(args) => client::admin(args),
        cli::Command::Agent(args) => client::agents::agent(args),
        cli::Command::Env(args) => client::env(args),
        cli::Command::Deployment(args) => client::history::deployment(args),
        cli::Command::Delivery(args) => client::history::delivery(args),
        cli::Command::Completions(args) => reference::completions(&args),
        cli::Command::Man(args) => reference::man(&args),
        cli::Command::Reference(args) => reference::page(&args),
    };
    exit_code(result)
}

/// A command's exit code, its error printed.
fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
