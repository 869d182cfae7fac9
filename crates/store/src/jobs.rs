//! Jobs: one agent's run of one step of a deployment
//! (`../shared/spec/agents.md` §1, §4). The server creates a job per agent
//! that must run a step; the agent claims it with a lease renewed by
//! heartbeats, sends its log in numbered chunks (each stored once, in
//! order: the store acknowledges the highest contiguous number) and ends it
//! with one outcome (idempotent). A job whose lease runs out is
//! `Interrupted` and never run again.
//!
//! A job's specification (the resolved step, the variables the agent may
//! see) and its output variables may hold sensitive values: the store seals
//! both at rest and treats them as opaque text.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::agents::AgentId;
use crate::model::{DeploymentId, JobState};

/// A job's id, chosen by the server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Its id.
    pub id: JobId,
    /// The deployment it belongs to.
    pub deployment: DeploymentId,
    /// The step's position in the process.
    pub step_index: u32,
    /// The step's name.
    pub step_name: String,
    /// The agent that must run it.
    pub agent: AgentId,
    /// The agent's name (kept for the log when the agent is removed).
    pub agent_name: String,
    /// What the agent receives (JSON; sealed at rest).
    pub spec: String,
    /// Which attempt of the step it runs (1 for the first; `Retries`
    /// gives each agent a new job per attempt).
    pub attempt: u32,
}

impl fmt::Debug for NewJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewJob")
            .field("id", &self.id)
            .field("deployment", &self.deployment)
            .field("step_index", &self.step_index)
            .field("agent_name", &self.agent_name)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// A stored job (without its specification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The deployment it belongs to.
    pub deployment: DeploymentId,
    /// The step's position.
    pub step_index: u32,
    /// The step's name.
    pub step_name: String,
    /// Its agent.
    pub agent: AgentId,
    /// Its agent's name.
    pub agent_name: String,
    /// Which attempt of the step it runs (1 for the first).
    pub attempt: u32,
    /// Its state.
    pub state: JobState,
    /// Whether someone asked for it to stop.
    pub cancel_requested: bool,
    /// Every log chunk up to this number is stored (0: none).
    pub stored_seq: u64,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// How long the step ran on the agent, in milliseconds.
    pub duration_ms: Option<u64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its agent took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its agent must send a heartbeat before this.
    pub lease_until: Option<DateTime<Utc>>,
}

impl Job {
    /// The step label of its lines in the deployment's task log:
    /// `Step@agent` (`Test@win-01`).
    pub fn log_label(&self) -> String {
        format!("{}@{}", self.step_name, self.agent_name)
    }
}

/// How an agent says a job ended.
#[derive(Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// `Success`, `Failed` or `Cancelled`.
    pub state: JobState,
    /// Why it failed, masked.
    pub reason: Option<String>,
    /// Its output variables (JSON; sealed at rest).
    pub outputs: String,
    /// How long the step ran, in milliseconds.
    pub duration_ms: u64,
}

impl fmt::Debug for JobEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobEnd")
            .field("state", &self.state)
            .field("reason", &self.reason)
            .field("duration_ms", &self.duration_ms)
            .finish_non_exhaustive()
    }
}

/// What a job's log chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Stored; every chunk up to `stored_through` is now stored.
    Stored {
        /// The highest contiguous chunk stored.
        stored_through: u64,
    },
    /// Stored before (a resend): nothing changed.
    Duplicate {
        /// The highest contiguous chunk stored.
        stored_through: u64,
    },
    /// Beyond the next one expected: not stored; send from
    /// `stored_through + 1`.
    Gap {
        /// The highest contiguous chunk stored.
        stored_through: u64,
    },
}

/// What a heartbeat tells the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLease {
    /// Stop the step.
    pub cancel_requested: bool,
    /// The job stays the agent's until then.
    pub lease_until: DateTime<Utc>,
}
