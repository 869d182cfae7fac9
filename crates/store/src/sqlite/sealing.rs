//! Where the store seals and opens: secrets are sealed inside the writer's
//! job (so a rotation, also a writer job, never races a write sealed under
//! the key it retires) and opened as they are read.
//!
//! Sealed: a project's webhook secret and repository token, a sensitive
//! variable's value, and every sensitive entry of a release's frozen
//! variables (sealed by the server, re-sealed here on rotation).

use rusqlite::{Connection, params};

use crate::error::{StoreError, StoreResult};
use crate::model::{NewProject, NewVariable, Project, RepositoryToken, Variable, WebhookSecret};
use crate::seal::{Keyring, SealError};

use super::ops::db;

fn sealing_failed(error: SealError) -> StoreError {
    StoreError::unavailable("cannot seal or open a secret", error)
}

fn seal(keys: Option<&Keyring>, value: &str) -> StoreResult<String> {
    match keys {
        Some(keys) => keys.seal(value).map_err(sealing_failed),
        None => Ok(value.to_owned()),
    }
}

fn open(keys: Option<&Keyring>, value: &str) -> StoreResult<String> {
    match keys {
        Some(keys) => keys.open(value).map_err(sealing_failed),
        None => Ok(value.to_owned()),
    }
}

/// A new project with its secrets sealed.
pub(super) fn seal_project(
    keys: Option<&Keyring>,
    project: &NewProject,
) -> StoreResult<NewProject> {
    Ok(NewProject {
        name: project.name.clone(),
        repository_url: project.repository_url.clone(),
        webhook_secret: match &project.webhook_secret {
            Some(secret) => Some(WebhookSecret(seal(keys, &secret.0)?)),
            None => None,
        },
        repository_token: match &project.repository_token {
            Some(token) => Some(RepositoryToken(seal(keys, &token.0)?)),
            None => None,
        },
    })
}

/// A webhook secret, sealed.
pub(super) fn seal_secret(keys: Option<&Keyring>, secret: &str) -> StoreResult<String> {
    seal(keys, secret)
}

/// A project as read, its secrets opened.
pub(super) fn open_project(keys: Option<&Keyring>, mut project: Project) -> StoreResult<Project> {
    if let Some(secret) = &mut project.webhook_secret {
        secret.0 = open(keys, &secret.0)?;
    }
    if let Some(token) = &mut project.repository_token {
        token.0 = open(keys, &token.0)?;
    }
    Ok(project)
}

/// A new variable, its value sealed when it is sensitive.
pub(super) fn seal_variable(
    keys: Option<&Keyring>,
    variable: &NewVariable,
) -> StoreResult<NewVariable> {
    let mut sealed = variable.clone();
    if sealed.sensitive {
        sealed.value = seal(keys, &variable.value)?;
    }
    Ok(sealed)
}

/// A variable as read, its value opened when it is sensitive.
pub(super) fn open_variable(
    keys: Option<&Keyring>,
    mut variable: Variable,
) -> StoreResult<Variable> {
    if variable.sensitive {
        variable.value = open(keys, &variable.value)?;
    }
    Ok(variable)
}

/// `stored` under the current key: opened and sealed again, unless it is
/// under the current key already. `None` when nothing changes.
fn reseal(keys: &Keyring, stored: &str) -> StoreResult<Option<String>> {
    if keys.is_current(stored) {
        return Ok(None);
    }
    let plain = keys.open(stored).map_err(sealing_failed)?;
    keys.seal(&plain).map(Some).map_err(sealing_failed)
}

/// Re-seals a release's frozen variables (a JSON array of objects with
/// `value` and `sensitive`): every sensitive entry ends under the current key,
/// sealed even if it was stored in the clear before encryption at rest.
fn reseal_frozen(keys: &Keyring, text: &str) -> StoreResult<Option<String>> {
    let Ok(serde_json::Value::Array(mut entries)) = serde_json::from_str(text) else {
        return Ok(None);
    };
    let mut changed = false;
    for entry in &mut entries {
        let sensitive = entry
            .get("sensitive")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let Some(serde_json::Value::String(value)) = entry.get_mut("value") else {
            continue;
        };
        if !sensitive && crate::seal::sealed_key_id(value).is_none() {
            continue;
        }
        if let Some(resealed) = reseal(keys, value)? {
            *value = resealed;
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    serde_json::to_string(&entries)
        .map(Some)
        .map_err(|e| StoreError::unavailable("cannot write a release's variables", e))
}

/// Makes `current` the keyring's current key and re-seals every secret under
/// it in one transaction (values in the clear from before encryption at rest
/// are sealed too). On failure nothing changes and the previous key stays
/// current. Returns how many values were re-sealed.
pub(super) fn reseal_all(conn: &mut Connection, keys: &Keyring, current: &str) -> StoreResult<u64> {
    let previous = keys.current_id();
    if !keys.set_current(current) {
        return Err(StoreError::not_found(format!("key {current}")));
    }
    let result = reseal_in_transaction(conn, keys);
    if result.is_err() {
        keys.set_current(&previous);
    } else {
        // Old page images (values under the retired key, or in the clear)
        // leave the WAL; secure_delete has zeroed them in the main file.
        // Best effort: a busy reader only delays this to the next checkpoint.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    result
}

fn reseal_in_transaction(conn: &mut Connection, keys: &Keyring) -> StoreResult<u64> {
    const CONTEXT: &str = "re-seal secrets";
    let tx = conn.transaction().map_err(db(CONTEXT))?;
    let mut count = 0u64;
    let rows: Vec<(i64, Option<String>, Option<String>)> = tx
        .prepare("SELECT id, webhook_secret, repository_token FROM projects")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(db(CONTEXT))?;
    for (id, secret, token) in rows {
        let secret = secret
            .as_deref()
            .map(|s| reseal(keys, s))
            .transpose()?
            .flatten();
        let token = token
            .as_deref()
            .map(|s| reseal(keys, s))
            .transpose()?
            .flatten();
        if let Some(secret) = &secret {
            tx.execute(
                "UPDATE projects SET webhook_secret = ?2 WHERE id = ?1",
                params![id, secret],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
        if let Some(token) = &token {
            tx.execute(
                "UPDATE projects SET repository_token = ?2 WHERE id = ?1",
                params![id, token],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT id, value FROM variables WHERE sensitive <> 0")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(db(CONTEXT))?;
    for (id, value) in rows {
        if let Some(resealed) = reseal(keys, &value)? {
            tx.execute(
                "UPDATE variables SET value = ?2 WHERE id = ?1",
                params![id, resealed],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT id, variables FROM releases")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(db(CONTEXT))?;
    for (id, text) in rows {
        if let Some(resealed) = reseal_frozen(keys, &text)? {
            tx.execute(
                "UPDATE releases SET variables = ?2 WHERE id = ?1",
                params![id, resealed],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    tx.commit().map_err(db(CONTEXT))?;
    Ok(count)
}
