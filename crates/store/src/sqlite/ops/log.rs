//! The task log: appending lines in chunks and reading them back in order.

use super::*;

pub(in crate::sqlite) fn append_log(
    conn: &mut Connection,
    deployment: DeploymentId,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db("append to the task log"))?;
    append_log_in(&tx, deployment, chunks)?;
    tx.commit().map_err(db("append to the task log"))?;
    Ok(())
}

/// Appends encoded chunks of lines to a deployment's task log, inside the
/// caller's transaction.
pub(in crate::sqlite) fn append_log_in(
    tx: &Transaction<'_>,
    deployment: DeploymentId,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<()> {
    let total: usize = chunks.iter().map(|(n, _)| n).sum();
    let end: i64 = tx
        .prepare_cached(
            "UPDATE deployments SET log_lines = log_lines + ?2 WHERE id = ?1 RETURNING log_lines",
        )
        .and_then(|mut s| {
            s.query_row(
                params![deployment.0, i64::try_from(total).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(db("append to the task log"))?
        .ok_or_else(|| StoreError::not_found(format!("deployment {deployment}")))?;
    let mut first = end - i64::try_from(total).unwrap_or(i64::MAX);
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO log_chunks (deployment_id, first_line, line_count, data)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db("append to the task log"))?;
        for (count, data) in chunks {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            insert
                .execute(params![deployment.0, first, count, data])
                .map_err(db("append to the task log"))?;
            first += count;
        }
    }
    Ok(())
}

pub(in crate::sqlite) fn read_log(
    conn: &mut Connection,
    deployment: DeploymentId,
    after: LogCursor,
    limit: u32,
) -> StoreResult<LogPage> {
    let tx = conn.transaction().map_err(db("read the task log"))?;
    let total = select_deployment(&tx, deployment)?.log_lines;
    let limit = limit.max(1) as usize;
    let mut lines = Vec::with_capacity(limit.min(4096));
    if after.0 < total {
        let after_i = i64::try_from(after.0).unwrap_or(i64::MAX);
        let start: i64 = tx
            .prepare_cached(
                "SELECT MAX(first_line) FROM log_chunks WHERE deployment_id = ?1 AND first_line <= ?2",
            )
            .and_then(|mut s| s.query_row(params![deployment.0, after_i], |r| r.get::<_, Option<i64>>(0)))
            .map_err(db("read the task log"))?
            .unwrap_or(0);
        let mut select = tx
            .prepare_cached(
                "SELECT first_line, data FROM log_chunks WHERE deployment_id = ?1 AND first_line >= ?2
                 ORDER BY first_line",
            )
            .map_err(db("read the task log"))?;
        let mut rows = select
            .query(params![deployment.0, start])
            .map_err(db("read the task log"))?;
        while lines.len() < limit {
            let Some(row) = rows.next().map_err(db("read the task log"))? else {
                break;
            };
            let first: i64 = row.get(0).map_err(db("read the task log"))?;
            let data = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(db("read the task log"))?;
            let skip = usize::try_from(after_i - first).unwrap_or(0);
            let keep = limit - lines.len();
            log_codec::decode_into(data, skip, keep, &mut lines)
                .map_err(|e| StoreError::unavailable("read the task log", e))?;
        }
    }
    let next = LogCursor(after.0 + lines.len() as u64);
    Ok(LogPage { lines, next })
}
