//! What a server and a `tako agent` say to each other (`/api/v1/agent/…`).
//!
//! The agent connects out to the server and asks for work; a [`Job`] is one
//! agent's run of one step of one deployment, already resolved by the
//! server's engine: its texts substituted, only the variables this agent may
//! see (sensitive ones only when their scope includes the deployment's
//! environment), the facts of the deployment and where to get the release's
//! files. The agent sends the job's log back in numbered [`LogChunk`]s (the
//! server stores each `(job, seq)` once and acknowledges the highest
//! contiguous one, so a chunk sent twice is stored once) and ends with one
//! [`JobOutcome`], idempotent on the job id.
//!
//! The server chooses job ids; every call after [`Job`] names one, and the
//! server answers 404 to an agent naming a job that is not its own.

use serde::{Deserialize, Serialize};

use crate::MASKED_VALUE;

/// The protocol's version: a server refuses an agent speaking another one,
/// naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// An agent asking for work (a long poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextJobRequest {
    /// The agent's `tako` version (`0.1.0`).
    pub version: String,
    /// [`PROTOCOL_VERSION`] of the agent.
    pub protocol: u32,
}

/// An agent exchanging a single-use enrollment token for its own
/// credential (`POST /api/v1/agent/enroll`, no other credential needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token an admin created.
    pub token: Secret,
    /// The name the agent proposes (a name fixed by the token wins).
    pub name: String,
    /// The agent's `tako` version.
    pub version: String,
    /// [`PROTOCOL_VERSION`] of the agent.
    pub protocol: u32,
}

/// The server's answer to an enrollment: who the agent is now, and the
/// credential it sends as `Authorization: Bearer` from now on (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollReply {
    /// The agent as the server keeps it.
    pub agent: AgentInfo,
    /// The agent's own credential.
    pub credential: Secret,
}

/// An agent as the server keeps it (what `GET /api/v1/agent/me` answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its name.
    pub name: String,
    /// `pending` (waits for an admin's approval), `active` or `disabled`.
    pub state: String,
    /// The environments it serves, as set on the server.
    pub environments: Vec<String>,
    /// Its roles, as set on the server.
    pub roles: Vec<String>,
}

/// One agent's run of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Chosen by the server; every later call names it.
    pub id: String,
    /// The deployment the step belongs to.
    pub deployment: i64,
    /// The agent it is for, as the server keeps it (the step reads it as
    /// `Tako.Agent.Name`/`Octopus.Machine.Name` and `…Roles`).
    pub agent: JobAgent,
    /// What to run.
    pub step: JobStep,
    /// Facts of the deployment (project, environment, release, git).
    pub facts: JobFacts,
    /// The variables the step may read (the script API's
    /// `get_octopusvariable`), already evaluated.
    pub variables: Vec<JobVariable>,
    /// Values the agent masks in every line before it leaves the machine.
    pub mask: Vec<Secret>,
    /// Where the release's files come from.
    pub source: CheckoutSource,
    /// The first failure of the deployment so far, masked (for `Always`
    /// steps that report it).
    pub error: Option<String>,
    /// Each step so far with its state, in order (name, `Success`/`Failed`/
    /// `Skipped`).
    pub steps_so_far: Vec<(String, String)>,
    /// The job is the agent's for this long without a heartbeat.
    pub lease_seconds: u32,
    /// How often to send a heartbeat while it runs.
    pub heartbeat_seconds: u32,
}

/// The agent a job is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAgent {
    /// Its name.
    pub name: String,
    /// Its roles, as set on the server.
    pub roles: Vec<String>,
}

/// A step resolved by the server's engine: nothing left to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStep {
    /// The step's position in the process, from 0.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// What it does.
    pub action: JobAction,
    /// Its working directory, relative to the checkout.
    pub working_directory: Option<String>,
    /// Extra environment for a script (`TAKO_*`, the step's `Env`).
    pub env: Vec<(String, String)>,
    /// Its time limit in seconds; `None`: none.
    pub timeout_seconds: Option<u64>,
    /// The time limit as the takofile wrote it (`10m`), for messages.
    pub timeout_text: String,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobAction {
    /// A script (`Run:`, `Script:` or a step template), substituted.
    Script {
        /// `bash`, `sh`, `python`, `pwsh` or `powershell`.
        shell: String,
        /// The script's text.
        body: String,
        /// The step template it comes from, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<JobTemplate>,
    },
    /// A built-in step (`Uses: write-file`, …) with its `With:` parameters,
    /// substituted.
    Builtin {
        /// The `Uses:` name.
        uses: String,
        /// The parameters, in order.
        parameters: Vec<(String, Parameter)>,
    },
}

