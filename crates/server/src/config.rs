//! Server settings: defaults, a `tako.toml` file, `TAKO_*` environment
//! variables and command-line flags, each overriding the one before.
//!
//! This module only merges and validates; reading the file and the
//! environment is the binary's job, so every rule here is testable without
//! touching the machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub mod octopus;

/// Every setting of a running server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Where the database (SQLite), git mirrors, working directories and the
    /// master key live (`./tako-data`).
    pub data_dir: PathBuf,
    /// `sqlite://…` (default: `<data_dir>/tako.db`) or `postgres://…`.
    pub database_url: String,
    /// A file holding the PostgreSQL password (when it is not in the URL).
    pub database_password_file: Option<PathBuf>,
    /// CA certificates (PEM) to verify PostgreSQL's TLS certificate with,
    /// besides the system's.
    pub database_ca_file: Option<PathBuf>,
    /// The most PostgreSQL connections this node opens.
    pub database_pool_size: usize,
    /// How long this node waits for a PostgreSQL connection (a new one, or
    /// a free one from the pool) before the database counts as unavailable.
    pub database_connect_timeout: Duration,
    /// The server's public base URL, for links in notifications.
    pub public_url: Option<String>,
    /// The server-wide webhook secret (projects may have their own).
    pub webhook_secret: Option<String>,
    /// How many deployments may run at once on this node, across all
    /// projects (0: this node runs none; it serves the API and the intake).
    pub max_concurrent_deployments: usize,
    /// How much lower than the intake's the CPU priority of the deployments'
    /// threads and scripts is (a nice value, 0 to 19; 0: the same).
    pub deployment_nice: u8,
    /// How long a finished deployment's working directory is kept.
    pub workdir_retention: Duration,
    /// Retention: the newest releases kept per project and environment
    /// (`retention_releases`, default all).
    pub retention_releases: tako_takofile::KeepReleases,
    /// How long a finished deployment's task log is kept
    /// (`retention_task_logs`, default forever).
    pub retention_task_logs: tako_takofile::KeepFor,
    /// How long a routed webhook delivery is kept (`retention_deliveries`,
    /// default 30 days).
    pub retention_deliveries: tako_takofile::KeepFor,
    /// How long an audit entry is kept (`retention_audit_log`, default 90
    /// days, as Octopus).
    pub retention_audit_log: tako_takofile::KeepFor,
    /// How often retention runs in the background (`retention_interval`,
    /// default 1h; zero: never, `tako admin retention run` still works).
    pub retention_interval: Duration,
    /// Register a project from the takofile's `Project` on its first
    /// verified push.
    pub auto_register_projects: bool,
    /// Accept unsigned webhooks when no secret is configured (local trials).
    pub insecure_unsigned_webhooks: bool,
    /// The master key file (default: `<data_dir>/secret.key`).
    pub master_key_file: Option<PathBuf>,
    /// How long a step's job waits for its agent to take it.
    pub agent_connect_timeout: Duration,
    /// How often the remotes' branch heads are compared with the pushes
    /// Tako saw, to recover missed ones (also at start-up); zero: never.
    pub missed_push_sweep: Duration,
    /// GitHub's API base URL for commit statuses of projects that do not set
    /// their own (`https://HOST/api/v3` for GitHub Enterprise; default
    /// `https://api.github.com`).
    pub github_api_url: Option<String>,
    /// The certificate and key to terminate TLS with (both or neither).
    pub tls: Option<TlsFiles>,
    /// How long a running deployment stays this node's without renewal
    /// (renewed twice a second while it runs); past it, any node's sweep
    /// marks it interrupted. The same on every node of a cluster.
    pub deployment_lease: Duration,
    /// How often this node looks for deployments whose lease ran out.
    pub lease_sweep: Duration,
    /// The Octopus Deploy servers pushes may be forwarded to
    /// (`[[octopus]]`, from the file only).
    pub octopus: Vec<octopus::OctopusServer>,
}

