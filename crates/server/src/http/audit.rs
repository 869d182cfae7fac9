//! The audit middleware: runs around every matched `/api/v1` and `/ui`
//! route. It hands the principal extractors (the API's bearer token, the web
//! UI's session) a slot for who is calling, and after the answer appends
//! who, what (method and route), on what (the path), from where (the peer
//! address), when and the outcome (`ok`, `denied` for 401/403, `failed`
//! otherwise) for every request that is not a `GET`/`HEAD`. Bodies are
//! never recorded, so neither are values.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tako_store::NewAuditEntry;

use crate::services::Principal;
use crate::state::AppState;

/// Where the [`Principal`] extractor writes who is calling, for the audit
/// middleware.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditActor(pub(crate) Arc<Mutex<Option<String>>>);

impl AuditActor {
    /// Records who is calling.
    pub(crate) fn set(&self, who: &Principal) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(format!("token {} ({}, {})", who.token, who.name, who.role));
        }
    }

    /// Records that an agent is calling.
    pub(crate) fn set_agent(&self, name: &str) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(format!("agent {name}"));
        }
    }

    fn get(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_else(|| "anonymous".to_owned())
    }
}

/// Records every mutating request in the audit log after it is answered.
pub(crate) async fn audit(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return next.run(request).await;
    }
    let actor = AuditActor::default();
    request.extensions_mut().insert(actor.clone());
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    // The full path: a nested router sees it without `/api/v1`.
    let target = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_owned(),
        |u| u.0.path().to_owned(),
    );
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip().to_string());
    let response = next.run(request).await;
    let status = response.status();
    let outcome = if status.is_success() {
        "ok"
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        "denied"
    } else {
        "failed"
    };
    let entry = NewAuditEntry {
        actor: actor.get(),
        action: format!("{method} {route}"),
        target,
        source,
        outcome: outcome.to_owned(),
        detail: Some(status.as_u16().to_string()),
    };
    if let Err(error) = state.services.store.append_audit(entry).await {
        tracing::error!(%error, "cannot append to the audit log");
    }
    response
}
