//! A real PostgreSQL server for tests: the system's own `initdb` and
//! `pg_ctl` (PostgreSQL 15 on this machine, Debian's `postgresql` package
//! elsewhere), a cluster in a temporary directory, listening on a free port
//! of 127.0.0.1 with password-less local trust for the `tako` user.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI
//! does) the cluster belongs to `nobody` and every server command runs
//! through `runuser -u nobody`. `initdb` runs once per machine (and set of
//! binaries): each cluster is a copy of that template. [`Postgres::stop`] and [`Postgres::start`]
//! let a fault test take the database away and bring it back; dropping the
//! value stops the server at once and removes the cluster.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The unprivileged user a root test runs PostgreSQL as.
const UNPRIVILEGED_USER: &str = "nobody";
/// The database user tests connect as.
pub const USER: &str = "tako";

/// A running (or stopped) PostgreSQL cluster of one test.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_user: Option<&'static str>,
}

impl Postgres {
    /// Creates a cluster and starts it; panics with what to install when
    /// PostgreSQL's binaries are missing (tests never skip for that).
    pub fn start_new() -> Postgres {
        let bin = bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's initdb and pg_ctl are missing: the PostgreSQL tests need them; install Debian's postgresql package (scripts/test does), or set TAKO_PG_BIN to their directory"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("tako-test-pg-")
            .tempdir()
            .expect("a temporary directory can be created");
        let as_user = is_root().then_some(UNPRIVILEGED_USER);
        if as_user.is_some() {
            give_to_nobody(dir.path());
        }
        let mut postgres = Postgres {
            dir,
            bin,
            port: 0,
            as_user,
        };
        // A copy of a cluster made once by initdb (about a second of CPU
        // each time otherwise), ownership and modes kept.
        let template = template(&postgres.bin, as_user);
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(postgres.data_dir())
            .output()
            .expect("cp runs");
        assert!(
            copied.status.success(),
            "cannot copy the template cluster {}: {}",
            template.display(),
            text(&copied)
        );
        postgres.port = free_port();
        postgres.start();
        postgres
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as the unprivileged user when
    /// needed).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        run_in(&self.bin, self.as_user, self.dir.path(), program, args)
    }

    /// Starts the server (again) on its port and waits until it accepts
    /// connections.
    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let started = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().display().to_string(),
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}\n{}",
            text(&started),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once (`-m immediate`: as if it crashed; open
    /// connections are cut).
    pub fn stop(&self) {
        let stopped = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(
            stopped.status.success(),
            "pg_ctl stop failed: {}",
            text(&stopped)
        );
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `database` (`postgres` always exists).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Runs SQL with `psql` (stopping at the first error) and returns what
    /// it printed (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let output = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Turns TLS on with this certificate chain and key (PEM): written into
    /// the cluster (the key readable by the server's user only), then
    /// `ssl = on` and a configuration reload. Plain connections stay
    /// possible (`sslmode` decides).
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        let data = self.data_dir();
        let cert = data.join("server.crt");
        let key = data.join("server.key");
        std::fs::write(&cert, cert_pem).expect("the certificate is written");
        std::fs::write(&key, key_pem).expect("the key is written");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .expect("the key's mode is set");
        }
        if self.as_user.is_some() {
            give_to_nobody(&cert);
            give_to_nobody(&key);
        }
        self.psql("postgres", "ALTER SYSTEM SET ssl = on");
        self.psql("postgres", "SELECT pg_reload_conf()");
    }

    /// The cluster's directory (its server log is `server.log` there).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

/// Runs one of PostgreSQL's programs from `bin` in `dir` (as `as_user`
/// when given).
fn run_in(
    bin: &Path,
    as_user: Option<&'static str>,
    dir: &Path,
    program: &str,
    args: &[&str],
) -> Output {
    let program = bin.join(program);
    let mut command = match as_user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(&program);
            command
        }
        None => Command::new(&program),
    };
    command
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// The data directory of a fresh cluster made by `initdb` once per set of
/// binaries and user, kept in the system's temporary directory
/// (`tako-pg-template-…`, about 40 MB) for every later test to copy. Made
/// in a directory of its own and renamed into place when complete, so tests
/// starting together never see half of one (the loser of a race removes
/// its copy).
fn template(bin: &Path, as_user: Option<&'static str>) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let stamp = std::fs::metadata(bin.join("initdb"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (bin, stamp, as_user, USER).hash(&mut hasher);
    let tmp = std::env::temp_dir();
    let ready = tmp.join(format!("tako-pg-template-{:016x}", hasher.finish()));
    if ready.join("complete").exists() {
        return ready.join("data");
    }
    let building = tempfile::Builder::new()
        .prefix(".tako-pg-template-")
        .tempdir_in(&tmp)
        .expect("a temporary directory can be created")
        .keep();
    if as_user.is_some() {
        give_to_nobody(&building);
    }
    let data = building.join("data");
    let init = run_in(
        bin,
        as_user,
        &building,
        "initdb",
        &[
            "-D",
            &data.display().to_string(),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
    );
    if !init.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        panic!("initdb failed: {}", text(&init));
    }
    std::fs::write(building.join("complete"), "").expect("the marker is written");
    if std::fs::rename(&building, &ready).is_err() {
        // Another test made it first.
        let _ = std::fs::remove_dir_all(&building);
    }
    ready.join("data")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Where `initdb` and `pg_ctl` are: `TAKO_PG_BIN`, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin`, else the `PATH`.
fn bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Some(dir) = std::env::var_os("TAKO_PG_BIN").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| has_tools(dir)))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Makes `dir` the unprivileged user's (PostgreSQL wants its cluster to be
/// its own).
fn give_to_nobody(dir: &Path) {
    let status = Command::new("chown")
        .arg(format!("{UNPRIVILEGED_USER}:"))
        .arg(dir)
        .status()
        .expect("chown runs");
    assert!(
        status.success(),
        "cannot give {} to {UNPRIVILEGED_USER}",
        dir.display()
    );
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_cluster_starts_stops_restarts_and_leaves_nothing_running() {
        let postgres = Postgres::start_new();
        let url = postgres.create_database("conformance");
        assert!(url.ends_with("/conformance"), "{url}");
        postgres.psql(
            "conformance",
            "CREATE TABLE t (n int); INSERT INTO t VALUES (41)",
        );
        assert_eq!(postgres.psql("conformance", "SELECT n + 1 FROM t"), "42");
        postgres.stop();
        postgres.start();
        assert_eq!(postgres.psql("conformance", "SELECT n FROM t"), "41");
        let marker = postgres.path().display().to_string();
        assert!(!crate::processes_with(&marker).is_empty());
        drop(postgres);
        assert!(
            crate::wait_until(std::time::Duration::from_secs(10), || {
                crate::processes_with(&marker).is_empty()
            }),
            "postgres processes left behind"
        );
    }
}
