//! Agents and their enrollment tokens in PostgreSQL (the rules are the
//! `Store` trait's: an enrollment token is used once, before it expires;
//! agent names are unique without regard to case).

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::ops::{
    Client, all, corrupt, db, get, hash_of, is_unique_violation, ms, now_ms, one, opt, opt_time,
    rows, time,
};
use crate::agents::{Agent, AgentId, AgentState, EnrollmentToken, NewAgent, NewEnrollmentToken};
use crate::error::{StoreError, StoreResult};
use crate::model::TokenHash;

const AGENT_COLUMNS: &str =
    "id, name, state, environments, roles, credential_hash, version, created_at, last_seen_at";
const TOKEN_COLUMNS: &str =
    "id, name, environments, roles, expires_at, auto_approve, created_at, used_at";

/// A list as stored: sorted, without repeats, joined by newlines.
fn join(items: &[String]) -> String {
    let mut items: Vec<&str> = items.iter().map(String::as_str).collect();
    items.sort_unstable();
    items.dedup();
    items.join("\n")
}

fn split(text: &str) -> Vec<String> {
    text.split('\n')
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn agent_row(row: &Row) -> StoreResult<Agent> {
    let state: &str = get(row, 2)?;
    Ok(Agent {
        id: AgentId(get(row, 0)?),
        name: get(row, 1)?,
        state: AgentState::parse(state).ok_or_else(|| corrupt(format!("agent state {state:?}")))?,
        environments: split(get(row, 3)?),
        roles: split(get(row, 4)?),
        credential: hash_of(row, 5)?,
        version: get(row, 6)?,
        created_at: time(row, 7)?,
        last_seen_at: opt_time(row, 8)?,
    })
}

fn token_row(row: &Row) -> StoreResult<EnrollmentToken> {
    Ok(EnrollmentToken {
        id: get(row, 0)?,
        name: get(row, 1)?,
        environments: split(get(row, 2)?),
        roles: split(get(row, 3)?),
        expires_at: time(row, 4)?,
        auto_approve: get(row, 5)?,
        created_at: time(row, 6)?,
        used_at: opt_time(row, 7)?,
    })
}

pub(super) async fn create_enrollment_token(
    client: &Client,
    token: &NewEnrollmentToken,
) -> StoreResult<EnrollmentToken> {
    let row = one(
        client,
        &format!(
            "INSERT INTO agent_enrollment_tokens
                 (hash, name, environments, roles, auto_approve, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TOKEN_COLUMNS}"
        ),
        &[
            &&token.hash.0[..],
            &token.name,
            &join(&token.environments),
            &join(&token.roles),
            &token.auto_approve,
            &now_ms(),
            &ms(token.expires_at),
        ],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("an enrollment token with this hash already exists")
        } else {
            db("create an enrollment token")(e)
        }
    })?;
    token_row(&row)
}

pub(super) async fn redeem_enrollment_token(
    client: &mut Client,
    token: &TokenHash,
    agent: &NewAgent,
    now: DateTime<Utc>,
) -> StoreResult<Agent> {
    let tx = client
        .transaction()
        .await
        .map_err(db("begin enrolling an agent"))?;
    // Locked: two agents redeeming the same token at once cannot both
    // enroll; the second finds it used.
    let found = opt(
        &tx,
        &format!("SELECT {TOKEN_COLUMNS} FROM agent_enrollment_tokens WHERE hash = $1 FOR UPDATE"),
        &[&&token.0[..]],
    )
    .await
    .map_err(db("read an enrollment token"))?
    .map(|row| token_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found("enrollment token"))?;
    let refused = |from: &str| StoreError::InvalidTransition {
        what: "enrollment token".to_owned(),
        from: from.to_owned(),
        to: "used".to_owned(),
    };
    if found.used_at.is_some() {
        return Err(refused("used"));
    }
    if found.expires_at <= now {
        return Err(refused("expired"));
    }
    let name = found.name.clone().unwrap_or_else(|| agent.name.clone());
    let state = if found.auto_approve {
        AgentState::Active
    } else {
        AgentState::Pending
    };
    let row = one(
        &tx,
        &format!(
            "INSERT INTO agents (name, name_key, state, environments, roles, credential_hash,
                                 version, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {AGENT_COLUMNS}"
        ),
        &[
            &name,
            &name.to_lowercase(),
            &state.as_str(),
            &join(&found.environments),
            &join(&found.roles),
            &&agent.credential.0[..],
            &agent.version,
            &ms(now),
        ],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(format!("an agent named {name} is enrolled already"))
        } else {
            db("enroll an agent")(e)
        }
    })?;
    let created = agent_row(&row)?;
    tx.execute(
        "UPDATE agent_enrollment_tokens SET used_at = $1, agent_id = $2 WHERE id = $3",
        &[&ms(now), &created.id.0, &found.id],
    )
    .await
    .map_err(db("use an enrollment token"))?;
    tx.commit()
        .await
        .map_err(db("commit an agent's enrollment"))?;
    Ok(created)
}

