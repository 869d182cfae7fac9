//! The client commands (`tako project`, `var`, `release`, `deploy`, `logs`,
//! `cancel`, `token`): each is one or two calls to the server's JSON API,
//! printed for people or, with `--output json`, as the server's JSON.
//!
//! Secrets (webhook secrets, sensitive values) are read from standard input,
//! never from the command line where other users of the machine could see
//! them.

mod http;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tako_server::api::dto::{
    CreateDeployment, CreateProject, CreateToken, CreatedToken, DeploymentDto, LogEnd, LogLineDto,
    ProjectDto, ReleaseDto, ReleasePage, SetVariable, VariableDto,
};

use crate::cli::{
    CancelArgs, ClientArgs, DeployArgs, LogsArgs, Output, ProjectArgs, ProjectCommand, ReleaseArgs,
    ReleaseCommand, TokenArgs, TokenCommand, VarArgs, VarCommand,
};
use http::{Client, segment};

fn client(args: &ClientArgs) -> Client {
    Client::new(&args.server, args.token.clone())
}

pub(crate) fn project(args: ProjectArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        ProjectCommand::Create {
            name,
            repository,
            webhook_secret_stdin,
            repo_token_file,
        } => {
            let from_stdin = repo_token_file.as_deref() == Some(std::path::Path::new("-"));
            if webhook_secret_stdin && from_stdin {
                anyhow::bail!(
                    "only one value can come from standard input: pass the repository token with --repo-token-file FILE"
                );
            }
            let webhook_secret = if webhook_secret_stdin {
                Some(read_stdin("the webhook secret")?)
            } else {
                None
            };
            let repository_token = match &repo_token_file {
                None => None,
                Some(_) if from_stdin => Some(read_stdin("the repository token")?),
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| {
                            format!("cannot read the repository token from {}", path.display())
                        })?
                        .trim()
                        .to_owned(),
                ),
            };
            let project: ProjectDto = client.post(
                "/projects",
                Some(&CreateProject {
                    name,
                    repository,
                    webhook_secret,
                    repository_token,
                }),
            )?;
            println!(
                "Project {} registered (id {}) for {}",
                project.name, project.id, project.repository
            );
        }
        ProjectCommand::List { output } => {
            let projects: Vec<ProjectDto> = client.get("/projects")?;
            print_listing(output, &projects, &["NAME", "REPOSITORY", "CREATED"], |p| {
                vec![p.name.clone(), p.repository.clone(), p.created_at.clone()]
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn var(args: VarArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        VarCommand::Set {
            name,
            value,
            project,
            environments,
            sensitive,
        } => {
            let value = match value {
                Some(value) => value,
                None => read_stdin(&format!("the value of {name}"))?,
            };
            let variable: VariableDto = client.put(
                &format!(
                    "/projects/{}/variables/{}",
                    segment(&project),
                    segment(&name)
                ),
                &SetVariable {
                    value,
                    environments: Some(environments),
                    sensitive: Some(sensitive),
                },
            )?;
            println!(
                "Variable {} of {project} set{}{}",
                variable.name,
                scope(&variable.environments),
                if variable.sensitive {
                    " (sensitive)"
                } else {
                    ""
                }
            );
        }
        VarCommand::List { project, output } => {
            let variables: Vec<VariableDto> =
                client.get(&format!("/projects/{}/variables", segment(&project)))?;
            print_listing(output, &variables, &["ID", "NAME", "VALUE", "SCOPE"], |v| {
                vec![
                    v.id.to_string(),
                    v.name.clone(),
                    v.value.clone(),
                    if v.environments.is_empty() {
                        "all".to_owned()
                    } else {
                        v.environments.join(", ")
                    },
                ]
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scope(environments: &[String]) -> String {
    if environments.is_empty() {
        String::new()
    } else {
        format!(" for {}", environments.join(", "))
    }
}

pub(crate) fn release(args: ReleaseArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        ReleaseCommand::List {
            project,
            limit,
            output,
        } => {
            let page: ReleasePage = client.get(&format!(
                "/projects/{}/releases?limit={limit}",
                segment(&project)
            ))?;
            print_listing(
                output,
                &page.items,
                &["ID", "NUMBER", "COMMIT", "BRANCH", "CREATED"],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.number.clone(),
                        r.commit.chars().take(12).collect(),
                        r.branch.clone().unwrap_or_default(),
                        r.created_at.clone(),
                    ]
                },
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn deploy(args: DeployArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    let release: ReleaseDto = client.get(&format!(
        "/projects/{}/releases/{}",
        segment(&args.project),
        segment(&args.release)
    ))?;
    let deployment: DeploymentDto = client.post(
        &format!("/releases/{}/deployments", release.id),
        Some(&CreateDeployment {
            environment: args.environment,
        }),
    )?;
    println!(
        "Deployment {} queued: {} {} to {}",
        deployment.id, args.project, release.number, deployment.environment
    );
    if args.follow {
        follow(&client, deployment.id)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

pub(crate) fn logs(args: LogsArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    if args.follow {
        return follow(&client, args.deployment);
    }
    let text = client.get_text(&format!("/deployments/{}/log", args.deployment))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Streams a deployment's log until it ends; exit code 0 only on success.
fn follow(client: &Client, deployment: i64) -> Result<ExitCode> {
    let mut end: Option<LogEnd> = None;
    client.events(
        &format!("/deployments/{deployment}/log?follow=true"),
        |event, data| {
            match event {
                "line" => {
                    let line: LogLineDto =
                        serde_json::from_str(data).context("a malformed log line")?;
                    println!("{}", format_line(&line));
                }
                "end" => {
                    end = Some(serde_json::from_str(data).context("a malformed end event")?);
                    return Ok(false);
                }
                "error" => bail!("the server could not read the log; run tako logs again"),
                _ => {}
            }
            Ok(true)
        },
    )?;
    let Some(end) = end else {
        bail!(
            "the log stream ended before the deployment did; run `tako logs {deployment} --follow` again"
        );
    };
    match &end.error {
        Some(error) => eprintln!("Deployment {deployment}: {} ({error})", end.state),
        None => eprintln!("Deployment {deployment}: {}", end.state),
    }
    Ok(if end.state == "success" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The same text format as the server's plain log.
fn format_line(line: &LogLineDto) -> String {
    let time = chrono::DateTime::parse_from_rfc3339(&line.timestamp)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|_| line.timestamp.clone());
    let usual = if line.stream == "stderr" {
        "error"
    } else {
        "info"
    };
    let level = if line.level == usual {
        String::new()
    } else {
        format!("/{}", line.level)
    };
    format!(
        "{time} [{}] {}{level}: {}",
        line.step.as_deref().unwrap_or("-"),
        line.stream,
        line.text
    )
}

pub(crate) fn cancel(args: CancelArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    let deployment: DeploymentDto =
        client.post::<(), _>(&format!("/deployments/{}/cancel", args.deployment), None)?;
    if deployment.state == "cancelled" {
        println!("Deployment {} cancelled", deployment.id);
    } else {
        println!(
            "Deployment {} asked to stop; it is cancelled at its next check",
            deployment.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn token(args: TokenArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        TokenCommand::Create { name, role } => {
            let created: CreatedToken =
                client.post("/tokens", Some(&CreateToken { name, role }))?;
            eprintln!(
                "Created token {} ({}, role {}). It is shown only this once; keep it safe:",
                created.info.id, created.info.name, created.info.role
            );
            println!("{}", created.token);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a value from standard input, without its final line break.
fn read_stdin(what: &str) -> Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Enter {what}, then Ctrl-D:");
    }
    let mut value = String::new();
    stdin
        .read_to_string(&mut value)
        .with_context(|| format!("cannot read {what} from standard input"))?;
    let trimmed = value
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&value);
    if trimmed.is_empty() {
        bail!("{what} read from standard input is empty");
    }
    Ok(trimmed.to_owned())
}

/// Prints a listing as JSON or as aligned columns.
fn print_listing<T: Serialize>(
    output: Output,
    items: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(items)?);
        return Ok(());
    }
    if items.is_empty() {
        eprintln!("(none)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    };
    render(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        render(row);
    }
    Ok(())
}
