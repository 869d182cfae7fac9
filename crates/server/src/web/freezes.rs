//! The freezes page's handlers (journey.md §5): list, create, end, and
//! release a held deployment early. Each calls the same service function
//! as `/api/v1/freezes` (roles, validation and the audit log are the
//! services'); a refused form comes back with its error next to the field
//! and what was typed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::Markup;
use serde::Deserialize;
use tako_store::{DeploymentId, ReleaseId};

use crate::services::FreezeInput;
use crate::state::AppState;
use crate::web::pages::viewer;
use crate::web::session::Session;
use crate::web::views;
use crate::web::views::freezes::{FreezeRow, FreezesPage, HeldRow, Refused, Typed};
use crate::web::{WebResult, shown_in_form, status_of};

/// Loads the page: the active and upcoming freezes, the held deployments.
async fn load(state: &AppState, typed: Typed, refused: Option<Refused>) -> WebResult<FreezesPage> {
    let now = Utc::now();
    let projects: HashMap<_, _> = state
        .services
        .store
        .list_projects()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let held = state.services.held_deployments().await?;
    let mut releases: HashMap<ReleaseId, String> = HashMap::new();
    let mut held_rows = Vec::with_capacity(held.len());
    for h in held {
        let release = match releases.get(&h.deployment.release) {
            Some(number) => number.clone(),
            None => {
                let number = state
                    .services
                    .store
                    .get_release(h.deployment.release)
                    .await?
                    .number;
                releases.insert(h.deployment.release, number.clone());
                number
            }
        };
        held_rows.push(HeldRow {
            project: projects
                .get(&h.deployment.project)
                .cloned()
                .unwrap_or_default(),
            release,
            holding: h.holding,
            deployment: h.deployment,
        });
    }
    let freezes = state
        .services
        .list_freezes()
        .await?
        .into_iter()
        .filter(|(freeze, _)| !freeze.window.is_over(now))
        .map(|(freeze, until)| FreezeRow {
            project: freeze.project.and_then(|id| projects.get(&id).cloned()),
            holds: held_rows
                .iter()
                .filter(|h| h.holding.as_ref().is_some_and(|a| a.freeze.id == freeze.id))
                .count(),
            until,
            freeze,
        })
        .collect();
    let mut names: Vec<String> = projects.into_values().collect();
    names.sort();
    Ok(FreezesPage {
        freezes,
        held: held_rows,
        projects: names,
        typed,
        refused,
        now,
    })
}

/// The freezes page (any role; the forms for admins).
pub(crate) async fn page(
    session: Session,
    State(state): State<Arc<AppState>>,
) -> WebResult<Markup> {
    let page = load(&state, Typed::default(), None).await?;
    Ok(views::freezes::render(
        &viewer(&state, &session).await,
        &page,
    ))
}

/// The create form, as typed.
#[derive(Debug, Deserialize)]
pub(crate) struct FreezeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    every: String,
    #[serde(default)]
    reason: String,
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Creates a freeze (admin), then shows the list; a refused field is shown
/// next to it with everything typed kept.
pub(crate) async fn create(
    session: Session,
    State(state): State<Arc<AppState>>,
    Form(form): Form<FreezeForm>,
) -> WebResult<Response> {
    session.check_csrf(&form.csrf)?;
    let input = FreezeInput {
        environment: form.environment.clone(),
        project: non_empty(&form.project),
        from: form.from.clone(),
        to: form.to.clone(),
        every: non_empty(&form.every),
        reason: form.reason.clone(),
    };
    match state
        .services
        .create_freeze_or_refuse(&session.who, input)
        .await
    {
        Ok(freeze) => {
            Ok(Redirect::to(&format!("/ui/freezes#freeze-{}", freeze.id)).into_response())
        }
        Err(refusal)
            if shown_in_form(&refusal.error)
                || (refusal.field.is_some() && status_of(&refusal.error).is_client_error()) =>
        {
            let status = status_of(&refusal.error);
            let typed = Typed {
                environment: form.environment,
                project: form.project,
                from: form.from,
                to: form.to,
                every: form.every,
                reason: form.reason,
            };
            let refused = Refused::Create {
                field: refusal.field,
                message: refusal.error.to_string(),
            };
            let page = load(&state, typed, Some(refused)).await?;
            Ok((
                status,
                views::freezes::render(&viewer(&state, &session).await, &page),
            )
                .into_response())
        }
        Err(refusal) => Err(refusal.error.into()),
    }
}

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends (deletes) a freeze (admin); what it held is released by the next
/// sweep when no other freeze holds it.
pub(crate) async fn delete(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> WebResult<Redirect> {
    session.check_csrf(&form.csrf)?;
    state.services.delete_freeze(&session.who, id).await?;
    Ok(Redirect::to("/ui/freezes"))
}

/// The release form of a held deployment.
#[derive(Debug, Deserialize)]
pub(crate) struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Releases a held deployment now (admin, with a reason; audited), then
/// shows the deployment.
pub(crate) async fn release_hold(
    session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Form(form): Form<ReleaseForm>,
) -> WebResult<Response> {
    session.check_csrf(&form.csrf)?;
    match state
        .services
        .release_held_deployment(&session.who, DeploymentId(id), &form.reason)
        .await
    {
        Ok(released) => {
            Ok(Redirect::to(&format!("/ui/deployments/{}", released.id.0)).into_response())
        }
        Err(error) if shown_in_form(&error) => {
            let status = status_of(&error);
            let refused = Refused::Release {
                deployment: id,
                message: error.to_string(),
            };
            let page = load(&state, Typed::default(), Some(refused)).await?;
            Ok((
                status,
                views::freezes::render(&viewer(&state, &session).await, &page),
            )
                .into_response())
        }
        Err(error) => Err(error.into()),
    }
}
