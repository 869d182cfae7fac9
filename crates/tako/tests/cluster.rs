//! Two `tako serve` nodes on one real PostgreSQL (spec cluster §2, §4): a
//! node killed with SIGKILL in the middle of a deployment loses it to the
//! other node's lease sweep, which marks it `interrupted` with the dead
//! node's name, and the next deployment queued in that environment runs on
//! the surviving node. Every delivery the dead node acknowledged is kept.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    Delivery, DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState,
    LogCursor, PageRequest, PostgresOptions, PostgresStore, Store,
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

    fn delivery(&self, id: &str) -> Delivery {
        self.runtime
            .block_on(self.store.get_delivery(&DeliveryId(id.to_owned())))
            .unwrap()
    }

    /// Stores deliveries of one push, as the intake would.
    fn store_push(&self, ids: &[&str], body: &[u8]) {
        self.runtime
            .block_on(
                self.store
                    .insert_deliveries(&support::push_deliveries(ids, body)),
            )
            .unwrap();
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

/// Two sensitive values every deployment reads, printed masked and as hex
/// (which the log may show: it is not the value).
const SECRETS: &str = r##"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Use
    Run: |
      echo "token: #{Token}"
      echo "token hex: $(printf '%s' '#{Token}' | od -An -tx1 | tr -d ' \n')"
      echo "later hex: $(printf '%s' '#{Later}' | od -An -tx1 | tr -d ' \n')"
"##;
const TOKEN: &str = "rotation-token-0d9f8e7a";
const LATER: &str = "set-through-b-51c2";
const LATER_AFTER: &str = "set-through-b-after-rotation-77ab";

/// Writes a key file as the operator does: readable by its owner only
/// (a node refuses a key file others can read).
fn write_key_file(path: &std::path::Path, key: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, key).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// An API call with `token`.
fn api(
    node: &TakoServer,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> tako_test_support::http::HttpResponse {
    let bearer = format!("Bearer {token}");
    tako_test_support::http::request(
        &node.address,
        method,
        path,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap()
}

/// A node's id, as its data directory keeps it.
fn node_id(data: &DataDir) -> tako_store::NodeId {
    tako_store::NodeId(
        std::fs::read_to_string(data.path.join("node-id"))
            .unwrap()
            .trim()
            .to_owned(),
    )
}

/// Spec cluster §1 and the manual's two-step rotation, with both nodes
/// serving throughout (one of them restarted at a time): the new key added
/// under `keys/` on each node, a rotation on one, followed by the other,
/// then each node's `secret.key` replaced by the new key. Every deployment,
/// on either node, reads both sensitive values (one set through the other
/// node after the rotation), none shows them; a node left with only the
/// old key refuses to start and says what to do.
#[test]
fn the_master_key_is_rotated_with_two_nodes_serving_and_every_deployment_reads_the_secrets() {
    let postgres = Postgres::start_new();
    let url = postgres.create_database("tako");
    let origin = Origin::new(SECRETS);
    let env = vec![
        ("TAKO_WEBHOOK_SECRET", SECRET),
        ("TAKO_DATABASE_URL", url.as_str()),
        ("TAKO_DEPLOYMENT_LEASE", "5s"),
        ("TAKO_LEASE_SWEEP", "1s"),
        ("TAKO_LOG", "info"),
    ];
    let start = |data: &DataDir| {
        TakoServer::start_logging_to(
            tako_bin(),
            &data.path,
            &[],
            &env,
            &data.path.with_extension("log"),
        )
    };
    let restart = |node: TakoServer| {
        let status = node.terminate(Duration::from_secs(30));
        assert!(status.is_some(), "the node did not stop on SIGTERM");
    };
    let (data_a, data_b) = (DataDir::new(), DataDir::new());
    let node_logs = || {
        [&data_a, &data_b]
            .iter()
            .map(|d| std::fs::read_to_string(d.path.with_extension("log")).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    // A makes the key; B gets a copy (as the manual says).
    let a = start(&data_a);
    let old_key = std::fs::read(data_a.path.join("secret.key")).unwrap();
    std::fs::create_dir_all(&data_b.path).unwrap();
    write_key_file(&data_b.path.join("secret.key"), &old_key);
    let b = start(&data_b);
    let admin = a.token.clone().unwrap();
    let db = Db::connect(&url);

    let created = api(
        &a,
        &admin,
        "POST",
        "/api/v1/projects",
        &serde_json::json!({"name": "Demo", "repository": origin.bare.file_url()}).to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let set = |node: &TakoServer, name: &str, value: &str| {
        let answer = api(
            node,
            &admin,
            "PUT",
            &format!("/api/v1/projects/Demo/variables/{name}"),
            &serde_json::json!({"value": value, "sensitive": true}).to_string(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(!answer.text().contains(value), "{}", answer.text());
    };
    set(&a, "Token", TOKEN);
    set(&b, "Later", LATER);

    // A push to `node`: its deployment succeeds (on `runs_on` when given)
    // and reads the values.
    let pushes = std::cell::Cell::new(0);
    let deploy = |node: &TakoServer, runs_on: Option<&DataDir>, later: &str| {
        pushes.set(pushes.get() + 1);
        let n = pushes.get();
        let body = origin.push_commit("develop", "app.txt", &format!("v{n}"), &format!("Push {n}"));
        let answer = post_push(&node.address, &format!("push-{n}"), &body, SECRET);
        assert_eq!(answer.status, 202, "{}", answer.text());
        assert!(
            wait_until(Duration::from_secs(60), || db.deployments().len() == n
                && db.deployments()[n - 1].state.is_final()),
            "push {n} did not deploy: {:?}\n{}",
            db.deployments(),
            node_logs()
        );
        let deployment = db.deployments().remove(n - 1);
        let log = db.log(&deployment);
        assert_eq!(deployment.state, DeploymentState::Success, "{log}");
        if let Some(data) = runs_on {
            assert_eq!(deployment.claimed_by, Some(node_id(data)), "push {n}");
        }
        assert!(
            log.contains(&format!("token hex: {}", hex(TOKEN))),
            "push {n}: {log}"
        );
        assert!(
            log.contains(&format!("later hex: {}", hex(later))),
            "push {n}: {log}"
        );
        assert!(log.contains("token: "), "{log}");
        for value in [TOKEN, LATER, LATER_AFTER] {
            assert!(
                !log.contains(value),
                "push {n} shows a sensitive value: {log}"
            );
        }
    };
    deploy(&a, None, LATER);

    // Without a key added under keys/, no rotation: a fresh key would be
    // A's only.
    let refused = api(&a, &admin, "POST", "/api/v1/admin/rotate-key", "{}");
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused.text().contains("put the new key under"),
        "{}",
        refused.text()
    );
    assert_eq!(
        std::fs::read(data_a.path.join("secret.key")).unwrap(),
        old_key
    );

    // Step 1: the new key under keys/ on every node, the nodes restarted
    // one at a time; the other one serves meanwhile.
    let mut new_key = [0u8; 32];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut new_key)
            .unwrap();
    }
    let new_id = tako_store::seal::key_id(&new_key);
    let old_id = tako_store::seal::key_id(&<[u8; 32]>::try_from(old_key.as_slice()).unwrap());
    for data in [&data_a, &data_b] {
        std::fs::create_dir_all(data.path.join("keys")).unwrap();
        write_key_file(&data.path.join("keys/next.key"), &new_key);
    }
    restart(a);
    deploy(&b, Some(&data_b), LATER);
    let a = start(&data_a);
    restart(b);
    deploy(&a, Some(&data_a), LATER);
    let b = start(&data_b);
    assert!(
        data_a.path.join("keys/next.key").exists() && data_b.path.join("keys/next.key").exists(),
        "a start keeps the added key"
    );
    let sealed_under = |id: &str| {
        let values = postgres.psql("tako", "SELECT value FROM variables WHERE sensitive");
        values.lines().count() == 2 && values.lines().all(|v| v.starts_with(&format!("v1:{id}:")))
    };
    assert!(
        sealed_under(&old_id),
        "still under the old key before the rotation"
    );

    // Step 2: the rotation, through A; B follows.
    let rotated = api(&a, &admin, "POST", "/api/v1/admin/rotate-key", "{}");
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let rotation = rotated.json();
    assert_eq!(rotation["old_key"], old_id.as_str(), "{rotation}");
    assert_eq!(rotation["new_key"], new_id.as_str(), "{rotation}");
    assert!(sealed_under(&new_id), "re-sealed under the new key");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            data_b.path.with_extension("log")
        )
        .unwrap_or_default()
        .contains("the cluster's master key changed")),
        "B did not follow: {}",
        node_logs()
    );
    // B seals what it is told now under the new key.
    set(&b, "Later", LATER_AFTER);
    assert!(sealed_under(&new_id), "B sealed under the old key");
    deploy(&a, None, LATER_AFTER);

    // Step 3: each node's secret.key replaced by the new key (the old key
    // removed), one node at a time.
    restart(a);
    deploy(&b, Some(&data_b), LATER_AFTER);
    std::fs::rename(
        data_a.path.join("keys/next.key"),
        data_a.path.join("secret.key"),
    )
    .unwrap();
    let a = start(&data_a);
    restart(b);
    // A holds only the new key now: everything opens under it.
    deploy(&a, Some(&data_a), LATER_AFTER);
    std::fs::rename(
        data_b.path.join("keys/next.key"),
        data_b.path.join("secret.key"),
    )
    .unwrap();
    let b = start(&data_b);
    deploy(&b, None, LATER_AFTER);

    // A node with only the old key refuses to start, naming both keys.
    let data_c = DataDir::new();
    std::fs::create_dir_all(&data_c.path).unwrap();
    write_key_file(&data_c.path.join("secret.key"), &old_key);
    let output = std::process::Command::new(tako_bin())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_c.path)
        .envs(env.iter().copied())
        .env("TAKO_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "this node's master key (id {old_id}) does not match the cluster's (id {new_id}): \
             copy secret.key from another node"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // No node ever logged a value.
    let logged = node_logs();
    for value in [TOKEN, LATER, LATER_AFTER] {
        assert!(!logged.contains(value), "a node logged a sensitive value");
    }
    drop((a, b));
}

/// A repository of the `Demo` project (a one-step takofile mapping
/// `develop` to `DevTest`) served over HTTP behind a fault proxy: pushes
/// name the proxy's URL, so a node's mirror fetch can be stalled.
struct ProxiedOrigin {
    origin: Origin,
    proxy: tako_test_support::fault_proxy::FaultProxy,
    /// The clone URL, through the proxy.
    repository: String,
    /// Serves the repository for as long as the test runs.
    _git: tako_test_support::git_server::GitHttpServer,
}

impl ProxiedOrigin {
    fn new() -> ProxiedOrigin {
        use tako_test_support::TempGitRepo;
        use tako_test_support::fault_proxy::FaultProxy;
        use tako_test_support::git_server::{BareRepo, GitHttpServer};

        let work = TempGitRepo::new();
        work.write(
            "takofile.yml",
            "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\nSteps:\n  - Name: Deploy\n    Run: |\n      echo \"deployed #{Octopus.Release.Number}\"\n",
        );
        work.commit("Add the takofile");
        let bare = BareRepo::new("acme/demo.git");
        bare.push_from(&work, &["main"]);
        let git = GitHttpServer::start(bare.root());
        let target = git
            .url("")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let proxy = FaultProxy::start(&target);
        let repository = format!("{}/acme/demo.git", proxy.url());
        ProxiedOrigin {
            origin: Origin { work, bare },
            proxy,
            repository,
            _git: git,
        }
    }
}

/// The takeover tests' cluster: one PostgreSQL, two nodes' data
/// directories sharing a master key (short leases, a frequent sweep), and
/// the `Demo` project on [`ProxiedOrigin`], created through node A.
struct Takeover {
    postgres: Postgres,
    url: String,
    origin: ProxiedOrigin,
    data_a: DataDir,
    data_b: DataDir,
    /// The admin token A printed at its first start.
    admin: String,
}

impl Takeover {
    /// The cluster, and node A running.
    fn start() -> (Takeover, TakoServer) {
        let postgres = Postgres::start_new();
        let url = postgres.create_database("tako");
        let mut cluster = Takeover {
            postgres,
            url,
            origin: ProxiedOrigin::new(),
            data_a: DataDir::new(),
            data_b: DataDir::new(),
            admin: String::new(),
        };
        let a = cluster.node(&cluster.data_a);
        std::fs::create_dir_all(&cluster.data_b.path).unwrap();
        std::fs::copy(
            cluster.data_a.path.join("secret.key"),
            cluster.data_b.path.join("secret.key"),
        )
        .unwrap();
        cluster.admin = a.token.clone().unwrap();
        let project = serde_json::json!({"name": "Demo", "repository": cluster.origin.repository});
        let created = api(
            &a,
            &cluster.admin,
            "POST",
            "/api/v1/projects",
            &project.to_string(),
        );
        assert_eq!(created.status, 201, "{}", created.text());
        (cluster, a)
    }

    /// Starts a node on `data` (one of the two), logging to `<data>.log`.
    fn node(&self, data: &DataDir) -> TakoServer {
        TakoServer::start_logging_to(
            tako_bin(),
            &data.path,
            &[],
            &[
                ("TAKO_WEBHOOK_SECRET", SECRET),
                ("TAKO_DATABASE_URL", self.url.as_str()),
                ("TAKO_DEPLOYMENT_LEASE", "4s"),
                ("TAKO_LEASE_SWEEP", "500ms"),
                ("TAKO_LOG", "info"),
            ],
            &data.path.with_extension("log"),
        )
    }
}

/// Spec cluster §2: a delivery claimed by a node that dies while routing it
/// (its mirror fetch stalled behind a fault proxy) is routed by another
/// node once the claim's lease ran out, exactly once: one release, one
/// deployment, and the delivery names the node that routed it.
#[test]
fn a_dead_nodes_delivery_is_routed_by_another_node_once_after_its_lease() {
    // A alone, so the delivery is surely its own.
    let (cluster, a) = Takeover::start();
    let Takeover {
        postgres,
        origin:
            ProxiedOrigin {
                origin,
                proxy,
                repository,
                ..
            },
        data_a,
        data_b,
        admin,
        ..
    } = &cluster;
    let start = |data: &DataDir| cluster.node(data);
    let db = Db::connect(&cluster.url);

    // A claims the push and hangs in its fetch.
    proxy.stall();
    let body = origin.push_commit_as(repository, "develop", "app.txt", "v1", "The push");
    let answer = post_push(&a.address, "orphan-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    let stored = || {
        db.runtime
            .block_on(db.store.get_delivery(&DeliveryId("orphan-1".to_owned())))
    };
    let delivery = || stored().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || stored()
            .is_ok_and(|d| d.claimed_by == Some(node_id(data_a)))
            && proxy.connections() > 0),
        "A never claimed the delivery and fetched: {:?}",
        stored()
    );
    let held = delivery();
    let a_lease = held.lease_until.unwrap();
    assert!(held.outcome.is_none(), "{held:?}");

    // B joins; A dies; the network heals. B waits out A's lease.
    let b = start(data_b);
    a.kill();
    proxy.heal();
    assert!(
        wait_until(Duration::from_secs(45), || delivery().outcome.is_some()),
        "B never routed the dead node's delivery: {:?}\n{}",
        delivery(),
        std::fs::read_to_string(data_b.path.with_extension("log")).unwrap_or_default()
    );
    let routed = delivery();
    assert_eq!(routed.claimed_by, Some(node_id(data_b)), "{routed:?}");
    assert!(
        routed.completed_at.unwrap() >= a_lease,
        "routed at {:?}, before A's lease ran out at {a_lease}",
        routed.completed_at
    );
    assert!(
        matches!(routed.outcome, Some(DeliveryOutcome::Queued { .. })),
        "{routed:?}"
    );
    assert!(
        wait_until(Duration::from_secs(60), || db
            .deployments()
            .first()
            .is_some_and(|d| d.state.is_final())),
        "{:?}",
        db.deployments()
    );
    // Exactly once: one release, one deployment, run by B.
    assert_eq!(postgres.psql("tako", "SELECT count(*) FROM releases"), "1");
    let deployments = db.deployments();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(
        deployments[0].state,
        DeploymentState::Success,
        "{}",
        db.log(&deployments[0])
    );
    assert_eq!(deployments[0].claimed_by, Some(node_id(data_b)));

    // The delivery's record, through the API, says so.
    let shown = api(&b, admin, "GET", "/api/v1/deliveries/orphan-1", "");
    assert_eq!(shown.status, 200, "{}", shown.text());
    let shown = shown.json();
    assert_eq!(shown["state"], "done", "{shown}");
    assert_eq!(shown["claimed_by"], node_id(data_b).0.as_str(), "{shown}");
    // And `tako delivery show`, as a person reads it.
    let output = std::process::Command::new(tako_bin())
        .args(["delivery", "show", "orphan-1"])
        .env("TAKO_SERVER", &b.url)
        .env("TAKO_TOKEN", admin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains(&format!("Routed by    node {}", node_id(data_b)))
            && text.contains(&format!(
                "Warning      node {} stopped renewing its claim before routing this delivery",
                node_id(data_a)
            )),
        "{text}"
    );
    assert_eq!(
        shown["warnings"],
        serde_json::json!([format!(
            "node {} stopped renewing its claim before routing this delivery; node {} took it over",
            node_id(data_a),
            node_id(data_b)
        )]),
        "{shown}"
    );
    assert_eq!(shown["outcome"]["kind"], "queued", "{shown}");
    assert_eq!(
        shown["outcome"]["deployment"], deployments[0].id.0,
        "{shown}"
    );
    drop(b);
}

