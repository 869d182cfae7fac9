//! A stand-in for the forges' commit status APIs, GitHub's first (`POST
//! /repos/{owner}/{repo}/statuses/{sha}`, GitHub Enterprise's
//! `https://HOST/api/v3` base) on 127.0.0.1, for end-to-end tests: GitHub
//! cannot run here. It checks every request as GitHub documents it and
//! answers as GitHub does:
//!
//! - a path naming another repository, or another method: `404 Not Found`;
//! - no `Authorization: Bearer <token>` (or `token <token>`) with the token
//!   it was started with: `401 Bad credentials`;
//! - no `User-Agent`: `403` (GitHub refuses such requests);
//! - an `X-GitHub-Api-Version` other than `2022-11-28`: `400`;
//! - a sha that is not 40 hex digits, a body that is not a JSON object with
//!   only `state` (`error`, `failure`, `pending`, `success`; required),
//!   `target_url`, `description` (at most 140 characters) and `context`
//!   (strings): `422 Validation Failed`;
//! - otherwise `201 Created` with the status, unless an answer was scripted
//!   with [`ForgeStatusApi::answer_next`] (a 403 rate limit with
//!   `Retry-After`, a 500, ...).
//!
//! Every request is recorded with what was wrong with it
//! ([`ForgeStatusApi::violations`]: also an `Accept` other than
//! `application/vnd.github+json` or a `Content-Type` other than JSON).
//!
//! [`ForgeStatusApi::gitea`] and [`ForgeStatusApi::gitlab`] stand in for
//! the same endpoint of Gitea/Forgejo (`POST
//! /api/v1/repos/{owner}/{repo}/statuses/{sha}`, `Authorization: token`,
//! states `pending`, `success`, `error`, `failure`, `warning`) and GitLab
//! (`POST /api/v4/projects/{id or URL-encoded path}/statuses/{sha}`,
//! `PRIVATE-TOKEN`, `state` one of `pending`, `running`, `success`,
//! `failed`, `canceled`, `skipped`, and `name`, `target_url`,
//! `description`; GitLab answers an invalid state with `400`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::ReceivedRequest;

/// An answer to send instead of the usual one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Extra header lines.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

impl Answer {
    /// GitHub's secondary rate limit answer: `403` with `Retry-After`.
    pub fn rate_limited(retry_after_seconds: u64) -> Answer {
        Answer {
            status: 403,
            headers: vec![
                ("Retry-After".to_owned(), retry_after_seconds.to_string()),
                ("X-RateLimit-Remaining".to_owned(), "0".to_owned()),
            ],
            body: r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#.to_owned(),
        }
    }
}

impl Answer {
    /// GitHub's primary rate limit answer: `403` with
    /// `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` (Unix seconds)
    /// `seconds` from now, no `Retry-After`.
    pub fn rate_limit_exhausted(seconds: u64) -> Answer {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Answer {
            status: 403,
            headers: vec![
                ("X-RateLimit-Limit".to_owned(), "5000".to_owned()),
                ("X-RateLimit-Remaining".to_owned(), "0".to_owned()),
                ("X-RateLimit-Used".to_owned(), "5000".to_owned()),
                ("X-RateLimit-Reset".to_owned(), (now + seconds).to_string()),
                ("X-RateLimit-Resource".to_owned(), "core".to_owned()),
            ],
            body: r#"{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#.to_owned(),
        }
    }
}

/// A recorded request and the status it was answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request.
    pub request: ReceivedRequest,
    /// The answer's status.
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    exchanges: Vec<Exchange>,
    violations: Vec<String>,
    script: VecDeque<Answer>,
}

/// The stand-in; stops when dropped.
pub struct ForgeStatusApi {
    address: String,
    kind: Kind,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

/// Which forge a stand-in is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GitHub,
    Gitea,
    GitLab,
}

impl ForgeStatusApi {
    /// GitHub's API, accepting `token` for `owner/repo`.
    pub fn start(token: &str, owner: &str, repo: &str) -> ForgeStatusApi {
        Self::spawn(Kind::GitHub, token, owner, repo)
    }

    /// Gitea's (and Forgejo's) API, accepting `token` for `owner/repo`.
    pub fn gitea(token: &str, owner: &str, repo: &str) -> ForgeStatusApi {
        Self::spawn(Kind::Gitea, token, owner, repo)
    }

