//! Commit statuses back to the forge, free of I/O: which forge and
//! repository a project's URL names ([`StatusTarget::resolve`]), the request
//! each forge documents for a commit status ([`StatusTarget::request`]), and
//! what to do with its answer ([`next_step`]: done, retry after how long, or
//! give up).
//!
//! - GitHub: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`,
//!   `Authorization: Bearer`, `Accept: application/vnd.github+json`,
//!   `X-GitHub-Api-Version: 2022-11-28`; `state`, `target_url`,
//!   `description`, `context`. `{api}` is `https://api.github.com`, or
//!   `https://HOST/api/v3` for GitHub Enterprise.
//! - Gitea/Forgejo: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`,
//!   `Authorization: token`; the same fields. `{api}` is
//!   `https://HOST/api/v1`.
//! - GitLab: `POST {api}/projects/{url-encoded path}/statuses/{sha}`,
//!   `PRIVATE-TOKEN`; `state`, `name`, `target_url`, `description`. `{api}`
//!   is `https://HOST/api/v4`.

use std::time::Duration;

/// A forge Tako reports commit statuses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusForge {
    /// GitHub (github.com and Enterprise).
    GitHub,
    /// Gitea and Forgejo.
    Gitea,
    /// GitLab (gitlab.com and self-managed).
    GitLab,
}

impl StatusForge {
    /// `github`, `gitea` (or `forgejo`), `gitlab`.
    pub fn parse(name: &str) -> Option<StatusForge> {
        match name.to_ascii_lowercase().as_str() {
            "github" => Some(StatusForge::GitHub),
            "gitea" | "forgejo" => Some(StatusForge::Gitea),
            "gitlab" => Some(StatusForge::GitLab),
            _ => None,
        }
    }

    /// Its name as [`StatusForge::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            StatusForge::GitHub => "github",
            StatusForge::Gitea => "gitea",
            StatusForge::GitLab => "gitlab",
        }
    }

    fn from_host(host: &str) -> Option<StatusForge> {
        match host {
            "github.com" => Some(StatusForge::GitHub),
            "gitlab.com" => Some(StatusForge::GitLab),
            "codeberg.org" | "gitea.com" => Some(StatusForge::Gitea),
            _ => None,
        }
    }
}

/// Why a project's statuses cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The repository URL is not an `https://`, `http://`, `ssh://` or
    /// `git@host:` URL with a path.
    #[error("the repository URL does not name a repository on a forge")]
    NotAForgeUrl,
    /// The host is not a known forge and no forge was configured.
    #[error("{0} is not a known forge (set the project's forge and API URL)")]
    UnknownForge(String),
    /// The path is not `owner/repo` (GitHub, Gitea) or a project path.
    #[error("the repository path {0:?} is not owner/repository")]
    BadPath(String),
}

/// Where a project's statuses go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusTarget {
    /// The forge.
    pub forge: StatusForge,
    /// The API base URL, without a trailing `/`.
    pub api_url: String,
    /// `owner/repo` (GitLab: the project's full path).
    pub repository: String,
}

/// What a deployment is reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// It started.
    Started,
    /// It waits for a person at step `step` (`Uses: manual-intervention`,
    /// or a failed step with `OnFailure: ask`): still `pending`.
    Paused {
        /// The step that waits.
        step: String,
    },
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// It was cancelled.
    Cancelled,
}

/// One commit status, as the forge's API wants it.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusRequest {
    /// `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Header lines, the token's among them: never log them.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: serde_json::Value,
}

impl std::fmt::Debug for StatusRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// The most characters of a description (GitHub's limit).
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// The `User-Agent` Tako sends.
pub const USER_AGENT: &str = concat!("Tako/", env!("CARGO_PKG_VERSION"));

/// What a status says: its environment, release and link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusContent<'a> {
    /// The environment (context `tako/<environment>`).
    pub environment: &'a str,
    /// The release number.
    pub release: &'a str,
    /// The deployment page (left out without a public URL).
    pub target_url: Option<&'a str>,
}

