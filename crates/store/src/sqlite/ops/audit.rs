//! The append-only audit log.

use super::*;

pub(in crate::sqlite) const AUDIT_COLUMNS: &str =
    "id, at, actor, action, target, source, outcome, detail";

pub(in crate::sqlite) fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: AuditId(row.get(0)?),
        at: time(row, 1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        source: row.get(5)?,
        outcome: row.get(6)?,
        detail: row.get(7)?,
    })
}

pub(in crate::sqlite) fn append_audit(
    conn: &mut Connection,
    entry: &NewAuditEntry,
) -> StoreResult<AuditEntry> {
    conn.prepare_cached(&format!(
        "INSERT INTO audit_log (at, actor, action, target, source, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {AUDIT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                now_ms(),
                entry.actor,
                entry.action,
                entry.target,
                entry.source,
                entry.outcome,
                entry.detail
            ],
            audit_row,
        )
    })
    .map_err(db("append to the audit log"))
}

pub(in crate::sqlite) fn list_audit(
    conn: &mut Connection,
    page: PageRequest,
) -> StoreResult<Page<AuditEntry>> {
    let rows: Vec<AuditEntry> = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE (?1 IS NULL OR id < ?1)
             ORDER BY id DESC LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![page.after.map(|c| c.0), limit_plus_one(page)],
                audit_row,
            )?
            .collect()
        })
        .map_err(db("read the audit log"))?;
    Ok(paginate(rows, page, |e| e.id.0))
}
