//! API tokens: create, find by hash, list, touch, revoke.

use super::*;

pub(in crate::postgres) const TOKEN_COLUMNS: &str =
    "id, name, hash, role, created_at, last_used_at, expires_at, revoked";

/// A 32-byte hash column.
pub(in crate::postgres) fn hash_of(row: &Row, index: usize) -> StoreResult<TokenHash> {
    let bytes: &[u8] = get(row, index)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt(format!("hash of {} bytes", bytes.len())))?;
    Ok(TokenHash(bytes))
}

pub(in crate::postgres) fn token_row(row: &Row) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: TokenId(get(row, 0)?),
        name: get(row, 1)?,
        hash: hash_of(row, 2)?,
        role: get(row, 3)?,
        created_at: time(row, 4)?,
        last_used_at: opt_time(row, 5)?,
        expires_at: opt_time(row, 6)?,
        revoked: get(row, 7)?,
    })
}

pub(in crate::postgres) async fn create_token(
    client: &Client,
    token: &NewApiToken,
) -> StoreResult<ApiToken> {
    let row = one(
        client,
        &format!(
            "INSERT INTO api_tokens (name, hash, role, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLUMNS}"
        ),
        &[
            &token.name,
            &&token.hash.0[..],
            &token.role,
            &now_ms(),
            &token.expires_at.map(ms),
        ],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("a token with this hash already exists")
        } else {
            db("create a token")(e)
        }
    })?;
    token_row(&row)
}

pub(in crate::postgres) async fn find_token_by_hash(
    client: &Client,
    hash: &TokenHash,
) -> StoreResult<Option<ApiToken>> {
    opt(
        client,
        &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1"),
        &[&&hash.0[..]],
    )
    .await
    .map_err(db("read a token"))?
    .map(|row| token_row(&row))
    .transpose()
}

pub(in crate::postgres) async fn list_tokens(client: &Client) -> StoreResult<Vec<ApiToken>> {
    let found = all(
        client,
        &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"),
        &[],
    )
    .await
    .map_err(db("list tokens"))?;
    rows(found, token_row)
}

pub(in crate::postgres) async fn touch_token(
    client: &Client,
    id: TokenId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let changed = exec(
        client,
        "UPDATE api_tokens SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2) WHERE id = $1",
        &[&id.0, &ms(at)],
    )
    .await
    .map_err(db("update a token"))?;
    if changed == 0 {
        return Err(StoreError::not_found(format!("token {id}")));
    }
    Ok(())
}

pub(in crate::postgres) async fn revoke_token(client: &Client, id: TokenId) -> StoreResult<()> {
    let changed = exec(
        client,
        "UPDATE api_tokens SET revoked = TRUE WHERE id = $1",
        &[&id.0],
    )
    .await
    .map_err(db("update a token"))?;
    if changed == 0 {
        return Err(StoreError::not_found(format!("token {id}")));
    }
    Ok(())
}
