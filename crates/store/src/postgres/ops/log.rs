//! The task log: appending lines in chunks and reading them back in order.

use super::*;

pub(in crate::postgres) async fn append_log(
    client: &mut Client,
    deployment: DeploymentId,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<()> {
    let tx = client
        .transaction()
        .await
        .map_err(db("append to the task log"))?;
    append_log_in(&tx, deployment, chunks).await?;
    tx.commit().await.map_err(db("append to the task log"))
}

/// Appends encoded chunks of lines to a deployment's task log, inside the
/// caller's transaction (the deployment's row is locked by the update, so
/// concurrent appends take their line numbers one after the other).
pub(in crate::postgres) async fn append_log_in(
    tx: &Tx<'_>,
    deployment: DeploymentId,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<()> {
    const CONTEXT: &str = "append to the task log";
    let total = i64::try_from(chunks.iter().map(|(n, _)| n).sum::<usize>()).unwrap_or(i64::MAX);
    let end: i64 = match opt(
        tx,
        "UPDATE deployments SET log_lines = log_lines + $2 WHERE id = $1 RETURNING log_lines",
        &[&deployment.0, &total],
    )
    .await
    .map_err(db(CONTEXT))?
    {
        Some(row) => get(&row, 0)?,
        None => return Err(StoreError::not_found(format!("deployment {deployment}"))),
    };
    let mut first = end - total;
    let mut rows = Vec::with_capacity(chunks.len());
    for (count, data) in chunks {
        let count = i64::try_from(*count).unwrap_or(i64::MAX);
        rows.push((first, count, data));
        first += count;
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO log_chunks (deployment_id, first_line, line_count, data)
             VALUES ($1, $2, $3, $4)",
        )
        .await
        .map_err(db(CONTEXT))?;
    // Pipelined, in order, in the caller's transaction.
    futures_util::future::try_join_all(rows.iter().map(|(first, count, data)| {
        let params: [&(dyn ToSql + Sync); 4] = [&deployment.0, first, count, data];
        tx.execute_raw(&insert, params)
    }))
    .await
    .map_err(db(CONTEXT))?;
    Ok(())
}

pub(in crate::postgres) async fn read_log(
    client: &mut Client,
    deployment: DeploymentId,
    after: LogCursor,
    limit: u32,
) -> StoreResult<LogPage> {
    const CONTEXT: &str = "read the task log";
    // One snapshot for the count and the chunks it covers.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db(CONTEXT))?;
    let total = select_deployment(&tx, deployment, false).await?.log_lines;
    let limit = limit.max(1) as usize;
    let mut lines = Vec::with_capacity(limit.min(4096));
    if after.0 < total {
        let after_i = i64::try_from(after.0).unwrap_or(i64::MAX);
        let start: Option<i64> = get(
            &one(
                &tx,
                "SELECT MAX(first_line) FROM log_chunks WHERE deployment_id = $1 AND first_line <= $2",
                &[&deployment.0, &after_i],
            )
            .await
            .map_err(db(CONTEXT))?,
            0,
        )?;
        let mut start = start.unwrap_or(0);
        // Chunks hold up to 1,000 lines (fewer when appended in small
        // batches): read them a few at a time until `limit` lines are
        // decoded or the log ends, never the whole log at once.
        let batch =
            i64::try_from(limit / crate::log_codec::CHUNK_MAX_LINES.max(1) + 4).unwrap_or(i64::MAX);
        'chunks: loop {
            let found = all(
                &tx,
                "SELECT first_line, data, line_count FROM log_chunks
                 WHERE deployment_id = $1 AND first_line >= $2
                 ORDER BY first_line LIMIT $3",
                &[&deployment.0, &start, &batch],
            )
            .await
            .map_err(db(CONTEXT))?;
            let last = found.len() < usize::try_from(batch).unwrap_or(usize::MAX);
            for row in &found {
                if lines.len() >= limit {
                    break 'chunks;
                }
                let first: i64 = get(row, 0)?;
                let data: &[u8] = get(row, 1)?;
                let count: i64 = get(row, 2)?;
                let skip = usize::try_from(after_i - first).unwrap_or(0);
                let keep = limit - lines.len();
                log_codec::decode_into(data, skip, keep, &mut lines)
                    .map_err(|e| StoreError::unavailable(CONTEXT, e))?;
                start = first + count.max(1);
            }
            if last || lines.len() >= limit {
                break;
            }
        }
    }
    tx.commit().await.map_err(db(CONTEXT))?;
    let next = LogCursor(after.0 + lines.len() as u64);
    Ok(LogPage { lines, next })
}
