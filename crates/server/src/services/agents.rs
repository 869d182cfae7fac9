//! Agents (`tako agent` on other machines, `../shared/spec/agents.md` §3):
//! single-use enrollment tokens an admin creates, the exchange of one for
//! an agent's own credential, and what admins do to agents (approve,
//! disable, enable, remove, rotate the credential). The environments and
//! roles an agent serves are the token's, set on the server: an agent
//! cannot choose what work it sees.
//!
//! Enrollment tokens (`takoenroll_…`) and agent credentials
//! (`takoagent_…`) are random and stored only as SHA-256 hashes.

use chrono::{DateTime, TimeDelta, Utc};
use tako_protocol::agent::PROTOCOL_VERSION;
use tako_store::{
    Agent, AgentState, EnrollmentToken, NewAgent, NewEnrollmentToken, StoreError, TokenHash,
};

use super::{Principal, ServiceError, ServiceResult, Services, check_name};
use crate::startup;

/// What the admin role is needed for here.
const AGENTS: &str = "manage agents: it needs the admin role";
/// An enrollment token's life when the request names none.
const DEFAULT_TOKEN_MINUTES: u32 = 60;
/// The longest an enrollment token may live (30 days).
const MAX_TOKEN_MINUTES: u32 = 30 * 24 * 60;
/// Environments or roles one agent may have at most.
const MAX_SCOPE: usize = 50;
/// The prefix of an agent's credential.
pub(crate) const AGENT_CREDENTIAL_PREFIX: &str = "takoagent_";
/// The prefix of an enrollment token.
const ENROLLMENT_TOKEN_PREFIX: &str = "takoenroll_";

/// An enrollment token to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrollmentInput {
    /// The agent's name, if the token fixes it.
    pub name: Option<String>,
    /// The environments the agent will serve.
    pub environments: Vec<String>,
    /// Its roles.
    pub roles: Vec<String>,
    /// Minutes until the token stops working.
    pub expires_in_minutes: Option<u32>,
    /// Whether the agent is active at once.
    pub auto_approve: bool,
}

/// An agent presenting an enrollment token.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollInput {
    /// The token.
    pub token: String,
    /// The name it proposes.
    pub name: String,
    /// Its `tako` version.
    pub version: String,
    /// Its protocol version.
    pub protocol: u32,
}

impl std::fmt::Debug for EnrollInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollInput")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// What an admin does to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAction {
    /// A pending agent gets work from now on.
    Approve,
    /// The agent is refused at its next call.
    Disable,
    /// A disabled agent gets work again.
    Enable,
}

/// A new random secret with `prefix`.
fn new_secret(prefix: &str) -> ServiceResult<String> {
    let token = startup::new_token().map_err(ServiceError::internal)?;
    // `new_token` gives `tako_<hex>`: keep the randomness, change the prefix.
    let random = token.strip_prefix("tako_").unwrap_or(&token);
    Ok(format!("{prefix}{random}"))
}

fn hash_of(secret: &str) -> TokenHash {
    TokenHash(startup::token_hash(secret.trim()))
}

/// An agent and the job it runs now, for the agents list.
#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// The agent.
    pub agent: Agent,
    /// The job it runs now, if any.
    pub current_job: Option<tako_store::Job>,
}

/// Checks and normalises a list of environments or roles.
fn scope(what: &str, items: &[String]) -> ServiceResult<Vec<String>> {
    if items.is_empty() {
        return Err(ServiceError::invalid(format!(
            "name at least one {what}: an agent serves the {what}s set on the server"
        )));
    }
    if items.len() > MAX_SCOPE {
        return Err(ServiceError::invalid(format!(
            "at most {MAX_SCOPE} {what}s per agent"
        )));
    }
    let mut checked = Vec::with_capacity(items.len());
    for item in items {
        check_name(what, item)?;
        checked.push(item.trim().to_owned());
    }
    Ok(checked)
}

/// How recently an agent must have called to count as online: a healthy
/// agent calls at least every 30 s (its long poll), so this allows for two
/// missed calls and some clock skew between server nodes.
pub(crate) const ONLINE_WITHIN: TimeDelta = TimeDelta::seconds(90);

