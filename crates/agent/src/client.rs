//! The agent's calls to its server (`/api/v1/agent/…`), over `reqwest` with
//! the protocol's types. Each call answers the typed body or a
//! [`CallError`] that says whether trying again can help
//! ([`CallError::is_retryable`]) or whether the server has finished with
//! the job ([`CallError::job_is_gone`]: 404, another agent's or no such
//! job; 409, it has ended).

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tako_protocol::agent::{
    AgentInfo, EnrollReply, EnrollRequest, HeartbeatReply, JobOutcome, LogAck, NextJobRequest,
    PROTOCOL_VERSION, Secret,
};

use crate::spool::SpooledChunk;
use crate::tls::{self, TlsError, Trust};
use crate::transport::ServerUrl;

/// The agent's (and `tako`'s) version, sent with every request for work.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long a request may take, except a long poll.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server holds a poll for work.
pub const POLL_SECONDS: u64 = 25;
/// The most of an error answer's text kept in a message.
const MAX_MESSAGE: usize = 500;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server could not be reached (or TLS refused it).
    #[error("cannot reach the server at {url}: {message}")]
    Network {
        /// The server's base URL.
        url: String,
        /// What failed, with its causes.
        message: String,
    },
    /// The server answered with an error status.
    #[error("the server refused {what} ({status}): {message}")]
    Status {
        /// The call.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server's certificate is not trusted (a wrong pinned
    /// fingerprint, an unknown authority, an expired certificate): trying
    /// again does not help.
    #[error("the server at {url} is not trusted: {message}")]
    Trust {
        /// The server's base URL.
        url: String,
        /// Why, naming the fingerprints when one is pinned.
        message: String,
    },
    /// The server's answer is not what the protocol says.
    #[error("the server's answer to {what} is not understood: {message}")]
    Answer {
        /// The call.
        what: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl CallError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Trying again later can help: the network, a timeout, a server
    /// error or one that is busy.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Network { .. } => true,
            CallError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            CallError::Answer { .. } | CallError::Trust { .. } => false,
        }
    }

    /// The server has finished with the job (404: not this agent's, or no
    /// such job; 409: it has ended): nothing more about it will be taken.
    pub fn job_is_gone(&self) -> bool {
        matches!(self.status(), Some(404 | 409))
    }
}

/// The agent's connection to its server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: ServerUrl,
    credential: Option<Secret>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Why a client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The trust settings.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTP client.
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

