//! Forwarding a push to an Octopus Deploy server (octopus-forward.md),
//! the parts without I/O: the allow-list's URL normalisation (§2.1), the
//! Executions API's version gate (§4), Octopus's exact name matching, the
//! mapping of an Octopus task's state to a deployment state (§5), the
//! error kinds (§6) and the marker that recognises Tako's own release and
//! deployment after a lost response (§7).

use crate::state::DeploymentState;

/// A server URL after normalisation: the origin (`scheme://host[:port]`)
/// and the base path (`/octopus`, or empty), compared as strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUrl {
    origin: String,
    base_path: String,
}

impl ServerUrl {
    /// `scheme://host[:port]`, without a path.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Origin and base path: what every request's `/api/...` is appended to.
    pub fn base(&self) -> String {
        format!("{}{}", self.origin, self.base_path)
    }

    /// Whether the host is a loopback one (`127.0.0.1`, `::1`, `localhost`),
    /// where plain `http` is allowed.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let host = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        };
        matches!(host, "127.0.0.1" | "::1" | "localhost")
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.origin.starts_with("https://")
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base())
    }
}

/// Why a URL cannot name an Octopus server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `scheme://host...`.
    #[error("not an absolute URL (expected https://HOST[/PATH])")]
    NotAbsolute,
    /// Neither `http` nor `https`.
    #[error("the scheme must be http or https, not {0}")]
    Scheme(String),
    /// `user:password@`.
    #[error("a URL with user information never matches (credentials do not belong in a URL)")]
    UserInfo,
    /// `?...`.
    #[error("a URL with a query string never matches")]
    Query,
    /// `#...`.
    #[error("a URL with a fragment never matches")]
    Fragment,
    /// No host, or a port that is not a number.
    #[error("the host or port is not valid")]
    Host,
}

/// Normalises a server URL as §2.1 says: scheme and host lower-cased, the
/// scheme's default port dropped, trailing `/`, one final `api` segment and
/// trailing `/` again removed.
pub fn normalize_server_url(text: &str) -> Result<ServerUrl, UrlError> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://").ok_or(UrlError::NotAbsolute)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(UrlError::Scheme(scheme));
    }
    if rest.contains('#') {
        return Err(UrlError::Fragment);
    }
    if rest.contains('?') {
        return Err(UrlError::Query);
    }
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or(UrlError::Host)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::Host)?),
        };
        (format!("[{}]", host.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    if !valid_host {
        return Err(UrlError::Host);
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| UrlError::Host)?),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let origin = match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    };
    let mut path = path.trim_end_matches('/');
    if let Some((head, last)) = path.rsplit_once('/')
        && last.eq_ignore_ascii_case("api")
    {
        path = head;
    }
    let path = path.trim_end_matches('/');
    Ok(ServerUrl {
        origin,
        base_path: path.to_owned(),
    })
}

/// Octopus's exact name match: both sides trimmed, compared
/// case-insensitively.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The oldest Octopus with the Executions API (§4).
pub const EXECUTIONS_SINCE: (u64, u64, u64) = (2022, 3, 5512);

/// Whether an Octopus `Version` (`YYYY.N[.build]`) has the Executions API:
/// at least 2022.3.5512, or a development build (`0.0.0…`).
pub fn supports_executions(version: &str) -> bool {
    let version = version.trim();
    if version.starts_with("0.0.0") {
        return true;
    }
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u64> = core
        .split('.')
        .map_while(|p| p.parse::<u64>().ok())
        .collect();
    let (Some(year), Some(minor)) = (parts.first(), parts.get(1)) else {
        return false;
    };
    let build = parts.get(2).copied().unwrap_or(0);
    (*year, *minor, build) >= EXECUTIONS_SINCE
}

/// What an Octopus task's state means for the Tako deployment (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Still going (`Queued`, `Executing`, `Cancelling`).
    Running,
    /// Ended in this deployment state.
    Ended(DeploymentState),
}

/// Maps an Octopus task `State` to a deployment state; an unknown state
/// counts as still running until Octopus says `IsCompleted`.
pub fn task_outcome(state: &str, is_completed: bool) -> TaskOutcome {
    match state {
        "Success" => TaskOutcome::Ended(DeploymentState::Success),
        "Failed" | "TimedOut" => TaskOutcome::Ended(DeploymentState::Failed),
        "Canceled" => TaskOutcome::Ended(DeploymentState::Cancelled),
        "Queued" | "Executing" | "Cancelling" => TaskOutcome::Running,
        _ if is_completed => TaskOutcome::Ended(DeploymentState::Failed),
        _ => TaskOutcome::Running,
    }
}

/// The marker in a release's notes and a deployment's comments.
pub fn delivery_marker(delivery: &str) -> String {
    format!("Tako delivery {delivery}")
}

/// The release notes sent to Octopus: the push's notes, then the marker
/// line.
pub fn release_notes(notes: &str, delivery: &str) -> String {
    let notes = notes.trim_end();
    let last = format!("Created by {}", delivery_marker(delivery));
    if notes.is_empty() {
        last
    } else {
        format!("{notes}\n\n{last}")
    }
}