pub(super) async fn find_agent_by_credential(
    client: &Client,
    credential: &TokenHash,
) -> StoreResult<Option<Agent>> {
    opt(
        client,
        &format!("SELECT {AGENT_COLUMNS} FROM agents WHERE credential_hash = $1"),
        &[&&credential.0[..]],
    )
    .await
    .map_err(db("read an agent"))?
    .map(|row| agent_row(&row))
    .transpose()
}

pub(super) async fn find_agent_by_name(client: &Client, name: &str) -> StoreResult<Option<Agent>> {
    opt(
        client,
        &format!("SELECT {AGENT_COLUMNS} FROM agents WHERE name_key = $1"),
        &[&name.to_lowercase()],
    )
    .await
    .map_err(db("read an agent"))?
    .map(|row| agent_row(&row))
    .transpose()
}

pub(super) async fn list_agents(client: &Client) -> StoreResult<Vec<Agent>> {
    let found = all(
        client,
        &format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY name_key COLLATE \"C\""),
        &[],
    )
    .await
    .map_err(db("list agents"))?;
    rows(found, agent_row)
}

pub(super) async fn set_agent_state(
    client: &Client,
    id: AgentId,
    state: AgentState,
) -> StoreResult<Agent> {
    opt(
        client,
        &format!("UPDATE agents SET state = $1 WHERE id = $2 RETURNING {AGENT_COLUMNS}"),
        &[&state.as_str(), &id.0],
    )
    .await
    .map_err(db("change an agent's state"))?
    .map(|row| agent_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("agent {id}")))
}

pub(super) async fn set_agent_credential(
    client: &Client,
    id: AgentId,
    credential: &TokenHash,
) -> StoreResult<Agent> {
    opt(
        client,
        &format!("UPDATE agents SET credential_hash = $1 WHERE id = $2 RETURNING {AGENT_COLUMNS}"),
        &[&&credential.0[..], &id.0],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("an agent with this credential exists")
        } else {
            db("replace an agent's credential")(e)
        }
    })?
    .map(|row| agent_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("agent {id}")))
}

pub(super) async fn delete_agent(client: &mut Client, id: AgentId) -> StoreResult<()> {
    let tx = client
        .transaction()
        .await
        .map_err(db("begin removing an agent"))?;
    tx.execute(
        "UPDATE agent_enrollment_tokens SET agent_id = NULL WHERE agent_id = $1",
        &[&id.0],
    )
    .await
    .map_err(db("remove an agent"))?;
    let removed = tx
        .execute("DELETE FROM agents WHERE id = $1", &[&id.0])
        .await
        .map_err(db("remove an agent"))?;
    if removed == 0 {
        return Err(StoreError::not_found(format!("agent {id}")));
    }
    tx.commit().await.map_err(db("commit removing an agent"))
}

pub(super) async fn touch_agent(
    client: &Client,
    id: AgentId,
    version: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    super::ops::exec(
        client,
        "UPDATE agents SET version = $1, last_seen_at = $2 WHERE id = $3",
        &[&version, &ms(at), &id.0],
    )
    .await
    .map_err(db("record an agent's call"))?;
    Ok(())
}