/// The PEM files `tako serve` terminates TLS with (`tls_cert`, `tls_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (`tls_cert`).
    pub cert: PathBuf,
    /// The certificate's private key (`tls_key`).
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("tako-data"),
            database_url: String::new(),
            database_password_file: None,
            database_ca_file: None,
            database_pool_size: 16,
            database_connect_timeout: Duration::from_secs(5),
            public_url: None,
            webhook_secret: None,
            max_concurrent_deployments: 4,
            deployment_nice: 10,
            workdir_retention: Duration::from_secs(24 * 3600),
            retention_releases: tako_takofile::KeepReleases::All,
            retention_task_logs: tako_takofile::KeepFor::Forever,
            retention_deliveries: tako_takofile::KeepFor::For(Duration::from_secs(30 * 86_400)),
            retention_audit_log: tako_takofile::KeepFor::For(Duration::from_secs(90 * 86_400)),
            retention_interval: Duration::from_secs(3600),
            auto_register_projects: false,
            insecure_unsigned_webhooks: false,
            master_key_file: None,
            agent_connect_timeout: Duration::from_secs(300),
            missed_push_sweep: Duration::from_secs(300),
            github_api_url: None,
            tls: None,
            deployment_lease: Duration::from_secs(30),
            lease_sweep: Duration::from_secs(5),
            octopus: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The master key file, with the default (`<data_dir>/secret.key`).
    pub fn effective_master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The database URL, with the default (`sqlite://<data_dir>/tako.db`)
    /// filled in.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("tako.db").display())
        } else {
            self.database_url.clone()
        }
    }
}

/// A setting that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not valid TOML or has unknown keys.
    #[error("{source_name}: {message}")]
    File {
        /// The file's name.
        source_name: String,
        /// What is wrong, with its position.
        message: String,
    },
    /// A value has the wrong form.
    #[error("{setting} from {origin}: {message}")]
    Invalid {
        /// The setting (`listen`).
        setting: String,
        /// Where it came from (`tako.toml`, `TAKO_LISTEN`, `--listen`).
        origin: String,
        /// What was expected.
        message: String,
    },
}

/// One layer of settings, every field optional; all values as text so each
/// layer is validated the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// `listen`.
    pub listen: Option<String>,
    /// `data_dir`.
    pub data_dir: Option<String>,
    /// `database_url`.
    pub database_url: Option<String>,
    /// `database_password_file`.
    pub database_password_file: Option<String>,
    /// `database_ca_file`.
    pub database_ca_file: Option<String>,
    /// `database_pool_size` (`16`).
    #[serde(default, deserialize_with = "text_or_number")]
    pub database_pool_size: Option<String>,
    /// `database_connect_timeout` (`5s`).
    pub database_connect_timeout: Option<String>,
    /// `public_url`.
    pub public_url: Option<String>,
    /// `webhook_secret`.
    pub webhook_secret: Option<String>,
    /// `max_concurrent_deployments`.
    #[serde(default, deserialize_with = "text_or_number")]
    pub max_concurrent_deployments: Option<String>,
    /// `deployment_nice` (`10`).
    #[serde(default, deserialize_with = "text_or_number")]
    pub deployment_nice: Option<String>,
    /// `workdir_retention` (`24h`, `30m`).
    pub workdir_retention: Option<String>,
    /// `retention_releases` (`all`, `10`).
    #[serde(default, deserialize_with = "text_or_number")]
    pub retention_releases: Option<String>,
    /// `retention_task_logs` (`forever`, `30d`).
    pub retention_task_logs: Option<String>,
    /// `retention_deliveries` (`forever`, `30d`).
    pub retention_deliveries: Option<String>,
    /// `retention_audit_log` (`forever`, `90d`).
    pub retention_audit_log: Option<String>,
    /// `retention_interval` (`1h`; `off` or `0`: never in the background).
    pub retention_interval: Option<String>,
    /// `auto_register_projects`.
    #[serde(default, deserialize_with = "text_or_bool")]
    pub auto_register_projects: Option<String>,
    /// `insecure_unsigned_webhooks`.
    #[serde(default, deserialize_with = "text_or_bool")]
    pub insecure_unsigned_webhooks: Option<String>,
    /// `master_key_file`.
    pub master_key_file: Option<String>,
    /// `agent_connect_timeout` (`5m`).
    pub agent_connect_timeout: Option<String>,
    /// `missed_push_sweep` (`5m`; `off` or `0`: never).
    pub missed_push_sweep: Option<String>,
    /// `github_api_url`.
    pub github_api_url: Option<String>,
    /// `tls_cert`: the certificate chain (PEM) to terminate TLS with.
    pub tls_cert: Option<String>,
    /// `tls_key`: its private key (PEM).
    pub tls_key: Option<String>,
    /// `deployment_lease` (`30s`).
    pub deployment_lease: Option<String>,
    /// `lease_sweep` (`5s`).
    pub lease_sweep: Option<String>,
    /// `[[octopus]]`: the Octopus servers pushes may be forwarded to (a
    /// list of tables: from the file only).
    pub octopus: Option<Vec<octopus::OctopusEntry>>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Number(n) => n.to_string(),
        Raw::Text(t) => t,
    }))
}

