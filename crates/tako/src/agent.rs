//! `tako agent run`: this machine as an agent. Turns the flags into
//! [`tako_agent::run::Options`], prints the agent's events one line each,
//! and stops cleanly on Ctrl-C or SIGTERM (a second one exits at once).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tako_agent::run::{Event, Options, Reporter};
use tako_agent::tls::{Fingerprint, Trust};
use tako_protocol::agent::Secret;
use tokio_util::sync::CancellationToken;

use crate::cli::AgentRunArgs;

/// Prints events for the operator (standard output: one line per job).
struct Console;

impl Reporter for Console {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::Enrolled { name, state } => {
                if state == "pending" {
                    println!(
                        "Enrolled as {name}: waiting for an admin's approval (tako agent approve {name})"
                    );
                } else {
                    println!("Enrolled as {name}");
                }
            }
            Event::AlreadyEnrolled { name } => {
                eprintln!(
                    "Already enrolled as {name}: --enroll is not needed any more and was ignored"
                );
            }
            Event::Ready { name, server } => {
                println!("Agent {name} waiting for work from {server}")
            }
            Event::NotAllowed { message } => println!("{message}: asking again later"),
            Event::ConnectionLost { message } => {
                eprintln!("{message}; retrying quietly");
            }
            Event::Reconnected => eprintln!("Connected to the server again"),
            Event::LeftoverSteps { killed } => eprintln!(
                "Stopped {killed} step(s) the previous run left running when it died (their jobs were interrupted on the server)"
            ),
            Event::JobStarted { job } => println!(
                "Job {} started: step {:?} of {} {} to {} (deployment {})",
                job.id,
                job.step.name,
                job.facts.project,
                job.facts.release_number,
                job.facts.environment,
                job.deployment
            ),
            Event::JobEnded {
                job,
                step,
                state,
                duration,
                reason,
            } => {
                let state = serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let reason = reason.map(|r| format!(": {r}")).unwrap_or_default();
                println!(
                    "Job {job} ended: step {step:?} {state} in {:.1}s{reason}",
                    duration.as_secs_f64()
                );
            }
            Event::Delivered { job } => {
                println!("Job {job}: delivered what the agent's previous run left")
            }
            Event::JobNote { job, note } => eprintln!("Job {job}: {note}"),
            Event::Stopping => println!("Stopping: no more work is taken"),
        }
    }
}

/// The data directory when none is given.
fn default_data_dir() -> Result<PathBuf> {
    #[cfg(windows)]
    {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        Ok(PathBuf::from(base).join("tako-agent"))
    }
    #[cfg(not(windows))]
    {
        if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
            return Ok(PathBuf::from(state).join("tako-agent"));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .context("neither XDG_STATE_HOME nor HOME is set: pass --data-dir DIR")?;
        Ok(PathBuf::from(home).join(".local/state/tako-agent"))
    }
}

pub(crate) fn run(server: Option<String>, args: AgentRunArgs) -> Result<ExitCode> {
    let trust = match (&args.server_fingerprint, &args.ca_file) {
        (Some(fingerprint), _) => Trust::Fingerprint(Fingerprint::parse(fingerprint)?),
        (None, Some(file)) => Trust::CaFile(file.clone()),
        (None, None) => Trust::System,
    };
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let options = Options {
        data_dir,
        server,
        enroll: args.enroll.map(|t| Secret(t.trim().to_owned())),
        name: args.name,
        trust,
        insecure_http: args.insecure_http,
        once: args.once,
    };
    // One thread: the agent's work is one job at a time on one task (its
    // step's pipes have reader threads of their own, file work goes to
    // the blocking pool), and an idle agent should cost little memory.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signals(shutdown.clone()));
        tako_agent::run::run(options, &Console, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Cancels `shutdown` at the first Ctrl-C or SIGTERM; exits at the second.
async fn stop_on_signals(shutdown: CancellationToken) {
    for _ in 0..2 {
        crate::signals::stop_requested().await;
        if shutdown.is_cancelled() {
            eprintln!("Stopping now");
            std::process::exit(130);
        }
        eprintln!(
            "Stopping: the running step (if any) is cancelled and reported; press Ctrl-C again to exit at once"
        );
        shutdown.cancel();
    }
}