impl Client {
    /// A client for `url`, checking its certificate as `trust` says (for an
    /// `https://` URL).
    pub fn new(url: ServerUrl, trust: &Trust) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(format!("tako-agent/{VERSION}"))
            .redirect(reqwest::redirect::Policy::none());
        if url.is_https() {
            builder = builder.use_preconfigured_tls(tls::client_config(trust)?);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Http(error_chain(&e)))?;
        Ok(Client {
            http,
            url,
            credential: None,
        })
    }

    /// The same client, sending `credential` from now on.
    pub fn with_credential(mut self, credential: Secret) -> Client {
        self.credential = Some(credential);
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, self.url.join(path))
            .timeout(CALL_TIMEOUT);
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(&credential.0);
        }
        request
    }

    async fn send(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        let response = request.send().await.map_err(|e| self.network(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(CallError::Status {
            what,
            status: status.as_u16(),
            message: error_message(status, &text),
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let response = self.send(what, request).await?;
        let bytes = response.bytes().await.map_err(|e| self.network(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| CallError::Answer {
            what,
            message: e.to_string(),
        })
    }

    fn network(&self, error: &reqwest::Error) -> CallError {
        if let Some(message) = certificate_refusal(error) {
            return CallError::Trust {
                url: self.url.base().to_owned(),
                message,
            };
        }
        CallError::Network {
            url: self.url.base().to_owned(),
            message: error_chain(error),
        }
    }

    /// Exchanges an enrollment token for the agent's own credential.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollReply, CallError> {
        let call = self
            .request(reqwest::Method::POST, "/api/v1/agent/enroll")
            .json(request);
        self.json("the enrollment", call).await
    }

    /// The agent as the server keeps it.
    pub async fn me(&self) -> Result<AgentInfo, CallError> {
        let call = self.request(reqwest::Method::GET, "/api/v1/agent/me");
        self.json("the agent's own record", call).await
    }

    /// Waits up to `wait_seconds` for a job: its JSON text, or `None`.
    pub async fn next_job(&self, wait_seconds: u64) -> Result<Option<String>, CallError> {
        let body = NextJobRequest {
            version: VERSION.to_owned(),
            protocol: PROTOCOL_VERSION,
        };
        let call = self
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/agent/jobs/next?wait={wait_seconds}"),
            )
            .timeout(Duration::from_secs(wait_seconds) + CALL_TIMEOUT)
            .json(&body);
        let response = self.send("a request for work", call).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let text = response.text().await.map_err(|e| self.network(&e))?;
        Ok(Some(text))
    }

    /// Sends consecutive chunks of job `job`'s log (as the spool keeps
    /// them: each chunk's JSON) in one request; the answer says what is
    /// stored.
    pub async fn send_chunks(
        &self,
        job: &str,
        chunks: &[SpooledChunk],
    ) -> Result<LogAck, CallError> {
        let job_json = serde_json::Value::String(job.to_owned()).to_string();
        let size = chunks.iter().map(|c| c.json().len() + 1).sum::<usize>() + job_json.len() + 24;
        let mut body = String::with_capacity(size);
        body.push_str("{\"job\":");
        body.push_str(&job_json);
        body.push_str(",\"chunks\":[");
        for (index, chunk) in chunks.iter().enumerate() {
            if index > 0 {
                body.push(',');
            }
            body.push_str(chunk.json());
        }
        body.push_str("]}");
        let call = self
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/agent/jobs/{job}/logs"),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.json("a batch of log chunks", call).await
    }

    /// Renews a job's lease; the answer says whether to stop.
    pub async fn heartbeat(&self, job: &str) -> Result<HeartbeatReply, CallError> {
        let call = self.request(
            reqwest::Method::POST,
            &format!("/api/v1/agent/jobs/{job}/heartbeat"),
        );
        self.json("a heartbeat", call).await
    }

    /// Reports how a job ended.
    pub async fn outcome(&self, outcome: &JobOutcome) -> Result<(), CallError> {
        let call = self
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/agent/jobs/{}/outcome", outcome.job),
            )
            .json(outcome);
        self.send("a job's outcome", call).await.map(drop)
    }

    /// Starts downloading a job's files from `path` (the job's
    /// `source.path`): read the answer with `chunk()`. No overall time
    /// limit: a large tree takes as long as it takes.
    pub async fn source(&self, path: &str) -> Result<reqwest::Response, CallError> {
        if !path.starts_with("/api/v1/agent/") {
            return Err(CallError::Answer {
                what: "a job",
                message: format!("its source path {path:?} is not an agent route"),
            });
        }
        let mut call = self.http.get(self.url.join(path));
        if let Some(credential) = &self.credential {
            call = call.bearer_auth(&credential.0);
        }
        self.send("the job's source", call).await
    }

    /// Turns a failed read of a download into a [`CallError`].
    pub fn download_error(&self, error: &reqwest::Error) -> CallError {
        self.network(error)
    }
}

/// An error with its causes, each once (`error sending request: …:
/// invalid peer certificate: …`).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// The certificate check's refusal among `error`'s causes, if that is
/// why the call failed (rustls's error travels inside `io::Error`s).
fn certificate_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(found) = rustls_error(error, 0) {
            return match found {
                rustls::Error::General(message) => Some(message.clone()),
                refusal @ rustls::Error::InvalidCertificate(_) => Some(format!(
                    "{refusal}: pass --ca-file with the authority that issued the server's certificate, or pin it with --server-fingerprint"
                )),
                _ => None,
            };
        }
        current = error.source();
    }
    None
}

/// `error` itself as a rustls error, or what it wraps.
fn rustls_error<'e>(
    error: &'e (dyn std::error::Error + 'static),
    depth: usize,
) -> Option<&'e rustls::Error> {
    if depth > 4 {
        return None;
    }
    if let Some(found) = error.downcast_ref::<rustls::Error>() {
        return Some(found);
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return rustls_error(inner, depth + 1);
    }
    None
}

/// The server's error message (`{"error": …}`), or the start of its text.
fn error_message(status: StatusCode, text: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(message) = value.get("error").and_then(serde_json::Value::as_str)
    {
        return message.to_owned();
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    let mut end = trimmed.len().min(MAX_MESSAGE);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_whether_to_retry_or_give_the_job_up() {
        let status = |status| CallError::Status {
            what: "x",
            status,
            message: String::new(),
        };
        assert!(status(503).is_retryable() && status(408).is_retryable());
        assert!(!status(403).is_retryable());
        assert!(status(404).job_is_gone() && status(409).job_is_gone());
        assert!(!status(400).job_is_gone());
        assert_eq!(
            error_message(
                StatusCode::CONFLICT,
                r#"{"error":"job x ended","detail":null}"#
            ),
            "job x ended"
        );
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, ""), "Bad Gateway");
    }
}
