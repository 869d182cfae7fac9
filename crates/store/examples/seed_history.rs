//! Fills a Tako database with a finished deployment history, for the history
//! scale benchmark (`bench/history-scale.sh`): `projects` projects
//! (`history-00`, ...), each release deployed to three environments (DevTest,
//! Staging, Production), every deployment finished (one in 25 failed) with
//! three steps and six log lines; and one project without deployments
//! (`history-idle`). Everything goes through the [`Store`] trait, so the rows are
//! exactly what the server writes (migrations, triggers, log chunks).
//!
//! ```sh
//! cargo run --release -p tako-store --example seed_history -- <db> <deployments> [projects]
//! ```
//!
//! `<db>` is the `tako.db` of a data directory that `tako serve` has
//! initialised (master key, admin token); stop the server first. Running it
//! again adds to the history (projects are reused by name). Each store call
//! is its own durable transaction, as in the server, so the run is bounded
//! by fsync: ~7 commits per deployment.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::Utc;
use tako_core::log::{LogLevel, LogStream};
use tako_store::{
    DeploymentState, LogLineRecord, NewDeployment, NewProject, NewRelease, NodeId, Project,
    SqliteStore, StepRecord, StepRunState, Store, StoreError,
};

/// Environments each release is deployed to, in order.
const ENVIRONMENTS: [&str; 3] = ["DevTest", "Staging", "Production"];
/// Steps of every deployment.
const STEPS: [&str; 3] = ["Build", "Test", "Deploy"];
/// One deployment in this many fails (its last step).
const FAIL_EVERY: u64 = 25;

const TAKOFILE: &str = "Project: History\nMappings:\n  - Branch: develop\n    Environment: DevTest\n  \
- Branch: release/*\n    Environment: Staging\n  - Branch: main\n    Environment: Production\n\
Steps:\n  - Name: Build\n    Run: make build\n  - Name: Test\n    Run: make test\n  \
- Name: Deploy\n    Run: ./deploy.sh #{Octopus.Environment.Name}\n";

struct Args {
    db: String,
    deployments: u64,
    projects: u64,
}

fn args() -> Result<Args, String> {
    let usage = "usage: seed_history <db path> <deployments> [projects, default 10]";
    let mut args = std::env::args().skip(1);
    let db = args.next().ok_or(usage)?;
    let deployments = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("deployments: {e}; {usage}"))?;
    let projects = match args.next() {
        Some(text) => text
            .parse()
            .map_err(|e| format!("projects: {e}; {usage}"))?,
        None => 10,
    };
    if projects == 0 {
        return Err(format!("projects must be at least 1; {usage}"));
    }
    Ok(Args {
        db,
        deployments,
        projects,
    })
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(seed(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("seeding {} failed: {error}", args.db);
            ExitCode::FAILURE
        }
    }
}

async fn project(store: &SqliteStore, name: &str) -> Result<Project, StoreError> {
    if let Some(project) = store.find_project_by_name(name).await? {
        return Ok(project);
    }
    store
        .create_project(NewProject {
            name: name.to_owned(),
            repository_url: format!("https://example.invalid/acme/{name}.git"),
            webhook_secret: None,
            repository_token: None,
        })
        .await
}

async fn seed(args: &Args) -> Result<(), StoreError> {
    let store = SqliteStore::open(&args.db)?;
    let node = NodeId("seed-history".to_owned());
    let mut projects = Vec::new();
    for n in 0..args.projects {
        projects.push(project(&store, &format!("history-{n:02}")).await?);
    }
    // A project without deployments: listing its deployments is the worst
    // case of a filtered listing (nothing matches).
    project(&store, "history-idle").await?;
    // Releases already there (a second run continues the numbering).
    let mut next_release = Vec::new();
    for project in &projects {
        let count = store
            .list_releases(project.id, tako_store::PageRequest::first(1))
            .await?
            .items
            .first()
            .and_then(|r| r.number.rsplit('.').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        next_release.push(count + 1);
    }

    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut release = None;
    for n in 0..args.deployments {
        // Each release goes to the three environments of one project in turn.
        let slot = n / ENVIRONMENTS.len() as u64;
        let environment = ENVIRONMENTS[(n % ENVIRONMENTS.len() as u64) as usize];
        let index = (slot % args.projects) as usize;
        if n % ENVIRONMENTS.len() as u64 == 0 {
            let number = next_release[index];
            next_release[index] += 1;
            let commit = format!("{:040x}", (slot + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            release = Some(
                store
                    .create_release(NewRelease {
                        project: projects[index].id,
                        number: format!("1.0.{number}"),
                        notes: format!("- Change number {number} ({})", &commit[..7]),
                        commit,
                        branch: Some("main".to_owned()),
                        pusher: Some("octocat".to_owned()),
                        takofile: TAKOFILE.to_owned(),
                        variables: "[]".to_owned(),
                        build_number: None,
                    })
                    .await?,
            );
        }
        let Some(release) = &release else {
            return Err(StoreError::Conflict {
                what: "no release to deploy".to_owned(),
            });
        };
        let queued = store
            .create_deployment(NewDeployment {
                release: release.id,
                environment: environment.to_owned(),
                approval: None,
                created_by: None,
                retry_of: None,
                hold: false,
            })
            .await?;
        let Some(running) = store
            .claim_next_deployment(&node, Duration::from_secs(600), u32::MAX)
            .await?
        else {
            return Err(StoreError::Conflict {
                what: format!(
                    "deployment {} was queued but not claimable (is a server using this database?)",
                    queued.id
                ),
            });
        };
        if running.id != queued.id {
            return Err(StoreError::Conflict {
                what: format!(
                    "claimed deployment {} instead of {}: the database has other queued deployments",
                    running.id, queued.id
                ),
            });
        }
        let failed = (n + 1) % FAIL_EVERY == 0;
        let mut lines = Vec::new();
        for (step_index, step) in STEPS.iter().enumerate() {
            let last = step_index == STEPS.len() - 1;
            let state = if failed && last {
                StepRunState::Failed
            } else {
                StepRunState::Success
            };
            store
                .update_step(
                    running.id,
                    StepRecord {
                        index: step_index as u32,
                        name: (*step).to_owned(),
                        state,
                        reason: (state == StepRunState::Failed)
                            .then(|| "the script exited with code 1".to_owned()),
                        started_at: Some(Utc::now()),
                        duration: Some(Duration::from_millis(150 + 37 * step_index as u64)),
                    },
                )
                .await?;
            for (stream, level, text) in [
                (
                    LogStream::Tako,
                    LogLevel::Info,
                    format!("Step {step} started"),
                ),
                (
                    LogStream::Stdout,
                    LogLevel::Info,
                    format!(
                        "{step}: {} {} to {environment} ok",
                        projects[index].name, release.number
                    ),
                ),
            ] {
                lines.push(LogLineRecord {
                    timestamp: Utc::now(),
                    step: Some((*step).to_owned()),
                    stream,
                    level,
                    text,
                });
            }
        }
        store.append_log(running.id, &lines).await?;
        let (state, error) = if failed {
            (
                DeploymentState::Failed,
                Some("step Deploy failed: the script exited with code 1".to_owned()),
            )
        } else {
            (DeploymentState::Success, None)
        };
        store.finish_deployment(running.id, state, error).await?;
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let rate = (n + 1) as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "{} of {} deployments ({rate:.0}/s)",
                n + 1,
                args.deployments
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "seeded {} deployments over {} projects in {elapsed:.1} s ({:.0}/s)",
        args.deployments,
        args.projects,
        args.deployments as f64 / elapsed.max(1e-9)
    );
    Ok(())
}
