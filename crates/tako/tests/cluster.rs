//! Two `tako serve` nodes on one real PostgreSQL (spec cluster §2, §4): a
//! node killed with SIGKILL in the middle of a deployment loses it to the
//! other node's lease sweep, which marks it `interrupted` with the dead
//! node's name, and the next deployment queued in that environment runs on
//! the surviving node. Every delivery the dead node acknowledged is kept.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState, LogCursor,
    PageRequest, PostgresOptions, PostgresStore, Store,
};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::postgres::Postgres;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "it's a secret to everybody";

/// The first release sleeps (long enough to be killed in the middle, short
/// enough that the orphaned script ends soon after the test); the others
/// are quick.
const ROUTING: &str = r##"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Deploy
    Run: |
      echo "deploying #{Octopus.Release.Number}"
      if [ "#{Octopus.Release.Number}" = "0.0.1" ]; then sleep 20; fi
      echo "deployed #{Octopus.Release.Number}"
"##;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

struct Db {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    fn connect(url: &str) -> Db {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = runtime
            .block_on(PostgresStore::connect(PostgresOptions::new(url)))
            .unwrap();
        Db {
            store: Arc::new(store),
            runtime,
        }
    }

    fn deployments(&self) -> Vec<Deployment> {
        let mut items = self
            .runtime
            .block_on(
                self.store
                    .list_deployments(&DeploymentFilter::default(), PageRequest::first(100)),
            )
            .unwrap()
            .items;
        items.sort_by_key(|d| d.id);
        items
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

#[test]
fn a_killed_nodes_deployment_is_interrupted_and_its_queue_moves_on_elsewhere() {
    let postgres = Postgres::start_new();
    let url = postgres.create_database("tako");
    let origin = Origin::new(ROUTING);
    let env = |key_file: &str| {
        vec![
            ("TAKO_WEBHOOK_SECRET", SECRET.to_owned()),
            ("TAKO_DATABASE_URL", url.clone()),
            ("TAKO_DEPLOYMENT_LEASE", "3s".to_owned()),
            ("TAKO_LEASE_SWEEP", "500ms".to_owned()),
            ("TAKO_MASTER_KEY_FILE", key_file.to_owned()),
        ]
    };
    let start = |data: &DataDir, key_file: &str| {
        let env = env(key_file);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        TakoServer::start(tako_bin(), &data.path, &["--auto-register-projects"], &env)
    };
    let data_a = DataDir::new();
    let data_b = DataDir::new();
    let key_file = data_a.path.join("secret.key");
    let key_file = key_file.to_str().unwrap();
    // Node A alone first, so the slow deployment is surely its own.
    let node_a = start(&data_a, key_file);
    let db = Db::connect(&url);

    let body = origin.push_commit("develop", "app.txt", "v1", "The slow one");
    let answer = post_push(&node_a.address, "delivery-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert!(
        wait_until(Duration::from_secs(60), || db
            .deployments()
            .first()
            .is_some_and(
                |d| d.state == DeploymentState::Running && db.log(d).contains("deploying 0.0.1")
            )),
        "the first deployment never started: {:?}",
        db.deployments()
    );
    let first = db.deployments().remove(0);
    let node_a_id = first.claimed_by.clone().unwrap();

    // Node B joins; node A acknowledges a second push, routed behind the
    // running deployment.
    let node_b = start(&data_b, key_file);
    let body = origin.push_commit("develop", "app.txt", "v2", "The next one");
    let answer = post_push(&node_a.address, "delivery-2", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert!(
        wait_until(Duration::from_secs(60), || matches!(
            db.outcome("delivery-2"),
            Some(DeliveryOutcome::Queued { .. })
        )),
        "delivery-2 was not routed: {:?}",
        db.outcome("delivery-2")
    );
    assert_eq!(
        db.deployments()[1].state,
        DeploymentState::Queued,
        "one deployment at a time in an environment"
    );

    node_a.kill();

    // Node B's sweep interrupts the dead node's deployment once its lease
    // (3 s) ran out, and then runs the next one in the queue.
    assert!(
        wait_until(Duration::from_secs(60), || db.deployments()[0].state
            == DeploymentState::Interrupted),
        "the dead node's deployment was never interrupted: {:?}",
        db.deployments()
    );
    let interrupted = db.deployments().remove(0);
    let error = interrupted.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "node {node_a_id} stopped renewing its lease; last heard of at "
        )),
        "{error}"
    );
    // The sweeping node writes its line just after the state changes.
    assert!(
        wait_until(Duration::from_secs(10), || db
            .log(&interrupted)
            .contains("Interrupted by another node's sweep")),
        "{}",
        db.log(&interrupted)
    );
    assert!(
        wait_until(Duration::from_secs(60), || db.deployments()[1]
            .state
            .is_final()),
        "the next deployment never ran: {:?}",
        db.deployments()
    );
    let second = db.deployments().remove(1);
    assert_eq!(
        second.state,
        DeploymentState::Success,
        "{}",
        db.log(&second)
    );
    assert!(
        db.log(&second).contains("deployed 0.0.2"),
        "{}",
        db.log(&second)
    );
    let node_b_id = second.claimed_by.clone().unwrap();
    assert_ne!(node_b_id, node_a_id, "it ran on the surviving node");