    /// GitLab's API, accepting `token` for the project `namespace/project`.
    pub fn gitlab(token: &str, namespace: &str, project: &str) -> ForgeStatusApi {
        Self::spawn(Kind::GitLab, token, namespace, project)
    }

    fn spawn(kind: Kind, token: &str, owner: &str, repo: &str) -> ForgeStatusApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("an address").to_string();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (state, stopping) = (shared.clone(), stop.clone());
        let expected = Expected {
            kind,
            repo_prefix: format!("/api/v3/repos/{owner}/{repo}/"),
            token: token.to_owned(),
            prefix: match kind {
                Kind::GitHub => format!("/api/v3/repos/{owner}/{repo}/statuses/"),
                Kind::Gitea => format!("/api/v1/repos/{owner}/{repo}/statuses/"),
                Kind::GitLab => format!("/api/v4/projects/{owner}%2F{repo}/statuses/"),
            },
        };
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let (mut answer, violations) = expected.check(&request);
                let mut shared = state.lock().unwrap_or_else(|e| e.into_inner());
                if answer.status == 201
                    && let Some(scripted) = shared.script.pop_front()
                {
                    answer = scripted;
                }
                shared.violations.extend(violations);
                shared.exchanges.push(Exchange {
                    request,
                    status: answer.status,
                });
                drop(shared);
                let mut head = format!(
                    "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.status,
                    reason(answer.status),
                    answer.body.len()
                );
                for (name, value) in &answer.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let mut stream = stream;
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(answer.body.as_bytes());
            }
        });
        ForgeStatusApi {
            address,
            kind,
            shared,
            stop,
        }
    }

    /// The API base URL: `http://127.0.0.1:PORT/api/v3` (GitHub
    /// Enterprise's form), `/api/v1` (Gitea), `/api/v4` (GitLab).
    pub fn url(&self) -> String {
        let version = match self.kind {
            Kind::GitHub => "v3",
            Kind::Gitea => "v1",
            Kind::GitLab => "v4",
        };
        format!("http://{}/api/{version}", self.address)
    }

    /// Answers the next valid request with `answer` instead of `201`.
    pub fn answer_next(&self, answer: Answer) {
        self.lock().script.push_back(answer);
    }

    /// Every request so far, with its answer's status.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.lock().exchanges.clone()
    }

    /// What was wrong with the requests so far (empty when all were as
    /// documented).
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// The `(state, context)` of every status recorded (`201`), in order.
    pub fn recorded(&self) -> Vec<(String, String)> {
        self.exchanges()
            .iter()
            .filter(|e| e.status == 201 && !e.request.target.contains("/deployments"))
            .map(|e| {
                let body = e.request.json();
                (
                    body["state"].as_str().unwrap_or_default().to_owned(),
                    body[if self.kind == Kind::GitLab {
                        "name"
                    } else {
                        "context"
                    }]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                )
            })
            .collect()
    }

    /// The GitHub Deployment requests recorded (`201`), in order: the
    /// creation's `environment`, then each status's `state`.
    pub fn deployments(&self) -> Vec<ReceivedRequest> {
        self.exchanges()
            .into_iter()
            .filter(|e| e.status == 201 && e.request.target.contains("/deployments"))
            .map(|e| e.request)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ForgeStatusApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Expected {
    kind: Kind,
    repo_prefix: String,
    token: String,
    prefix: String,
}

fn error(status: u16, message: &str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: serde_json::json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
        })
        .to_string(),
    }
}

