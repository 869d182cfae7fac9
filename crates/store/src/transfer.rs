//! Copying a whole database into another store (`tako admin migrate`,
//! cluster spec §5), driver-neutral: a store that can be read table by
//! table is an [`Export`]; a store that can take it in
//! ([`crate::PostgresStore::import_from`]) reads it in batches of rows of
//! plain [`Cell`]s, in the order foreign keys need.
//!
//! The tables are read from each database's own catalog, so a table added
//! to the schema is copied without anyone listing it, and the two schemas
//! must agree table by table and column by column (the same migration
//! version on both sides) before a row is copied. Values are copied as
//! they are stored: secrets stay sealed under the same master key, the
//! tables kept by triggers (totals, latest deployments) are copied, not
//! recomputed.

use async_trait::async_trait;

use crate::error::{StoreError, StoreResult};

/// The migration bookkeeping table, which each store keeps for itself.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// Tables a store keeps for its own machinery, never copied: the migration
/// bookkeeping, SQLite's retention gate on the audit log, and the cache
/// generation (a counter each database starts for itself).
pub const STORE_INTERNAL_TABLES: [&str; 3] =
    [MIGRATIONS_TABLE, "audit_log_retention", "cache_generation"];

/// One stored value, as the copy carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// `NULL`.
    Null,
    /// An integer (booleans are 0 and 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Cell {
    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "an integer",
            Cell::Real(_) => "a real number",
            Cell::Text(_) => "text",
            Cell::Bytes(_) => "bytes",
        }
    }
}

/// A table as the copy sees it: its columns, its primary key (the order
/// rows are read in, and a cursor between batches) and the tables its
/// foreign keys reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The table's name.
    pub name: String,
    /// Its columns, in the schema's order.
    pub columns: Vec<String>,
    /// Its primary key's columns, in the key's order.
    pub key: Vec<String>,
    /// The other tables its foreign keys reference.
    pub references: Vec<String>,
}

impl TableInfo {
    /// The primary key of `row` (a row of all [`TableInfo::columns`]), the
    /// cursor after it.
    pub fn key_of(&self, row: &[Cell]) -> Vec<Cell> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| c == k))
            .filter_map(|at| row.get(at).cloned())
            .collect()
    }
}

/// A store that can be read whole, table by table.
#[async_trait]
pub trait Export: Send + Sync {
    /// The database, for messages (never with a password).
    fn location(&self) -> String;

    /// The schema version (the newest migration applied).
    async fn schema_version(&self) -> StoreResult<u32>;

    /// Every table but [`STORE_INTERNAL_TABLES`], sorted by name.
    async fn tables(&self) -> StoreResult<Vec<TableInfo>>;

    /// How many rows `table` holds.
    async fn count(&self, table: &str) -> StoreResult<u64>;

    /// Up to `limit` rows of `table`, every column in
    /// [`TableInfo::columns`]'s order, by primary key, after the key
    /// `after` (from the start without one).
    async fn rows(
        &self,
        table: &TableInfo,
        after: Option<&[Cell]>,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>>;
}

/// `tables` with every table after the tables it references (a reference
/// to itself aside: rows are copied in key order, so a row references
/// earlier rows only). Ties, and a cycle if one were ever made, keep the
/// names' order.
pub fn in_dependency_order(mut tables: Vec<TableInfo>) -> Vec<TableInfo> {
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ordered: Vec<TableInfo> = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables.iter().position(|t| {
            t.references.iter().all(|r| {
                r == &t.name
                    || ordered.iter().any(|o| &o.name == r)
                    || !tables.iter().any(|p| &p.name == r)
            })
        });
        ordered.push(tables.remove(ready.unwrap_or(0)));
    }
    ordered
}

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The table.
    pub table: String,
    /// Its rows, counted on both sides after the copy.
    pub rows: u64,
}