    // A push to the survivor still deploys; nothing acknowledged was lost.
    let body = origin.push_commit("develop", "app.txt", "v3", "After the crash");
    let answer = post_push(&node_b.address, "delivery-3", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert!(
        wait_until(Duration::from_secs(60), || db.deployments().len() == 3
            && db.deployments()[2].state.is_final()),
        "{:?}",
        db.deployments()
    );
    assert_eq!(db.deployments()[2].state, DeploymentState::Success);
    for delivery in ["delivery-1", "delivery-2", "delivery-3"] {
        assert!(
            matches!(db.outcome(delivery), Some(DeliveryOutcome::Queued { .. })),
            "{delivery}: {:?}",
            db.outcome(delivery)
        );
    }
}

/// Spec cluster §1: every node must hold the cluster's master key. A node
/// started with its own key refuses to start (exit 2) and says what to
/// do, before it seals anything; the same key copied over starts.
#[test]
fn a_node_with_another_master_key_refuses_to_start_and_a_copied_key_starts() {
    use std::process::Command;

    let postgres = Postgres::start_new();
    let url = postgres.create_database("tako");
    let env = |key_file: &Path| {
        vec![
            ("TAKO_WEBHOOK_SECRET", SECRET.to_owned()),
            ("TAKO_DATABASE_URL", url.clone()),
            (
                "TAKO_MASTER_KEY_FILE",
                key_file.to_str().unwrap().to_owned(),
            ),
        ]
    };
    let data_a = DataDir::new();
    let key_a = data_a.path.join("secret.key");
    let env_a = env(&key_a);
    let env_a: Vec<(&str, &str)> = env_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let node_a = TakoServer::start(tako_bin(), &data_a.path, &[], &env_a);

    // Node B with a key of its own.
    let data_b = DataDir::new();
    let key_b = data_b.path.join("secret.key");
    let output = Command::new(tako_bin())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_b.path)
        .envs(env(&key_b))
        .env("TAKO_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("this node's master key (id ")
            && stderr.contains("does not match the cluster's (id ")
            && stderr.contains("copy secret.key from another node"),
        "{stderr}"
    );
    let key_bytes = std::fs::read(&key_b).unwrap();
    assert!(
        !stderr.contains(&String::from_utf8_lossy(&key_bytes).into_owned()),
        "no key material in the message"
    );

    // The same key as A's: B starts and serves.
    std::fs::copy(&key_a, &key_b).unwrap();
    let env_b = env(&key_b);
    let env_b: Vec<(&str, &str)> = env_b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let node_b = TakoServer::start(tako_bin(), &data_b.path, &[], &env_b);
    drop(node_b);
    drop(node_a);
}
