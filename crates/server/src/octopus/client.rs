//! The HTTP side of forwarding: one allow-listed Octopus server's requests
//! as octopus-forward.md §2.2 and §7 say. The key goes in
//! `X-Octopus-ApiKey` and nowhere else, redirects are never followed (a 3xx
//! is an answer), GETs are retried on connection errors, 502, 503, 504 and
//! 429 (1 s then 4 s, or `Retry-After` up to 60 s), a POST is sent once and
//! an unknown outcome (timeout, dropped connection, 5xx) is reported as
//! such for the caller to check. Links Octopus returns are followed only
//! when root-relative, joined to the configured origin.

use std::time::Duration;

use serde_json::Value;
use tako_core::octopus::{ErrorKind, ServerUrl};

use super::ForwardError;
use crate::config::octopus::OctopusServer;

/// Attempts of a GET (and of a POST that could not connect).
const ATTEMPTS: u32 = 3;
/// The most an error body that is not JSON is kept.
const MAX_TEXT: usize = 2048;

/// A client of one Octopus server.
#[derive(Clone)]
pub struct OctopusClient {
    http: reqwest::Client,
    url: ServerUrl,
    key: String,
    /// The backoff before the 2nd and 3rd attempts.
    backoff: [Duration; 2],
}

/// Why a call did not answer 2xx.
#[derive(Debug)]
pub(super) struct CallFailure {
    /// The HTTP status, when one came.
    pub status: Option<u16>,
    /// The body as JSON, when it was.
    pub body: Option<Value>,
    /// The body as text, when it was not JSON (at most 2 KiB).
    pub text: Option<String>,
    /// What went wrong on the wire, when no status came.
    pub transport: Option<String>,
    /// For a POST: whether Octopus may have stored it anyway.
    pub unknown_outcome: bool,
}

impl CallFailure {
    /// The error of kind `kind` for `step`, with Octopus's own sentences.
    pub(super) fn into_error(
        self,
        kind: ErrorKind,
        step: &str,
        method: &str,
        path: &str,
    ) -> ForwardError {
        let body = self.body.unwrap_or(Value::Null);
        let message = body["ErrorMessage"].as_str().map(str::to_owned);
        let errors: Vec<String> = body["Errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let help = body["HelpText"].as_str().map(str::to_owned);
        let mut detail = tako_core::octopus::error_detail(message.as_deref(), &errors);
        if detail.is_empty() {
            detail = match (&self.transport, &self.text, self.status) {
                (Some(transport), _, _) => transport.clone(),
                (None, Some(text), Some(status)) => format!("HTTP {status}: {text}"),
                (None, _, Some(status)) => format!("HTTP {status}"),
                _ => "no answer".to_owned(),
            };
        }
        ForwardError {
            kind: kind.as_str().to_owned(),
            step: step.to_owned(),
            method: method.to_owned(),
            path: strip_query(path).to_owned(),
            status: self.status,
            octopus_message: message,
            octopus_errors: errors,
            octopus_help: help,
            octopus_text: self.text,
            detail,
        }
    }

    /// The kind its status means whatever the call, else `fallback`.
    pub(super) fn kind_or(&self, fallback: ErrorKind) -> ErrorKind {
        match self.status {
            Some(status) => ErrorKind::of_status(status).unwrap_or(fallback),
            None => ErrorKind::Unreachable,
        }
    }
}

/// A recorded path never holds a query (nothing secret goes there anyway).
fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

impl OctopusClient {
    /// A client of `server` (whose key [`crate::config::octopus::resolve_api_keys`]
    /// has read). `Err` names what is wrong with its CA file.
    pub fn new(server: &OctopusServer) -> Result<OctopusClient, String> {
        let key = server
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .ok_or_else(|| format!("the Octopus server {} has no API key", server.url))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("tako/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &server.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(OctopusClient {
            http,
            url: server.url.clone(),
            key,
            backoff: [Duration::from_secs(1), Duration::from_secs(4)],
        })
    }

    /// The key, for the masker.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// The configured origin (`scheme://host:port`).
    pub(super) fn origin(&self) -> &str {
        self.url.origin()
    }

    /// `GET {base}{path}` with retries; the JSON answer of a 2xx.
    pub(super) async fn get(&self, path: &str) -> Result<Value, CallFailure> {
        let url = format!("{}{path}", self.url.base());
        self.get_url(&url).await
    }

    /// GETs a link Octopus returned: root-relative only, joined to the
    /// origin (Octopus links hold any virtual directory already).
    pub(super) async fn get_link(&self, link: &str) -> Result<Value, CallFailure> {
        if !link.starts_with('/') || link.starts_with("//") {
            return Err(CallFailure {
                status: None,
                body: None,
                text: None,
                transport: Some(format!(
                    "Octopus returned a link that is not root-relative ({}); it is not followed",
                    strip_query(link)
                )),
                unknown_outcome: false,
            });
        }
        let url = format!("{}{link}", self.url.origin());
        self.get_url(&url).await
    }

