//! The UI's page and form handlers: load, render, or act and redirect.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::Markup;
use serde::Deserialize;
use tako_store::{
    DeploymentId, LogCursor, PageRequest, ProjectId, ReleaseId, TokenHash, VariableId,
};

use crate::services::{AgentAction, ServiceError, VariableInput};
use crate::startup::token_hash;
use crate::state::AppState;
use crate::web::session::{self, Session};
use crate::web::views::{self, Viewer};
use crate::web::{WebError, WebResult, shown_in_form, status_of};

/// Releases, deliveries and projects per page.
const PAGE_SIZE: u32 = 25;
/// Log lines rendered into the deployment page (the script follows on).
const LOG_LINES_IN_PAGE: u32 = 1_000;
/// Deliveries on a project page.
const PROJECT_DELIVERIES: u32 = 10;

/// The signed-in person, with the count of what waits for them (the
/// navigation's badge).
pub(crate) async fn viewer<'a>(state: &AppState, session: &'a Session) -> Viewer<'a> {
    Viewer {
        who: &session.who,
        csrf: &session.csrf,
        waiting: state.services.waiting_count(&session.who).await,
    }
}

/// `?cursor=` of a listing.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    cursor: Option<String>,
    project: Option<String>,
}

fn page_request(cursor: Option<&str>) -> WebResult<PageRequest> {
    Ok(crate::services::page_request(Some(PAGE_SIZE), cursor)?)
}

/// The dashboard.
pub(crate) async fn dashboard(
    session: Session,
    State(state): State<Arc<AppState>>,
    Query(query): Query<PageQuery>,
) -> WebResult<Markup> {
    let offset: usize = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(text) => text.parse().map_err(|_| {
            ServiceError::BadInput("invalid page link: start again from the first page".to_owned())
        })?,
    };
    let all = state.services.store.list_projects().await?;
    let size = PAGE_SIZE as usize;
    let next = (all.len() > offset + size).then(|| format!("/ui/?cursor={}", offset + size));
    let projects: Vec<_> = all.into_iter().skip(offset).take(size).collect();
    let board = load_dashboard(&state, projects, true).await?;
    Ok(views::dashboard::render(
        &viewer(&state, &session).await,
        &views::dashboard::Dashboard { next, ..board },
    ))
}

/// The dashboard's data for these projects; with `ordered`, its
/// environments follow the projects' lifecycles (read from their mirrors),
/// else their names.
pub(crate) async fn load_dashboard(
    state: &AppState,
    projects: Vec<tako_store::Project>,
    ordered: bool,
) -> WebResult<views::dashboard::Dashboard> {
    let latest = state.services.store.latest_deployments(None).await?;
    let shown: BTreeSet<ProjectId> = projects.iter().map(|p| p.id).collect();
    let mut environments = BTreeSet::new();
    let mut cells = HashMap::new();
    let mut numbers: HashMap<ReleaseId, String> = HashMap::new();
    for deployment in latest {
        environments.insert(deployment.environment.clone());
        if !shown.contains(&deployment.project) {
            continue;
        }
        let release = match numbers.get(&deployment.release) {
            Some(number) => number.clone(),
            None => {
                let number = state
                    .services
                    .store
                    .get_release(deployment.release)
                    .await?
                    .number;
                numbers.insert(deployment.release, number.clone());
                number
            }
        };
        cells.insert(
            (deployment.project, deployment.environment.clone()),
            views::dashboard::Cell {
                deployment,
                release,
            },
        );
    }
    let mut lifecycles = Vec::new();
    for project in projects.iter().filter(|_| ordered) {
        if let Some(lifecycle) =
            crate::lifecycle::for_display(&state.services.mirrors, project).await
        {
            lifecycles.push(lifecycle);
        }
    }
    let mut environments: Vec<String> = environments.into_iter().collect();
    crate::lifecycle::order_environments(&mut environments, &lifecycles.iter().collect::<Vec<_>>());
    Ok(views::dashboard::Dashboard {
        projects,
        environments,
        cells,
        next: None,
        now: Utc::now(),
    })
}