/// Where a template script came from (for its messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTemplate {
    /// The template's path in the checkout.
    pub path: String,
    /// The template's name.
    pub name: String,
}

/// A `With:` parameter's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// Text.
    Text(String),
    /// A list.
    List(Vec<Parameter>),
    /// Names to values, in order.
    Map(Vec<(String, Parameter)>),
}

/// Facts of the deployment a job belongs to (its system variables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFacts {
    /// The project's name.
    pub project: String,
    /// The environment deployed to.
    pub environment: String,
    /// The release number.
    pub release_number: String,
    /// The release notes.
    pub release_notes: String,
    /// `releases-12`.
    pub release_id: String,
    /// `deployments-34`.
    pub deployment_id: String,
    /// The build counter.
    pub build: u64,
    /// The repository's URL.
    pub git_repository: String,
    /// The branch (or tag).
    pub git_branch: String,
    /// The commit.
    pub git_commit: String,
    /// Who pushed.
    pub git_pusher: String,
    /// The server's public URL, for links.
    pub web_base_url: String,
    /// The module manifest's facts, when the takofile names one.
    pub manifest: Option<JobManifest>,
}

/// A module manifest's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobManifest {
    /// `ModuleVersion` (with its prerelease label).
    pub version: String,
    /// The module's name.
    pub name: String,
    /// `Author`.
    pub author: String,
    /// `Description`.
    pub description: String,
}

/// A variable a job may read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobVariable {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether it is sensitive (its value is also in [`Job::mask`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl std::fmt::Debug for JobVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &str = if self.sensitive {
            MASKED_VALUE
        } else {
            &self.value
        };
        f.debug_struct("JobVariable")
            .field("name", &self.name)
            .field("value", &value)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

/// A value to mask; its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASKED_VALUE)
    }
}

/// Where a job's files come from: the release commit, served by the server
/// from its mirror as a tar stream, so the agent needs no git and no
/// repository credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSource {
    /// The commit (the agent caches checkouts by it).
    pub commit: String,
    /// The path to `GET` it from on the server.
    pub path: String,
}

/// The path an agent fetches job `job`'s files from
/// (`GET /api/v1/agent/jobs/{job}/source`: the release commit as a tar
/// stream); what the server puts in [`CheckoutSource::path`].
pub fn source_path(job: &str) -> String {
    format!("/api/v1/agent/jobs/{job}/source")
}

/// A job's state, as the server keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its agent.
    Pending,
    /// Taken by its agent.
    Running,
    /// Ended well.
    Success,
    /// Ended badly.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Its agent stopped answering; never run again automatically.
    Interrupted,
}

/// A batch of a job's log lines, masked on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChunk {
    /// The job.
    pub job: String,
    /// The chunk's number, from 1, without gaps.
    pub seq: u64,
    /// Its lines, in order.
    pub lines: Vec<JobLogLine>,
}

/// Several consecutive chunks of a job's log in one request (`POST
/// /api/v1/agent/jobs/{job}/logs`), stored in order as if sent one by one;
/// the answer is one [`LogAck`] for all of them. The agent sends what its
/// spool owes this way, so a backlog costs one request per batch, not one
/// per chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// The job.
    pub job: String,
    /// Its chunks, numbered consecutively.
    pub chunks: Vec<LogChunk>,
}

/// The most chunks one [`LogBatch`] may carry.
pub const MAX_BATCH_CHUNKS: usize = 64;

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLogLine {
    /// When the agent read or wrote it (RFC 3339, UTC).
    pub timestamp: String,
    /// `stdout`, `stderr` or `tako`.
    pub stream: String,
    /// `verbose`, `info`, `highlight`, `wait`, `warning` or `error`.
    pub level: String,
    /// The masked text.
    pub text: String,
}

/// The server's answer to a [`LogChunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAck {
    /// Every chunk up to this one is stored; the agent may forget them.
    pub stored_through: u64,
}

/// The server's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Stop the step (SIGTERM to its group, SIGKILL after the grace).
    pub cancel_requested: bool,
    /// The job stays the agent's until then (RFC 3339, UTC).
    pub lease_expires_at: String,
}

