//! `tako admin migrate`: copies a SQLite node's database into an empty
//! PostgreSQL database (`tako_server::migrate`), printing progress on
//! stderr and the verified count of each table on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tako_server::migrate::{MigrateOptions, migrate as copy};

/// What `tako admin migrate` was given.
pub(crate) struct Args {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) batch_size: u32,
}

fn read_password(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --password-file {}", path.display()))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        bail!(
            "--password-file {}: the file is empty: write the password on its first line",
            path.display()
        );
    }
    Ok(password.to_owned())
}

pub(crate) fn migrate(args: Args) -> Result<ExitCode> {
    let password = args
        .password_file
        .as_deref()
        .map(read_password)
        .transpose()?;
    let options = MigrateOptions {
        from: args.from,
        to: args.to,
        password,
        ca_file: args.ca_file,
        batch: args.batch_size as usize,
        connect_timeout: Duration::from_secs(10),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    let mut last = Instant::now();
    let mut progress = |table: &str, rows: u64| {
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!("copying {table}: {rows} row(s)");
        }
    };
    let migrated = runtime
        .block_on(copy(options, &mut progress))
        .context("the migration did not happen; nothing was written to the target")?;
    let mut out = std::io::stdout().lock();
    let width = migrated
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5);
    writeln!(out, "{:<width$}  ROWS", "TABLE")?;
    for table in &migrated.tables {
        writeln!(out, "{:<width$}  {}", table.table, table.rows)?;
    }
    let total: u64 = migrated.tables.iter().map(|t| t.rows).sum();
    writeln!(
        out,
        "Copied {total} row(s) in {} table(s) into {} in {:.1}s; every count verified.",
        migrated.tables.len(),
        migrated.target,
        started.elapsed().as_secs_f64()
    )?;
    writeln!(
        out,
        "Next: copy {} to every node's data directory (secrets stay sealed under it), \
         then start each node with database_url = \"{}\".",
        migrated.key_file.display(),
        migrated.target
    )?;
    Ok(ExitCode::SUCCESS)
}
