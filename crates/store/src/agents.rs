//! What the store keeps of agents (`tako agent` processes on other
//! machines): the agents themselves, with the environments and roles an
//! admin gave them on the server, and the single-use enrollment tokens an
//! agent exchanges for its own credential. Credentials and tokens are kept
//! only as SHA-256 hashes.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::model::TokenHash;

/// An agent's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub i64);

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether an agent gets work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Enrolled, waiting for an admin's approval: gets no work.
    Pending,
    /// Approved and enabled: gets the work of its environments and roles.
    Active,
    /// Disabled by an admin: refused at its next call.
    Disabled,
}

impl AgentState {
    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Pending => "pending",
            AgentState::Active => "active",
            AgentState::Disabled => "disabled",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<AgentState> {
        [
            AgentState::Pending,
            AgentState::Active,
            AgentState::Disabled,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Its id.
    pub id: AgentId,
    /// Its name (unique without regard to case).
    pub name: String,
    /// Whether it gets work.
    pub state: AgentState,
    /// The environments it serves, as set on the server.
    pub environments: Vec<String>,
    /// Its roles (Octopus's target tags), as set on the server.
    pub roles: Vec<String>,
    /// Its credential's hash.
    pub credential: TokenHash,
    /// The `tako` version it last reported.
    pub version: Option<String>,
    /// When it enrolled.
    pub created_at: DateTime<Utc>,
    /// When it last called the server.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A single-use enrollment token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollmentToken {
    /// The token's hash.
    pub hash: TokenHash,
    /// The agent's name; `None` lets the agent propose one.
    pub name: Option<String>,
    /// The environments the agent will serve.
    pub environments: Vec<String>,
    /// The agent's roles.
    pub roles: Vec<String>,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether the agent is active at once (else pending until approved).
    pub auto_approve: bool,
}

/// A stored enrollment token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    /// Its id.
    pub id: i64,
    /// The agent's name, if the token fixes it.
    pub name: Option<String>,
    /// The environments the agent will serve.
    pub environments: Vec<String>,
    /// The agent's roles.
    pub roles: Vec<String>,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether the agent is active at once.
    pub auto_approve: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When an agent used it, if one did.
    pub used_at: Option<DateTime<Utc>>,
}

/// An agent presenting an enrollment token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// The name it proposes (the token's name wins).
    pub name: String,
    /// The hash of the credential it will use from now on.
    pub credential: TokenHash,
    /// Its `tako` version.
    pub version: String,
}
