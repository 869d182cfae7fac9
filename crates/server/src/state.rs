//! [`AppState`]: what every HTTP handler can reach: the services, plus what
//! only the HTTP layer uses (the webhook intake, the limits, whether
//! browsers come over HTTPS).

use crate::http::limits::Limits;
use crate::intake::Intake;
use crate::services::Services;

/// The state of the HTTP layer.
#[derive(Clone)]
pub struct AppState {
    /// What people and pushes do.
    pub services: Services,
    /// Webhook intake.
    pub intake: Intake,
    /// Webhook slots and the slow-client timeout.
    pub limits: Limits,
    /// Whether browsers reach the server over HTTPS (its public URL): the
    /// web UI's session cookie is then `Secure`.
    pub https: bool,
}

impl AppState {
    /// Whether cookies must be `Secure`.
    pub(crate) fn secure_cookies(&self) -> bool {
        self.https
    }
}
