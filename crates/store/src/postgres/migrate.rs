//! Versioned migrations: the numbered files of `migrations/postgres`
//! (the same numbers as SQLite's, one file each), compiled in and applied in
//! order by whichever node starts first, under an advisory lock, all
//! pending ones in one transaction (PostgreSQL's DDL is transactional: a
//! failed upgrade leaves the schema as it was).

use chrono::Utc;

use super::ops::db;
use crate::error::{StoreError, StoreResult};

/// One migration: its version, its name and its SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: u32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

macro_rules! migrations {
    ($($version:literal $name:literal),* $(,)?) => {
        /// Every migration, in order. A new file under `migrations/postgres`
        /// must be added here (a unit test checks the two agree, and that
        /// they keep SQLite's numbering).
        pub(crate) const MIGRATIONS: &[Migration] = &[$(
            Migration {
                version: $version,
                name: $name,
                sql: include_str!(concat!(
                    "../../migrations/postgres/",
                    stringify!($version), "_", $name, ".sql"
                )),
            },
        )*];
    };
}

// The version is the file's 4-digit prefix; `stringify!` keeps the leading
// zeros of the literal as written, so each is written as in its file name.
#[allow(clippy::zero_prefixed_literal)]
mod listed {
    use super::Migration;
    migrations! {
        0001 "initial",
        0002 "repository_token",
        0003 "environment_policies",
        0004 "audit_log",
        0005 "web_ui",
        0006 "totals",
        0007 "agents",
        0008 "one_running_deployment",
        0009 "jobs",
        0010 "resume",
        0011 "push_heads",
        0012 "forge_status",
        0013 "forge_deployments",
        0014 "octopus_forward",
        0015 "approvals",
        0016 "deployment_retries",
        0017 "interventions",
        0018 "freezes",
        0019 "retention",
        0020 "wakeups",
        0022 "agent_attempts_and_role_scopes",
        0023 "totals_shards",
        0024 "delivery_body_lz4",
        0025 "delivery_body_codec",
        0026 "wakeups_announced_after_commit",
        0027 "routed_delivery_indexes_partial",
        0028 "delivery_totals_per_statement",
    }
}
pub(crate) use listed::MIGRATIONS;

/// The advisory lock that lets one node at a time migrate (`takomigr`).
const MIGRATION_LOCK: i64 = 0x7461_6b6f_6d69_6772;

/// The newest version this build knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies pending migrations under the advisory lock; refuses a database
/// newer than this build.
pub(crate) async fn migrate(client: &mut deadpool_postgres::Client) -> StoreResult<()> {
    const CONTEXT: &str = "cannot migrate the database";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    // Held until this transaction ends: a second node starting at the same
    // time waits here, then finds the schema up to date.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db("cannot take the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .await
    .map_err(db("cannot create the migrations table"))?;
    let current: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM schema_migrations", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db("cannot read the schema version"))?;
    let current = u32::try_from(current.unwrap_or(0)).unwrap_or(u32::MAX);
    let supported = latest_version();
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let context = format!(
            "cannot apply migration {:04}_{}",
            migration.version, migration.name
        );
        tx.batch_execute(migration.sql)
            .await
            .map_err(|e| StoreError::unavailable(context.clone(), super::ops::describe(&e)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[
                &i64::from(migration.version),
                &migration.name,
                &Utc::now().timestamp_millis(),
            ],
        )
        .await
        .map_err(|e| StoreError::unavailable(context.clone(), super::ops::describe(&e)))?;
    }
    tx.commit().await.map_err(db(CONTEXT))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order_with_sqlites_numbers() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, listed);
        // Strictly increasing from 1, as SQLite's: a number may be left to
        // a change made in parallel on another branch.
        assert_eq!(MIGRATIONS.first().map(|m| m.version), Some(1));
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "{}", pair[1].name);
        }
        let sqlite: Vec<(u32, &str)> = crate::sqlite::migrations()
            .iter()
            .map(|m| (m.version, m.name))
            .collect();
        let postgres: Vec<(u32, &str)> = MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
        assert_eq!(
            postgres, sqlite,
            "each SQLite migration has its PostgreSQL twin with the same number and name"
        );
    }
}
