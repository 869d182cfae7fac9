//! `tako serve` on PostgreSQL end to end: the real binary with
//! `--database-url postgres://…` against a real PostgreSQL (started from
//! the system's binaries by the test support), a real git origin, a signed
//! push over HTTP on 127.0.0.1, and the outcome read back from the
//! database by a second store, as another node would.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState, LogCursor,
    PageRequest, PostgresOptions, PostgresStore, Store,
};
use tako_test_support::origin::Origin;
use tako_test_support::postgres::Postgres;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "it's a secret to everybody";

const ROUTING: &str = r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Test
    Run: |
      echo "testing #{Octopus.Release.Number} in #{Octopus.Environment.Name}"
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// The server's database, read through a store of its own.
struct Db {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    fn connect(url: &str, ca_file: &Path) -> Db {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut options = PostgresOptions::new(url);
        options.ca_file = Some(ca_file.to_path_buf());
        let store = runtime.block_on(PostgresStore::connect(options)).unwrap();
        Db {
            store: Arc::new(store),
            runtime,
        }
    }

    fn deployments(&self) -> Vec<Deployment> {
        self.runtime
            .block_on(
                self.store
                    .list_deployments(&DeploymentFilter::default(), PageRequest::first(100)),
            )
            .unwrap()
            .items
    }

    fn outcome(&self, delivery: &str) -> Option<DeliveryOutcome> {
        self.runtime
            .block_on(self.store.get_delivery(&DeliveryId(delivery.to_owned())))
            .ok()
            .and_then(|d| d.outcome)
    }

    fn log(&self, deployment: &Deployment) -> String {
        let page = self
            .runtime
            .block_on(self.store.read_log(deployment.id, LogCursor::START, 10_000))
            .unwrap();
        page.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A CA and a server certificate it issued for 127.0.0.1 (PEM: CA, chain,
/// key).
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The server talks to PostgreSQL over verified TLS (`sslmode=require`,
/// `TAKO_DATABASE_CA_FILE`), with the URL from `TAKO_DATABASE_URL`.
#[test]
fn a_signed_push_deploys_through_a_server_on_postgres() {
    let postgres = Postgres::start_new();
    let (ca, cert, key) = pki();
    postgres.enable_tls(&cert, &key);
    let url = format!(
        "{}?sslmode=require&application_name=tako-serve",
        postgres.create_database("tako")
    );
    let pki_dir = tempfile::tempdir().unwrap();
    let ca_file = pki_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &["--auto-register-projects"],
        &[
            ("TAKO_WEBHOOK_SECRET", SECRET),
            ("TAKO_DATABASE_URL", &url),
            ("TAKO_DATABASE_CA_FILE", ca_file.to_str().unwrap()),
        ],
    );
    assert!(
        server
            .token
            .as_deref()
            .is_some_and(|t| t.starts_with("tako_")),
        "{}",
        server.startup_output
    );

    let body = origin.push_commit("develop", "app.txt", "v1", "Make the app better");
    let answer = tako_test_support::origin::post_push(&server.address, "delivery-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());

    let db = Db::connect(&url, &ca_file);
    assert!(
        wait_until(Duration::from_secs(60), || db
            .outcome("delivery-1")
            .is_some()),
        "delivery-1 was never processed"
    );
    let Some(DeliveryOutcome::Queued { deployment, .. }) = db.outcome("delivery-1") else {
        panic!("not queued: {:?}", db.outcome("delivery-1"));
    };
    assert!(
        wait_until(Duration::from_secs(60), || db
            .deployments()
            .iter()
            .any(|d| d.id == deployment && d.state.is_final())),
        "the deployment did not finish: {:?}",
        db.deployments()
    );
    let deployments = db.deployments();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].environment, "DevTest");
    assert_eq!(
        deployments[0].state,
        DeploymentState::Success,
        "{}",
        db.log(&deployments[0])
    );
    let log = db.log(&deployments[0]);
    assert!(log.contains("testing 0.0.1 in DevTest"), "{log}");

    // Everything went to PostgreSQL: the data directory holds no SQLite
    // database, and the API token printed at first start is in PostgreSQL.
    assert!(!data.path.join("tako.db").exists());
    let tokens = postgres.psql("tako", "SELECT count(*) FROM api_tokens");
    assert_eq!(tokens, "1");
    let plain = postgres.psql(
        "tako",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'tako-serve' AND NOT ssl",
    );
    let encrypted = postgres.psql(
        "tako",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'tako-serve' AND ssl",
    );
    assert_eq!(plain, "0", "every connection of the server uses TLS");
    assert_ne!(encrypted, "0");
}

#[test]
fn database_start_up_problems_are_clear_and_never_show_the_password() {
    let run = |args: &[&str]| {
        let data = DataDir::new();
        let output = Command::new(tako_bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data.path)
            .args(args)
            .env("TAKO_LOG", "error")
            .env_remove("TAKO_DATABASE_URL")
            .output()
            .unwrap();
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };

    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://tako:hunter2-secret@127.0.0.1:{port}/tako");
    let (code, output) = run(&["--database-url", &url]);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains(&format!(
            "cannot open the database postgres://tako:********@127.0.0.1:{port}/tako"
        )),
        "{output}"
    );
    assert!(output.contains("cannot reach the database"), "{output}");
    assert!(!output.contains("hunter2"), "{output}");
    assert!(!output.contains("panicked"), "{output}");

    // The same with the password in a file: not shown either.
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter3-from-file\n").unwrap();
    let (code, output) = run(&[
        "--database-url",
        &format!("postgres://tako@127.0.0.1:{port}/tako"),
        "--database-password-file",
        password.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("cannot reach the database"), "{output}");
    assert!(
        !output.contains("hunter3") && !output.contains("panicked"),
        "{output}"
    );

    // An empty password file.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("password");
    std::fs::write(&empty, "\n").unwrap();
    let (code, output) = run(&[
        "--database-url",
        &format!("postgres://tako@127.0.0.1:{port}/tako"),
        "--database-password-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("database_password_file") && output.contains("the file is empty"),
        "{output}"
    );

    // A scheme Tako does not know, named with where it came from.
    let (code, output) = run(&["--database-url", "mysql://db/tako"]);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("database_url from --database-url")
            && output.contains("expected sqlite://PATH or postgres://"),
        "{output}"
    );
}