fn text_or_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Bool(b) => b.to_string(),
        Raw::Text(t) => t,
    }))
}

/// The names of the settings, as keys, `TAKO_*` variables and flags.
pub const SETTINGS: [&str; 27] = [
    "listen",
    "data_dir",
    "database_url",
    "database_password_file",
    "database_ca_file",
    "database_pool_size",
    "database_connect_timeout",
    "public_url",
    "webhook_secret",
    "max_concurrent_deployments",
    "deployment_nice",
    "workdir_retention",
    "auto_register_projects",
    "insecure_unsigned_webhooks",
    "master_key_file",
    "agent_connect_timeout",
    "missed_push_sweep",
    "github_api_url",
    "tls_cert",
    "tls_key",
    "deployment_lease",
    "lease_sweep",
    "retention_releases",
    "retention_task_logs",
    "retention_deliveries",
    "retention_audit_log",
    "retention_interval",
];

impl ConfigLayer {
    /// Parses a `tako.toml`.
    pub fn from_toml(source_name: &str, text: &str) -> Result<ConfigLayer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            source_name: source_name.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// The layer given by `TAKO_<SETTING>` variables, from any lookup (the
    /// binary passes `std::env::var`).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> ConfigLayer {
        let get = |name: &str| lookup(&format!("TAKO_{}", name.to_ascii_uppercase()));
        ConfigLayer {
            listen: get("listen"),
            data_dir: get("data_dir"),
            database_url: get("database_url"),
            database_password_file: get("database_password_file"),
            database_ca_file: get("database_ca_file"),
            database_pool_size: get("database_pool_size"),
            database_connect_timeout: get("database_connect_timeout"),
            public_url: get("public_url"),
            webhook_secret: get("webhook_secret"),
            max_concurrent_deployments: get("max_concurrent_deployments"),
            deployment_nice: get("deployment_nice"),
            workdir_retention: get("workdir_retention"),
            auto_register_projects: get("auto_register_projects"),
            insecure_unsigned_webhooks: get("insecure_unsigned_webhooks"),
            master_key_file: get("master_key_file"),
            agent_connect_timeout: get("agent_connect_timeout"),
            missed_push_sweep: get("missed_push_sweep"),
            github_api_url: get("github_api_url"),
            tls_cert: get("tls_cert"),
            tls_key: get("tls_key"),
            deployment_lease: get("deployment_lease"),
            lease_sweep: get("lease_sweep"),
            retention_releases: get("retention_releases"),
            retention_task_logs: get("retention_task_logs"),
            retention_deliveries: get("retention_deliveries"),
            retention_audit_log: get("retention_audit_log"),
            retention_interval: get("retention_interval"),
            octopus: None,
        }
    }

    fn entries(&self) -> BTreeMap<&'static str, &str> {
        let mut map = BTreeMap::new();
        let fields: [(&'static str, &Option<String>); 27] = [
            ("listen", &self.listen),
            ("data_dir", &self.data_dir),
            ("database_url", &self.database_url),
            ("database_password_file", &self.database_password_file),
            ("database_ca_file", &self.database_ca_file),
            ("database_pool_size", &self.database_pool_size),
            ("database_connect_timeout", &self.database_connect_timeout),
            ("public_url", &self.public_url),
            ("webhook_secret", &self.webhook_secret),
            (
                "max_concurrent_deployments",
                &self.max_concurrent_deployments,
            ),
            ("deployment_nice", &self.deployment_nice),
            ("workdir_retention", &self.workdir_retention),
            ("auto_register_projects", &self.auto_register_projects),
            (
                "insecure_unsigned_webhooks",
                &self.insecure_unsigned_webhooks,
            ),
            ("master_key_file", &self.master_key_file),
            ("agent_connect_timeout", &self.agent_connect_timeout),
            ("missed_push_sweep", &self.missed_push_sweep),
            ("github_api_url", &self.github_api_url),
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
            ("deployment_lease", &self.deployment_lease),
            ("lease_sweep", &self.lease_sweep),
            ("retention_releases", &self.retention_releases),
            ("retention_task_logs", &self.retention_task_logs),
            ("retention_deliveries", &self.retention_deliveries),
            ("retention_audit_log", &self.retention_audit_log),
            ("retention_interval", &self.retention_interval),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                map.insert(name, value.as_str());
            }
        }
        map
    }
}