/// A project's page.
pub(crate) async fn project(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> WebResult<Markup> {
    let project = state.services.project_named(&name).await?;
    let page = state
        .services
        .store
        .list_releases(project.id, page_request(query.cursor.as_deref())?)
        .await?;
    let ids: Vec<ReleaseId> = page.items.iter().map(|r| r.id).collect();
    let deployments = state
        .services
        .store
        .release_deployments(&ids)
        .await?
        .into_iter()
        .map(|d| ((d.release, d.environment.clone()), d))
        .collect();
    let latest: HashMap<String, _> = state
        .services
        .store
        .latest_deployments(Some(project.id))
        .await?
        .into_iter()
        .map(|d| (d.environment.clone(), d))
        .collect();
    let policies = state
        .services
        .store
        .list_environment_policies(project.id)
        .await?;
    let mut environments: BTreeSet<String> = latest.keys().cloned().collect();
    let lifecycle = crate::lifecycle::for_display(&state.services.mirrors, &project).await;
    let phases = lifecycle
        .iter()
        .flat_map(|l| l.phases.iter())
        .map(|p| &p.environment);
    for environment in policies.iter().map(|p| &p.environment).chain(phases) {
        if !environments
            .iter()
            .any(|e| e.eq_ignore_ascii_case(environment))
        {
            environments.insert(environment.clone());
        }
    }
    let mut environments: Vec<String> = environments.into_iter().collect();
    crate::lifecycle::order_environments(&mut environments, &lifecycle.iter().collect::<Vec<_>>());
    let deliveries = state
        .services
        .store
        .list_deliveries(Some(project.id), PageRequest::first(PROJECT_DELIVERIES))
        .await?
        .items;
    let next = page.next.map(|c| {
        views::with_query(
            &format!("/ui/projects/{}", views::segment(&project.name)),
            "cursor",
            &c.to_token(),
        )
    });
    Ok(views::project::render(
        &viewer(&state, &session).await,
        &views::project::ProjectPage {
            project,
            releases: page.items,
            deployments,
            environments,
            latest,
            policies,
            deliveries,
            next,
            now: Utc::now(),
        },
    ))
}

/// A release's page.
pub(crate) async fn release(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    Ok(views::release::render(
        &viewer(&state, &session).await,
        &load_release(&state, ReleaseId(id), None).await?,
    ))
}

async fn load_release(
    state: &AppState,
    id: ReleaseId,
    error: Option<String>,
) -> WebResult<views::release::ReleasePage> {
    let release = state.services.store.get_release(id).await?;
    let project = state.services.store.get_project(release.project).await?;
    let deployments = state
        .services
        .store
        .release_deployments(&[release.id])
        .await?;
    let mut environments: BTreeSet<String> = state
        .services
        .store
        .latest_deployments(Some(project.id))
        .await?
        .into_iter()
        .map(|d| d.environment)
        .collect();
    for policy in state
        .services
        .store
        .list_environment_policies(project.id)
        .await?
    {
        environments.insert(policy.environment);
    }
    let mut environments: Vec<String> = environments.into_iter().collect();
    // With a lifecycle, *Deploy to…* offers only the phases the release
    // may enter now; the others say why not.
    let lifecycle = crate::lifecycle::for_display(&state.services.mirrors, &project).await;
    let phases = match &lifecycle {
        Some(lifecycle) => {
            let succeeded =
                crate::lifecycle::succeeded_in(state.services.store.as_ref(), &release).await?;
            let phases: Vec<(String, Option<String>)> = lifecycle
                .phases
                .iter()
                .map(|phase| {
                    let note = match lifecycle.admits(&phase.environment, &succeeded) {
                        Err(refusal) => Some(refusal.to_string()),
                        Ok(_) if phase.approval.is_some() => {
                            Some(format!("may enter, after approval: {phase}"))
                        }
                        Ok(_) => None,
                    };
                    (phase.environment.clone(), note)
                })
                .collect();
            environments = lifecycle
                .phases
                .iter()
                .filter(|phase| lifecycle.admits(&phase.environment, &succeeded).is_ok())
                .map(|phase| phase.environment.clone())
                .collect();
            Some(phases)
        }
        None => None,
    };
    Ok(views::release::ReleasePage {
        project,
        steps: crate::services::frozen_steps(&release),
        release,
        deployments,
        environments,
        phases,
        error,
        now: Utc::now(),
    })
}

/// The deploy form.
#[derive(Debug, Deserialize)]
pub(crate) struct DeployForm {
    #[serde(default)]
    csrf: String,
    environment: String,
}

/// *Deploy to…*: queues a deployment, then shows it.
pub(crate) async fn deploy(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<DeployForm>,
) -> WebResult<Response> {
    session.check_csrf(&form.csrf)?;
    match state
        .services
        .deploy_release(&session.who, ReleaseId(id), &form.environment, None)
        .await
    {
        Ok(deployment) => {
            Ok(Redirect::to(&format!("/ui/deployments/{}", deployment.id.0)).into_response())
        }
        Err(error) if shown_in_form(&error) => {
            let status = status_of(&error);
            let page = load_release(&state, ReleaseId(id), Some(error.to_string())).await?;
            Ok((
                status,
                views::release::render(&viewer(&state, &session).await, &page),
            )
                .into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// A deployment's page.
pub(crate) async fn deployment(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let deployment = state
        .services
        .store
        .get_deployment(DeploymentId(id))
        .await?;
    let release = state.services.store.get_release(deployment.release).await?;
    let project = state.services.store.get_project(deployment.project).await?;
    let steps = state.services.store.list_steps(deployment.id).await?;
    let jobs = state.services.deployment_jobs(deployment.id).await?;
    let log = state
        .services
        .store
        .read_log(deployment.id, LogCursor::START, LOG_LINES_IN_PAGE)
        .await?;
    let holding = state.services.freeze_holding(&deployment).await?;
    Ok(views::deployment::render(
        &viewer(&state, &session).await,
        &views::deployment::DeploymentPage {
            project,
            release,
            deployment,
            steps,
            jobs,
            log: log.lines,
            cursor: log.next,
            approvals: state
                .services
                .deployment_approvals(DeploymentId(id))
                .await?,
            interventions: state
                .services
                .deployment_interventions(DeploymentId(id))
                .await?,
            holding,
            now: Utc::now(),
        },
    ))
}

/// A deployment's steps table and jobs alone (the page's script refreshes
/// them).
pub(crate) async fn steps(
    _session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let deployment = state
        .services
        .store
        .get_deployment(DeploymentId(id))
        .await?;
    let steps = state.services.store.list_steps(deployment.id).await?;
    let jobs = state.services.deployment_jobs(deployment.id).await?;
    Ok(views::deployment::steps(
        &deployment,
        &steps,
        &jobs,
        Utc::now(),
    ))
}

/// A deployment's log as a text download.
pub(crate) async fn log_text(
    _session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    let deployment = state
        .services
        .store
        .get_deployment(DeploymentId(id))
        .await?;
    let text =
        crate::services::logs::read_all(state.services.store.as_ref(), deployment.id).await?;
    let disposition = format!(
        "attachment; filename=\"deployment-{}.log\"",
        deployment.id.0
    );
    Ok((
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .map_err(|e| WebError::Internal(e.to_string()))?,
            ),
        ],
        text,
    )
        .into_response())
}

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Cancel, from the deployment page.
pub(crate) async fn cancel(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    state
        .services
        .cancel_deployment(&session.who, DeploymentId(id))
        .await?;
    Ok(Redirect::to(&format!("/ui/deployments/{id}")))
}

/// The retry form: `from` is `start` or `failed-step`.
#[derive(Debug, Deserialize)]
pub(crate) struct RetryForm {
    #[serde(default)]
    csrf: String,
    from: String,
}

/// *Retry* or *Retry from the failed step*, from the deployment page: goes
/// to the new deployment.
pub(crate) async fn retry(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<RetryForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    let from_failed_step = match form.from.as_str() {
        "start" => false,
        "failed-step" => true,
        other => {
            return Err(ServiceError::BadInput(format!(
                "unknown retry {other:?}: expected start or failed-step"
            ))
            .into());
        }
    };
    let created = state
        .services
        .retry_deployment(&session.who, DeploymentId(id), from_failed_step)
        .await?;
    Ok(Redirect::to(&format!("/ui/deployments/{}", created.id)))
}

/// The approve/reject form.
#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    note: String,
    /// `waiting`: back to the list of what waits; else the deployment.
    #[serde(default)]
    back: String,
}

/// *Approve* or *Reject*, from the deployment page or the approvals list.
pub(crate) async fn decide(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<DecideForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ServiceError::BadInput(format!(
                "unknown decision {other:?}: expected approve or reject"
            ))
            .into());
        }
    };
    state
        .services
        .decide_approval(&session.who, DeploymentId(id), approve, Some(&form.note))
        .await?;
    Ok(back_to(&form.back, id))
}

