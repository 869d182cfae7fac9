//! A SQLite database read whole for a copy into another store
//! ([`crate::transfer::Export`]): opened read-only and never migrated (a
//! source at another schema version is refused by the copy, not upgraded
//! behind the user's back), every read inside one read transaction, so
//! the copy is one consistent snapshot even if a server still wrote.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{StoreError, StoreResult};
use crate::transfer::{Cell, Export, MIGRATIONS_TABLE, STORE_INTERNAL_TABLES, TableInfo};

/// A SQLite database opened to be copied.
pub struct SqliteExport {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteExport")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn failed(context: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

/// `name` quoted as an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl SqliteExport {
    /// Opens the database at `path` read-only and begins the read
    /// transaction every later read belongs to.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteExport> {
        let path = path.as_ref().to_path_buf();
        let context = format!("cannot open database {}", path.display());
        if !path.is_file() {
            return Err(StoreError::unavailable(
                context,
                "there is no such file (give the tako.db in the data directory of `tako serve`)",
            ));
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(failed(context.clone()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(failed(context.clone()))?;
        conn.execute_batch("BEGIN")
            .map_err(failed(context.clone()))?;
        // The snapshot starts with the first read.
        let tako: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [MIGRATIONS_TABLE],
                |r| r.get(0),
            )
            .optional()
            .map_err(failed(context.clone()))?;
        if tako.is_none() {
            return Err(StoreError::unavailable(
                context,
                "it is not a Tako database (it has no schema_migrations table)",
            ));
        }
        Ok(SqliteExport {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// Runs `f` on the connection on a thread of its own (SQLite blocks).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = Arc::clone(&self.conn);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let result = match conn.lock() {
                Ok(conn) => f(&conn),
                Err(_) => Err(StoreError::unavailable(
                    "cannot read the source database",
                    "an earlier read panicked",
                )),
            };
            let _ = tx.send(result);
        });
        rx.await.map_err(|_| {
            StoreError::unavailable("cannot read the source database", "the reader thread ended")
        })?
    }
}

fn table_info(conn: &Connection, name: &str) -> rusqlite::Result<TableInfo> {
    let mut columns = Vec::new();
    let mut key: Vec<(i64, String)> = Vec::new();
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(name)))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let column: String = row.get("name")?;
        let pk: i64 = row.get("pk")?;
        if pk > 0 {
            key.push((pk, column.clone()));
        }
        columns.push(column);
    }
    key.sort();
    let mut references: Vec<String> = conn
        .prepare(&format!("PRAGMA foreign_key_list({})", quote(name)))?
        .query_map([], |r| r.get::<_, String>("table"))?
        .collect::<rusqlite::Result<_>>()?;
    references.sort();
    references.dedup();
    Ok(TableInfo {
        name: name.to_owned(),
        columns,
        key: key.into_iter().map(|(_, c)| c).collect(),
        references,
    })
}

fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(r) => Cell::Real(r),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(text) => Cell::Text(text.to_owned()),
            Err(_) => Cell::Bytes(t.to_vec()),
        },
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
    }
}

fn sql_value(cell: &Cell) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::Integer(*i),
        Cell::Real(r) => Value::Real(*r),
        Cell::Text(t) => Value::Text(t.clone()),
        Cell::Bytes(b) => Value::Blob(b.clone()),
    }
}

#[async_trait]
impl Export for SqliteExport {
    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        self.with(|conn| {
            let version: Option<i64> = conn
                .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })
                .map_err(failed("cannot read the schema version".to_owned()))?;
            Ok(u32::try_from(version.unwrap_or(0)).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn tables(&self) -> StoreResult<Vec<TableInfo>> {
        self.with(|conn| {
            let context = || "cannot list the tables".to_owned();
            let names: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table'
                     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                )
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, String>(0))?
                        .filter(|name| {
                            name.as_ref()
                                .map_or(true, |n| !STORE_INTERNAL_TABLES.contains(&n.as_str()))
                        })
                        .collect::<rusqlite::Result<_>>()
                })
                .map_err(failed(context()))?;
            names
                .iter()
                .map(|name| table_info(conn, name).map_err(failed(context())))
                .collect()
        })
        .await
    }

    async fn count(&self, table: &str) -> StoreResult<u64> {
        let table = table.to_owned();
        self.with(move |conn| {
            let count: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {}", quote(&table)),
                    [],
                    |r| r.get(0),
                )
                .map_err(failed(format!("cannot count the rows of {table}")))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }

    async fn rows(
        &self,
        table: &TableInfo,
        after: Option<&[Cell]>,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>> {
        let table = table.clone();
        let after: Option<Vec<rusqlite::types::Value>> =
            after.map(|key| key.iter().map(sql_value).collect());
        self.with(move |conn| {
            let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
            let key: Vec<String> = table.key.iter().map(|c| quote(c)).collect();
            let order = if key.is_empty() {
                "rowid".to_owned()
            } else {
                key.join(", ")
            };
            let mut sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
            let mut params = Vec::new();
            if let Some(after) = after {
                let marks: Vec<String> = (1..=after.len()).map(|i| format!("?{i}")).collect();
                sql.push_str(&format!(" WHERE ({order}) > ({})", marks.join(", ")));
                params = after;
            }
            sql.push_str(&format!(" ORDER BY {order} LIMIT {limit}"));
            let context = || format!("cannot read the rows of {}", table.name);
            let mut stmt = conn.prepare(&sql).map_err(failed(context()))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params))
                .map_err(failed(context()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(failed(context()))? {
                let mut cells = Vec::with_capacity(table.columns.len());
                for i in 0..table.columns.len() {
                    cells.push(cell(row.get_ref(i).map_err(failed(context()))?));
                }
                out.push(cells);
            }
            Ok(out)
        })
        .await
    }
}
