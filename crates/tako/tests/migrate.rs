//! `tako admin migrate` end to end (cluster spec §5): a real SQLite data
//! directory built by a real `tako serve` (releases, task logs, a sensitive
//! variable, an enrolled agent), copied by the real binary into a real
//! PostgreSQL (from `tako_test_support::postgres`), then `tako serve` on
//! PostgreSQL with the same secret.key shows the old history, accepts the
//! old API token and agent, and runs a deployment that uses the sensitive
//! variable (masked in the log). A second migration into the same
//! database is refused.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    Deployment, DeploymentFilter, DeploymentId, DeploymentState, LogCursor, PageRequest,
    PostgresOptions, PostgresStore, SqliteStore, Store,
};
use tako_test_support::agent::AgentProcess;
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::postgres::Postgres;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "migrate-webhook-secret";
const CANARY: &str = "migrated-canary-Zp81q";

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Build
    Run: |
      echo "building $(cat app.txt) with key #{ApiKey}"
  - Name: Install
    Roles: [ps]
    Run: |
      echo "installing on $TAKO_AGENT_NAME"
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// Runs the CLI against `url` with `token`.
fn cli(url: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(tako_bin())
        .args(args)
        .env("TAKO_SERVER", url)
        .env("TAKO_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Reads what a server keeps, through a store of the test's own.
struct Reader {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Reader {
    fn new(open: impl FnOnce(&tokio::runtime::Runtime) -> Arc<dyn Store>) -> Reader {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = open(&runtime);
        Reader { store, runtime }
    }

    /// Every deployment, oldest first.
    fn deployments(&self) -> Vec<Deployment> {
        let mut all = self
            .runtime
            .block_on(
                self.store
                    .list_deployments(&DeploymentFilter::default(), PageRequest::first(100)),
            )
            .unwrap()
            .items;
        all.reverse();
        all
    }

    /// Waits for the `count`th deployment to end; returns it.
    fn finished(&self, count: usize) -> Deployment {
        let done = wait_until(Duration::from_secs(120), || {
            self.deployments()
                .get(count - 1)
                .is_some_and(|d| d.state.is_final())
        });
        assert!(
            done,
            "deployment {count} did not finish: {:?}",
            self.deployments()
        );
        self.deployments()[count - 1].clone()
    }

    fn log(&self, id: DeploymentId) -> String {
        self.runtime
            .block_on(self.store.read_log(id, LogCursor::START, 100_000))
            .unwrap()
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn push(server: &TakoServer, origin: &Origin, n: usize) {
    let body = origin.push_commit("main", "app.txt", &format!("v{n}"), &format!("Push {n}"));
    let answer = post_push(&server.address, &format!("delivery-{n}"), &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
}

fn agent(server_url: &str, dir: &Path, enroll: Option<&str>) -> AgentProcess {
    let mut args = vec![
        "agent",
        "run",
        "--server",
        server_url,
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    if let Some(token) = enroll {
        args.extend(["--enroll", token]);
    }
    let agent = AgentProcess::start(tako_bin(), &args);
    agent.wait_for_line("waiting for work");
    agent
}

fn migrate(from: &Path, to: &str) -> Output {
    Command::new(tako_bin())
        .args(["admin", "migrate", "--batch-size", "50", "--from"])
        .arg(format!("sqlite://{}", from.display()))
        .args(["--to", to])
        .env_remove("TAKO_SERVER")
        .env_remove("TAKO_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn a_sqlite_node_moves_to_postgres_with_its_history_secrets_tokens_and_agents() {
    // One node on SQLite, used for real.
    let origin = Origin::new(TAKOFILE);
    let data = DataDir::new();
    let agent_home = tempfile::tempdir().unwrap();
    let agent_dir: PathBuf = agent_home.path().join("win-01");
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let token = server.token.clone().unwrap();
    let enroll = cli(
        &server.url,
        &token,
        &[
            "agent",
            "enroll-token",
            "--env",
            "Production",
            "--role",
            "ps",
            "--name",
            "win-01",
            "--auto-approve",
        ],
        None,
    );
    assert!(enroll.status.success(), "{}", text(&enroll));
    let enroll = String::from_utf8(enroll.stdout).unwrap();
    let mut win = agent(&server.url, &agent_dir, Some(enroll.trim()));
    let sqlite = Reader::new(|_| Arc::new(SqliteStore::open(data.path.join("tako.db")).unwrap()));

    push(&server, &origin, 1);
    sqlite.finished(1);
    let set = cli(
        &server.url,
        &token,
        &[
            "var",
            "set",
            "ApiKey",
            "--project",
            "Demo",
            "--env",
            "Production",
            "--sensitive",
        ],
        Some(CANARY),
    );
    assert!(set.status.success(), "{}", text(&set));
    push(&server, &origin, 2);
    let before = sqlite.finished(2);
    let before_log = sqlite.log(before.id);
    assert_eq!(before.state, DeploymentState::Success, "{before_log}");
    assert!(
        before_log.contains("building v2 with key ********"),
        "{before_log}"
    );
    assert!(before_log.contains("installing on win-01"), "{before_log}");
    win.kill();
    server.kill();
    drop(sqlite);

    // The copy.
    let postgres = Postgres::start_new();
    let url = postgres.create_database("tako");
    let moved = migrate(&data.path.join("tako.db"), &url);
    let report = text(&moved);
    assert!(moved.status.success(), "{report}");
    for table in [
        "deployments",
        "log_chunks",
        "variables",
        "agents",
        "api_tokens",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(table)),
            "{table} not reported: {report}"
        );
    }
    assert!(report.contains("every count verified"), "{report}");
    assert!(report.contains("secret.key"), "{report}");
    assert!(!report.contains(CANARY), "{report}");
    let stored = postgres.psql("tako", "SELECT string_agg(value, ' ') FROM variables");
    assert!(stored.starts_with("v1:"), "sealed as it was: {stored}");

    // A node on PostgreSQL with the same key.
    let node = DataDir::new();
    std::fs::create_dir_all(&node.path).unwrap();
    std::fs::copy(data.path.join("secret.key"), node.path.join("secret.key")).unwrap();
    let server = TakoServer::start(
        tako_bin(),
        &node.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", SECRET), ("TAKO_DATABASE_URL", &url)],
    );
    assert!(
        server.token.is_none(),
        "the migrated token is used, no new one is made: {}",
        server.startup_output
    );
    // The old history, through the API with the old token.
    let logs = cli(
        &server.url,
        &token,
        &["logs", &before.id.0.to_string()],
        None,
    );
    assert!(logs.status.success(), "{}", text(&logs));
    let logs = text(&logs);
    assert!(logs.contains("building v2 with key ********"), "{logs}");
    assert!(!logs.contains(CANARY), "{logs}");

    // The agent enrolled on SQLite works for the PostgreSQL node, and a
    // new deployment uses the sealed variable.
    let _win = agent(&server.url, &agent_dir, None);
    let pg = Reader::new(|runtime| {
        Arc::new(
            runtime
                .block_on(PostgresStore::connect(PostgresOptions::new(&url)))
                .unwrap(),
        )
    });
    assert_eq!(pg.deployments().len(), 2);
    push(&server, &origin, 3);
    let after = pg.finished(3);
    let after_log = pg.log(after.id);
    assert_eq!(after.state, DeploymentState::Success, "{after_log}");
    assert!(after.id.0 > before.id.0);
    assert!(
        after_log.contains("building v3 with key ********"),
        "{after_log}"
    );
    assert!(after_log.contains("installing on win-01"), "{after_log}");
    assert!(!after_log.contains(CANARY), "{after_log}");

    // The target holds data now: a second copy is refused, saying what to do.
    let again = migrate(&data.path.join("tako.db"), &url);
    let refusal = text(&again);
    assert_eq!(again.status.code(), Some(2), "{refusal}");
    assert!(refusal.contains("is not empty"), "{refusal}");
    assert!(refusal.contains("empty database"), "{refusal}");
    assert!(refusal.contains("nothing was written"), "{refusal}");
}
