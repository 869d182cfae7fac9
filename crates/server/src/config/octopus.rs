//! The allow-list of Octopus Deploy servers pushes may be forwarded to
//! (`[[octopus]]` in `tako.toml`, octopus-forward.md §1): each entry's URL
//! normalised as the takofile's `Server` is, its API key named by a file or
//! an environment variable (read by the binary through
//! [`resolve_api_keys`], checked against `^API-[A-Z0-9]+$`, never echoed),
//! its space, mode, polling and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tako_core::octopus::{ServerUrl, normalize_server_url};

use super::ConfigError;

/// One `[[octopus]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OctopusEntry {
    /// `url`.
    pub url: Option<String>,
    /// `api_key_file`.
    pub api_key_file: Option<String>,
    /// `api_key_env`.
    pub api_key_env: Option<String>,
    /// `space`.
    pub space: Option<String>,
    /// `mode`.
    pub mode: Option<String>,
    /// `poll_interval`.
    pub poll_interval: Option<String>,
    /// `wait_timeout`.
    pub wait_timeout: Option<String>,
    /// `ca_file`.
    pub ca_file: Option<String>,
}

/// Which calls create and deploy the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `resources`: F3–F9, any Octopus 2019.1+.
    Resources,
    /// `executions`: E1, E2 (Octopus 2022.3+).
    Executions,
}

impl Mode {
    /// Its name (`resources`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Resources => "resources",
            Mode::Executions => "executions",
        }
    }
}

/// A space, by id (`Spaces-1`) or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Space {
    /// `Spaces-<n>`.
    Id(String),
    /// A name, looked up with F2.
    Name(String),
}

/// Where an entry's API key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `api_key_file`.
    File(PathBuf),
    /// `api_key_env`.
    Env(String),
}

/// An Octopus API key; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key, for the `X-Octopus-ApiKey` header and the masker only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(********)")
    }
}

/// One allow-listed Octopus server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OctopusServer {
    /// The normalised URL (compared with the takofile's `Server`).
    pub url: ServerUrl,
    /// Where the key comes from.
    pub key_source: KeySource,
    /// The key, once [`resolve_api_keys`] read it.
    pub api_key: Option<ApiKey>,
    /// The space.
    pub space: Space,
    /// The mode.
    pub mode: Mode,
    /// How often the task is polled.
    pub poll_interval: Duration,
    /// How long the task is followed.
    pub wait_timeout: Duration,
    /// An extra CA bundle (PEM).
    pub ca_file: Option<PathBuf>,
}