fn split_url(url: &str) -> Option<(String, String)> {
    let url = url.trim();
    let (host_part, path) = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?
    } else if let Some((user_host, path)) = url.split_once(':') {
        // scp-like `git@host:owner/repo.git`
        if !user_host.contains('@') || user_host.contains('/') {
            return None;
        }
        (user_host, path)
    } else {
        return None;
    };
    let host = host_part.rsplit('@').next()?;
    let host = host.split(':').next()?.to_ascii_lowercase();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some((host, path.to_owned()))
}

fn segment_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl StatusTarget {
    /// Where statuses of the project at `repository_url` go: the forge
    /// configured for it, else the one its host is (github.com, gitlab.com,
    /// codeberg.org); the API URL configured (the project's, then for GitHub
    /// the server's), else the forge's on that host.
    pub fn resolve(
        repository_url: &str,
        forge: Option<StatusForge>,
        api_url: Option<&str>,
        server_github_api_url: Option<&str>,
    ) -> Result<StatusTarget, TargetError> {
        let (host, path) = split_url(repository_url).ok_or(TargetError::NotAForgeUrl)?;
        let forge = forge
            .or_else(|| StatusForge::from_host(&host))
            .ok_or_else(|| TargetError::UnknownForge(host.clone()))?;
        let segments: Vec<&str> = path.split('/').collect();
        let shape_ok = match forge {
            StatusForge::GitHub | StatusForge::Gitea => segments.len() == 2,
            StatusForge::GitLab => segments.len() >= 2,
        };
        if !shape_ok || !segments.iter().all(|s| segment_ok(s)) {
            return Err(TargetError::BadPath(path));
        }
        let api_url = match (forge, api_url, server_github_api_url) {
            (_, Some(url), _) => url.to_owned(),
            (StatusForge::GitHub, None, Some(url)) => url.to_owned(),
            (StatusForge::GitHub, None, None) if host == "github.com" => {
                "https://api.github.com".to_owned()
            }
            (StatusForge::GitHub, None, None) => format!("https://{host}/api/v3"),
            (StatusForge::Gitea, None, _) => format!("https://{host}/api/v1"),
            (StatusForge::GitLab, None, _) => format!("https://{host}/api/v4"),
        };
        Ok(StatusTarget {
            forge,
            api_url: api_url.trim_end_matches('/').to_owned(),
            repository: path,
        })
    }

    /// The request reporting `phase` of a deployment of `sha`.
    pub fn request(
        &self,
        token: &str,
        sha: &str,
        phase: &Phase,
        content: &StatusContent<'_>,
    ) -> StatusRequest {
        let context = format!("tako/{}", content.environment);
        let description = truncate(
            &match phase {
                Phase::Started => format!(
                    "Deploying release {} to {}",
                    content.release, content.environment
                ),
                Phase::Paused { step } => format!(
                    "Release {} to {}: waiting for a person at step {step}",
                    content.release, content.environment
                ),
                Phase::Succeeded => format!(
                    "Release {} deployed to {}",
                    content.release, content.environment
                ),
                Phase::Failed => format!(
                    "Deploying release {} to {} failed",
                    content.release, content.environment
                ),
                Phase::Cancelled => format!(
                    "Deploying release {} to {} was cancelled",
                    content.release, content.environment
                ),
            },
            MAX_DESCRIPTION_CHARS,
        );
        let common = |auth: (&'static str, String)| {
            vec![
                auth,
                ("Content-Type", "application/json".to_owned()),
                ("User-Agent", USER_AGENT.to_owned()),
            ]
        };
        match self.forge {
            StatusForge::GitHub | StatusForge::Gitea => {
                let state = match phase {
                    Phase::Started | Phase::Paused { .. } => "pending",
                    Phase::Succeeded => "success",
                    Phase::Failed => "failure",
                    Phase::Cancelled => "error",
                };
                let mut headers = if self.forge == StatusForge::GitHub {
                    common(("Authorization", format!("Bearer {token}")))
                } else {
                    common(("Authorization", format!("token {token}")))
                };
                if self.forge == StatusForge::GitHub {
                    headers.push(("Accept", "application/vnd.github+json".to_owned()));
                    headers.push(("X-GitHub-Api-Version", "2022-11-28".to_owned()));
                } else {
                    headers.push(("Accept", "application/json".to_owned()));
                }
                let mut body = serde_json::json!({
                    "state": state,
                    "description": description,
                    "context": context,
                });
                if let Some(url) = content.target_url {
                    body["target_url"] = url.into();
                }
                StatusRequest {
                    method: "POST",
                    url: format!("{}/repos/{}/statuses/{sha}", self.api_url, self.repository),
                    headers,
                    body,
                }
            }
            StatusForge::GitLab => {
                let state = match phase {
                    // GitLab's `pending` is "waiting to run": what a pause is.
                    Phase::Started => "running",
                    Phase::Paused { .. } => "pending",
                    Phase::Succeeded => "success",
                    Phase::Failed => "failed",
                    Phase::Cancelled => "canceled",
                };
                let mut headers = common(("PRIVATE-TOKEN", token.to_owned()));
                headers.push(("Accept", "application/json".to_owned()));
                let mut body = serde_json::json!({
                    "state": state,
                    "name": context,
                    "description": description,
                });
                if let Some(url) = content.target_url {
                    body["target_url"] = url.into();
                }
                StatusRequest {
                    method: "POST",
                    url: format!(
                        "{}/projects/{}/statuses/{sha}",
                        self.api_url,
                        encode_path(&self.repository)
                    ),
                    headers,
                    body,
                }
            }
        }
    }
}

