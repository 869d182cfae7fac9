//! `tako deployment list|show` and `tako delivery list|show|replay`: the
//! server's history listings on the command line, for people (columns) or
//! scripts (`--output json`, the server's JSON unchanged).

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use tako_protocol::api::{
    DeliveryDto, DeliveryPage, DeploymentDto, DeploymentPage, JobDto, ProjectDto, ReleaseDto,
};

use super::http::{Client, segment};
use super::{client, print_listing};
use crate::cli::{DeliveryArgs, DeliveryCommand, DeploymentArgs, DeploymentCommand, Output};

pub(crate) fn deployment(args: DeploymentArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        DeploymentCommand::List {
            project,
            environment,
            state,
            limit,
            output,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [
                ("project", &project),
                ("environment", &environment),
                ("state", &state),
            ] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", segment(value)));
                }
            }
            let page: DeploymentPage = client.get(&format!("/deployments?{}", query.join("&")))?;
            let projects = if output == Output::Table {
                project_names(&client)?
            } else {
                HashMap::new()
            };
            print_listing(
                output,
                &page.items,
                &[
                    "ID", "PROJECT", "RELEASE", "ENV", "STATE", "QUEUED", "FINISHED",
                ],
                |d| {
                    vec![
                        d.id.to_string(),
                        projects
                            .get(&d.project)
                            .cloned()
                            .unwrap_or_else(|| d.project.to_string()),
                        format!("#{}", d.release),
                        d.environment.clone(),
                        d.state.clone(),
                        d.queued_at.clone(),
                        d.finished_at.clone().unwrap_or_default(),
                    ]
                },
            )?;
        }
        DeploymentCommand::Show { deployment, output } => {
            let found: DeploymentDto = client.get(&format!("/deployments/{deployment}"))?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&found)?);
                return Ok(ExitCode::SUCCESS);
            }
            let release: ReleaseDto = client.get(&format!("/releases/{}", found.release))?;
            let jobs: Vec<JobDto> = client.get(&format!("/deployments/{deployment}/jobs"))?;
            print_deployment(&found, &release, &jobs);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn delivery(args: DeliveryArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        DeliveryCommand::List {
            project,
            limit,
            output,
        } => {
            let mut path = format!("/deliveries?limit={limit}");
            if let Some(project) = &project {
                path.push_str(&format!("&project={}", segment(project)));
            }
            let page: DeliveryPage = client.get(&path)?;
            print_listing(
                output,
                &page.items,
                &[
                    "ID", "EVENT", "REF", "COMMIT", "STATE", "OUTCOME", "RECEIVED",
                ],
                |d| {
                    vec![
                        d.id.clone(),
                        d.event.clone(),
                        d.git_ref.clone().unwrap_or_default(),
                        d.after
                            .as_deref()
                            .map(|c| c.chars().take(12).collect())
                            .unwrap_or_default(),
                        d.state.clone(),
                        outcome(d),
                        d.received_at.clone(),
                    ]
                },
            )?;
        }
        DeliveryCommand::Show { delivery, output } => {
            let found: DeliveryDto = client.get(&format!("/deliveries/{}", segment(&delivery)))?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                print_delivery(&found);
            }
        }
        DeliveryCommand::Plan { id, output } => {
            return crate::plan::delivery(&args.client, &id, output);
        }
        DeliveryCommand::Replay { delivery } => {
            let replayed: DeliveryDto = client.post(
                &format!("/deliveries/{}/replay", segment(&delivery)),
                None::<&()>,
            )?;
            eprintln!(
                "Delivery {} is {} again: the server routes its stored body as if it had just arrived.",
                replayed.id, replayed.state
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Project ids to names, for the listing's PROJECT column.
fn project_names(client: &Client) -> Result<HashMap<i64, String>> {
    let projects: Vec<ProjectDto> = client.get("/projects")?;
    Ok(projects.into_iter().map(|p| (p.id, p.name)).collect())
}

/// A delivery's outcome in a few words: `queued deployment 42`,
/// `ignored: no environment for branch 'x'`.
fn outcome(delivery: &DeliveryDto) -> String {
    let Some(outcome) = &delivery.outcome else {
        return String::new();
    };
    let mut text = outcome.kind.clone();
    if let Some(deployment) = outcome.deployment {
        text.push_str(&format!(" deployment {deployment}"));
    } else if let Some(release) = outcome.release {
        text.push_str(&format!(" release {release}"));
    }
    if let Some(reason) = &outcome.reason {
        text.push_str(&format!(": {reason}"));
    }
    text
}

fn print_deployment(deployment: &DeploymentDto, release: &ReleaseDto, jobs: &[JobDto]) {
    println!("Deployment   {}", deployment.id);
    println!("Release      {} (id {})", release.number, release.id);
    println!("Environment  {}", deployment.environment);
    println!("State        {}", deployment.state);
    println!("Queued       {}", deployment.queued_at);
    if let Some(at) = &deployment.started_at {
        println!("Started      {at}");
    }
    if let Some(at) = &deployment.finished_at {
        println!("Finished     {at}");
    }
    if let Some(by) = &deployment.created_by {
        println!("Created by   {by}");
    }
    if let Some(retry) = &deployment.retry_of {
        let from = if retry.from_failed_step {
            " from its failed step"
        } else {
            ""
        };
        println!("Retry of     deployment {}{from}", retry.deployment);
    }
    if let Some(error) = &deployment.error {
        println!("Error        {error}");
    }
    println!("Log lines    {}", deployment.log_lines);
    if let Some(steps) = &deployment.steps {
        println!();
        println!("Steps:");
        for step in steps {
            let duration = step
                .duration_ms
                .map(|ms| format!(" ({:.1} s)", ms as f64 / 1000.0))
                .unwrap_or_default();
            let reason = step
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            println!(
                "  {}. {}  {}{reason}{duration}",
                step.index + 1,
                step.name,
                step.state
            );
        }
    }
    if !jobs.is_empty() {
        println!();
        println!("Agent jobs:");
        for job in jobs {
            let duration = job
                .duration_ms
                .map(|ms| format!(" ({:.1} s)", ms as f64 / 1000.0))
                .unwrap_or_default();
            println!(
                "  [{}] {}  {}{duration}",
                job.log_label, job.step, job.state
            );
        }
    }
}

fn print_delivery(delivery: &DeliveryDto) {
    println!("Delivery     {}", delivery.id);
    println!("Event        {}", delivery.event);
    println!("Received     {}", delivery.received_at);
    if let Some(repository) = &delivery.repository {
        println!("Repository   {repository}");
    }
    if let Some(git_ref) = &delivery.git_ref {
        println!("Ref          {git_ref}");
    }
    if let Some(after) = &delivery.after {
        println!("Commit       {after}");
    }
    println!("State        {}", delivery.state);
    if let Some(node) = &delivery.claimed_by {
        // Done: the node that routed it; pending: the node routing it.
        let label = if delivery.state == "done" {
            "Routed by"
        } else {
            "Claimed by"
        };
        println!("{label:<13}node {node}");
    }
    let outcome = outcome(delivery);
    if !outcome.is_empty() {
        println!("Outcome      {outcome}");
    }
    if let Some(at) = &delivery.completed_at {
        println!("Completed    {at}");
    }
    if delivery.recovered {
        println!("Recovered    yes (fetched by the missed-push sweep)");
    }
    for warning in &delivery.warnings {
        println!("Warning      {warning}");
    }
    if let Some(forward) = &delivery.forward {
        println!("Forwarded    {forward}");
    }
}