/// Spec cluster §2, for a whole claimed batch: a node that dies holding a
/// full batch of delivery claims (the router claims 32 at a time; it hangs
/// fetching for the first) loses all of them to another node once their
/// leases run out. Forty deliveries of one push, stored while no node ran:
/// the survivor routes each once, one release and one deployment in all, the
/// rest duplicates; each of the dead node's 32 names it in a warning, the 8
/// it never claimed do not.
#[test]
fn a_dead_nodes_full_batch_of_claims_is_routed_by_another_node_once_each() {
    const DELIVERIES: usize = 40;
    const BATCH: usize = 32;
    let (cluster, a) = Takeover::start();
    let Takeover {
        postgres,
        origin:
            ProxiedOrigin {
                origin,
                proxy,
                repository,
                ..
            },
        data_a,
        data_b,
        ..
    } = &cluster;
    let start = |data: &DataDir| cluster.node(data);
    a.kill();

    // While no node runs, one push arrives forty times over.
    let body = origin.push_commit_as(repository, "develop", "app.txt", "v1", "The push");
    let db = Db::connect(&cluster.url);
    let ids: Vec<String> = (0..DELIVERIES).map(|n| format!("batch-{n:02}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    db.store_push(&id_refs, &body);

    // A starts, claims a batch and hangs fetching for its first delivery.
    proxy.stall();
    let a = start(data_a);
    let node_a = node_id(data_a);
    let claimed_by_a = || {
        ids.iter()
            .filter(|id| db.delivery(id).claimed_by.as_ref() == Some(&node_a))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(30), || !claimed_by_a().is_empty()
            && proxy.connections() > 0),
        "A never claimed the deliveries and fetched"
    );
    let held = claimed_by_a();
    assert_eq!(held.len(), BATCH, "A holds one full batch: {held:?}");
    let a_lease = held
        .iter()
        .filter_map(|id| db.delivery(id).lease_until)
        .max()
        .unwrap();
    assert!(ids.iter().all(|id| db.delivery(id).outcome.is_none()));

    // A dies; the network heals; B joins and waits out A's leases.
    a.kill();
    proxy.heal();
    let b = start(data_b);
    let node_b = node_id(data_b);
    assert!(
        wait_until(Duration::from_secs(60), || ids
            .iter()
            .all(|id| db.delivery(id).outcome.is_some())),
        "B never routed every delivery: {:?}\n{}",
        ids.iter().map(|id| db.delivery(id)).collect::<Vec<_>>(),
        std::fs::read_to_string(data_b.path.with_extension("log")).unwrap_or_default()
    );

    let mut queued = 0;
    for id in &ids {
        let routed = db.delivery(id);
        assert_eq!(routed.claimed_by.as_ref(), Some(&node_b), "{routed:?}");
        match routed.outcome {
            Some(DeliveryOutcome::Queued { .. }) => queued += 1,
            Some(DeliveryOutcome::Duplicate) => {}
            ref other => panic!("{id}: {other:?}"),
        }
        if held.contains(id) {
            assert!(
                routed.completed_at.unwrap() >= a_lease,
                "{id} routed at {:?}, before A's lease ran out at {a_lease}",
                routed.completed_at
            );
            assert_eq!(
                routed.warnings,
                [format!(
                    "node {node_a} stopped renewing its claim before routing this delivery; \
                     node {node_b} took it over"
                )],
                "{id}"
            );
        } else {
            assert!(routed.warnings.is_empty(), "{id}: {:?}", routed.warnings);
        }
    }
    assert_eq!(queued, 1, "one delivery queued the push");
    assert!(
        wait_until(Duration::from_secs(60), || db
            .deployments()
            .first()
            .is_some_and(|d| d.state.is_final())),
        "{:?}",
        db.deployments()
    );
    assert_eq!(postgres.psql("tako", "SELECT count(*) FROM releases"), "1");
    let deployments = db.deployments();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(
        deployments[0].state,
        DeploymentState::Success,
        "{}",
        db.log(&deployments[0])
    );
    drop(b);
}

/// A node whose batch of delivery claims is half-way through its lease
/// (its first routing hung in a fetch for most of it) hands the rest back
/// rather than let the claims run out while it still routes them: it logs
/// so, claims them afresh, and routes each once, none with a takeover
/// warning.
#[test]
fn a_batch_routed_past_half_its_lease_hands_the_rest_of_its_claims_back() {
    const DELIVERIES: usize = 40;
    let (cluster, a) = Takeover::start();
    let Takeover {
        origin:
            ProxiedOrigin {
                origin,
                proxy,
                repository,
                ..
            },
        data_a,
        ..
    } = &cluster;
    a.kill();
    let body = origin.push_commit_as(repository, "develop", "app.txt", "v1", "The push");
    let db = Db::connect(&cluster.url);
    let ids: Vec<String> = (0..DELIVERIES).map(|n| format!("slow-{n:02}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    db.store_push(&id_refs, &body);

    // A claims a batch and hangs fetching for its first delivery for
    // longer than half the 4-s lease, but not the whole of it.
    proxy.stall();
    let a = cluster.node(data_a);
    let node_a = node_id(data_a);
    assert!(
        wait_until(Duration::from_secs(30), || ids.iter().any(|id| db
            .delivery(id)
            .claimed_by
            .as_ref()
            == Some(&node_a))
            && proxy.connections() > 0),
        "A never claimed the deliveries and fetched"
    );
    std::thread::sleep(Duration::from_millis(2_500));
    proxy.heal();
    assert!(
        wait_until(Duration::from_secs(30), || ids
            .iter()
            .all(|id| db.delivery(id).outcome.is_some())),
        "A never routed every delivery"
    );

    let log = || std::fs::read_to_string(data_a.path.with_extension("log")).unwrap();
    assert!(
        log().contains(
            "handed back 31 delivery claims: routing their batch took past half the lease"
        ),
        "{}",
        log()
    );
    let mut queued = 0;
    for id in &ids {
        let routed = db.delivery(id);
        assert_eq!(routed.claimed_by.as_ref(), Some(&node_a), "{routed:?}");
        assert!(routed.warnings.is_empty(), "{id}: {:?}", routed.warnings);
        queued += usize::from(matches!(
            routed.outcome,
            Some(DeliveryOutcome::Queued { .. })
        ));
    }
    assert_eq!(
        queued, 1,
        "one delivery queued the push, the others are duplicates"
    );
    drop(a);
}
