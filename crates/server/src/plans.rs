//! Plans (journey.md §4): what a release of a branch or commit would do in
//! an environment now, on the path a real one takes, creating nothing.
//!
//! [`plan`] locates the commit as a release made by hand does
//! ([`Maker::locate`]), reads its process, asks the environment policy and
//! the lifecycle gate ([`crate::lifecycle::gate`]) what they would say,
//! numbers the release by the same rule without taking the build counter
//! ([`releases::preview`]), resolves the variables as the scheduler's
//! preparation does (takofile, then the project's as they would be frozen,
//! sensitive ones opened only for the environment), lets the engine decide
//! each step ([`tako_exec::forecast::forecast_on_agents`]), choosing each
//! `Roles` step's agents by the executor's own rule
//! ([`crate::scheduler::agents::choose`]) and showing, per agent, the
//! variables its job would hold (the values of the roles it shares with
//! the step, as the engine resolves its job). Nothing is stored, no working
//! directory is made, no step runs; every value shown has passed the
//! deployment's masker.
//!
//! [`plan_delivery`] does the same for a stored push delivery: its ref and
//! commit, routed by the default branch's takofile as the router would now.

use chrono::Utc;
use tako_core::system::{DeploymentFacts, short_commit};
use tako_core::variables::from_takofile;
use tako_exec::engine::DeploymentPlan;
use tako_exec::forecast::{Forecast, ForecastAgent, forecast_on_agents};
use tako_git::Mirror;
use tako_store::{ApprovalRule, Delivery, Project};

use crate::policy::PolicyError;
use crate::releases::{self, CreateError, Maker, Origin, Process, ReleaseError};

/// What to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    /// The environment.
    pub environment: String,
    /// The branch (default: the default branch).
    pub branch: Option<String>,
    /// The commit (default: the branch's head).
    pub commit: Option<String>,
    /// Who asks, for the default notes.
    pub by: String,
}

/// A plan: what a deployment would do now.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The project's name.
    pub project: String,
    /// The environment, in the lifecycle's spelling.
    pub environment: String,
    /// The release number that would be made.
    pub release_number: String,
    /// Its notes.
    pub notes: String,
    /// The commit.
    pub commit: String,
    /// The branch, when known.
    pub branch: Option<String>,
    /// Why it would be refused, if so.
    pub refused: Option<String>,
    /// The approval it would wait for, described.
    pub approval: Option<String>,
    /// Each step's decision and variables, and the agents a `Roles` step
    /// would run on with each one's job's variables.
    pub forecast: Forecast,
}

/// What a stored delivery would do now.
#[derive(Debug, Clone)]
pub struct DeliveryPlan {
    /// Why nothing would be deployed, when so.
    pub nothing: Option<String>,
    /// One plan per environment (at most one: a ref maps to one).
    pub plans: Vec<Planned>,
}

/// Plans a release of `project` from `request`'s branch or commit.
pub async fn plan(
    maker: &Maker,
    project: &Project,
    request: PlanRequest,
) -> Result<Planned, CreateError> {
    let (mirror, commit, branch) = maker
        .locate(project, request.branch, request.commit.as_deref())
        .await?;
    let from = match &branch {
        Some(branch) => format!("branch {branch} at {}", short_commit(&commit)),
        None => format!("commit {}", short_commit(&commit)),
    };
    let origin = Origin {
        commit,
        branch,
        pusher: None,
        notes: format!("Created by {} via the API from {from}", request.by),
        environment: request.environment,
        version: None,
    };
    plan_origin(maker, project, &mirror, origin).await
}