impl Expected {
    /// The answer GitHub would give, and the deviations from its documented
    /// request.
    fn check(&self, request: &ReceivedRequest) -> (Answer, Vec<String>) {
        let mut wrong = Vec::new();
        let sha = request.target.strip_prefix(&self.prefix);
        let deployments = self.kind == Kind::GitHub
            && request
                .target
                .strip_prefix(&self.repo_prefix)
                .is_some_and(|rest| rest.starts_with("deployments"));
        if request.method != "POST" || (sha.is_none() && !deployments) {
            wrong.push(format!(
                "{} {}: not the status endpoint",
                request.method, request.target
            ));
            return (error(404, "Not Found"), wrong);
        }
        let authorized = match self.kind {
            Kind::GitLab => request.header("private-token") == Some(self.token.as_str()),
            _ => request.header("authorization").is_some_and(|value| {
                value == format!("Bearer {}", self.token)
                    || value == format!("token {}", self.token)
            }),
        };
        if !authorized {
            let message = match self.kind {
                Kind::GitHub => "Bad credentials",
                Kind::Gitea => "token is required",
                Kind::GitLab => "401 Unauthorized",
            };
            return (error(401, message), wrong);
        }
        if self.kind != Kind::GitHub {
            return self.check_other(request, sha.unwrap_or_default(), wrong);
        }
        if request.header("user-agent").is_none_or(str::is_empty) {
            wrong.push("no User-Agent".to_owned());
            return (
                error(
                    403,
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
                ),
                wrong,
            );
        }
        if request.header("x-github-api-version") != Some("2022-11-28") {
            wrong.push(format!(
                "X-GitHub-Api-Version {:?}",
                request.header("x-github-api-version")
            ));
            return (error(400, "Invalid API version"), wrong);
        }
        if deployments {
            return self.check_deployment(request, wrong);
        }
        if request.header("accept") != Some("application/vnd.github+json") {
            wrong.push(format!("Accept {:?}", request.header("accept")));
        }
        if !request
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            wrong.push(format!("Content-Type {:?}", request.header("content-type")));
        }
        let sha = sha.unwrap_or_default();
        let mut invalid = Vec::new();
        if sha.len() != 40 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            invalid.push(format!("sha {sha:?}"));
        }
        match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(serde_json::Value::Object(fields)) => {
                for (name, value) in &fields {
                    match name.as_str() {
                        "state" => {
                            if !matches!(
                                value.as_str(),
                                Some("error" | "failure" | "pending" | "success")
                            ) {
                                invalid.push(format!("state {value}"));
                            }
                        }
                        "description" => {
                            if value.as_str().is_none_or(|d| d.chars().count() > 140) {
                                invalid.push(format!("description {value}"));
                            }
                        }
                        "target_url" | "context" => {
                            if !value.is_string() {
                                invalid.push(format!("{name} {value}"));
                            }
                        }
                        other => invalid.push(format!("unknown field {other}")),
                    }
                }
                if !fields.contains_key("state") {
                    invalid.push("no state".to_owned());
                }
            }
            _ => invalid.push("the body is not a JSON object".to_owned()),
        }
        if !invalid.is_empty() {
            wrong.extend(invalid);
            return (error(422, "Validation Failed"), wrong);
        }
        let body = request.json();
        let answer = Answer {
            status: 201,
            headers: vec![("Location".to_owned(), format!("{}{sha}", self.prefix))],
            body: serde_json::json!({
                "id": 1,
                "state": body["state"],
                "description": body["description"],
                "target_url": body["target_url"],
                "context": body.get("context").cloned().unwrap_or("default".into()),
            })
            .to_string(),
        };
        (answer, wrong)
    }
}

