//! `tako plan` and `tako delivery plan`: what a deployment would do, shown
//! without running or creating anything. Locally the engine's forecast
//! (`tako_exec::forecast`) of the repository's process; with `--project`
//! the server's plan (`POST /projects/{name}/plans`); for a stored
//! delivery `POST /deliveries/{id}/plan`. All are printed from the same
//! wire type, in which every sensitive value reads `********`. A server's
//! plan lists, under a step with `Roles`, each agent it would run on with
//! the variables that agent's job would hold; a local plan shows such a
//! step as `tako run` runs it (the values scoped to any of its roles).

use std::process::ExitCode;

use anyhow::Result;
use tako_exec::forecast::{ForecastVariable, forecast};
use tako_protocol::api::{CreatePlan, DeliveryPlanDto, PlanDto, PlanStepDto, PlanVariableDto};

use crate::cli::{ClientArgs, Output, PlanArgs};
use crate::client::{client, segment};
use crate::run::{Local, prepare};

pub(crate) fn plan(args: PlanArgs) -> Result<ExitCode> {
    let plan = match &args.project {
        Some(project) => {
            let Some(environment) = args.local.environment.clone() else {
                anyhow::bail!(
                    "--project needs --env NAME: the environment to plan a deployment to"
                );
            };
            if !args.local.vars.is_empty()
                || !args.local.secrets.is_empty()
                || !args.local.var_files.is_empty()
            {
                anyhow::bail!(
                    "--var, --secret and --var-file apply to a local plan only: the server plans with the project's variables"
                );
            }
            client(&args.client).post(
                &format!("/projects/{}/plans", segment(project)),
                Some(&CreatePlan {
                    environment,
                    branch: args.local.branch.clone(),
                    commit: args.commit.clone(),
                }),
            )?
        }
        None => {
            let Some(local) = prepare(&args.local)? else {
                return Ok(ExitCode::from(1));
            };
            local_plan(&local)
        }
    };
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

/// `tako delivery plan ID`: what a stored push would do now.
pub(crate) fn delivery(client_args: &ClientArgs, id: &str, output: Output) -> Result<ExitCode> {
    let planned: DeliveryPlanDto =
        client(client_args).post::<(), _>(&format!("/deliveries/{}/plan", segment(id)), None)?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&planned)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(nothing) = &planned.nothing {
        println!("Delivery {id} would deploy nothing now: {nothing}");
    }
    for plan in &planned.plans {
        println!("Delivery {id}, if pushed now:");
        print!("{}", render(plan));
    }
    Ok(ExitCode::SUCCESS)
}

/// The local forecast as the wire type the server's plans use.
fn local_plan(local: &Local) -> PlanDto {
    let forecast = forecast(&local.plan);
    let variables = |list: &[ForecastVariable]| -> Vec<PlanVariableDto> {
        list.iter()
            .map(|v| PlanVariableDto {
                name: v.name.clone(),
                value: v.value.clone(),
                sensitive: v.sensitive,
            })
            .collect()
    };
    PlanDto {
        project: local.plan.facts.project.clone(),
        environment: local.environment.clone(),
        release_number: local.plan.facts.release_number.clone(),
        notes: local.plan.facts.release_notes.clone(),
        commit: local.plan.facts.git_commit.clone(),
        branch: Some(local.branch.clone()).filter(|b| !b.is_empty()),
        refused: None,
        approval: None,
        variables: variables(&forecast.variables),
        steps: forecast
            .steps
            .iter()
            .map(|step| PlanStepDto {
                index: u32::try_from(step.index).unwrap_or(u32::MAX),
                name: step.name.clone(),
                outcome: step.outcome.as_str().to_owned(),
                reason: step.outcome.reason(),
                note: step.note.clone(),
                roles: step
                    .targets
                    .as_ref()
                    .map(|t| t.roles.clone())
                    .unwrap_or_default(),
                agents: Vec::new(),
                variables: variables(&step.variables),
                jobs: Vec::new(),
            })
            .collect(),
    }
}

/// A plan for people.
fn render(plan: &PlanDto) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let from = match &plan.branch {
        Some(branch) => format!("branch {branch} at {}", short(&plan.commit)),
        None => format!("commit {}", short(&plan.commit)),
    };
    let _ = writeln!(
        out,
        "Plan: {} release {} to {} from {from} (nothing created, nothing run)",
        plan.project, plan.release_number, plan.environment
    );
    if let Some(refused) = &plan.refused {
        let _ = writeln!(out, "Refused: {refused}");
    }
    if let Some(approval) = &plan.approval {
        let _ = writeln!(out, "Waits for approval: {approval}");
    }
    let _ = writeln!(out, "Notes:");
    for line in plan.notes.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "Steps:");
    for step in &plan.steps {
        let what = match (step.outcome.as_str(), &step.reason) {
            ("run", _) => "run".to_owned(),
            (outcome, Some(reason)) => format!("{outcome}: {reason}"),
            (outcome, None) => outcome.to_owned(),
        };
        let mut line = format!("  {}. {} — {what}", step.index + 1, step.name);
        if !step.roles.is_empty() {
            let on = if step.agents.is_empty() {
                "no agent now".to_owned()
            } else {
                step.agents.join(", ")
            };
            let _ = write!(line, " [roles {} → {on}]", step.roles.join(", "));
        }
        let _ = writeln!(out, "{line}");
        if let Some(note) = &step.note {
            let _ = writeln!(out, "       note: {note}");
        }
        for variable in without_aliases(&step.variables) {
            let _ = writeln!(out, "       {} = {}", variable.name, variable.value);
        }
        for job in &step.jobs {
            let _ = writeln!(
                out,
                "       on {} (roles {}):",
                job.agent,
                job.roles.join(", ")
            );
            for variable in without_aliases(&job.variables) {
                let _ = writeln!(out, "         {} = {}", variable.name, variable.value);
            }
        }
    }
    let _ = writeln!(
        out,
        "Variables (every step; Octopus.* aliases of Tako.* ones left out, --output json lists all):"
    );
    for variable in without_aliases(&plan.variables) {
        let _ = writeln!(out, "  {} = {}", variable.name, variable.value);
    }
    out
}

/// The variables but the `Octopus.*` aliases of `Tako.*` ones with the
/// same value.
fn without_aliases(variables: &[PlanVariableDto]) -> impl Iterator<Item = &PlanVariableDto> {
    variables.iter().filter(|v| {
        !v.name
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("Octopus."))
            || !variables.iter().any(|twin| {
                twin.value == v.value
                    && twin.name.len() + 3 == v.name.len()
                    && twin
                        .name
                        .get(..5)
                        .is_some_and(|p| p.eq_ignore_ascii_case("Tako."))
                    && twin.name[5..].eq_ignore_ascii_case(&v.name[8..])
            })
    })
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
