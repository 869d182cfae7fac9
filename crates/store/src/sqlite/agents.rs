//! Agents and their enrollment tokens in SQLite (the rules are the
//! `Store` trait's: an enrollment token is used once, before it expires;
//! agent names are unique without regard to case).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::ops::{conversion, db, is_unique_violation, ms, now_ms, opt_time, time};
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

fn hash(row: &Row<'_>, index: usize) -> rusqlite::Result<TokenHash> {
    let bytes = row.get_ref(index)?.as_blob()?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| conversion(index, format!("hash of {} bytes", bytes.len())))?;
    Ok(TokenHash(bytes))
}

fn agent_row(row: &Row<'_>) -> rusqlite::Result<Agent> {
    let state: String = row.get(2)?;
    Ok(Agent {
        id: AgentId(row.get(0)?),
        name: row.get(1)?,
        state: AgentState::parse(&state)
            .ok_or_else(|| conversion(2, format!("agent state {state:?}")))?,
        environments: split(&row.get::<_, String>(3)?),
        roles: split(&row.get::<_, String>(4)?),
        credential: hash(row, 5)?,
        version: row.get(6)?,
        created_at: time(row, 7)?,
        last_seen_at: opt_time(row, 8)?,
    })
}

fn token_row(row: &Row<'_>) -> rusqlite::Result<EnrollmentToken> {
    Ok(EnrollmentToken {
        id: row.get(0)?,
        name: row.get(1)?,
        environments: split(&row.get::<_, String>(2)?),
        roles: split(&row.get::<_, String>(3)?),
        expires_at: time(row, 4)?,
        auto_approve: row.get(5)?,
        created_at: time(row, 6)?,
        used_at: opt_time(row, 7)?,
    })
}

pub(super) fn create_enrollment_token(
    conn: &mut Connection,
    token: &NewEnrollmentToken,
) -> StoreResult<EnrollmentToken> {
    conn.prepare_cached(&format!(
        "INSERT INTO agent_enrollment_tokens
             (hash, name, environments, roles, auto_approve, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {TOKEN_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                &token.hash.0[..],
                token.name,
                join(&token.environments),
                join(&token.roles),
                token.auto_approve,
                now_ms(),
                ms(token.expires_at),
            ],
            token_row,
        )
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("an enrollment token with this hash already exists")
        } else {
            StoreError::unavailable("create an enrollment token", e)
        }
    })
}

pub(super) fn redeem_enrollment_token(
    conn: &mut Connection,
    token: &TokenHash,
    agent: &NewAgent,
    now: DateTime<Utc>,
) -> StoreResult<Agent> {
    let tx = conn.transaction().map_err(db("begin enrolling an agent"))?;
    let found = tx
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM agent_enrollment_tokens WHERE hash = ?1"
        ))
        .and_then(|mut s| s.query_row(params![&token.0[..]], token_row).optional())
        .map_err(db("read an enrollment token"))?
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
    let created = tx
        .prepare_cached(&format!(
            "INSERT INTO agents (name, name_key, state, environments, roles, credential_hash,
                                 version, created_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING {AGENT_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    name,
                    name.to_lowercase(),
                    state.as_str(),
                    join(&found.environments),
                    join(&found.roles),
                    &agent.credential.0[..],
                    agent.version,
                    ms(now),
                ],
                agent_row,
            )
        })
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::conflict(format!("an agent named {name} is enrolled already"))
            } else {
                StoreError::unavailable("enroll an agent", e)
            }
        })?;
    tx.execute(
        "UPDATE agent_enrollment_tokens SET used_at = ?1, agent_id = ?2 WHERE id = ?3",
        params![ms(now), created.id.0, found.id],
    )
    .map_err(db("use an enrollment token"))?;
    tx.commit().map_err(db("commit an agent's enrollment"))?;
    Ok(created)
}

pub(super) fn find_agent_by_credential(
    conn: &mut Connection,
    credential: &TokenHash,
) -> StoreResult<Option<Agent>> {
    conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE credential_hash = ?1"
    ))
    .and_then(|mut s| {
        s.query_row(params![&credential.0[..]], agent_row)
            .optional()
    })
    .map_err(db("read an agent"))
}

pub(super) fn find_agent_by_name(conn: &mut Connection, name: &str) -> StoreResult<Option<Agent>> {
    conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE name_key = ?1"
    ))
    .and_then(|mut s| {
        s.query_row(params![name.to_lowercase()], agent_row)
            .optional()
    })
    .map_err(db("read an agent"))
}

pub(super) fn list_agents(conn: &mut Connection) -> StoreResult<Vec<Agent>> {
    conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents ORDER BY name_key"
    ))
    .and_then(|mut s| s.query_map([], agent_row)?.collect())
    .map_err(db("list agents"))
}

pub(super) fn set_agent_state(
    conn: &mut Connection,
    id: AgentId,
    state: AgentState,
) -> StoreResult<Agent> {
    conn.prepare_cached(&format!(
        "UPDATE agents SET state = ?1 WHERE id = ?2 RETURNING {AGENT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(params![state.as_str(), id.0], agent_row)
            .optional()
    })
    .map_err(db("change an agent's state"))?
    .ok_or_else(|| StoreError::not_found(format!("agent {id}")))
}

pub(super) fn set_agent_credential(
    conn: &mut Connection,
    id: AgentId,
    credential: &TokenHash,
) -> StoreResult<Agent> {
    conn.prepare_cached(&format!(
        "UPDATE agents SET credential_hash = ?1 WHERE id = ?2 RETURNING {AGENT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(params![&credential.0[..], id.0], agent_row)
            .optional()
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("an agent with this credential exists")
        } else {
            StoreError::unavailable("replace an agent's credential", e)
        }
    })?
    .ok_or_else(|| StoreError::not_found(format!("agent {id}")))
}

pub(super) fn delete_agent(conn: &mut Connection, id: AgentId) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db("begin removing an agent"))?;
    tx.execute(
        "UPDATE agent_enrollment_tokens SET agent_id = NULL WHERE agent_id = ?1",
        params![id.0],
    )
    .map_err(db("remove an agent"))?;
    let removed = tx
        .execute("DELETE FROM agents WHERE id = ?1", params![id.0])
        .map_err(db("remove an agent"))?;
    if removed == 0 {
        return Err(StoreError::not_found(format!("agent {id}")));
    }
    tx.commit().map_err(db("commit removing an agent"))
}

pub(super) fn touch_agent(
    conn: &mut Connection,
    id: AgentId,
    version: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.prepare_cached("UPDATE agents SET version = ?1, last_seen_at = ?2 WHERE id = ?3")
        .and_then(|mut s| s.execute(params![version, ms(at), id.0]))
        .map_err(db("record an agent's call"))?;
    Ok(())
}
