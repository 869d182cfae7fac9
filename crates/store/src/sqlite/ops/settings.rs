//! Settings: key/value pairs, and the first-start marker.

use super::*;

pub(in crate::sqlite) fn get_setting(
    conn: &mut Connection,
    key: &str,
) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(db("read a setting"))
}

pub(in crate::sqlite) fn set_setting(
    conn: &mut Connection,
    key: &str,
    value: &str,
    replace: bool,
) -> StoreResult<bool> {
    let sql = if replace {
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    } else {
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute([key, value]))
        .map_err(db("write a setting"))?;
    Ok(changed == 1)
}

pub(in crate::sqlite) fn cache_generation(conn: &mut Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT value FROM cache_generation WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db("read the cache generation"))
}
