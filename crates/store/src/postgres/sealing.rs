//! Re-sealing every stored secret in PostgreSQL on a key rotation: which
//! rows to read and write, in one transaction. What is sealed and how is the
//! driver-neutral sealing layer's (`crate::sealing`).

use crate::error::{StoreError, StoreResult};
use crate::seal::Keyring;
use crate::sealing::{reseal, reseal_frozen};

use super::ops::{Client, Tx, db, get};

const CONTEXT: &str = "re-seal secrets";

/// Makes `current` the keyring's current key and re-seals every secret under
/// it in one transaction (values in the clear from before encryption at rest
/// are sealed too). On failure nothing changes and the previous key stays
/// current. Returns how many values were re-sealed.
pub(super) async fn reseal_all(
    client: &mut Client,
    keys: &Keyring,
    current: &str,
) -> StoreResult<u64> {
    let previous = keys.current_id();
    if !keys.set_current(current) {
        return Err(StoreError::not_found(format!("key {current}")));
    }
    let result = reseal_in_transaction(client, keys).await;
    if result.is_err() {
        keys.set_current(&previous);
    }
    result
}

/// Re-seals the text column `column` of every row `select` returns
/// (`key, value`), with `update` (`$1` key, `$2` value).
async fn reseal_column(
    tx: &Tx<'_>,
    keys: &Keyring,
    select: &str,
    update: &str,
    frozen: bool,
) -> StoreResult<u64> {
    let found = tx.query(select, &[]).await.map_err(db(CONTEXT))?;
    let mut count = 0;
    for row in &found {
        let value: Option<String> = get(row, 1)?;
        let Some(value) = value else { continue };
        let resealed = if frozen {
            reseal_frozen(keys, &value)?
        } else {
            reseal(keys, &value)?
        };
        if let Some(resealed) = resealed {
            match row.columns()[0].type_() {
                &tokio_postgres::types::Type::TEXT => {
                    let key: String = get(row, 0)?;
                    tx.execute(update, &[&key, &resealed]).await
                }
                _ => {
                    let key: i64 = get(row, 0)?;
                    tx.execute(update, &[&key, &resealed]).await
                }
            }
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    Ok(count)
}

async fn reseal_in_transaction(client: &mut Client, keys: &Keyring) -> StoreResult<u64> {
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    // Every other node's writes to these tables wait until the rotation
    // commits (and writes already under way finish first), so no value
    // sealed under the retired key is written behind the rotation's back.
    tx.batch_execute(
        "LOCK TABLE projects, variables, releases, jobs, deployment_steps IN SHARE ROW EXCLUSIVE MODE",
    )
    .await
    .map_err(db(CONTEXT))?;
    let mut count = 0;
    for (select, update) in [
        (
            "SELECT id, webhook_secret FROM projects WHERE webhook_secret IS NOT NULL",
            "UPDATE projects SET webhook_secret = $2 WHERE id = $1",
        ),
        (
            "SELECT id, repository_token FROM projects WHERE repository_token IS NOT NULL",
            "UPDATE projects SET repository_token = $2 WHERE id = $1",
        ),
        (
            "SELECT id, status_token FROM projects WHERE status_token IS NOT NULL",
            "UPDATE projects SET status_token = $2 WHERE id = $1",
        ),
        (
            "SELECT id, value FROM variables WHERE sensitive",
            "UPDATE variables SET value = $2 WHERE id = $1",
        ),
        // Jobs: their specifications and outputs (both may hold sensitive
        // values) are sealed whole.
        (
            "SELECT id, spec FROM jobs",
            "UPDATE jobs SET spec = $2 WHERE id = $1",
        ),
        (
            "SELECT id, outputs FROM jobs WHERE outputs IS NOT NULL",
            "UPDATE jobs SET outputs = $2 WHERE id = $1",
        ),
    ] {
        count += reseal_column(&tx, keys, select, update, false).await?;
    }
    count += reseal_column(
        &tx,
        keys,
        "SELECT id, variables FROM releases",
        "UPDATE releases SET variables = $2 WHERE id = $1",
        true,
    )
    .await?;
    // Steps' kept output variables (read by a resumed deployment).
    let found = tx
        .query(
            "SELECT deployment_id, step_index, outputs FROM deployment_steps
             WHERE outputs IS NOT NULL",
            &[],
        )
        .await
        .map_err(db(CONTEXT))?;
    for row in &found {
        let (deployment, index, outputs): (i64, i64, String) =
            (get(row, 0)?, get(row, 1)?, get(row, 2)?);
        if let Some(resealed) = reseal(keys, &outputs)? {
            tx.execute(
                "UPDATE deployment_steps SET outputs = $3 WHERE deployment_id = $1 AND step_index = $2",
                &[&deployment, &index, &resealed],
            )
            .await
            .map_err(db(CONTEXT))?;
            count += 1;
        }
    }
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(count)
}