impl StatusTarget {
    fn github_headers(token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", format!("Bearer {token}")),
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", USER_AGENT.to_owned()),
            ("Accept", "application/vnd.github+json".to_owned()),
            ("X-GitHub-Api-Version", "2022-11-28".to_owned()),
        ]
    }

    /// A GitHub Deployment of `sha` to the environment (`POST
    /// {api}/repos/{owner}/{repo}/deployments`): `ref`, `environment`,
    /// `auto_merge: false`, `required_contexts: []` (Tako deploys what was
    /// pushed; GitHub must neither merge nor wait for checks),
    /// `description`. Its answer's `id` is the deployment's.
    pub fn deployment_request(
        &self,
        token: &str,
        sha: &str,
        content: &StatusContent<'_>,
    ) -> StatusRequest {
        StatusRequest {
            method: "POST",
            url: format!("{}/repos/{}/deployments", self.api_url, self.repository),
            headers: Self::github_headers(token),
            body: serde_json::json!({
                "ref": sha,
                "environment": content.environment,
                "auto_merge": false,
                "required_contexts": [],
                "description": truncate(
                    &format!("Tako: release {}", content.release),
                    MAX_DESCRIPTION_CHARS,
                ),
            }),
        }
    }

    /// A status of GitHub Deployment `id` (`POST
    /// {api}/repos/{owner}/{repo}/deployments/{id}/statuses`): `state`
    /// `in_progress`, `pending` (paused for a person), `success`, `failure`
    /// or `error` (cancelled),
    /// `log_url` the deployment page, `description`.
    pub fn deployment_status_request(
        &self,
        token: &str,
        id: u64,
        phase: &Phase,
        content: &StatusContent<'_>,
    ) -> StatusRequest {
        let state = match phase {
            Phase::Started => "in_progress",
            Phase::Paused { .. } => "pending",
            Phase::Succeeded => "success",
            Phase::Failed => "failure",
            Phase::Cancelled => "error",
        };
        let mut body = serde_json::json!({
            "state": state,
            "description": truncate(
                &format!("Tako: release {} to {}", content.release, content.environment),
                MAX_DESCRIPTION_CHARS,
            ),
        });
        if let Some(url) = content.target_url {
            body["log_url"] = url.into();
        }
        StatusRequest {
            method: "POST",
            url: format!(
                "{}/repos/{}/deployments/{id}/statuses",
                self.api_url, self.repository
            ),
            headers: Self::github_headers(token),
            body,
        }
    }
}