/// Where a layer came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File,
    /// `TAKO_*` environment variables.
    Environment,
    /// Command-line flags.
    Flags,
}

impl Origin {
    fn describe(self, setting: &str) -> String {
        match self {
            Origin::File => format!("the configuration file (key {setting})"),
            Origin::Environment => format!("TAKO_{}", setting.to_ascii_uppercase()),
            Origin::Flags => format!("--{}", setting.replace('_', "-")),
        }
    }
}

/// Applies layers in order (later ones win) over the defaults.
pub fn merge(layers: &[(Origin, ConfigLayer)]) -> Result<ServerConfig, ConfigError> {
    let mut config = ServerConfig::default();
    let mut tls_cert: Option<(PathBuf, Origin)> = None;
    let mut tls_key: Option<(PathBuf, Origin)> = None;
    for (origin, layer) in layers {
        if let Some(entries) = &layer.octopus {
            config.octopus = octopus::validate(entries, &origin.describe("octopus"))?;
        }
        for (setting, value) in layer.entries() {
            let invalid = |message| ConfigError::Invalid {
                setting: setting.to_owned(),
                origin: origin.describe(setting),
                message,
            };
            match setting {
                "tls_cert" => tls_cert = Some((path_setting(value).map_err(invalid)?, *origin)),
                "tls_key" => tls_key = Some((path_setting(value).map_err(invalid)?, *origin)),
                _ => apply(&mut config, setting, value).map_err(invalid)?,
            }
        }
    }
    config.tls = match (tls_cert, tls_key) {
        (Some((cert, _)), Some((key, _))) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some((_, origin)), None) => {
            return Err(ConfigError::Invalid {
                setting: "tls_cert".to_owned(),
                origin: origin.describe("tls_cert"),
                message: "tls_key is not set: set both tls_cert (the certificate chain, PEM) \
                          and tls_key (its private key, PEM) to serve HTTPS, or neither"
                    .to_owned(),
            });
        }
        (None, Some((_, origin))) => {
            return Err(ConfigError::Invalid {
                setting: "tls_key".to_owned(),
                origin: origin.describe("tls_key"),
                message: "tls_cert is not set: set both tls_cert (the certificate chain, PEM) \
                          and tls_key (its private key, PEM) to serve HTTPS, or neither"
                    .to_owned(),
            });
        }
    };
    Ok(config)
}

fn path_setting(value: &str) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        return Err("must not be empty (leave it out instead)".to_owned());
    }
    Ok(PathBuf::from(value.trim()))
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

