//! Re-sealing every stored secret in SQLite on a key rotation: which rows
//! to read and write, in one transaction. What is sealed and how is the
//! driver-neutral sealing layer's (`crate::sealing`).

use rusqlite::{Connection, params};

use crate::error::{StoreError, StoreResult};
use crate::seal::Keyring;
use crate::sealing::{reseal, reseal_frozen};

use super::ops::db;

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
        .prepare("SELECT id, status_token FROM projects WHERE status_token IS NOT NULL")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(db(CONTEXT))?;
    for (id, token) in rows {
        if let Some(resealed) = reseal(keys, &token)? {
            tx.execute(
                "UPDATE projects SET status_token = ?2 WHERE id = ?1",
                params![id, resealed],
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
    // Jobs: their specifications and outputs (both may hold sensitive
    // values) are sealed whole.
    let rows: Vec<(String, String, Option<String>)> = tx
        .prepare("SELECT id, spec, outputs FROM jobs")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(db(CONTEXT))?;
    for (id, spec, outputs) in rows {
        if let Some(resealed) = reseal(keys, &spec)? {
            tx.execute(
                "UPDATE jobs SET spec = ?2 WHERE id = ?1",
                params![id, resealed],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
        if let Some(resealed) = outputs
            .as_deref()
            .map(|o| reseal(keys, o))
            .transpose()?
            .flatten()
        {
            tx.execute(
                "UPDATE jobs SET outputs = ?2 WHERE id = ?1",
                params![id, resealed],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    // Steps' kept output variables (read by a resumed deployment).
    let rows: Vec<(i64, i64, String)> = tx
        .prepare(
            "SELECT deployment_id, step_index, outputs FROM deployment_steps
             WHERE outputs IS NOT NULL",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(db(CONTEXT))?;
    for (deployment, index, outputs) in rows {
        if let Some(resealed) = reseal(keys, &outputs)? {
            tx.execute(
                "UPDATE deployment_steps SET outputs = ?3 WHERE deployment_id = ?1 AND step_index = ?2",
                params![deployment, index, resealed],
            )
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    tx.commit().map_err(db(CONTEXT))?;
    Ok(count)
}