/// Why a copy was refused or failed (nothing is kept of a failed copy).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The source's schema is not the one this build writes.
    #[error(
        "the source database {location} is at schema version {found}, this tako binary at {expected}: {hint}"
    )]
    SourceVersion {
        /// The source.
        location: String,
        /// Its version.
        found: u32,
        /// This build's.
        expected: u32,
        /// What to do.
        hint: &'static str,
    },
    /// The target already holds data.
    #[error(
        "the target database {location} is not empty ({tables}); migrate into a new, empty database \
         (CREATE DATABASE …), or drop this one's tables if its contents are not needed"
    )]
    TargetNotEmpty {
        /// The target.
        location: String,
        /// The tables holding rows, with their counts.
        tables: String,
    },
    /// The two schemas differ although their versions agree.
    #[error("the two schemas differ: {0}")]
    SchemaMismatch(String),
    /// A value the target's column cannot hold.
    #[error(
        "cannot copy {table}.{column} of the row with key {key}: {found} for a {expected} column"
    )]
    Value {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The row's primary key.
        key: String,
        /// What the source holds.
        found: &'static str,
        /// The target column's type.
        expected: String,
    },
    /// The counts disagree after the copy.
    #[error(
        "{table}: {source_rows} row(s) in the source but {target_rows} copied; nothing was kept"
    )]
    CountMismatch {
        /// The table.
        table: String,
        /// Its rows in the source.
        source_rows: u64,
        /// Its rows in the target.
        target_rows: u64,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TransferError {
    /// The refusal of a source at `found` when this build is at `expected`.
    pub fn source_version(location: String, found: u32, expected: u32) -> TransferError {
        let hint = if found < expected {
            "start `tako serve` once on it with this binary (it upgrades the schema at start), \
             stop it, then migrate"
        } else {
            "migrate with a tako binary as new as the one that last served it"
        };
        TransferError::SourceVersion {
            location,
            found,
            expected,
            hint,
        }
    }
}

/// A primary key for messages.
pub fn describe_key(key: &[Cell]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|c| match c {
            Cell::Null => "NULL".to_owned(),
            Cell::Int(i) => i.to_string(),
            Cell::Real(r) => r.to_string(),
            Cell::Text(t) => format!("{t:?}"),
            Cell::Bytes(b) => format!("{} bytes", b.len()),
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// Checks that `source` and `target` have the same tables with the same
/// columns (the order aside).
pub fn compare_schemas(source: &[TableInfo], target: &[TableInfo]) -> Result<(), TransferError> {
    let mut problems = Vec::new();
    for s in source {
        match target.iter().find(|t| t.name == s.name) {
            None => problems.push(format!("table {} is missing in the target", s.name)),
            Some(t) => {
                for c in &s.columns {
                    if !t.columns.contains(c) {
                        problems.push(format!("column {}.{c} is missing in the target", s.name));
                    }
                }
                for c in &t.columns {
                    if !s.columns.contains(c) {
                        problems.push(format!("column {}.{c} is missing in the source", s.name));
                    }
                }
            }
        }
    }
    for t in target {
        if !source.iter().any(|s| s.name == t.name) {
            problems.push(format!("table {} is missing in the source", t.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TransferError::SchemaMismatch(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, references: &[&str]) -> TableInfo {
        TableInfo {
            name: name.to_owned(),
            columns: vec!["id".to_owned()],
            key: vec!["id".to_owned()],
            references: references.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn referenced_tables_come_first() {
        let ordered = in_dependency_order(vec![
            table("deployments", &["releases", "projects", "deployments"]),
            table("audit_log", &[]),
            table("releases", &["projects"]),
            table("projects", &[]),
        ]);
        let names: Vec<&str> = ordered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["audit_log", "projects", "releases", "deployments"],
            "{ordered:?}"
        );
    }

    #[test]
    fn schemas_that_differ_are_named() {
        let mut extra = table("projects", &[]);
        extra.columns.push("colour".to_owned());
        let err = compare_schemas(&[extra, table("jobs", &[])], &[table("projects", &[])])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("column projects.colour is missing in the target"),
            "{err}"
        );
        assert!(err.contains("table jobs is missing in the target"), "{err}");
    }

    #[test]
    fn an_older_source_is_told_to_start_tako_serve_once() {
        let old = TransferError::source_version("sqlite://x".to_owned(), 12, 16).to_string();
        assert!(old.contains("start `tako serve` once"), "{old}");
        let new = TransferError::source_version("sqlite://x".to_owned(), 17, 16).to_string();
        assert!(new.contains("as new as"), "{new}");
    }
}