/// Validates the `[[octopus]]` entries: `entry` names each in errors
/// (`octopus[2]`).
pub fn validate(entries: &[OctopusEntry], origin: &str) -> Result<Vec<OctopusServer>, ConfigError> {
    let mut servers: Vec<OctopusServer> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            setting: format!("octopus[{index}].{field}"),
            origin: origin.to_owned(),
            message,
        };
        let raw = entry.url.as_deref().ok_or_else(|| {
            invalid(
                "url",
                "is required: the Octopus server's URL, like https://octopus.example.com"
                    .to_owned(),
            )
        })?;
        let url = normalize_server_url(raw).map_err(|e| invalid("url", e.to_string()))?;
        if !url.is_https() && !url.is_loopback() {
            return Err(invalid(
                "url",
                format!(
                    "must be https (plain http only for 127.0.0.1, ::1 or localhost), got {url}"
                ),
            ));
        }
        if let Some(other) = servers.iter().position(|s| s.url == url) {
            return Err(invalid(
                "url",
                format!("{url} is already octopus[{other}]: each server once"),
            ));
        }
        let key_source = match (&entry.api_key_file, &entry.api_key_env) {
            (Some(file), None) if !file.trim().is_empty() => {
                KeySource::File(PathBuf::from(file.trim()))
            }
            (None, Some(name)) if valid_env_name(name.trim()) => {
                KeySource::Env(name.trim().to_owned())
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "api_key_env",
                    "must name an environment variable (letters, digits, _), like TAKO_OCTOPUS_KEY"
                        .to_owned(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "api_key_file",
                    "set exactly one of api_key_file and api_key_env, not both".to_owned(),
                ));
            }
            _ => {
                return Err(invalid(
                    "api_key_file",
                    "the API key is required: set api_key_file (a file holding it) or api_key_env \
                     (a variable holding it); never put it in a URL or the takofile"
                        .to_owned(),
                ));
            }
        };
        let space = match entry.space.as_deref().map(str::trim) {
            None => Space::Id("Spaces-1".to_owned()),
            Some("") => return Err(invalid("space", "must not be empty".to_owned())),
            Some(text) if is_space_id(text) => Space::Id(text.to_owned()),
            Some(text) => Space::Name(text.to_owned()),
        };
        let mode = match entry.mode.as_deref().map(str::trim) {
            None | Some("resources") => Mode::Resources,
            Some("executions") => Mode::Executions,
            Some(other) => {
                return Err(invalid(
                    "mode",
                    format!("expected resources or executions, got {other:?}"),
                ));
            }
        };
        let duration = |field: &str, value: &Option<String>, default: u64| match value {
            None => Ok(Duration::from_secs(default)),
            Some(text) => humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid(
                        field,
                        format!("expected a duration like 10s or 1h, got {text:?}"),
                    )
                }),
        };
        let poll_interval = duration("poll_interval", &entry.poll_interval, 10)?;
        let wait_timeout = duration("wait_timeout", &entry.wait_timeout, 3600)?;
        let ca_file = entry
            .ca_file
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        servers.push(OctopusServer {
            url,
            key_source,
            api_key: None,
            space,
            mode,
            poll_interval,
            wait_timeout,
            ca_file,
        });
    }
    Ok(servers)
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_space_id(text: &str) -> bool {
    text.strip_prefix("Spaces-")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `key` has the form of an Octopus API key (`API-` and capitals
/// or digits).
pub fn is_api_key(key: &str) -> bool {
    key.strip_prefix("API-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

/// Reads every entry's key through `read_file` and `lookup_env` (the binary
/// passes the file system and `std::env::var`). An error names the entry and
/// where the key should be, never the value.
pub fn resolve_api_keys(
    servers: &mut [OctopusServer],
    read_file: impl Fn(&std::path::Path) -> std::io::Result<String>,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (index, server) in servers.iter_mut().enumerate() {
        let (field, origin, text) = match &server.key_source {
            KeySource::File(path) => {
                let text = read_file(path).map_err(|e| ConfigError::Invalid {
                    setting: format!("octopus[{index}].api_key_file"),
                    origin: format!("the Octopus server {}", server.url),
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                ("api_key_file", path.display().to_string(), text)
            }
            KeySource::Env(name) => {
                let text = lookup_env(name).ok_or_else(|| ConfigError::Invalid {
                    setting: format!("octopus[{index}].api_key_env"),
                    origin: format!("the Octopus server {}", server.url),
                    message: format!("the environment variable {name} is not set"),
                })?;
                ("api_key_env", name.clone(), text)
            }
        };
        let key = text.trim();
        if !is_api_key(key) {
            return Err(ConfigError::Invalid {
                setting: format!("octopus[{index}].{field}"),
                origin: format!("the Octopus server {}", server.url),
                message: format!(
                    "{origin} does not hold an Octopus API key (API- followed by capital letters and digits)"
                ),
            });
        }
        server.api_key = Some(ApiKey(key.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> OctopusEntry {
        OctopusEntry {
            url: Some(url.to_owned()),
            api_key_env: Some("TAKO_OCTOPUS_KEY".to_owned()),
            ..OctopusEntry::default()
        }
    }

    #[test]
    fn entries_are_validated_and_named() {
        let servers =
            validate(&[entry("https://Deploy.example.com:443/api/")], "tako.toml").unwrap();
        assert_eq!(servers[0].url.base(), "https://deploy.example.com");
        assert_eq!(servers[0].space, Space::Id("Spaces-1".to_owned()));
        assert_eq!(servers[0].mode, Mode::Resources);
        assert_eq!(servers[0].poll_interval, Duration::from_secs(10));
        let error = validate(
            &[
                entry("https://a.example.com"),
                entry("https://A.example.com/"),
            ],
            "tako.toml",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("octopus[1].url from tako.toml"),
            "{error}"
        );
        let error = validate(&[entry("http://octopus.example.com")], "tako.toml").unwrap_err();
        assert!(error.to_string().contains("must be https"), "{error}");
        assert!(validate(&[entry("http://127.0.0.1:9/")], "tako.toml").is_ok());
        let mut both = entry("https://a.example.com");
        both.api_key_file = Some("/k".to_owned());
        assert!(validate(&[both], "tako.toml").is_err());
        let mut named = entry("https://a.example.com");
        named.space = Some("Team A".to_owned());
        named.mode = Some("executions".to_owned());
        let servers = validate(&[named], "tako.toml").unwrap();
        assert_eq!(servers[0].space, Space::Name("Team A".to_owned()));
        assert_eq!(servers[0].mode, Mode::Executions);
        let mut bad = entry("https://a.example.com");
        bad.mode = Some("fast".to_owned());
        assert!(validate(&[bad], "tako.toml").is_err());
    }

    #[test]
    fn keys_are_checked_and_never_echoed() {
        let mut servers = validate(&[entry("https://a.example.com")], "tako.toml").unwrap();
        let error = resolve_api_keys(
            &mut servers,
            |_| unreachable_file(),
            |_| Some("api-lowercase-secret".to_owned()),
        )
        .unwrap_err();
        assert!(!error.to_string().contains("lowercase-secret"), "{error}");
        assert!(error.to_string().contains("TAKO_OCTOPUS_KEY"), "{error}");
        let error = resolve_api_keys(&mut servers, |_| unreachable_file(), |_| None).unwrap_err();
        assert!(error.to_string().contains("is not set"), "{error}");
        resolve_api_keys(
            &mut servers,
            |_| unreachable_file(),
            |_| Some("API-ABC123\n".to_owned()),
        )
        .unwrap();
        assert_eq!(servers[0].api_key.as_ref().unwrap().expose(), "API-ABC123");
        assert!(!format!("{servers:?}").contains("ABC123"));
    }

    fn unreachable_file() -> std::io::Result<String> {
        Err(std::io::Error::other("no files here"))
    }
}
