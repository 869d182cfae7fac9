//! Takofukku's own mode: forwarding a push to an allow-listed Octopus Deploy
//! server (octopus-forward.md). The router decides to forward
//! ([`Forwarders::decide`]) and queues a deployment of kind `octopus` whose
//! [`ForwardRecord`] starts with what the push says; the scheduler hands such
//! a deployment to [`forward::run`], which makes the spec's calls through
//! [`client::OctopusClient`], stores each step's result in the record before
//! the next call (so a restart resumes, and nothing is created twice),
//! follows the Octopus task and mirrors its state into the deployment.

pub mod client;
pub mod forward;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tako_core::octopus::{ServerUrl, normalize_server_url};

use crate::config::octopus::{Mode, OctopusServer, Space};
use client::OctopusClient;

/// A failed forward, as §6 records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardError {
    /// `release_rejected`, ...
    pub kind: String,
    /// `F8`, `E1`, ...
    pub step: String,
    /// The call's method.
    pub method: String,
    /// The call's path, never with a query.
    pub path: String,
    /// The HTTP status, when one came.
    pub status: Option<u16>,
    /// Octopus's `ErrorMessage`.
    pub octopus_message: Option<String>,
    /// Octopus's `Errors`.
    pub octopus_errors: Vec<String>,
    /// Octopus's `HelpText`.
    pub octopus_help: Option<String>,
    /// A body that was not JSON (at most 2 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub octopus_text: Option<String>,
    /// For people: what failed and Octopus's sentences.
    pub detail: String,
}

/// An Octopus object named by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// `Projects-12`.
    pub id: String,
    /// `StatuscakeDSC`.
    pub name: String,
}

/// The release deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRef {
    /// `Releases-40`.
    pub id: String,
    /// `1.4.2`.
    pub version: String,
    /// Whether Tako created it (false: `CreateRelease: false`).
    pub created: bool,
}

/// The Octopus task followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    /// `ServerTasks-900`.
    pub id: String,
    /// Its last state seen.
    pub state: Option<String>,
    /// Its `ErrorMessage` once it failed.
    pub error_message: Option<String>,
}

/// Links for people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// The release's page in Octopus.
    pub release: Option<String>,
    /// The task's page in Octopus.
    pub task: Option<String>,
}

/// A forwarded deployment's progress and outcome: the `forward` object of
/// §6, plus what resuming needs (stored as the deployment's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRecord {
    /// The normalised server URL.
    pub server: String,
    /// `resources` or `executions`.
    pub mode: String,
    /// The space's id once known.
    pub space_id: Option<String>,
    /// Octopus's `Version`.
    pub octopus_version: Option<String>,
    /// The acting Octopus user.
    pub octopus_user: Option<String>,
    /// The Octopus project.
    pub project: Option<Named>,
    /// The Octopus environment.
    pub environment: Option<Named>,
    /// The channel.
    pub channel_id: Option<String>,
    /// The release.
    pub release: Option<ReleaseRef>,
    /// The deployment.
    pub deployment_id: Option<String>,
    /// The task.
    pub task: Option<TaskRef>,
    /// Links for the UI.
    pub links: Links,
    /// Why it failed.
    pub error: Option<ForwardError>,
    /// What the push asked for and what resuming needs.
    pub request: ForwardRequest,
}

/// What the push asked for, and the posts under way (§7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// The delivery whose marker goes into the notes and comments.
    pub delivery: String,
    /// The takofile's `Project`.
    pub project: String,
    /// The mapped environment.
    pub environment: String,
    /// `CreateRelease`.
    pub create_release: bool,
    /// The release notes (the marker line included).
    pub notes: String,
    /// The release version Octopus proposed (F6), kept so a resumed
    /// forward posts the same one.
    pub release_posted: Option<String>,
    /// The packages selected for it (F7).
    pub release_posted_packages: Option<serde_json::Value>,
    /// Whether the release post (F8 or E1) started: its outcome is checked
    /// before posting again.
    pub release_attempted: bool,
    /// Whether the deployment post started.
    pub deployment_posted: bool,
    /// When following the task started (RFC 3339).
    pub following_since: Option<String>,
}

impl ForwardRecord {
    /// A record of what the push asks of `server`.
    pub fn new(server: &OctopusServer, request: ForwardRequest) -> ForwardRecord {
        ForwardRecord {
            server: server.url.base(),
            mode: server.mode.as_str().to_owned(),
            space_id: match &server.space {
                Space::Id(id) => Some(id.clone()),
                Space::Name(_) => None,
            },
            octopus_version: None,
            octopus_user: None,
            project: None,
            environment: None,
            channel_id: None,
            release: None,
            deployment_id: None,
            task: None,
            links: Links::default(),
            error: None,
            request,
        }
    }

    /// The record stored as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored record.
    pub fn from_json(text: &str) -> Option<ForwardRecord> {
        serde_json::from_str(text).ok()
    }
}

/// The allow-listed servers and their clients.
#[derive(Clone, Default)]
pub struct Forwarders {
    servers: HashMap<ServerUrl, (OctopusServer, OctopusClient)>,
}

/// What the router does with a takofile's `Server`.
pub enum Decision<'a> {
    /// No `Server`: Tako runs the process.
    Tako,
    /// Forward to this server.
    Forward(&'a OctopusServer),
    /// Tako runs the process; the delivery carries this warning.
    Ignored(String),
}

impl Forwarders {
    /// Clients of every server (their keys read). `Err` names the server
    /// whose CA file is unusable.
    pub fn new(servers: &[OctopusServer]) -> Result<Forwarders, String> {
        let mut map = HashMap::new();
        for server in servers {
            let client = OctopusClient::new(server)?;
            map.insert(server.url.clone(), (server.clone(), client));
        }
        Ok(Forwarders { servers: map })
    }

    /// Every key, for the masker.
    pub fn keys(&self) -> Vec<String> {
        self.servers
            .values()
            .map(|(_, client)| client.key().to_owned())
            .collect()
    }

    /// Whether a takofile's `Server` is forwarded.
    pub fn decide(&self, server: Option<&str>) -> Decision<'_> {
        let Some(server) = server else {
            return Decision::Tako;
        };
        match normalize_server_url(server) {
            Ok(url) => match self.servers.get(&url) {
                Some((server, _)) => Decision::Forward(server),
                None => {
                    Decision::Ignored(format!("octopus server not in forward allowlist: {url}"))
                }
            },
            Err(error) => Decision::Ignored(format!(
                "octopus server not in forward allowlist: the takofile's Server is not usable ({error})"
            )),
        }
    }

    /// The server and client of a record's `server`.
    pub(crate) fn for_record(
        &self,
        record: &ForwardRecord,
    ) -> Option<&(OctopusServer, OctopusClient)> {
        let url = normalize_server_url(&record.server).ok()?;
        self.servers.get(&url)
    }
}

impl Mode {
    /// Whether this is the Executions API.
    pub fn is_executions(self) -> bool {
        self == Mode::Executions
    }
}