    async fn get_url(&self, url: &str) -> Result<Value, CallFailure> {
        let mut attempt = 1;
        loop {
            let sent = self
                .http
                .get(url)
                .header("X-Octopus-ApiKey", &self.key)
                .header("Accept", "application/json")
                .send()
                .await;
            let failure = match sent {
                Ok(response) => match answer(response).await {
                    Ok(value) => return Ok(value),
                    Err(failure) => failure,
                },
                Err(error) => transport_failure(&error, false),
            };
            let retry = matches!(failure.status, None | Some(502..=504 | 429));
            if !retry || attempt >= ATTEMPTS {
                return Err(failure);
            }
            let wait = failure_retry_after(&failure)
                .unwrap_or(self.backoff[usize::try_from(attempt - 1).unwrap_or(0).min(1)]);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `POST {base}{path}` with a JSON body, sent once (again only when the
    /// connection could not even be made); the JSON answer of a 2xx.
    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Value, CallFailure> {
        let url = format!("{}{path}", self.url.base());
        let mut attempt = 1;
        loop {
            let sent = self
                .http
                .post(&url)
                .header("X-Octopus-ApiKey", &self.key)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    return answer(response).await.map_err(|mut failure| {
                        failure.unknown_outcome = failure.status.is_some_and(|s| s >= 500);
                        failure
                    });
                }
                Err(error) if error.is_connect() && attempt < ATTEMPTS => {
                    tokio::time::sleep(
                        self.backoff[usize::try_from(attempt - 1).unwrap_or(0).min(1)],
                    )
                    .await;
                    attempt += 1;
                }
                Err(error) => return Err(transport_failure(&error, true)),
            }
        }
    }

    /// A client waiting `backoff` between attempts (tests).
    #[cfg(test)]
    fn with_backoff(mut self, backoff: [Duration; 2]) -> OctopusClient {
        self.backoff = backoff;
        self
    }
}

/// `Retry-After` kept on a failure (seconds, capped at 60 s).
fn failure_retry_after(failure: &CallFailure) -> Option<Duration> {
    failure.body.as_ref()?["__retry_after"]
        .as_u64()
        .map(|s| Duration::from_secs(s.min(60)))
}

async fn answer(response: reqwest::Response) -> Result<Value, CallFailure> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => return Err(transport_failure(&error, status < 300)),
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    if (200..300).contains(&status) {
        return parsed.ok_or_else(|| CallFailure {
            status: Some(status),
            body: None,
            text: Some(truncate(&String::from_utf8_lossy(&bytes))),
            transport: Some(format!("HTTP {status} with a body that is not JSON")),
            unknown_outcome: false,
        });
    }
    let mut body = parsed.filter(Value::is_object);
    if let (Some(seconds), Some(Value::Object(map))) = (retry_after, body.as_mut()) {
        map.insert("__retry_after".to_owned(), Value::from(seconds));
    } else if let (Some(seconds), None) = (retry_after, &body) {
        body = Some(serde_json::json!({ "__retry_after": seconds }));
    }
    // A body that is not JSON is kept as text.
    let text = if bytes.is_empty() || serde_json::from_slice::<Value>(&bytes).is_ok() {
        None
    } else {
        Some(truncate(&String::from_utf8_lossy(&bytes)))
    };
    Err(CallFailure {
        status: Some(status),
        body,
        text,
        transport: None,
        unknown_outcome: false,
    })
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A failure before any status came. The text never names the URL (it
/// holds no secret, but the error's own wording is enough).
fn transport_failure(error: &reqwest::Error, post: bool) -> CallFailure {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    let mut source = std::error::Error::source(error);
    let mut cause = String::new();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    CallFailure {
        status: None,
        body: None,
        text: None,
        transport: Some(if cause.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {cause}")
        }),
        unknown_outcome: post && !error.is_connect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_paths_never_keep_a_query() {
        assert_eq!(
            strip_query("/api/Spaces-1/releases?x=1"),
            "/api/Spaces-1/releases"
        );
        assert_eq!(truncate(&"é".repeat(2000)).chars().count(), 1025);
    }

    #[tokio::test]
    async fn an_absolute_link_is_refused() {
        let mut servers = crate::config::octopus::validate(
            &[crate::config::octopus::OctopusEntry {
                url: Some("http://127.0.0.1:9".to_owned()),
                api_key_env: Some("K".to_owned()),
                ..Default::default()
            }],
            "test",
        )
        .unwrap_or_default();
        crate::config::octopus::resolve_api_keys(
            &mut servers,
            |_| Ok(String::new()),
            |_| Some("API-TEST".to_owned()),
        )
        .ok();
        let Some(server) = servers.first() else {
            panic!("no server");
        };
        let Ok(client) = OctopusClient::new(server) else {
            panic!("no client");
        };
        let client = client.with_backoff([Duration::ZERO, Duration::ZERO]);
        let refused = client.get_link("http://elsewhere.example/api").await;
        assert!(refused.is_err_and(|f| f.status.is_none() && f.transport.is_some()));
    }
}