/// Whether an active agent counts as online: it called within
/// [`ONLINE_WITHIN`]. The one rule for the agents list, the web UI and
/// `/metrics`.
pub(crate) fn is_online(agent: &Agent, now: DateTime<Utc>) -> bool {
    agent.state == AgentState::Active
        && agent
            .last_seen_at
            .is_some_and(|seen| now - seen <= ONLINE_WITHIN)
}

impl Services {
    /// Creates a single-use enrollment token (admin only): the token (shown
    /// this once) and what is kept of it.
    pub async fn create_enrollment_token(
        &self,
        who: &Principal,
        input: EnrollmentInput,
    ) -> ServiceResult<(String, EnrollmentToken)> {
        who.require_admin(AGENTS)?;
        if let Some(name) = &input.name {
            check_name("agent name", name)?;
        }
        let environments = scope("environment", &input.environments)?;
        let roles = scope("role", &input.roles)?;
        let minutes = input.expires_in_minutes.unwrap_or(DEFAULT_TOKEN_MINUTES);
        if !(1..=MAX_TOKEN_MINUTES).contains(&minutes) {
            return Err(ServiceError::invalid(format!(
                "expires_in_minutes must be between 1 and {MAX_TOKEN_MINUTES}"
            )));
        }
        let token = new_secret(ENROLLMENT_TOKEN_PREFIX)?;
        let stored = self
            .store
            .create_enrollment_token(NewEnrollmentToken {
                hash: hash_of(&token),
                name: input.name.map(|n| n.trim().to_owned()),
                environments,
                roles,
                expires_at: Utc::now() + TimeDelta::minutes(i64::from(minutes)),
                auto_approve: input.auto_approve,
            })
            .await?;
        tracing::info!(token = stored.id, name = ?stored.name, environments = %stored.environments.join(","),
            roles = %stored.roles.join(","), auto_approve = stored.auto_approve, by = %who.name,
            "agent enrollment token created");
        Ok((token, stored))
    }

    /// Exchanges an enrollment token for an agent and its credential (shown
    /// this once). An unknown, used or expired token is refused without
    /// saying which; an agent speaking another protocol is refused naming
    /// both versions.
    pub async fn enroll_agent(&self, input: EnrollInput) -> ServiceResult<(Agent, String)> {
        if input.protocol != PROTOCOL_VERSION {
            return Err(ServiceError::invalid(format!(
                "this agent (tako {}, protocol {}) cannot work with this server (tako {}, protocol {PROTOCOL_VERSION}): install the same tako version on both",
                input.version,
                input.protocol,
                env!("CARGO_PKG_VERSION")
            )));
        }
        check_name("agent name", &input.name)?;
        if input.version.trim().is_empty() || input.version.len() > 64 {
            return Err(ServiceError::invalid(
                "version must name the agent's tako version",
            ));
        }
        let credential = new_secret(AGENT_CREDENTIAL_PREFIX)?;
        let agent = match self
            .store
            .redeem_enrollment_token(
                &hash_of(&input.token),
                NewAgent {
                    name: input.name.trim().to_owned(),
                    credential: hash_of(&credential),
                    version: input.version.trim().to_owned(),
                },
                Utc::now(),
            )
            .await
        {
            Ok(agent) => agent,
            Err(StoreError::NotFound { .. } | StoreError::InvalidTransition { .. }) => {
                return Err(ServiceError::CredentialRefused(
                    "the enrollment token is unknown, used or expired: ask an admin for a new one (tako agent enroll-token)".to_owned(),
                ));
            }
            Err(StoreError::Conflict { .. }) => {
                return Err(ServiceError::Conflict(format!(
                    "an agent named {} is enrolled already: choose another name with --name, or remove the old agent",
                    input.name.trim()
                )));
            }
            Err(other) => return Err(other.into()),
        };
        tracing::info!(agent = %agent.name, state = agent.state.as_str(), version = ?agent.version,
            "agent enrolled");
        Ok((agent, credential))
    }

