//! `tako admin migrate` (cluster spec §5): a SQLite data directory's
//! database copied into an empty PostgreSQL database, for moving one node
//! to several. The store does the copy ([`tako_store::PostgresStore::import_from`]);
//! this module reads the two URLs, opens both ends and names the key file
//! the nodes need.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tako_store::transfer::{Copied, TransferError};
use tako_store::{PostgresOptions, PostgresStore, SqliteExport, redact_url};

/// What to copy where.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// `sqlite://PATH` of the source database (a data directory's `tako.db`).
    pub from: String,
    /// `postgres://…` of the target database (empty).
    pub to: String,
    /// The target's password, when it is not in the URL.
    pub password: Option<String>,
    /// CA certificates (PEM) to trust for the target's TLS certificate.
    pub ca_file: Option<PathBuf>,
    /// Rows per batch.
    pub batch: usize,
    /// How long to wait for the target.
    pub connect_timeout: Duration,
}

/// What was copied.
#[derive(Debug)]
pub struct Migrated {
    /// Each table with its row count, the same on both sides.
    pub tables: Vec<Copied>,
    /// The master key file beside the source database, which every node
    /// needs (the secrets stay sealed under it).
    pub key_file: PathBuf,
    /// The target, without its password.
    pub target: String,
}

/// Why the migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// `--from` is not a SQLite URL.
    #[error("--from {0}: expected sqlite://PATH (the tako.db in the SQLite node's data directory)")]
    From(String),
    /// `--to` is not a PostgreSQL URL.
    #[error("--to {0}: expected postgres://user@host[:port]/database (an empty database)")]
    To(String),
    /// The copy was refused or failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

/// Copies everything the SQLite database at `options.from` holds into the
/// empty PostgreSQL database at `options.to`, calling `progress` after each
/// batch.
pub async fn migrate(
    options: MigrateOptions,
    progress: &mut (dyn FnMut(&str, u64) + Send),
) -> Result<Migrated, MigrateError> {
    let Some(path) = options.from.strip_prefix("sqlite://") else {
        return Err(MigrateError::From(redact_url(&options.from)));
    };
    if !(options.to.starts_with("postgres://") || options.to.starts_with("postgresql://")) {
        return Err(MigrateError::To(redact_url(&options.to)));
    }
    let path = Path::new(path);
    let source = SqliteExport::open(path).map_err(TransferError::from)?;
    let mut pg = PostgresOptions::new(options.to.clone());
    pg.password = options.password;
    pg.ca_file = options.ca_file;
    pg.max_connections = 2;
    pg.connect_timeout = options.connect_timeout;
    let target = PostgresStore::connect(pg)
        .await
        .map_err(TransferError::from)?;
    let tables = target
        .import_from(&source, options.batch.max(1), progress)
        .await?;
    let key_file = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("secret.key");
    Ok(Migrated {
        tables,
        key_file,
        target: target.target().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn options(from: &str, to: &str) -> MigrateOptions {
        MigrateOptions {
            from: from.to_owned(),
            to: to.to_owned(),
            password: None,
            ca_file: None,
            batch: 10,
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn urls_of_the_wrong_kind_are_refused_without_their_password() {
        let err = migrate(
            options("postgres://a:pw-canary@h/db", "postgres://h/db"),
            &mut |_, _| {},
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected sqlite://PATH"), "{err}");
        assert!(!err.contains("pw-canary"), "{err}");
        let err = migrate(
            options("sqlite:///x/tako.db", "mysql://h/db"),
            &mut |_, _| {},
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected postgres://"), "{err}");
    }
}