/// The answer form of a paused deployment.
#[derive(Debug, Deserialize)]
pub(crate) struct InterveneForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    note: String,
    /// `waiting`: back to the list of what waits; else the deployment.
    #[serde(default)]
    back: String,
}

/// Where an answer leads: the list of what waits (`waiting`), else the
/// deployment's page (never a URL the form names).
fn back_to(back: &str, id: i64) -> Redirect {
    if back == "waiting" {
        Redirect::to("/ui/waiting")
    } else {
        Redirect::to(&format!("/ui/deployments/{id}"))
    }
}

/// *Proceed*, *Retry*, *Ignore* or *Abort*, from the deployment page or
/// the list of what waits.
pub(crate) async fn intervene(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<InterveneForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    let Some(action) = tako_store::InterventionAction::parse(&form.action) else {
        return Err(ServiceError::BadInput(format!(
            "unknown answer {:?}: expected proceed, retry, ignore or abort",
            form.action
        ))
        .into());
    };
    state
        .services
        .answer_intervention(&session.who, DeploymentId(id), action, Some(&form.note))
        .await?;
    Ok(back_to(&form.back, id))
}

/// What waits for a person: the approvals the signed-in person may give,
/// and every paused deployment (answer buttons where their role may
/// answer).
pub(crate) async fn waiting(
    session: Session,
    State(state): State<Arc<AppState>>,
) -> WebResult<Markup> {
    let mut approvals = Vec::new();
    for deployment in state.services.awaiting_approval_by(&session.who).await? {
        let release = state.services.store.get_release(deployment.release).await?;
        let project = state.services.store.get_project(deployment.project).await?;
        approvals.push(views::waiting::Waiting {
            deployment,
            project: project.name,
            release: release.number,
        });
    }
    let pauses = state.services.open_interventions(&session.who).await?;
    let viewer = Viewer {
        who: &session.who,
        csrf: &session.csrf,
        waiting: approvals.len() + pauses.iter().filter(|o| o.may_answer).count(),
    };
    Ok(views::waiting::render(
        &viewer,
        &approvals,
        &pauses,
        Utc::now(),
    ))
}