/// How a job ended, sent until acknowledged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOutcome {
    /// The job.
    pub job: String,
    /// `success`, `failed` or `cancelled`.
    pub state: JobState,
    /// Why it failed, masked.
    pub reason: Option<String>,
    /// The output variables it set.
    pub outputs: Vec<JobOutput>,
    /// How long the step ran, in milliseconds.
    pub duration_ms: u64,
    /// The number of the last log chunk, so the server knows when the log
    /// is complete.
    pub last_seq: u64,
}

impl std::fmt::Debug for JobOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOutcome")
            .field("job", &self.job)
            .field("state", &self.state)
            .field("reason", &self.reason)
            .field("outputs", &self.outputs)
            .field("duration_ms", &self.duration_ms)
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

/// An output variable a job set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutput {
    /// Its name (`Octopus.Action[Step].Output[agent].Name`).
    pub name: String,
    /// Its value (later steps read it; the log shows it masked when
    /// sensitive).
    pub value: String,
    /// Whether it was set as sensitive.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl std::fmt::Debug for JobOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &str = if self.sensitive {
            MASKED_VALUE
        } else {
            &self.value
        };
        f.debug_struct("JobOutput")
            .field("name", &self.name)
            .field("value", &value)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            id: "job-1".to_owned(),
            deployment: 7,
            agent: JobAgent {
                name: "win-01".to_owned(),
                roles: vec!["ps".to_owned()],
            },
            step: JobStep {
                index: 1,
                name: "Test".to_owned(),
                action: JobAction::Builtin {
                    uses: "http".to_owned(),
                    parameters: vec![
                        ("Url".to_owned(), Parameter::Text("https://x".to_owned())),
                        (
                            "Headers".to_owned(),
                            Parameter::Map(vec![("A".to_owned(), Parameter::Text("b".to_owned()))]),
                        ),
                        (
                            "Tags".to_owned(),
                            Parameter::List(vec![Parameter::Text("t".to_owned())]),
                        ),
                    ],
                },
                working_directory: Some("src".to_owned()),
                env: vec![("TAKO_PROJECT".to_owned(), "Demo".to_owned())],
                timeout_seconds: Some(600),
                timeout_text: "10m".to_owned(),
            },
            facts: JobFacts {
                project: "Demo".to_owned(),
                environment: "Production".to_owned(),
                ..JobFacts::default()
            },
            variables: vec![JobVariable {
                name: "ApiKey".to_owned(),
                value: "canary-secret".to_owned(),
                sensitive: true,
            }],
            mask: vec![Secret("canary-secret".to_owned())],
            source: CheckoutSource {
                commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
                path: "/api/v1/agent/jobs/job-1/source".to_owned(),
            },
            error: None,
            steps_so_far: vec![("Build".to_owned(), "Success".to_owned())],
            lease_seconds: 60,
            heartbeat_seconds: 10,
        }
    }

    #[test]
    fn a_job_survives_the_wire_and_its_debug_form_hides_secrets() {
        let job = job();
        let json = serde_json::to_string(&job).unwrap();
        assert!(json.contains(r#""kind":"builtin""#), "{json}");
        let back: Job = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job);
        let debug = format!("{job:?}");
        assert!(!debug.contains("canary-secret"), "{debug}");
        assert!(debug.contains(MASKED_VALUE), "{debug}");
    }

    #[test]
    fn outcomes_and_chunks_refuse_unknown_fields_and_hide_sensitive_outputs() {
        let outcome = JobOutcome {
            job: "job-1".to_owned(),
            state: JobState::Failed,
            reason: Some("the script exited with code 1".to_owned()),
            outputs: vec![JobOutput {
                name: "Token".to_owned(),
                value: "canary-output".to_owned(),
                sensitive: true,
            }],
            duration_ms: 1200,
            last_seq: 3,
        };
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["state"], "failed");
        assert!(!format!("{outcome:?}").contains("canary-output"));
        let mut extra = json.clone();
        extra["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<JobOutcome>(extra).is_err());
        let chunk: Result<LogChunk, _> = serde_json::from_str(
            r#"{"job":"j","seq":1,"lines":[{"timestamp":"t","stream":"stdout","level":"info","text":"x","step":"y"}]}"#,
        );
        assert!(chunk.is_err(), "a line with an unknown field is refused");
    }
}
