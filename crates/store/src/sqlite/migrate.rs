//! Versioned migrations: the numbered files of `migrations/sqlite`, compiled
//! in and applied in order, each recorded in `schema_migrations`.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{StoreError, StoreResult};

/// One migration: its version, its name and its SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: u32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, in order. A new file under `migrations/sqlite` must be
/// added here (a unit test checks the two agree).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "repository_token",
        sql: include_str!("../../migrations/sqlite/0002_repository_token.sql"),
    },
    Migration {
        version: 3,
        name: "environment_policies",
        sql: include_str!("../../migrations/sqlite/0003_environment_policies.sql"),
    },
    Migration {
        version: 4,
        name: "audit_log",
        sql: include_str!("../../migrations/sqlite/0004_audit_log.sql"),
    },
    Migration {
        version: 5,
        name: "web_ui",
        sql: include_str!("../../migrations/sqlite/0005_web_ui.sql"),
    },
    Migration {
        version: 6,
        name: "totals",
        sql: include_str!("../../migrations/sqlite/0006_totals.sql"),
    },
    Migration {
        version: 7,
        name: "agents",
        sql: include_str!("../../migrations/sqlite/0007_agents.sql"),
    },
    Migration {
        version: 8,
        name: "one_running_deployment",
        sql: include_str!("../../migrations/sqlite/0008_one_running_deployment.sql"),
    },
    Migration {
        version: 9,
        name: "jobs",
        sql: include_str!("../../migrations/sqlite/0009_jobs.sql"),
    },
    Migration {
        version: 10,
        name: "resume",
        sql: include_str!("../../migrations/sqlite/0010_resume.sql"),
    },
    Migration {
        version: 11,
        name: "push_heads",
        sql: include_str!("../../migrations/sqlite/0011_push_heads.sql"),
    },
    Migration {
        version: 12,
        name: "forge_status",
        sql: include_str!("../../migrations/sqlite/0012_forge_status.sql"),
    },
    Migration {
        version: 13,
        name: "forge_deployments",
        sql: include_str!("../../migrations/sqlite/0013_forge_deployments.sql"),
    },
    Migration {
        version: 14,
        name: "octopus_forward",
        sql: include_str!("../../migrations/sqlite/0014_octopus_forward.sql"),
    },
    Migration {
        version: 15,
        name: "approvals",
        sql: include_str!("../../migrations/sqlite/0015_approvals.sql"),
    },
    Migration {
        version: 16,
        name: "deployment_retries",
        sql: include_str!("../../migrations/sqlite/0016_deployment_retries.sql"),
    },
    Migration {
        version: 17,
        name: "interventions",
        sql: include_str!("../../migrations/sqlite/0017_interventions.sql"),
    },
    Migration {
        version: 18,
        name: "freezes",
        sql: include_str!("../../migrations/sqlite/0018_freezes.sql"),
    },
    Migration {
        version: 19,
        name: "retention",
        sql: include_str!("../../migrations/sqlite/0019_retention.sql"),
    },
    Migration {
        version: 20,
        name: "wakeups",
        sql: include_str!("../../migrations/sqlite/0020_wakeups.sql"),
    },
    Migration {
        version: 22,
        name: "agent_attempts_and_role_scopes",
        sql: include_str!("../../migrations/sqlite/0022_agent_attempts_and_role_scopes.sql"),
    },
    Migration {
        version: 23,
        name: "totals_shards",
        sql: include_str!("../../migrations/sqlite/0023_totals_shards.sql"),
    },
    Migration {
        version: 24,
        name: "delivery_body_lz4",
        sql: include_str!("../../migrations/sqlite/0024_delivery_body_lz4.sql"),
    },
    Migration {
        version: 25,
        name: "delivery_body_codec",
        sql: include_str!("../../migrations/sqlite/0025_delivery_body_codec.sql"),
    },
    Migration {
        version: 26,
        name: "wakeups_announced_after_commit",
        sql: include_str!("../../migrations/sqlite/0026_wakeups_announced_after_commit.sql"),
    },
    Migration {
        version: 27,
        name: "routed_delivery_indexes_partial",
        sql: include_str!("../../migrations/sqlite/0027_routed_delivery_indexes_partial.sql"),
    },
    Migration {
        version: 28,
        name: "delivery_totals_per_statement",
        sql: include_str!("../../migrations/sqlite/0028_delivery_totals_per_statement.sql"),
    },
];

fn failed(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::unavailable(context.to_owned(), e)
}

/// The newest version this build knows.
pub(crate) fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies pending migrations; refuses a database newer than this build.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(failed("cannot create the migrations table"))?;
    let current: u32 = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
            row.get::<_, Option<u32>>(0)
        })
        .optional()
        .map_err(failed("cannot read the schema version"))?
        .flatten()
        .unwrap_or(0);
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
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::unavailable(context.clone(), e))?;
        tx.execute_batch(migration.sql)
            .map_err(|e| StoreError::unavailable(context.clone(), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![
                migration.version,
                migration.name,
                Utc::now().timestamp_millis()
            ],
        )
        .map_err(|e| StoreError::unavailable(context.clone(), e))?;
        tx.commit()
            .map_err(|e| StoreError::unavailable(context.clone(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
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
        // Strictly increasing from 1; a number may be left to a change made
        // in parallel on another branch (14 while 15 was written).
        assert_eq!(MIGRATIONS.first().map(|m| m.version), Some(1));
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "{}", pair[1].name);
        }
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, MIGRATIONS.len() as i64);
    }

    #[test]
    fn deliveries_stored_before_push_heads_get_their_after_from_the_body() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for migration in MIGRATIONS.iter().filter(|m| m.version <= 10) {
            tx.execute_batch(migration.sql).unwrap();
        }
        tx.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                             applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (10, 'resume', 0);
             INSERT INTO deliveries (id, event, received_at, body) VALUES
                 ('push', 'push', 0, CAST('{\"ref\":\"refs/heads/main\",\"after\":\"abc123\"}' AS BLOB)),
                 ('form', 'push', 0, CAST('not json' AS BLOB)),
                 ('ping', 'ping', 0, CAST('{\"after\":\"nope\"}' AS BLOB));",
        )
        .unwrap();
        tx.commit().unwrap();
        migrate(&mut conn).unwrap();
        let after = |id: &str| -> Option<String> {
            conn.query_row(
                "SELECT after_sha FROM deliveries WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(after("push").as_deref(), Some("abc123"));
        assert_eq!(after("form"), None);
        assert_eq!(after("ping"), None);
    }
}
