//! Settings: key/value pairs, and the first-start marker.

use super::*;

pub(in crate::postgres) async fn get_setting(
    client: &Client,
    key: &str,
) -> StoreResult<Option<String>> {
    opt(client, "SELECT value FROM settings WHERE key = $1", &[&key])
        .await
        .map_err(db("read a setting"))?
        .map(|row| get(&row, 0))
        .transpose()
}

pub(in crate::postgres) async fn set_setting(
    client: &Client,
    key: &str,
    value: &str,
    replace: bool,
) -> StoreResult<bool> {
    let sql = if replace {
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    } else {
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
    };
    let changed = exec(client, sql, &[&key, &value])
        .await
        .map_err(db("write a setting"))?;
    Ok(changed == 1)
}

pub(in crate::postgres) async fn cache_generation(client: &Client) -> StoreResult<i64> {
    let row = one(
        client,
        "SELECT value FROM cache_generation WHERE id = 1",
        &[],
    )
    .await
    .map_err(db("read the cache generation"))?;
    get(&row, 0)
}