/// Whether `text` carries the marker of `delivery` (the marker ends at a
/// line end or the text's end, so `abc` does not match `abcd`).
pub fn has_marker(text: &str, delivery: &str) -> bool {
    let marker = delivery_marker(delivery);
    text.match_indices(&marker).any(|(at, _)| {
        text[at + marker.len()..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    })
}

/// The error kinds of a failed forward (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// DNS, connect, TLS or timeout, after retries.
    Unreachable,
    /// Any 3xx.
    Redirect,
    /// F0 not JSON or no `ApiVersion` starting `3.`.
    NotOctopus,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404 on a by-ID route.
    NotFound,
    /// No space of that name.
    SpaceNotFound,
    /// No environment of that name.
    EnvironmentNotFound,
    /// No project of that name.
    ProjectNotFound,
    /// No default channel.
    ChannelNotFound,
    /// The project is disabled.
    ProjectDisabled,
    /// The project is stored in git.
    ProjectVersionControlled,
    /// No `NextVersionIncrement`.
    NoVersion,
    /// A package's version cannot be found.
    PackageVersionUnavailable,
    /// `CreateRelease: false` and no release.
    NoRelease,
    /// Too old for the Executions API.
    ExecutionsUnsupported,
    /// 400/409 on F8 or E1.
    ReleaseRejected,
    /// 400/409 on F9 or E2.
    DeploymentRejected,
    /// 429 after retries.
    RateLimited,
    /// 5xx after retries.
    ServerError,
}

impl ErrorKind {
    /// Its name on the wire (`release_rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "octopus_unreachable",
            ErrorKind::Redirect => "octopus_redirect",
            ErrorKind::NotOctopus => "octopus_not_octopus",
            ErrorKind::Unauthorized => "octopus_unauthorized",
            ErrorKind::Forbidden => "octopus_forbidden",
            ErrorKind::NotFound => "octopus_not_found",
            ErrorKind::SpaceNotFound => "space_not_found",
            ErrorKind::EnvironmentNotFound => "environment_not_found",
            ErrorKind::ProjectNotFound => "project_not_found",
            ErrorKind::ChannelNotFound => "channel_not_found",
            ErrorKind::ProjectDisabled => "project_disabled",
            ErrorKind::ProjectVersionControlled => "project_version_controlled",
            ErrorKind::NoVersion => "no_version",
            ErrorKind::PackageVersionUnavailable => "package_version_unavailable",
            ErrorKind::NoRelease => "no_release",
            ErrorKind::ExecutionsUnsupported => "executions_unsupported",
            ErrorKind::ReleaseRejected => "release_rejected",
            ErrorKind::DeploymentRejected => "deployment_rejected",
            ErrorKind::RateLimited => "octopus_rate_limited",
            ErrorKind::ServerError => "octopus_server_error",
        }
    }

    /// The kind an HTTP status means, whatever the call: `None` for a status
    /// whose meaning depends on the call (400, 404, 409).
    pub fn of_status(status: u16) -> Option<ErrorKind> {
        match status {
            300..=399 => Some(ErrorKind::Redirect),
            401 => Some(ErrorKind::Unauthorized),
            403 => Some(ErrorKind::Forbidden),
            429 => Some(ErrorKind::RateLimited),
            500..=599 => Some(ErrorKind::ServerError),
            _ => None,
        }
    }
}

/// The `detail` of an error: Octopus's `ErrorMessage` and every entry of
/// `Errors`, joined with `: `.
pub fn error_detail(message: Option<&str>, errors: &[String]) -> String {
    message
        .into_iter()
        .chain(errors.iter().map(String::as_str))
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_the_spec() {
        let a = normalize_server_url("https://Deploy.D.evops.co:443/api/").unwrap();
        let b = normalize_server_url("https://deploy.d.evops.co").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.base(), "https://deploy.d.evops.co");
        let c = normalize_server_url("http://127.0.0.1:8080/octopus/API//").unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:8080/octopus");
        assert_eq!(c.origin(), "http://127.0.0.1:8080");
        assert!(c.is_loopback());
        assert!(!a.is_loopback());
        assert!(
            normalize_server_url("http://[::1]:80/")
                .unwrap()
                .is_loopback()
        );
        assert_eq!(
            normalize_server_url("https://u:p@host/"),
            Err(UrlError::UserInfo)
        );
        assert_eq!(
            normalize_server_url("https://host/?apikey=API-X"),
            Err(UrlError::Query)
        );
        assert_eq!(
            normalize_server_url("https://host/#x"),
            Err(UrlError::Fragment)
        );
        assert!(matches!(
            normalize_server_url("ftp://host"),
            Err(UrlError::Scheme(_))
        ));
        assert_eq!(normalize_server_url("host"), Err(UrlError::NotAbsolute));
        assert_eq!(normalize_server_url("https://host:x"), Err(UrlError::Host));
        // Only one final api segment goes.
        assert_eq!(
            normalize_server_url("https://h/api/api").unwrap().base(),
            "https://h/api"
        );
    }

    #[test]
    fn the_version_gate() {
        assert!(supports_executions("2024.1.0"));
        assert!(supports_executions("2022.3.5512"));
        assert!(!supports_executions("2022.3.5511"));
        assert!(!supports_executions("2022.2.0"));
        assert!(supports_executions("2022.4"));
        assert!(supports_executions("0.0.0-local"));
        assert!(!supports_executions("garbage"));
        assert!(!supports_executions("2019.1.0"));
    }

    #[test]
    fn states_and_markers() {
        assert_eq!(task_outcome("Executing", false), TaskOutcome::Running);
        assert_eq!(
            task_outcome("TimedOut", true),
            TaskOutcome::Ended(DeploymentState::Failed)
        );
        assert_eq!(
            task_outcome("Canceled", true),
            TaskOutcome::Ended(DeploymentState::Cancelled)
        );
        let notes = release_notes("- abc1234 fix (Ann)", "d-1");
        assert!(has_marker(&notes, "d-1"));
        assert!(!has_marker(&notes, "d-"));
        assert!(!has_marker("Tako delivery d-12", "d-1"));
        assert!(same_name(" production ", "Production"));
        assert_eq!(
            error_detail(Some("There was a problem"), &["Release exists".to_owned()]),
            "There was a problem: Release exists"
        );
    }
}