fn apply(config: &mut ServerConfig, setting: &str, value: &str) -> Result<(), String> {
    match setting {
        "listen" => {
            config.listen = value.trim().parse().map_err(|_| {
                format!("expected an address and port like 127.0.0.1:8080, got {value:?}")
            })?;
        }
        "master_key_file" => {
            if value.trim().is_empty() {
                return Err("must not be empty".to_owned());
            }
            config.master_key_file = Some(PathBuf::from(value.trim()));
        }
        "database_password_file" => {
            config.database_password_file = Some(path_setting(value)?);
        }
        "database_ca_file" => {
            config.database_ca_file = Some(path_setting(value)?);
        }
        "database_pool_size" => {
            config.database_pool_size = value
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 2 && *n <= 1024)
                .ok_or_else(|| format!("expected a whole number from 2 to 1024, got {value:?}"))?;
        }
        "database_connect_timeout" => {
            config.database_connect_timeout = humantime::parse_duration(value.trim())
                .ok()
                .filter(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(600))
                .ok_or_else(|| {
                    format!("expected a duration from 100ms to 10m like 5s, got {value:?}")
                })?;
        }
        "data_dir" => {
            if value.trim().is_empty() {
                return Err("must not be empty".to_owned());
            }
            config.data_dir = PathBuf::from(value.trim());
        }
        "database_url" => {
            let value = value.trim();
            if !(value.starts_with("sqlite://")
                || value.starts_with("postgres://")
                || value.starts_with("postgresql://"))
            {
                return Err("expected sqlite://PATH or postgres://…".to_owned());
            }
            config.database_url = value.to_owned();
        }
        "public_url" => {
            let value = value.trim().trim_end_matches('/');
            if !(value.starts_with("http://") || value.starts_with("https://")) {
                return Err(format!(
                    "expected an http:// or https:// URL, got {value:?}"
                ));
            }
            config.public_url = Some(value.to_owned());
        }
        "github_api_url" => {
            let value = value.trim().trim_end_matches('/');
            if !(value.starts_with("http://") || value.starts_with("https://")) {
                return Err(format!(
                    "expected an http:// or https:// URL, got {value:?}"
                ));
            }
            config.github_api_url = Some(value.to_owned());
        }
        "webhook_secret" => {
            // Never echo the value back.
            if value.is_empty() {
                return Err("must not be empty (leave it out instead)".to_owned());
            }
            config.webhook_secret = Some(value.to_owned());
        }
        "max_concurrent_deployments" => {
            config.max_concurrent_deployments = value
                .trim()
                .parse()
                .ok()
                .filter(|n| *n <= 1024)
                .ok_or_else(|| format!("expected a whole number from 0 (this node runs no deployments) to 1024, got {value:?}"))?;
        }
        "deployment_nice" => {
            config.deployment_nice = value
                .trim()
                .parse()
                .ok()
                .filter(|n| *n <= 19)
                .ok_or_else(|| format!("expected a whole number from 0 (deployments run at the intake's priority) to 19, got {value:?}"))?;
        }
        "workdir_retention" => {
            config.workdir_retention = humantime::parse_duration(value.trim())
                .map_err(|e| format!("expected a duration like 24h or 30m ({e}), got {value:?}"))?;
        }
        "agent_connect_timeout" => {
            config.agent_connect_timeout = humantime::parse_duration(value.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("expected a duration like 5m or 90s, got {value:?}"))?;
        }
        "missed_push_sweep" => {
            config.missed_push_sweep = match value.trim() {
                "off" => Duration::ZERO,
                other => humantime::parse_duration(other).map_err(|e| {
                    format!("expected a duration like 5m or 30s, or off ({e}), got {value:?}")
                })?,
            };
        }
        "deployment_lease" => {
            config.deployment_lease = humantime::parse_duration(value.trim())
                .ok()
                .filter(|d| *d >= Duration::from_secs(2) && *d <= Duration::from_secs(3600))
                .ok_or_else(|| {
                    format!(
                        "expected a duration from 2s to 1h like 30s (leases are renewed twice a second), got {value:?}"
                    )
                })?;
        }
        "lease_sweep" => {
            config.lease_sweep = humantime::parse_duration(value.trim())
                .ok()
                .filter(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(600))
                .ok_or_else(|| {
                    format!("expected a duration from 100ms to 10m like 5s, got {value:?}")
                })?;
        }
        "retention_releases" => {
            config.retention_releases = tako_takofile::KeepReleases::parse(value)?;
        }
        "retention_task_logs" => {
            config.retention_task_logs = tako_takofile::KeepFor::parse(value)?;
        }
        "retention_deliveries" => {
            config.retention_deliveries = tako_takofile::KeepFor::parse(value)?;
        }
        "retention_audit_log" => {
            config.retention_audit_log = tako_takofile::KeepFor::parse(value)?;
        }
        "retention_interval" => {
            config.retention_interval = match value.trim() {
                "off" => Duration::ZERO,
                other => humantime::parse_duration(other).map_err(|e| {
                    format!("expected a duration like 1h or 10m, or off ({e}), got {value:?}")
                })?,
            };
        }
        "auto_register_projects" => config.auto_register_projects = boolean(value)?,
        "insecure_unsigned_webhooks" => config.insecure_unsigned_webhooks = boolean(value)?,
        other => return Err(format!("unknown setting {other}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_key_file_defaults_to_the_data_dir_and_follows_the_environment() {
        let config = merge(&[]).unwrap();
        assert_eq!(
            config.effective_master_key_file(),
            PathBuf::from("tako-data/secret.key")
        );
        let env = ConfigLayer::from_env(|name| {
            (name == "TAKO_MASTER_KEY_FILE").then(|| "/run/secrets/tako.key".to_owned())
        });
        let config = merge(&[(Origin::Environment, env)]).unwrap();
        assert_eq!(
            config.effective_master_key_file(),
            PathBuf::from("/run/secrets/tako.key")
        );
    }

    #[test]
    fn defaults_work_on_a_fresh_machine() {
        let config = merge(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("tako-data"));
        assert_eq!(
            config.effective_database_url(),
            "sqlite://tako-data/tako.db"
        );
    }

    #[test]
    fn later_layers_win() {
        let file = ConfigLayer::from_toml(
            "tako.toml",
            "listen = \"0.0.0.0:9000\"\nmax_concurrent_deployments = 2\n",
        )
        .unwrap();
        let env = ConfigLayer::from_env(|name| {
            (name == "TAKO_MAX_CONCURRENT_DEPLOYMENTS").then(|| "8".to_owned())
        });
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:7000".into()),
            ..Default::default()
        };
        let config = merge(&[
            (Origin::File, file),
            (Origin::Environment, env),
            (Origin::Flags, flags),
        ])
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.max_concurrent_deployments, 8);
    }

    #[test]
    fn invalid_values_name_the_setting_and_where_it_came_from() {
        let env =
            ConfigLayer::from_env(|name| (name == "TAKO_LISTEN").then(|| "localhost".to_owned()));
        let error = merge(&[(Origin::Environment, env)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "listen from TAKO_LISTEN: expected an address and port like 127.0.0.1:8080, got \"localhost\""
        );
        let flags = ConfigLayer {
            workdir_retention: Some("soon".into()),
            ..Default::default()
        };
        assert!(
            merge(&[(Origin::Flags, flags)])
                .unwrap_err()
                .to_string()
                .starts_with("workdir_retention from --workdir-retention")
        );
    }

    #[test]
    fn the_agent_connect_timeout_is_a_positive_duration() {
        assert_eq!(
            merge(&[]).unwrap().agent_connect_timeout,
            Duration::from_secs(300)
        );
        let env = ConfigLayer::from_env(|name| {
            (name == "TAKO_AGENT_CONNECT_TIMEOUT").then(|| "90s".to_owned())
        });
        assert_eq!(
            merge(&[(Origin::Environment, env)])
                .unwrap()
                .agent_connect_timeout,
            Duration::from_secs(90)
        );
        for bad in ["0s", "soon"] {
            let env = ConfigLayer::from_env(|name| {
                (name == "TAKO_AGENT_CONNECT_TIMEOUT").then(|| bad.to_owned())
            });
            let error = merge(&[(Origin::Environment, env)])
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("agent_connect_timeout from TAKO_AGENT_CONNECT_TIMEOUT")
                    && error.contains("like 5m or 90s"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_node_may_run_no_deployments_and_at_most_1024() {
        let file = ConfigLayer::from_toml("tako.toml", "max_concurrent_deployments = 0").unwrap();
        assert_eq!(
            merge(&[(Origin::File, file)])
                .unwrap()
                .max_concurrent_deployments,
            0
        );
        let env = ConfigLayer::from_env(|name| {
            (name == "TAKO_MAX_CONCURRENT_DEPLOYMENTS").then(|| "1025".to_owned())
        });
        let error = merge(&[(Origin::Environment, env)])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expected a whole number from 0 (this node runs no deployments) to 1024, got \"1025\""),
            "{error}"
        );
    }

    #[test]
    fn the_database_pool_size_and_connect_timeout_are_bounded() {
        let defaults = merge(&[]).unwrap();
        assert_eq!(defaults.database_pool_size, 16);
        assert_eq!(defaults.database_connect_timeout, Duration::from_secs(5));
        let file = ConfigLayer::from_toml(
            "tako.toml",
            "database_pool_size = 32\ndatabase_connect_timeout = \"2s\"",
        )
        .unwrap();
        let config = merge(&[(Origin::File, file)]).unwrap();
        assert_eq!(config.database_pool_size, 32);
        assert_eq!(config.database_connect_timeout, Duration::from_secs(2));
        let env = ConfigLayer::from_env(|name| {
            (name == "TAKO_DATABASE_POOL_SIZE").then(|| "1".to_owned())
        });
        assert_eq!(
            merge(&[(Origin::Environment, env)])
                .unwrap_err()
                .to_string(),
            "database_pool_size from TAKO_DATABASE_POOL_SIZE: expected a whole number from 2 to 1024, got \"1\""
        );
        let flags = ConfigLayer {
            database_connect_timeout: Some("forever".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(&[(Origin::Flags, flags)]).unwrap_err().to_string(),
            "database_connect_timeout from --database-connect-timeout: expected a duration from 100ms to 10m like 5s, got \"forever\""
        );
    }

    #[test]
    fn the_deployment_lease_and_its_sweep_are_bounded_durations() {
        let defaults = merge(&[]).unwrap();
        assert_eq!(defaults.deployment_lease, Duration::from_secs(30));
        assert_eq!(defaults.lease_sweep, Duration::from_secs(5));
        let env = ConfigLayer::from_env(|name| match name {
            "TAKO_DEPLOYMENT_LEASE" => Some("3s".to_owned()),
            "TAKO_LEASE_SWEEP" => Some("500ms".to_owned()),
            _ => None,
        });
        let config = merge(&[(Origin::Environment, env)]).unwrap();
        assert_eq!(config.deployment_lease, Duration::from_secs(3));
        assert_eq!(config.lease_sweep, Duration::from_millis(500));
        let file = ConfigLayer::from_toml("tako.toml", "deployment_lease = \"1s\"").unwrap();
        assert_eq!(
            merge(&[(Origin::File, file)]).unwrap_err().to_string(),
            "deployment_lease from the configuration file (key deployment_lease): expected a duration from 2s to 1h like 30s (leases are renewed twice a second), got \"1s\""
        );
        let flags = ConfigLayer {
            lease_sweep: Some("never".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(&[(Origin::Flags, flags)]).unwrap_err().to_string(),
            "lease_sweep from --lease-sweep: expected a duration from 100ms to 10m like 5s, got \"never\""
        );
    }

    #[test]
    fn the_missed_push_sweep_is_a_duration_or_off() {
        assert_eq!(
            merge(&[]).unwrap().missed_push_sweep,
            Duration::from_secs(300)
        );
        let sweep = |value: &str| {
            let flags = ConfigLayer {
                missed_push_sweep: Some(value.to_owned()),
                ..Default::default()
            };
            merge(&[(Origin::Flags, flags)]).map(|config| config.missed_push_sweep)
        };
        assert_eq!(sweep("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(sweep("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(sweep("off").unwrap(), Duration::ZERO);
        assert_eq!(sweep("0").unwrap(), Duration::ZERO);
        let file = ConfigLayer::from_toml("tako.toml", "missed_push_sweep = \"10m\"").unwrap();
        assert_eq!(
            merge(&[(Origin::File, file)]).unwrap().missed_push_sweep,
            Duration::from_secs(600)
        );
        assert!(
            sweep("often")
                .unwrap_err()
                .to_string()
                .starts_with("missed_push_sweep from --missed-push-sweep: expected a duration")
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let error =
            ConfigLayer::from_toml("tako.toml", "listen = \"127.0.0.1:1\"\nlisten_port = 3\n")
                .unwrap_err();
        assert!(error.to_string().contains("listen_port"), "{error}");
    }

    #[test]
    fn tls_needs_both_files_or_neither() {
        let config = merge(&[]).unwrap();
        assert_eq!(config.tls, None);
        let file = ConfigLayer::from_toml(
            "tako.toml",
            "tls_cert = \"/etc/tako/cert.pem\"\ntls_key = \"/etc/tako/key.pem\"\n",
        )
        .unwrap();
        let config = merge(&[(Origin::File, file)]).unwrap();
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/etc/tako/cert.pem"),
                key: PathBuf::from("/etc/tako/key.pem"),
            })
        );
        // The key in the environment completes the file's certificate.
        let file = ConfigLayer::from_toml("tako.toml", "tls_cert = \"cert.pem\"").unwrap();
        let env =
            ConfigLayer::from_env(|name| (name == "TAKO_TLS_KEY").then(|| "key.pem".to_owned()));
        let config = merge(&[(Origin::File, file.clone()), (Origin::Environment, env)]).unwrap();
        assert_eq!(
            config.tls.map(|tls| tls.key),
            Some(PathBuf::from("key.pem"))
        );
        let error = merge(&[(Origin::File, file)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "tls_cert from the configuration file (key tls_cert): tls_key is not set: set both \
             tls_cert (the certificate chain, PEM) and tls_key (its private key, PEM) to serve \
             HTTPS, or neither"
        );
        let env =
            ConfigLayer::from_env(|name| (name == "TAKO_TLS_KEY").then(|| "key.pem".to_owned()));
        let error = merge(&[(Origin::Environment, env)]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("tls_key from TAKO_TLS_KEY: tls_cert is not set"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_secret_value_is_not_echoed() {
        let file = ConfigLayer::from_toml("tako.toml", "webhook_secret = \"\"").unwrap();
        let error = merge(&[(Origin::File, file)]).unwrap_err();
        assert!(error.to_string().contains("must not be empty"));
    }

    #[test]
    fn retention_settings_have_defaults_and_are_checked_where_they_come_from() {
        use tako_takofile::{KeepFor, KeepReleases};
        let defaults = merge(&[]).unwrap();
        assert_eq!(defaults.retention_releases, KeepReleases::All);
        assert_eq!(defaults.retention_task_logs, KeepFor::Forever);
        assert_eq!(
            defaults.retention_deliveries,
            KeepFor::For(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            defaults.retention_audit_log,
            KeepFor::For(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(defaults.retention_interval, Duration::from_secs(3600));

        let file = ConfigLayer::from_toml(
            "tako.toml",
            "retention_releases = 10\nretention_task_logs = \"30d\"\n\
             retention_audit_log = \"forever\"\nretention_interval = \"off\"\n",
        )
        .unwrap();
        let config = merge(&[(Origin::File, file)]).unwrap();
        assert_eq!(config.retention_releases, KeepReleases::Newest(10));
        assert_eq!(
            config.retention_task_logs,
            KeepFor::For(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(config.retention_audit_log, KeepFor::Forever);
        assert_eq!(config.retention_interval, Duration::ZERO);

        let env = ConfigLayer::from_env(|name| {
            (name == "TAKO_RETENTION_RELEASES").then(|| "0".to_owned())
        });
        let error = merge(&[(Origin::Environment, env)])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "retention_releases from TAKO_RETENTION_RELEASES: 0 would remove every release"
            ),
            "{error}"
        );
        let file = ConfigLayer::from_toml("tako.toml", "retention_deliveries = \"soon\"").unwrap();
        let error = merge(&[(Origin::File, file)]).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "retention_deliveries from the configuration file (key retention_deliveries): expected forever"
            ),
            "{error}"
        );
    }
}
