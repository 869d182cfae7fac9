//! The client commands (`tako project`, `var`, `release`, `deploy`, `logs`,
//! `cancel`, `token`): each is one or two calls to the server's JSON API,
//! printed for people or, with `--output json`, as the server's JSON.
//!
//! Secrets (webhook secrets, sensitive values) are read from standard input,
//! never from the command line where other users of the machine could see
//! them.

pub(crate) mod agents;
pub(crate) mod history;
mod http;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tako_protocol::api::{
    AnswerIntervention, AuditPage, CreateDeployment, CreateProject, CreateRelease, CreateToken,
    CreatedRelease, CreatedToken, DecideApproval, DeploymentDto, EnvironmentPolicyDto, KeyRotation,
    LogEnd, LogLineDto, OpenInterventionDto, ProjectDto, ReleaseDto, ReleasePage, RetentionRun,
    RetryDeployment, SetEnvironmentPolicy, SetForgeStatus, SetVariable, SetWebhookSecret, TokenDto,
    VariableDto,
};

use crate::cli::{
    AdminArgs, AdminCommand, ApprovalsArgs, CancelArgs, ClientArgs, DecideArgs, DeployArgs,
    DeployCommand, EnvArgs, EnvCommand, InterventionArgs, InterventionCommand,
    InterventionListArgs, LogsArgs, Output, ProjectArgs, ProjectCommand, ReleaseArgs,
    ReleaseCommand, RetentionCommand, RetryArgs, TokenArgs, TokenCommand, VarArgs, VarCommand,
};
pub(crate) use http::{Client, segment};

/// The server a client command talks to when none is given.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