/// Plans what the push of `delivery` would do now: its ref routed by the
/// default branch's takofile, its commit made a release.
pub async fn plan_delivery(
    maker: &Maker,
    project: &Project,
    delivery: &Delivery,
) -> Result<DeliveryPlan, CreateError> {
    let nothing = |reason: String| DeliveryPlan {
        nothing: Some(reason),
        plans: Vec::new(),
    };
    let (Some(git_ref), Some(after)) = (&delivery.git_ref, &delivery.after) else {
        return Ok(nothing(format!(
            "delivery {} is not a push (no ref and commit)",
            delivery.id.0
        )));
    };
    if after.bytes().all(|b| b == b'0') {
        return Ok(nothing(format!("the push deleted {git_ref}")));
    }
    let (mirror, commit, _) = maker.locate(project, None, Some(after)).await?;
    let git = |source| CreateError::Mirror {
        repository: project.repository_url.clone(),
        source,
    };
    let Some(default) = mirror.default_branch().await.map_err(git)? else {
        return Err(CreateError::NoDefaultBranch {
            repository: project.repository_url.clone(),
        });
    };
    let default_ref = format!("refs/heads/{default}");
    let routing = match releases::read_takofile(&mirror, &default_ref).await? {
        Some(found) => found,
        None => match releases::read_takofile(&mirror, &commit).await? {
            Some(found) if git_ref == &default_ref => found,
            _ => return Ok(nothing(format!("no takofile on {default}"))),
        },
    };
    let routing = releases::parse_takofile(&routing.0, &routing.1)?;
    let (name, environment) = if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        (branch, routing.environment_for_branch(branch))
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        (tag, routing.environment_for_tag(tag))
    } else {
        return Ok(nothing(format!(
            "ref {git_ref} is neither a branch nor a tag"
        )));
    };
    let Some(environment) = environment else {
        return Ok(nothing(format!("no mapping for {git_ref}")));
    };
    let notes = match mirror.log(None, &commit, 1).await {
        Ok((entries, _)) => entries
            .into_iter()
            .map(|entry| {
                format!(
                    "- {} ({})",
                    entry.message.lines().next().unwrap_or(""),
                    entry.author
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(error) => return Err(git(error)),
    };
    let origin = Origin {
        commit,
        branch: Some(name.to_owned()),
        pusher: None,
        notes,
        environment: environment.to_owned(),
        version: None,
    };
    let planned = plan_origin(maker, project, &mirror, origin).await?;
    Ok(DeliveryPlan {
        nothing: None,
        plans: vec![planned],
    })
}

/// The plan of `origin` (commit, branch, notes, environment).
async fn plan_origin(
    maker: &Maker,
    project: &Project,
    mirror: &Mirror,
    origin: Origin,
) -> Result<Planned, CreateError> {
    let store = maker.store.as_ref();
    let commit = origin.commit.clone();
    let process = Process::from_takofile(releases::read_takofile(mirror, &commit).await?, &commit)
        .map_err(|error| match error {
            ReleaseError::Invalid { diagnostics } => CreateError::InvalidTakofile {
                commit: short_commit(&commit).to_owned(),
                diagnostics,
            },
            other => other.into(),
        })?;
    let mut refused = None;
    match crate::policy::check(
        store,
        project.id,
        &origin.environment,
        origin.branch.as_deref(),
    )
    .await
    {
        Ok(()) => {}
        Err(PolicyError::Refused(reason)) => refused = Some(reason),
        Err(PolicyError::Store(error)) => return Err(error.into()),
    }
    let lifecycle = crate::lifecycle::from_mirror(mirror)
        .await
        .map_err(|e| CreateError::Lifecycle(e.to_string()))?;
    // A new release has succeeded nowhere yet.
    let (environment, approval) =
        match crate::lifecycle::gate(lifecycle.as_ref(), &origin.environment, &[], Utc::now()) {
            Ok(admitted) => (admitted.environment, admitted.approval),
            Err(refusal) => {
                refused.get_or_insert(refusal.to_string());
                (origin.environment.clone(), None)
            }
        };
    let preview =
        releases::preview(store, &maker.keyring, project, mirror, &process, &origin).await?;
    if preview.taken {
        refused.get_or_insert(format!("release {} already exists", preview.number));
    }
    let mut variables = from_takofile(&process.takofile);
    variables.extend(
        preview
            .frozen
            .values_for(&environment, &maker.keyring)
            .map_err(ReleaseError::Seal)?,
    );
    let facts = DeploymentFacts {
        project: project.name.clone(),
        environment: environment.clone(),
        release_number: preview.number.clone(),
        release_notes: origin.notes.clone(),
        release_id: String::new(),
        deployment_id: String::new(),
        build: u64::try_from(preview.build).unwrap_or_default(),
        git_repository: project.repository_url.clone(),
        git_branch: origin.branch.clone().unwrap_or_default(),
        git_commit: commit.clone(),
        git_pusher: origin.pusher.clone().unwrap_or_default(),
        web_base_url: String::new(),
        manifest: preview.manifest,
    };
    let plan = DeploymentPlan {
        steps: process.takofile.steps.clone().unwrap_or_default(),
        facts,
        variables,
    };
    let needs_agents = plan.steps.iter().any(|s| s.targets.is_some());
    let all_agents = if needs_agents {
        store.list_agents().await?
    } else {
        Vec::new()
    };
    let now = Utc::now();
    let choose = |targets: &tako_takofile::StepTargets| {
        crate::scheduler::agents::choose(all_agents.clone(), targets, &environment, now).map(
            |(chosen, _)| {
                chosen
                    .into_iter()
                    .map(|agent| ForecastAgent {
                        name: agent.name,
                        roles: agent.roles,
                    })
                    .collect()
            },
        )
    };
    let forecast = forecast_on_agents(&plan, &choose);
    Ok(Planned {
        project: project.name.clone(),
        environment,
        release_number: preview.number,
        notes: origin.notes,
        commit,
        branch: origin.branch,
        refused,
        approval: approval.as_ref().map(describe_approval),
        forecast,
    })
}

/// `2 approvals by admin or deployer, not by the pusher, within 1h`.
fn describe_approval(rule: &ApprovalRule) -> String {
    let mut text = format!(
        "{} approval{} by {}",
        rule.count,
        if rule.count == 1 { "" } else { "s" },
        rule.roles.join(" or ")
    );
    if let Some(not_by) = &rule.not_by {
        text.push_str(&format!(", not by the {not_by}"));
    }
    let minutes = (rule.deadline - Utc::now()).num_minutes().max(0);
    text.push_str(&format!(", within {minutes} minutes"));
    text
}