    /// Every agent, by name (any role may read).
    pub async fn list_agents(&self) -> ServiceResult<Vec<AgentStatus>> {
        let agents = self.store.list_agents().await?;
        let mut running = self.store.running_jobs().await?;
        Ok(agents
            .into_iter()
            .map(|agent| {
                let current_job = running
                    .iter()
                    .position(|job| job.agent == agent.id)
                    .map(|at| running.swap_remove(at));
                AgentStatus { agent, current_job }
            })
            .collect())
    }

    async fn agent_named(&self, name: &str) -> ServiceResult<Agent> {
        self.store
            .find_agent_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("agent {name} not found")))
    }

    /// Approves, disables or enables an agent (admin only).
    pub async fn change_agent(
        &self,
        who: &Principal,
        name: &str,
        action: AgentAction,
    ) -> ServiceResult<Agent> {
        who.require_admin(AGENTS)?;
        let agent = self.agent_named(name).await?;
        let next = match (action, agent.state) {
            (AgentAction::Approve, AgentState::Pending)
            | (AgentAction::Enable, AgentState::Disabled) => AgentState::Active,
            (AgentAction::Disable, AgentState::Pending | AgentState::Active) => {
                AgentState::Disabled
            }
            (action, state) => {
                return Err(ServiceError::Conflict(format!(
                    "agent {} is {}: it cannot be {}",
                    agent.name,
                    state.as_str(),
                    match action {
                        AgentAction::Approve => "approved (only a pending agent can)",
                        AgentAction::Disable => "disabled again",
                        AgentAction::Enable => "enabled (only a disabled agent can)",
                    }
                )));
            }
        };
        let changed = self.store.set_agent_state(agent.id, next).await?;
        tracing::info!(agent = %changed.name, ?action, state = changed.state.as_str(), by = %who.name,
            "agent changed");
        Ok(changed)
    }

    /// Removes an agent (admin only): its credential stops working.
    pub async fn remove_agent(&self, who: &Principal, name: &str) -> ServiceResult<()> {
        who.require_admin(AGENTS)?;
        let agent = self.agent_named(name).await?;
        self.store.delete_agent(agent.id).await?;
        tracing::info!(agent = %agent.name, by = %who.name, "agent removed");
        Ok(())
    }

    /// Gives an agent a new credential (admin only; shown this once): the
    /// old one stops working now.
    pub async fn rotate_agent_credential(
        &self,
        who: &Principal,
        name: &str,
    ) -> ServiceResult<(Agent, String)> {
        who.require_admin(AGENTS)?;
        let agent = self.agent_named(name).await?;
        let credential = new_secret(AGENT_CREDENTIAL_PREFIX)?;
        let rotated = self
            .store
            .set_agent_credential(agent.id, hash_of(&credential))
            .await?;
        tracing::info!(agent = %rotated.name, by = %who.name, "agent credential rotated");
        Ok((rotated, credential))
    }

    /// The agent with this credential, if it may call the agent routes: a
    /// pending or disabled agent is refused, saying why; an unknown
    /// credential is [`ServiceError::CredentialRefused`]. Records the call.
    pub async fn authenticate_agent(&self, credential: &TokenHash) -> ServiceResult<Agent> {
        let agent = self
            .store
            .find_agent_by_credential(credential)
            .await?
            .ok_or_else(|| {
                ServiceError::CredentialRefused(
                    "unknown agent credential: enroll the agent again with a new enrollment token"
                        .to_owned(),
                )
            })?;
        let version = agent.version.clone().unwrap_or_default();
        if let Err(error) = self.store.touch_agent(agent.id, &version, Utc::now()).await {
            tracing::warn!(agent = %agent.name, %error, "cannot record the agent's call");
        }
        match agent.state {
            AgentState::Active => Ok(agent),
            AgentState::Pending => Err(ServiceError::AgentForbidden(format!(
                "agent {} waits for an admin's approval (tako agent approve {})",
                agent.name, agent.name
            ))),
            AgentState::Disabled => Err(ServiceError::AgentForbidden(format!(
                "agent {} is disabled: an admin can enable it (tako agent enable {})",
                agent.name, agent.name
            ))),
        }
    }
}