pub(crate) fn client(args: &ClientArgs) -> Client {
    Client::new(
        args.server.as_deref().unwrap_or(DEFAULT_SERVER),
        args.token.clone(),
    )
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
        ProjectCommand::SetWebhookSecret { name, clear } => {
            let webhook_secret = if clear {
                None
            } else {
                Some(read_stdin("the new webhook secret")?)
            };
            let project: ProjectDto = client.put(
                &format!("/projects/{}/webhook-secret", segment(&name)),
                &SetWebhookSecret { webhook_secret },
            )?;
            if project.has_webhook_secret {
                println!(
                    "Project {} has a new webhook secret: set it in GitHub now",
                    project.name
                );
            } else {
                println!("Project {} uses the server's webhook secret", project.name);
            }
        }
        ProjectCommand::SetForgeStatus {
            name,
            token_file,
            forge,
            api_url,
            github_deployments,
            clear,
        } => {
            let path = format!("/projects/{}/forge-status", segment(&name));
            match token_file {
                Some(file) if !clear => {
                    let token = if file == std::path::Path::new("-") {
                        read_stdin("the status token")?
                    } else {
                        std::fs::read_to_string(&file)
                            .with_context(|| {
                                format!("cannot read the status token from {}", file.display())
                            })?
                            .trim()
                            .to_owned()
                    };
                    let project: ProjectDto = client.put(
                        &path,
                        &SetForgeStatus {
                            token,
                            forge,
                            api_url,
                            deployments: Some(github_deployments),
                        },
                    )?;
                    println!(
                        "Project {} reports its deployments to its forge as commit statuses",
                        project.name
                    );
                }
                _ => {
                    client.delete(&path)?;
                    println!("Project {name} no longer reports commit statuses");
                }
            }
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
            roles,
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
                    roles: Some(roles),
                    sensitive: Some(sensitive),
                },
            )?;
            println!(
                "Variable {} of {project} set{}{}{}",
                variable.name,
                scope(&variable.environments),
                if variable.roles.is_empty() {
                    String::new()
                } else {
                    format!(" for roles {}", variable.roles.join(", "))
                },
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
                    match (v.environments.is_empty(), v.roles.is_empty()) {
                        (true, true) => "all".to_owned(),
                        (false, true) => v.environments.join(", "),
                        (true, false) => format!("roles {}", v.roles.join(", ")),
                        (false, false) => format!(
                            "{}; roles {}",
                            v.environments.join(", "),
                            v.roles.join(", ")
                        ),
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
        ReleaseCommand::Create {
            project,
            version,
            branch,
            commit,
            notes,
            deploy_to,
            follow,
            output,
        } => {
            let created: CreatedRelease = client.post(
                &format!("/projects/{}/releases", segment(&project)),
                Some(&CreateRelease {
                    version,
                    branch,
                    commit,
                    notes,
                    deploy_to,
                }),
            )?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                let release = &created.release;
                let commit: String = release.commit.chars().take(12).collect();
                match &release.branch {
                    Some(branch) => println!(
                        "Release {} of {project} created (id {}) from branch {branch} at {commit}",
                        release.number, release.id
                    ),
                    None => println!(
                        "Release {} of {project} created (id {}) from commit {commit}",
                        release.number, release.id
                    ),
                }
                for deployment in &created.deployments {
                    println!(
                        "Deployment {} {}: {project} {} to {}",
                        deployment.id,
                        created_state(deployment),
                        release.number,
                        deployment.environment
                    );
                }
            }
            if follow {
                let mut all_succeeded = true;
                for deployment in &created.deployments {
                    if self::follow(&client, deployment.id)? != ExitCode::SUCCESS {
                        all_succeeded = false;
                    }
                }
                if !all_succeeded {
                    return Ok(ExitCode::from(1));
                }
            }
        }
        ReleaseCommand::Promote {
            project,
            release,
            follow,
        } => {
            let deployment: DeploymentDto = client.post::<(), _>(
                &format!(
                    "/projects/{}/releases/{}/promote",
                    segment(&project),
                    segment(&release)
                ),
                None,
            )?;
            println!(
                "Deployment {} {}: {project} {release} to {}",
                deployment.id,
                created_state(&deployment),
                deployment.environment
            );
            if follow {
                return self::follow(&client, deployment.id);
            }
        }
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
    if let Some(DeployCommand::Retry(retry)) = args.command {
        return deploy_retry(retry);
    }
    let override_freeze = args.override_freeze;
    let (Some(project), Some(number), Some(environment)) =
        (args.project, args.release, args.environment)
    else {
        bail!(
            "tako deploy needs --project, --release and --env (or: tako deploy retry DEPLOYMENT)"
        );
    };
    let client = client(&args.client);
    let release: ReleaseDto = client.get(&format!(
        "/projects/{}/releases/{}",
        segment(&project),
        segment(&number)
    ))?;
    let deployment: DeploymentDto = client.post(
        &format!("/releases/{}/deployments", release.id),
        Some(&CreateDeployment {
            environment,
            override_freeze,
        }),
    )?;
    println!(
        "Deployment {} {}: {} {} to {}",
        deployment.id,
        created_state(&deployment),
        project,
        release.number,
        deployment.environment
    );
    if args.follow {
        follow(&client, deployment.id)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// `tako deploy retry`: a new deployment retrying `args.deployment`.
fn deploy_retry(args: RetryArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    let deployment: DeploymentDto = client.post(
        &format!("/deployments/{}/retry", args.deployment),
        Some(&RetryDeployment {
            from_failed_step: args.from_failed_step,
        }),
    )?;
    println!(
        "Deployment {} {}: retrying deployment {} to {}{}",
        deployment.id,
        created_state(&deployment),
        args.deployment,
        deployment.environment,
        if args.from_failed_step {
            " from its failed step"
        } else {
            ""
        }
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

/// How a new deployment starts: `queued`, or awaiting approval (by whom).
fn created_state(deployment: &DeploymentDto) -> String {
    match (&deployment.approval, deployment.state.as_str()) {
        (Some(rule), "awaiting_approval") => format!(
            "awaits {} approval{} by {}{} until {}",
            rule.count,
            if rule.count == 1 { "" } else { "s" },
            rule.roles.join(" or "),
            rule.not_by
                .as_deref()
                .map(|n| format!(" (not its {n})"))
                .unwrap_or_default(),
            rule.deadline
        ),
        (_, state) => state.replace('_', " "),
    }
}

/// `tako approve` and `tako reject`.
pub(crate) fn decide(args: DecideArgs, approve: bool) -> Result<ExitCode> {
    let client = client(&args.client);
    let verb = if approve { "approve" } else { "reject" };
    let deployment: DeploymentDto = client.post(
        &format!("/deployments/{}/{verb}", args.deployment),
        Some(&DecideApproval { note: args.note }),
    )?;
    match deployment.state.as_str() {
        "queued" => println!("Deployment {} approved: queued", deployment.id),
        "awaiting_approval" => println!(
            "Deployment {} approved; it still awaits {} approval(s) in all",
            deployment.id,
            deployment.approval.as_ref().map_or(1, |rule| rule.count)
        ),
        _ => println!(
            "Deployment {} rejected: {}",
            deployment.id,
            deployment.error.as_deref().unwrap_or("cancelled")
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tako intervention list`: the paused deployments and their pauses.
fn list_interventions(args: InterventionListArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    let mut open: Vec<OpenInterventionDto> = client.get("/interventions?state=open")?;
    if args.mine {
        open.retain(|o| o.may_answer);
    }
    print_listing(
        args.output,
        &open,
        &[
            "ID",
            "PROJECT",
            "ENVIRONMENT",
            "RELEASE",
            "STEP",
            "ANSWERS",
            "ROLES",
            "SINCE",
            "YOU MAY ANSWER",
            "INSTRUCTIONS",
        ],
        |o| {
            let pause = &o.intervention;
            vec![
                o.deployment.to_string(),
                o.project.clone(),
                o.environment.clone(),
                o.release.clone(),
                pause.step.clone(),
                pause.actions.join("|"),
                if pause.roles.is_empty() {
                    "admin,deployer".to_owned()
                } else {
                    pause.roles.join(",")
                },
                pause.paused_at.clone(),
                if o.may_answer { "yes" } else { "no" }.to_owned(),
                first_line(&pause.instructions, 60),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The first line of `text`, at most `max` characters (`…` when cut).
fn first_line(text: &str, max: usize) -> String {
    let mut lines = text.lines();
    let line = lines.next().unwrap_or_default().trim_end();
    let cut = line.chars().count() > max || lines.next().is_some();
    let mut out: String = line.chars().take(max).collect();
    if cut {
        out.push('…');
    }
    out
}

/// `tako intervention proceed|abort|retry|ignore|show|list`.
pub(crate) fn intervention(args: InterventionArgs) -> Result<ExitCode> {
    let (action, args) = match args.command {
        InterventionCommand::List(list) => return list_interventions(list),
        InterventionCommand::Show(show) => {
            let client = client(&show.client);
            let deployment: DeploymentDto =
                client.get(&format!("/deployments/{}", show.deployment))?;
            let Some(pause) = deployment.intervention else {
                println!(
                    "Deployment {} is {} and waits for no one",
                    deployment.id,
                    deployment.state.replace('_', " ")
                );
                return Ok(ExitCode::SUCCESS);
            };
            let what = if pause.kind == "failure" {
                "failed (OnFailure: ask)"
            } else {
                "waits for a person"
            };
            println!(
                "Deployment {}: step '{}' {what} since {}",
                deployment.id, pause.step, pause.paused_at
            );
            println!("{}", pause.instructions);
            let roles = if pause.roles.is_empty() {
                "admin or deployer".to_owned()
            } else {
                pause.roles.join(" or ")
            };
            println!(
                "Answer ({roles}): {}",
                pause
                    .actions
                    .iter()
                    .map(|a| format!("tako intervention {a} {} --note …", deployment.id))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            return Ok(ExitCode::SUCCESS);
        }
        InterventionCommand::Proceed(args) => ("proceed", args),
        InterventionCommand::Abort(args) => ("abort", args),
        InterventionCommand::Retry(args) => ("retry", args),
        InterventionCommand::Ignore(args) => ("ignore", args),
    };
    let client = client(&args.client);
    let deployment: DeploymentDto = client.post(
        &format!("/deployments/{}/interventions/{action}", args.deployment),
        Some(&AnswerIntervention { note: args.note }),
    )?;
    match deployment.state.as_str() {
        "queued" => println!("Deployment {}: {action}; queued to go on", deployment.id),
        state => println!(
            "Deployment {}: {action}; {state}{}",
            deployment.id,
            deployment
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tako approvals`: what awaits an approval the caller may give.
pub(crate) fn approvals(args: ApprovalsArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    let waiting: Vec<DeploymentDto> = client.get("/approvals")?;
    print_listing(
        args.output,
        &waiting,
        &[
            "ID",
            "PROJECT",
            "RELEASE",
            "ENVIRONMENT",
            "CREATED BY",
            "UNTIL",
        ],
        |d| {
            vec![
                d.id.to_string(),
                d.project.to_string(),
                d.release.to_string(),
                d.environment.clone(),
                d.created_by.clone().unwrap_or_default(),
                d.approval
                    .as_ref()
                    .map(|rule| rule.deadline.clone())
                    .unwrap_or_default(),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
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
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
        } => {
            let created: CreatedToken = client.post(
                "/tokens",
                Some(&CreateToken {
                    name,
                    role,
                    expires_in_days,
                }),
            )?;
            eprintln!(
                "Created token {} ({}, role {}). It is shown only this once; keep it safe:",
                created.info.id, created.info.name, created.info.role
            );
            println!("{}", created.token);
        }
        TokenCommand::List { output } => {
            let tokens: Vec<TokenDto> = client.get("/tokens")?;
            print_listing(
                output,
                &tokens,
                &[
                    "ID",
                    "NAME",
                    "ROLE",
                    "CREATED",
                    "LAST USED",
                    "EXPIRES",
                    "REVOKED",
                ],
                |t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.role.clone(),
                        t.created_at.clone(),
                        t.last_used_at.clone().unwrap_or_else(|| "-".to_owned()),
                        t.expires_at.clone().unwrap_or_else(|| "never".to_owned()),
                        if t.revoked { "yes" } else { "no" }.to_owned(),
                    ]
                },
            )?;
        }
        TokenCommand::Revoke { id } => {
            client.delete(&format!("/tokens/{id}"))?;
            eprintln!("Revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn admin(args: AdminArgs) -> Result<ExitCode> {
    let client = || client(&args.client);
    match args.command {
        AdminCommand::Migrate {
            from,
            to,
            password_file,
            ca_file,
            batch_size,
        } => {
            return crate::migrate::migrate(crate::migrate::Args {
                from,
                to,
                password_file,
                ca_file,
                batch_size,
            });
        }
        AdminCommand::RotateKey => {
            let rotation: KeyRotation = client().post("/admin/rotate-key", None::<&()>)?;
            println!(
                "Rotated the master key: {} -> {}; {} value(s) re-encrypted, the old key deleted",
                rotation.old_key, rotation.new_key, rotation.resealed
            );
        }
        AdminCommand::Retention {
            command: RetentionCommand::Run { dry_run },
        } => {
            let run: RetentionRun =
                client().post(&format!("/admin/retention?dry_run={dry_run}"), None::<&()>)?;
            if !run.finished {
                println!(
                    "Retention is still running on the server; it goes on in the background \
                     and the server logs what it removed when it ends"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let verb = if run.dry_run {
                "Retention would remove"
            } else {
                "Retention removed"
            };
            println!(
                "{verb}: {} release(s) (with their deployments), {} task log(s), {} delivery(ies), \
                 {} audit entry(ies), {} working directory(ies)",
                run.releases,
                run.task_logs,
                run.deliveries,
                run.audit_entries,
                run.working_directories
            );
            if !run.dry_run {
                println!(
                    "{} database page(s) given back to the file system",
                    run.pages_freed
                );
            }
            for skipped in &run.skipped {
                println!("Left alone: {skipped}");
            }
        }
        AdminCommand::Audit { limit, output } => {
            let page: AuditPage = client().get(&format!("/audit?limit={limit}"))?;
            print_listing(
                output,
                &page.items,
                &["ID", "AT", "ACTOR", "ACTION", "TARGET", "FROM", "OUTCOME"],
                |e| {
                    vec![
                        e.id.to_string(),
                        e.at.clone(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        e.source.clone().unwrap_or_else(|| "-".to_owned()),
                        format!("{} {}", e.outcome, e.detail.clone().unwrap_or_default()),
                    ]
                },
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn env(args: EnvArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        EnvCommand::Allow {
            environment,
            project,
            branches,
        } => {
            let policy: EnvironmentPolicyDto = client.put(
                &format!(
                    "/projects/{}/environments/{}",
                    segment(&project),
                    segment(&environment)
                ),
                &SetEnvironmentPolicy {
                    allowed_branches: branches,
                },
            )?;
            if policy.allowed_branches.is_empty() {
                println!("{}: no branch may deploy", policy.environment);
            } else {
                println!(
                    "{}: only branches {} may deploy",
                    policy.environment,
                    policy.allowed_branches.join(", ")
                );
            }
        }
        EnvCommand::Clear {
            environment,
            project,
        } => {
            client.delete(&format!(
                "/projects/{}/environments/{}",
                segment(&project),
                segment(&environment)
            ))?;
            println!("{environment}: no policy (any mapped branch may deploy)");
        }
        EnvCommand::List { project, output } => {
            let policies: Vec<EnvironmentPolicyDto> =
                client.get(&format!("/projects/{}/environments", segment(&project)))?;
            print_listing(
                output,
                &policies,
                &["ENVIRONMENT", "ALLOWED BRANCHES", "UPDATED"],
                |p| {
                    vec![
                        p.environment.clone(),
                        if p.allowed_branches.is_empty() {
                            "(none)".to_owned()
                        } else {
                            p.allowed_branches.join(", ")
                        },
                        p.updated_at.clone(),
                    ]
                },
            )?;
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
pub(crate) fn print_listing<T: Serialize>(
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

pub(crate) fn freeze(args: crate::cli::FreezeArgs) -> Result<ExitCode> {
    use crate::cli::FreezeCommand;
    use tako_protocol::api::{CreateFreeze, FreezeDto, OverrideFreeze};
    let client = client(&args.client);
    match args.command {
        FreezeCommand::Create {
            environment,
            project,
            from,
            to,
            every,
            reason,
        } => {
            let freeze: FreezeDto = client.post(
                "/freezes",
                Some(&CreateFreeze {
                    environment,
                    project,
                    from,
                    to,
                    every,
                    reason,
                }),
            )?;
            println!("Freeze {} created: {}", freeze.id, freeze_text(&freeze));
        }
        FreezeCommand::List { output } => {
            let freezes: Vec<FreezeDto> = client.get("/freezes")?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&freezes)?);
            } else if freezes.is_empty() {
                println!("No freezes.");
            } else {
                for freeze in &freezes {
                    println!("{:>4}  {}", freeze.id, freeze_text(freeze));
                }
            }
        }
        FreezeCommand::Delete { id } => {
            client.delete(&format!("/freezes/{id}"))?;
            println!("Freeze {id} deleted");
        }
        FreezeCommand::Release { deployment, reason } => {
            let released: DeploymentDto = client.post(
                &format!("/deployments/{deployment}/release-hold"),
                Some(&OverrideFreeze { reason }),
            )?;
            println!(
                "Deployment {} released from its freeze: {}",
                released.id, released.state
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn freeze_text(freeze: &tako_protocol::api::FreezeDto) -> String {
    let when = match (&freeze.weekly, &freeze.from, &freeze.to) {
        (Some(rule), _, _) => format!("every {rule} UTC"),
        (None, Some(from), Some(to)) => format!("from {from} to {to}"),
        _ => String::new(),
    };
    let scope = match &freeze.project {
        Some(project) => format!("{} of {project}", freeze.environment),
        None => freeze.environment.clone(),
    };
    let now = match &freeze.active_until {
        Some(until) => format!(" — frozen now, until {until}"),
        None => String::new(),
    };
    format!(
        "{scope} {when}: {:?} (by {}){now}",
        freeze.reason, freeze.created_by
    )
}