impl Expected {
    /// GitHub Deployments: `POST .../deployments` (`ref` required,
    /// `environment`, `auto_merge`, `required_contexts`, `description`, ...;
    /// answered with `id` 42) and `POST .../deployments/42/statuses`
    /// (`state` one of `error`, `failure`, `inactive`, `in_progress`,
    /// `queued`, `pending`, `success`; `log_url`, `environment_url`, ...).
    fn check_deployment(
        &self,
        request: &ReceivedRequest,
        mut wrong: Vec<String>,
    ) -> (Answer, Vec<String>) {
        if request.header("accept") != Some("application/vnd.github+json") {
            wrong.push(format!("Accept {:?}", request.header("accept")));
        }
        let rest = request
            .target
            .strip_prefix(&self.repo_prefix)
            .unwrap_or_default();
        let fields = match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => {
                wrong.push("the body is not a JSON object".to_owned());
                return (error(422, "Validation Failed"), wrong);
            }
        };
        let mut invalid = Vec::new();
        let body = serde_json::Value::Object(fields.clone());
        let answer = if rest == "deployments" {
            for (name, value) in &fields {
                let ok = match name.as_str() {
                    "ref" | "environment" | "description" | "task" => value.is_string(),
                    "auto_merge" | "transient_environment" | "production_environment" => {
                        value.is_boolean()
                    }
                    "required_contexts" => value
                        .as_array()
                        .is_some_and(|a| a.iter().all(serde_json::Value::is_string)),
                    "payload" => true,
                    _ => false,
                };
                if !ok {
                    invalid.push(format!("{name} {value}"));
                }
            }
            if !fields.contains_key("ref") {
                invalid.push("no ref".to_owned());
            }
            serde_json::json!({
                "id": 42,
                "sha": body["ref"],
                "ref": body["ref"],
                "environment": body.get("environment").cloned().unwrap_or("production".into()),
                "description": body["description"],
            })
        } else if rest == "deployments/42/statuses" {
            for (name, value) in &fields {
                let ok = match name.as_str() {
                    "state" => matches!(
                        value.as_str(),
                        Some(
                            "error"
                                | "failure"
                                | "inactive"
                                | "in_progress"
                                | "queued"
                                | "pending"
                                | "success"
                        )
                    ),
                    "description" => value.as_str().is_some_and(|d| d.chars().count() <= 140),
                    "target_url" | "log_url" | "environment" | "environment_url" => {
                        value.is_string()
                    }
                    "auto_inactive" => value.is_boolean(),
                    _ => false,
                };
                if !ok {
                    invalid.push(format!("{name} {value}"));
                }
            }
            if !fields.contains_key("state") {
                invalid.push("no state".to_owned());
            }
            serde_json::json!({"id": 1, "state": body["state"], "log_url": body["log_url"]})
        } else {
            wrong.push(format!("POST {}: no such deployment", request.target));
            return (error(404, "Not Found"), wrong);
        };
        if !invalid.is_empty() {
            wrong.extend(invalid);
            return (error(422, "Validation Failed"), wrong);
        }
        (
            Answer {
                status: 201,
                headers: Vec::new(),
                body: answer.to_string(),
            },
            wrong,
        )
    }

    /// Gitea's and GitLab's checks of the fields, after the token.
    fn check_other(
        &self,
        request: &ReceivedRequest,
        sha: &str,
        mut wrong: Vec<String>,
    ) -> (Answer, Vec<String>) {
        if !request
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            wrong.push(format!("Content-Type {:?}", request.header("content-type")));
        }
        let (states, name_field): (&[&str], &str) = match self.kind {
            Kind::Gitea => (
                &["pending", "success", "error", "failure", "warning"],
                "context",
            ),
            _ => (
                &[
                    "pending", "running", "success", "failed", "canceled", "skipped",
                ],
                "name",
            ),
        };
        let mut invalid = Vec::new();
        if sha.len() != 40 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            invalid.push(format!("sha {sha:?}"));
        }
        match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(serde_json::Value::Object(fields)) => {
                for (name, value) in &fields {
                    if name == "state" {
                        if !value.as_str().is_some_and(|s| states.contains(&s)) {
                            invalid.push(format!("state {value}"));
                        }
                    } else if name == name_field || name == "target_url" || name == "description" {
                        if !value.is_string() {
                            invalid.push(format!("{name} {value}"));
                        }
                    } else {
                        invalid.push(format!("unknown field {name}"));
                    }
                }
                if !fields.contains_key("state") {
                    invalid.push("no state".to_owned());
                }
            }
            _ => invalid.push("the body is not a JSON object".to_owned()),
        }
        if !invalid.is_empty() {
            wrong.extend(invalid);
            return match self.kind {
                Kind::GitLab => (
                    Answer {
                        status: 400,
                        headers: Vec::new(),
                        body: r#"{"error":"state does not have a valid value"}"#.to_owned(),
                    },
                    wrong,
                ),
                _ => (error(422, "Unprocessable Entity"), wrong),
            };
        }
        let body = request.json();
        let answer = Answer {
            status: 201,
            headers: Vec::new(),
            body: serde_json::json!({
                "id": 1,
                "status": body["state"],
                "state": body["state"],
                "description": body["description"],
                "target_url": body["target_url"],
                name_field: body[name_field],
            })
            .to_string(),
        };
        (answer, wrong)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

pub(crate) fn read_request(stream: &std::net::TcpStream) -> Option<ReceivedRequest> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push((name, value.trim().to_owned()));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(ReceivedRequest {
        method,
        target,
        headers,
        body,
    })
}
