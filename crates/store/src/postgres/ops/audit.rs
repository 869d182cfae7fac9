//! The append-only audit log.

use super::*;

pub(in crate::postgres) const AUDIT_COLUMNS: &str =
    "id, at, actor, action, target, source, outcome, detail";

pub(in crate::postgres) fn audit_row(row: &Row) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: AuditId(get(row, 0)?),
        at: time(row, 1)?,
        actor: get(row, 2)?,
        action: get(row, 3)?,
        target: get(row, 4)?,
        source: get(row, 5)?,
        outcome: get(row, 6)?,
        detail: get(row, 7)?,
    })
}

pub(in crate::postgres) async fn append_audit(
    client: &Client,
    entry: &NewAuditEntry,
) -> StoreResult<AuditEntry> {
    let row = one(
        client,
        &format!(
            "INSERT INTO audit_log (at, actor, action, target, source, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {AUDIT_COLUMNS}"
        ),
        &[
            &now_ms(),
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.source,
            &entry.outcome,
            &entry.detail,
        ],
    )
    .await
    .map_err(db("append to the audit log"))?;
    audit_row(&row)
}

pub(in crate::postgres) async fn list_audit(
    client: &Client,
    page: PageRequest,
) -> StoreResult<Page<AuditEntry>> {
    let found = all(
        client,
        &format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE ($1::BIGINT IS NULL OR id < $1)
             ORDER BY id DESC LIMIT $2"
        ),
        &[&page.after.map(|c| c.0), &limit_plus_one(page)],
    )
    .await
    .map_err(db("read the audit log"))?;
    Ok(paginate(rows(found, audit_row)?, page, |e| e.id.0))
}