/// `/ui/approvals`, the list's old address: the list of what waits.
pub(crate) async fn approvals() -> Redirect {
    Redirect::permanent("/ui/waiting")
}

/// The deliveries page (all, or one project's).
pub(crate) async fn deliveries(
    session: Session,
    State(state): State<Arc<AppState>>,
    Query(query): Query<PageQuery>,
) -> WebResult<Markup> {
    let project = match query.project.as_deref() {
        None | Some("") => None,
        Some(name) => Some(state.services.project_named(name).await?),
    };
    let page = state
        .services
        .store
        .list_deliveries(
            project.as_ref().map(|p| p.id),
            page_request(query.cursor.as_deref())?,
        )
        .await?;
    let next = page.next.map(|c| {
        let mut url = views::with_query("/ui/deliveries", "cursor", &c.to_token());
        if let Some(project) = &project {
            url.push_str("&project=");
            url.push_str(&views::segment(&project.name));
        }
        url
    });
    Ok(views::deliveries::render(
        &viewer(&state, &session).await,
        &views::deliveries::DeliveriesPage {
            project: project.map(|p| p.name),
            deliveries: page.items,
            next,
            now: Utc::now(),
        },
    ))
}

/// *Replay* (admin): the router processes the stored delivery again.
pub(crate) async fn replay(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    state.services.replay_delivery(&session.who, &id).await?;
    Ok(Redirect::to("/ui/deliveries"))
}

/// The agents page.
pub(crate) async fn agents(
    session: Session,
    State(state): State<Arc<AppState>>,
) -> WebResult<Markup> {
    let agents = state.services.list_agents().await?;
    Ok(views::agents::render(
        &viewer(&state, &session).await,
        &views::agents::AgentsPage {
            agents,
            now: Utc::now(),
        },
    ))
}