/// GitLab's URL-encoded project path (`group/sub/project` →
/// `group%2Fsub%2Fproject`).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The status is recorded.
    Done,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Trying again will not help (401, 404, 422, a 403 that is no rate
    /// limit), or the attempts are used up.
    GiveUp,
}

/// The most attempts of one status.
pub const MAX_ATTEMPTS: u32 = 6;

/// The longest wait Tako honours before a retry (a rate limit resetting
/// later than this is waited for this long).
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// The answer's headers that decide a retry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryHeaders<'a> {
    /// `Retry-After` (seconds).
    pub retry_after: Option<&'a str>,
    /// `X-RateLimit-Remaining`.
    pub ratelimit_remaining: Option<&'a str>,
    /// `X-RateLimit-Reset` (Unix seconds).
    pub ratelimit_reset: Option<&'a str>,
}

/// The wait before attempt `attempt + 1` when the answer says nothing:
/// 1 s, 2 s, 4 s, ... up to a minute.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(6)).min(Duration::from_secs(60))
}

/// What to do after attempt `attempt` (1 for the first) got `status`
/// (`None`: no answer, the connection failed), at `now_unix` seconds.
pub fn next_step(
    status: Option<u16>,
    headers: RetryHeaders<'_>,
    attempt: u32,
    now_unix: i64,
) -> NextStep {
    let retry = |wait: Duration| {
        if attempt >= MAX_ATTEMPTS {
            NextStep::GiveUp
        } else {
            NextStep::RetryAfter(wait.min(MAX_WAIT))
        }
    };
    let told = || {
        if let Some(seconds) = headers
            .retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_secs(seconds));
        }
        let reset = headers
            .ratelimit_reset
            .and_then(|v| v.trim().parse::<i64>().ok())?;
        let exhausted = headers.ratelimit_remaining.map(str::trim) == Some("0");
        if exhausted || headers.ratelimit_remaining.is_none() {
            Some(Duration::from_secs(
                u64::try_from(reset.saturating_sub(now_unix))
                    .unwrap_or(0)
                    .max(1),
            ))
        } else {
            None
        }
    };
    match status {
        Some(200..=299) => NextStep::Done,
        None | Some(408) | Some(500..=599) => retry(backoff(attempt)),
        Some(429) => retry(told().unwrap_or_else(|| backoff(attempt))),
        Some(403) => match told() {
            Some(wait) => retry(wait),
            None => NextStep::GiveUp,
        },
        Some(_) => NextStep::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_forge_and_repository() {
        for url in [
            "https://github.com/acme/demo.git",
            "https://user:pw@github.com/acme/demo",
            "git@github.com:acme/demo.git",
            "ssh://git@github.com:22/acme/demo.git",
        ] {
            let target = StatusTarget::resolve(url, None, None, None).unwrap();
            assert_eq!(target.forge, StatusForge::GitHub, "{url}");
            assert_eq!(target.api_url, "https://api.github.com");
            assert_eq!(target.repository, "acme/demo", "{url}");
        }
        let ghe = StatusTarget::resolve(
            "https://ghe.example.com/acme/demo.git",
            Some(StatusForge::GitHub),
            None,
            None,
        )
        .unwrap();
        assert_eq!(ghe.api_url, "https://ghe.example.com/api/v3");
        let lab = StatusTarget::resolve("https://gitlab.com/group/sub/app.git", None, None, None)
            .unwrap();
        assert_eq!(lab.repository, "group/sub/app");
        assert_eq!(
            StatusTarget::resolve("https://git.example.com/a/b.git", None, None, None),
            Err(TargetError::UnknownForge("git.example.com".to_owned()))
        );
        assert_eq!(
            StatusTarget::resolve("file:///tmp/demo.git", None, None, None),
            Err(TargetError::NotAForgeUrl)
        );
        assert!(StatusTarget::resolve("https://github.com/a/b/c", None, None, None).is_err());
    }

    #[test]
    fn github_request_is_as_documented() {
        let target = StatusTarget::resolve(
            "https://github.com/acme/demo",
            None,
            None,
            Some("http://127.0.0.1:1/api/v3/"),
        )
        .unwrap();
        let content = StatusContent {
            environment: "Production",
            release: "1.0.3",
            target_url: Some("https://tako.example.com/ui/deployments/4"),
        };
        let request = target.request("tok", "abc", &Phase::Started, &content);
        assert_eq!(
            request.url,
            "http://127.0.0.1:1/api/v3/repos/acme/demo/statuses/abc"
        );
        assert!(
            request
                .headers
                .contains(&("Authorization", "Bearer tok".to_owned()))
        );
        assert_eq!(request.body["state"], "pending");
        assert_eq!(request.body["context"], "tako/Production");
        assert!(!format!("{request:?}").contains("tok\""));
        let long = "x".repeat(300);
        let content = StatusContent {
            environment: &long,
            ..content
        };
        let request = target.request("tok", "abc", &Phase::Failed, &content);
        assert_eq!(
            request.body["description"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_DESCRIPTION_CHARS
        );
    }

    #[test]
    fn a_pause_is_pending_and_names_its_step() {
        let content = StatusContent {
            environment: "Production",
            release: "1.0.3",
            target_url: None,
        };
        let paused = Phase::Paused {
            step: "Check".to_owned(),
        };
        let hub = StatusTarget::resolve("https://github.com/acme/demo", None, None, None).unwrap();
        let request = hub.request("tok", "abc", &paused, &content);
        assert_eq!(request.body["state"], "pending");
        assert_eq!(request.body["context"], "tako/Production");
        assert_eq!(
            request.body["description"],
            "Release 1.0.3 to Production: waiting for a person at step Check"
        );
        let lab = StatusTarget::resolve("https://gitlab.com/acme/demo", None, None, None).unwrap();
        let request = lab.request("tok", "abc", &paused, &content);
        assert_eq!(request.body["state"], "pending");
        assert_eq!(request.body["name"], "tako/Production");
        let request = lab.request("tok", "abc", &Phase::Started, &content);
        assert_eq!(request.body["state"], "running");
    }

    #[test]
    fn answers_decide_retries() {
        let none = RetryHeaders::default();
        assert_eq!(next_step(Some(201), none, 1, 0), NextStep::Done);
        assert_eq!(next_step(Some(401), none, 1, 0), NextStep::GiveUp);
        assert_eq!(next_step(Some(404), none, 1, 0), NextStep::GiveUp);
        assert_eq!(next_step(Some(422), none, 1, 0), NextStep::GiveUp);
        assert_eq!(next_step(Some(403), none, 1, 0), NextStep::GiveUp);
        let after = RetryHeaders {
            retry_after: Some("1"),
            ..none
        };
        assert_eq!(
            next_step(Some(403), after, 1, 0),
            NextStep::RetryAfter(Duration::from_secs(1))
        );
        let reset = RetryHeaders {
            ratelimit_remaining: Some("0"),
            ratelimit_reset: Some("1030"),
            ..none
        };
        assert_eq!(
            next_step(Some(403), reset, 1, 1000),
            NextStep::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            next_step(None, none, 2, 0),
            NextStep::RetryAfter(Duration::from_secs(4))
        );
        assert_eq!(
            next_step(Some(502), none, MAX_ATTEMPTS, 0),
            NextStep::GiveUp
        );
    }
}
