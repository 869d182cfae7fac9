//! API tokens: create, find by hash, list, touch, revoke.

use super::*;

pub(in crate::sqlite) const TOKEN_COLUMNS: &str =
    "id, name, hash, role, created_at, last_used_at, expires_at, revoked";

pub(in crate::sqlite) fn token_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    let hash = row.get_ref(2)?.as_blob()?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| conversion(2, format!("token hash of {} bytes", hash.len())))?;
    Ok(ApiToken {
        id: TokenId(row.get(0)?),
        name: row.get(1)?,
        hash: TokenHash(hash),
        role: row.get(3)?,
        created_at: time(row, 4)?,
        last_used_at: opt_time(row, 5)?,
        expires_at: opt_time(row, 6)?,
        revoked: row.get(7)?,
    })
}

pub(in crate::sqlite) fn create_token(
    conn: &mut Connection,
    token: &NewApiToken,
) -> StoreResult<ApiToken> {
    conn.prepare_cached(&format!(
        "INSERT INTO api_tokens (name, hash, role, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {TOKEN_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                token.name,
                &token.hash.0[..],
                token.role,
                now_ms(),
                token.expires_at.map(ms)
            ],
            token_row,
        )
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("a token with this hash already exists")
        } else {
            StoreError::unavailable("create a token", e)
        }
    })
}

pub(in crate::sqlite) fn find_token_by_hash(
    conn: &mut Connection,
    hash: &TokenHash,
) -> StoreResult<Option<ApiToken>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1"
    ))
    .and_then(|mut s| s.query_row([&hash.0[..]], token_row).optional())
    .map_err(db("read a token"))
}

pub(in crate::sqlite) fn list_tokens(conn: &mut Connection) -> StoreResult<Vec<ApiToken>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
    ))
    .and_then(|mut s| s.query_map([], token_row)?.collect())
    .map_err(db("list tokens"))
}

pub(in crate::sqlite) fn update_token(
    conn: &Connection,
    sql: &str,
    id: TokenId,
    value: i64,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params![id.0, value]))
        .map_err(db("update a token"))?;
    if changed == 0 {
        return Err(StoreError::not_found(format!("token {id}")));
    }
    Ok(())
}

pub(in crate::sqlite) fn touch_token(
    conn: &mut Connection,
    id: TokenId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    update_token(
        conn,
        "UPDATE api_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1",
        id,
        ms(at),
    )
}

pub(in crate::sqlite) fn revoke_token(conn: &mut Connection, id: TokenId) -> StoreResult<()> {
    update_token(
        conn,
        "UPDATE api_tokens SET revoked = ?2 WHERE id = ?1",
        id,
        1,
    )
}