/// Approves, disables, enables or removes an agent (admin).
pub(crate) async fn agent_action(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path((name, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    let action = match verb.as_str() {
        "approve" => AgentAction::Approve,
        "disable" => AgentAction::Disable,
        "enable" => AgentAction::Enable,
        "remove" => {
            state.services.remove_agent(&session.who, &name).await?;
            return Ok(Redirect::to("/ui/agents"));
        }
        _ => {
            return Err(WebError::Service(ServiceError::NotFound(
                "no such page".to_owned(),
            )));
        }
    };
    state
        .services
        .change_agent(&session.who, &name, action)
        .await?;
    Ok(Redirect::to("/ui/agents"))
}

/// The variables page (admin).
pub(crate) async fn variables(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> WebResult<Markup> {
    session
        .who
        .require_admin("read or change variables: it needs the admin role")?;
    let project = state.services.project_named(&name).await?;
    let variables = state.services.store.list_variables(project.id).await?;
    Ok(views::variables::render(
        &viewer(&state, &session).await,
        &views::variables::VariablesPage {
            project,
            variables,
            error: None,
        },
    ))
}

/// The set-variable form.
#[derive(Debug, Deserialize)]
pub(crate) struct VariableForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    environments: String,
    sensitive: Option<String>,
}

/// Sets or replaces a variable (admin).
pub(crate) async fn set_variable(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Form(form): Form<VariableForm>,
) -> WebResult<Response> {
    session.check_csrf(&form.csrf)?;
    let environments: Vec<String> = form
        .environments
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let input = VariableInput {
        value: form.value,
        environments,
        // The form scopes by environment only; roles come from the API/CLI.
        roles: Vec::new(),
        sensitive: form.sensitive.is_some(),
    };
    let result = state
        .services
        .set_variable(&session.who, &name, form.name.trim(), input)
        .await;
    match result {
        Ok(_) => Ok(
            Redirect::to(&format!("/ui/projects/{}/variables", views::segment(&name)))
                .into_response(),
        ),
        Err(error) if shown_in_form(&error) => {
            let project = state.services.project_named(&name).await?;
            let variables = state.services.store.list_variables(project.id).await?;
            let status = status_of(&error);
            Ok((
                status,
                views::variables::render(
                    &viewer(&state, &session).await,
                    &views::variables::VariablesPage {
                        project,
                        variables,
                        error: Some(error.to_string()),
                    },
                ),
            )
                .into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// Deletes a variable (admin).
pub(crate) async fn delete_variable(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    state
        .services
        .delete_variable(&session.who, &name, VariableId(id))
        .await?;
    Ok(Redirect::to(&format!(
        "/ui/projects/{}/variables",
        views::segment(&name)
    )))
}

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
}

/// Where to go after signing in: only a path of this UI (never another
/// site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with("/ui/")
                && !next.starts_with("/ui/sign-")
                && !next.contains("//")
                && !next.contains('\\') =>
        {
            next.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

/// The sign-in page.
pub(crate) async fn sign_in_form(Query(query): Query<SignInQuery>) -> Markup {
    views::sign_in::render(&safe_next(query.next.as_deref()), None)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    token: String,
    next: Option<String>,
}

/// Signs in: a valid token becomes a session cookie.
pub(crate) async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> WebResult<Response> {
    let next = safe_next(form.next.as_deref());
    if !session::same_origin(&headers) {
        return Err(WebError::Csrf);
    }
    let hash = TokenHash(token_hash(form.token.trim()));
    match state.services.authenticate(&hash).await {
        Ok(who) => {
            let cookie = session::session_cookie(
                &state.services.keys.session_key,
                &hash,
                state.secure_cookies(),
            )?;
            tracing::info!(token = %who.token, name = %who.name, "signed in to the web UI");
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(
                SET_COOKIE,
                HeaderValue::from_str(&cookie.to_string())
                    .map_err(|e| WebError::Internal(e.to_string()))?,
            );
            Ok(response)
        }
        Err(ServiceError::Unauthenticated) => Ok((
            StatusCode::UNAUTHORIZED,
            views::sign_in::render(
                &next,
                Some("That token is unknown, revoked or expired. Check it and try again."),
            ),
        )
            .into_response()),
        Err(other) => Err(other.into()),
    }
}

/// Signs out: the browser forgets its session cookie.
pub(crate) async fn sign_out(
    session: Session,
    State(state): State<Arc<AppState>>,
    Form(form): Form<CsrfForm>,
) -> WebResult<Response> {
    session.check_csrf(&form.csrf)?;
    let mut response = Redirect::to("/ui/sign-in").into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&session::removal_cookie(state.secure_cookies()).to_string())
            .map_err(|e| WebError::Internal(e.to_string()))?,
    );
    Ok(response)
}
