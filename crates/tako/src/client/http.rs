//! A blocking HTTP client for the server's JSON API: the token on every
//! request, the server's JSON errors turned into messages for people, and
//! the two errors people meet first (server down, token refused) explained.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::Agent;
use ureq::http::Response;

/// Where the server is and how to prove who we are.
pub(crate) struct Client {
    agent: Agent,
    /// The server's base URL, without a trailing `/`.
    base: String,
    token: Option<String>,
}

/// The largest JSON answer read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

impl Client {
    pub(crate) fn new(server: &str, token: Option<String>) -> Client {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build();
        Client {
            agent: Agent::new_with_config(config),
            base: server.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn auth(&self) -> Result<String> {
        match &self.token {
            Some(token) => Ok(format!("Bearer {token}")),
            None => bail!(
                "no API token: pass --token or set TAKO_TOKEN (tako serve prints the first one on its first start)"
            ),
        }
    }

    /// `GET path` as JSON.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth()?)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.transport(e))?;
        self.json(response)
    }

    /// `POST path` with a JSON body (or none), answered as JSON.
    pub(crate) fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let request = self
            .agent
            .post(self.url(path))
            .header("Authorization", self.auth()?)
            .header("Accept", "application/json");
        let response = match body {
            Some(body) => request
                .content_type("application/json")
                .send(serde_json::to_string(body)?),
            None => request.send_empty(),
        }
        .map_err(|e| self.transport(e))?;
        self.json(response)
    }

    /// `PUT path` with a JSON body, answered as JSON.
    pub(crate) fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let response = self
            .agent
            .put(self.url(path))
            .header("Authorization", self.auth()?)
            .content_type("application/json")
            .send(serde_json::to_string(body)?)
            .map_err(|e| self.transport(e))?;
        self.json(response)
    }

    /// `DELETE path`; any success answer is enough.
    pub(crate) fn delete(&self, path: &str) -> Result<()> {
        let mut response = self
            .agent
            .delete(self.url(path))
            .header("Authorization", self.auth()?)
            .call()
            .map_err(|e| self.transport(e))?;
        self.check(&mut response)
    }

    /// `GET path` as text (the task log).
    pub(crate) fn get_text(&self, path: &str) -> Result<String> {
        let mut response = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth()?)
            .call()
            .map_err(|e| self.transport(e))?;
        self.check(&mut response)?;
        Ok(response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()?)
    }

    /// `GET path` as server-sent events, calling `on_event(name, data)` for
    /// each until the server closes the stream or `on_event` says stop.
    pub(crate) fn events(
        &self,
        path: &str,
        mut on_event: impl FnMut(&str, &str) -> Result<bool>,
    ) -> Result<()> {
        let mut response = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth()?)
            .header("Accept", "text/event-stream")
            .call()
            .map_err(|e| self.transport(e))?;
        self.check(&mut response)?;
        let reader = BufReader::new(response.into_body().into_reader());
        let mut name = String::new();
        let mut data = String::new();
        for line in reader.lines() {
            let line = line.map_err(|e| anyhow!("the log stream broke off: {e}"))?;
            if line.is_empty() {
                if !data.is_empty() || !name.is_empty() {
                    let event = if name.is_empty() { "message" } else { &name };
                    if !on_event(event, &data)? {
                        return Ok(());
                    }
                }
                name.clear();
                data.clear();
            } else if let Some(value) = field(&line, "event") {
                value.clone_into(&mut name);
            } else if let Some(value) = field(&line, "data") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
        }
        Ok(())
    }

    fn json<T: DeserializeOwned>(&self, mut response: Response<ureq::Body>) -> Result<T> {
        self.check(&mut response)?;
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()?;
        serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "the server at {} answered something unexpected: {e}",
                self.base
            )
        })
    }

    /// Turns an error status into a message.
    fn check(&self, response: &mut Response<ureq::Body>) -> Result<()> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.as_u16() == 401 {
            bail!("the server refused the token: check TAKO_TOKEN (or --token)");
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let message = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(body) => match (body["error"].as_str(), body["detail"].as_str()) {
                (Some(error), Some(detail)) => format!("{error}: {detail}"),
                (Some(error), None) => error.to_owned(),
                _ => text,
            },
            Err(_) => text,
        };
        if status.as_u16() == 403 && message.trim().is_empty() {
            bail!("the token's role does not allow this (ask for a token with the admin role)");
        }
        bail!("the server answered {status}: {message}")
    }

    fn transport(&self, error: ureq::Error) -> anyhow::Error {
        let reason = match &error {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_owned()
            }
            ureq::Error::ConnectionFailed => "connection failed".to_owned(),
            ureq::Error::HostNotFound => "host not found".to_owned(),
            other => other.to_string(),
        };
        anyhow!(
            "cannot reach the Tako server at {}: {reason}; is `tako serve` running? (set --server or TAKO_SERVER)",
            self.base
        )
    }
}

fn field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// A path segment, percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
