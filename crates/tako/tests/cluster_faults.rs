//! The faults of spec cluster §4 with real processes: `tako serve` nodes on
//! one real PostgreSQL (`tako_test_support::postgres`), signed pushes
//! spread over them, the database itself stopped.
//!
//! - Three nodes claiming hundreds of queued deployments over several
//!   environments: none runs twice, none two at once in one environment,
//!   each environment's order kept.
//! - PostgreSQL stopped for 10 s under a stream of pushes to three nodes:
//!   the intake answers 503 with `Retry-After` (never 202 for what it could
//!   not store), no node dies, work resumes, nothing acknowledged is lost.
//! - What one node is told another uses (§3): a project registered through
//!   node A is known to node B's intake, a variable set through A is used
//!   by a deployment on B, a token revoked on A is refused on B within a
//!   second; the log of the deployment running on B is followed through A;
//!   an agent enrolled through and polling A runs a step of B's deployment.
//! - A deployment swept from a dead node gets its forge status (`failure`)
//!   from the sweeping node.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tako_store::{
    DeliveryId, Deployment, DeploymentFilter, DeploymentState, LogCursor, NewDeployment,
    PageRequest, PostgresOptions, PostgresStore, Store,
};
use tako_test_support::agent::AgentProcess;
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::postgres::Postgres;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "cluster faults webhook secret";

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// A PostgreSQL cluster, its database, the master key every node shares,
/// and a store of the test's own to look at what the nodes did.
struct Cluster {
    postgres: Postgres,
    url: String,
    key_file: PathBuf,
    _keys: DataDir,
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn new() -> Cluster {
        let postgres = Postgres::start_new();
        let url = postgres.create_database("tako");
        let keys = DataDir::new();
        std::fs::create_dir_all(&keys.path).unwrap();
        // Made by the first node to start, read by the others.
        let key_file = keys.path.join("secret.key");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(
            runtime
                .block_on(PostgresStore::connect(PostgresOptions::new(&url)))
                .unwrap(),
        );
        Cluster {
            postgres,
            url,
            key_file,
            _keys: keys,
            store,
            runtime,
        }
    }

    /// Starts a node on `data` with `extra` settings (`TAKO_*`), its log
    /// appended to `<data>/../<name>.log`.
    fn node(&self, data: &DataDir, extra: &[(&str, &str)]) -> TakoServer {
        let mut env = vec![
            ("TAKO_WEBHOOK_SECRET", SECRET),
            ("TAKO_DATABASE_URL", self.url.as_str()),
            ("TAKO_MASTER_KEY_FILE", self.key_file.to_str().unwrap()),
            ("TAKO_DEPLOYMENT_LEASE", "5s"),
            ("TAKO_LEASE_SWEEP", "1s"),
            ("TAKO_LOG", "info"),
        ];
        env.extend_from_slice(extra);
        let log = data.path.with_extension("log");
        TakoServer::start_logging_to(
            tako_bin(),
            &data.path,
            &["--auto-register-projects"],
            &env,
            &log,
        )
    }

    fn block<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn deployments(&self) -> Vec<Deployment> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let got = self
                .block(
                    self.store
                        .list_deployments(&DeploymentFilter::default(), page),
                )
                .unwrap();
            all.extend(got.items);
            match got.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        all.sort_by_key(|d| d.id);
        all
    }

    fn log(&self, id: tako_store::DeploymentId) -> String {
        let page = self
            .block(self.store.read_log(id, LogCursor::START, 10_000))
            .unwrap();
        page.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the nodes of `dirs` logged, for a failure's message.
fn logs(dirs: &[DataDir]) -> String {
    dirs.iter()
        .map(|d| std::fs::read_to_string(d.path.with_extension("log")).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// A node's id, as its data directory keeps it.
fn node_id(data: &DataDir) -> String {
    std::fs::read_to_string(data.path.join("node-id"))
        .unwrap()
        .trim()
        .to_owned()
}

/// An API call with `token`.
fn api(node: &TakoServer, token: &str, method: &str, path: &str, body: &str) -> HttpResponse {
    let bearer = format!("Bearer {token}");
    request(
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

#[test]
fn three_nodes_claim_hundreds_of_queued_deployments_once_each_one_at_a_time_in_order() {
    const ENVIRONMENTS: usize = 8;
    const QUEUED: usize = 200;
    let cluster = Cluster::new();
    // Each run holds a directory named after its environment while it runs
    // (mkdir is atomic): a second run in the same environment at the same
    // time fails, whatever the timestamps say.
    let running = tempfile::tempdir().unwrap();
    let held = running.path().display().to_string();
    let origin = Origin::new(&format!(
        "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\nSteps:\n  - Name: Deploy\n    Run: |\n      mkdir \"{held}/#{{Octopus.Environment.Name}}\" || {{ echo \"two at once in #{{Octopus.Environment.Name}}\"; exit 1; }}\n      echo \"deploying in #{{Octopus.Environment.Name}}\"\n      sleep 0.1\n      rmdir \"{held}/#{{Octopus.Environment.Name}}\"\n",
    ));
    let dirs = [DataDir::new(), DataDir::new(), DataDir::new()];
    // One node makes the release (and its mirror) with a first deployment.
    let first = cluster.node(&dirs[0], &[]);
    let body = origin.push_commit("develop", "app.txt", "v1", "The release");
    let answer = post_push(&first.address, "release-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert!(
        wait_until(Duration::from_secs(60), || cluster
            .deployments()
            .first()
            .is_some_and(|d| d.state.is_final())),
        "the first deployment never ended: {}",
        logs(&dirs)
    );
    let release = cluster.deployments()[0].release;
    drop(first);

    // Hundreds queued over several environments while no node runs, then
    // three nodes start at once and race for them.
    for i in 0..QUEUED {
        cluster
            .block(cluster.store.create_deployment(NewDeployment {
                release,
                environment: format!("Env{}", i % ENVIRONMENTS),
                approval: None,
                created_by: None,
                retry_of: None,
                hold: false,
            }))
            .unwrap();
    }
    let nodes: Vec<TakoServer> = dirs.iter().map(|d| cluster.node(d, &[])).collect();
    let done = wait_until(Duration::from_secs(120), || {
        cluster.deployments().iter().all(|d| d.state.is_final())
    });
    let deployments = cluster.deployments();
    assert!(
        done,
        "not all ran: {}\n{:?}",
        logs(&dirs),
        deployments
            .iter()
            .filter(|d| !d.state.is_final())
            .map(|d| (d.id, d.state))
            .collect::<Vec<_>>()
    );
    drop(nodes);

    let queued: Vec<&Deployment> = deployments.iter().skip(1).collect();
    assert_eq!(queued.len(), QUEUED);
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_environment: BTreeMap<&str, Vec<&Deployment>> = BTreeMap::new();
    for deployment in &queued {
        assert_eq!(
            deployment.state,
            DeploymentState::Success,
            "{}",
            cluster.log(deployment.id)
        );
        let log = cluster.log(deployment.id);
        assert_eq!(
            log.matches("deploying in ").count(),
            1,
            "deployment {} ran once: {log}",
            deployment.id
        );
        *by_node
            .entry(deployment.claimed_by.clone().unwrap().0)
            .or_default() += 1;
        by_environment
            .entry(deployment.environment.as_str())
            .or_default()
            .push(deployment);
    }
    assert!(by_node.len() >= 2, "the nodes shared the work: {by_node:?}");
    for (environment, list) in by_environment {
        // Listed by id (queue order): each starts after the one before it
        // ended, so none ran two at once and the order was kept.
        // A node takes `started_at` just before its claim statement runs,
        // so on a loaded machine it may precede the previous deployment's
        // end by a few milliseconds; the runs themselves (0.1 s each) never
        // overlap (the directory above), so a later one starting first
        // would show here by far more than the allowance.
        let allowance = chrono::TimeDelta::milliseconds(50);
        for pair in list.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            let ended = before.finished_at.unwrap();
            let started = after.started_at.unwrap();
            assert!(
                started + allowance >= ended,
                "{environment}: deployment {} started at {started} before {} ended at {ended}",
                after.id,
                before.id
            );
        }
    }
}

#[test]
fn postgres_stopped_for_ten_seconds_under_pushes_gives_503s_and_loses_nothing_acknowledged() {
    let cluster = Cluster::new();
    let origin = Origin::new(
        "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\nSteps:\n  - Name: Deploy\n    Run: echo \"deployed $(cat app.txt)\"\n",
    );
    let dirs = [DataDir::new(), DataDir::new(), DataDir::new()];
    let nodes: Vec<TakoServer> = dirs.iter().map(|d| cluster.node(d, &[])).collect();
    // Pushes of a branch no mapping names: each is stored and routed (its
    // outcome recorded) without a deployment to wait for.
    let bodies: Vec<Vec<u8>> = (0..40)
        .map(|i| origin.push_commit("feature", "work.txt", &format!("{i}"), &format!("Work {i}")))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            // Round the bodies again if need be (a body sent again under a
            // new delivery id is routed as a duplicate: still routed).
            for (i, body) in bodies.iter().cycle().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let delivery = format!("stream-{i}");
                let answer = post_push(&addresses[i % addresses.len()], &delivery, body, SECRET);
                let retry_after = answer.header("Retry-After").map(str::to_owned);
                answers.push((delivery, answer.status, retry_after, answer.text()));
                std::thread::sleep(Duration::from_millis(150));
            }
            answers
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    cluster.postgres.stop();
    let stopped_at = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    cluster.postgres.start();
    let down_for = stopped_at.elapsed();
    // Pushes go on until one is stored again, and a little longer.
    let resumed = wait_until(Duration::from_secs(30), || {
        cluster.block(cluster.store.cache_generation()).is_ok()
    });
    assert!(resumed, "the database did not come back");
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::SeqCst);
    let answers = sender.join().unwrap();
    assert!(down_for >= Duration::from_secs(10));

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for (delivery, status, retry_after, text) in &answers {
        match status {
            202 => acknowledged.push(delivery.clone()),
            503 => {
                refused += 1;
                assert!(
                    retry_after
                        .as_deref()
                        .is_some_and(|s| s.parse::<u64>().is_ok()),
                    "{delivery}: a 503 without Retry-After: {text}"
                );
                assert!(
                    !text.contains("postgres") && !text.contains("SQLSTATE"),
                    "{delivery}: internals in a 503: {text}"
                );
            }
            other => panic!("{delivery}: answered {other}: {text}"),
        }
    }
    assert!(
        refused > 0,
        "no push was refused while the database was down"
    );
    assert!(
        answers.iter().take(3).all(|(_, status, ..)| *status == 202),
        "before the stop: {answers:?}"
    );
    assert_eq!(
        answers.last().map(|(_, status, ..)| *status),
        Some(202),
        "after the restart: {answers:?}"
    );

    // No node died; every acknowledged push is stored and routed.
    for node in &nodes {
        let health = request(&node.address, "GET", "/healthz", &[], b"").unwrap();
        assert_eq!(health.status, 200, "{}", health.text());
    }
    let routed = wait_until(Duration::from_secs(60), || {
        acknowledged.iter().all(|id| {
            cluster
                .block(cluster.store.get_delivery(&DeliveryId(id.clone())))
                .is_ok_and(|d| d.outcome.is_some())
        })
    });
    assert!(routed, "an acknowledged push was lost or never routed");

    // Work resumes: a push to a mapped branch deploys.
    let body = origin.push_commit("develop", "app.txt", "after the outage", "Resume");
    let answer = post_push(&nodes[2].address, "resume-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert!(
        wait_until(Duration::from_secs(60), || cluster
            .deployments()
            .last()
            .is_some_and(|d| d.state == DeploymentState::Success)),
        "{:?}",
        cluster.deployments()
    );
    let last = cluster.deployments().pop().unwrap();
    assert!(cluster.log(last.id).contains("deployed after the outage"));
}

#[test]
fn what_one_node_is_told_another_uses_and_logs_and_agents_work_through_any_node() {
    let cluster = Cluster::new();
    let go = tempfile::tempdir().unwrap();
    let go_file = go.path().join("go");
    let takofile = format!(
        r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Greet
    Run: |
      echo "greeting #{{Greeting}}"
      for i in $(seq 1 600); do [ -f '{go}' ] && break; sleep 0.1; done
      echo "after the follow started"
  - Name: Remote
    Roles: [web]
    Run: echo "on agent $TAKO_AGENT_NAME"
"#,
        go = go_file.display()
    );
    let origin = Origin::new(&takofile);
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    // Node A serves the API and webhooks only; node B runs deployments.
    let a = cluster.node(&dir_a, &[("TAKO_MAX_CONCURRENT_DEPLOYMENTS", "0")]);
    let b = cluster.node(&dir_b, &[]);
    let admin = a.token.clone().unwrap();

    // A project registered through A with its own webhook secret: B's
    // intake knows it (its cached index follows the generation).
    let project_secret = "the project's own secret";
    let created = api(
        &a,
        &admin,
        "POST",
        "/api/v1/projects",
        &serde_json::json!({"name": "Demo", "repository": origin.bare.file_url(),
            "webhook_secret": project_secret})
        .to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let body = origin.push_commit("develop", "app.txt", "v1", "First");
    let registered = Instant::now();
    let mut answer = post_push(&b.address, "push-1", &body, project_secret);
    while answer.status == 401 && registered.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        answer = post_push(&b.address, "push-1", &body, project_secret);
    }
    assert_eq!(
        answer.status,
        202,
        "B never knew the secret: {}",
        answer.text()
    );
    let wrong = post_push(&b.address, "push-x", &body, SECRET);
    assert_eq!(
        wrong.status, 401,
        "the server's secret is not the project's"
    );

    // A variable set through A, and an agent enrolled through (and polling)
    // A, before the deployment is claimed.
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", &a.url)
            .env("TAKO_TOKEN", &admin)
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
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "tako {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    cli(
        &[
            "var",
            "set",
            "Greeting",
            "hello from node A",
            "--project",
            "Demo",
        ],
        None,
    );
    let enroll = cli(
        &[
            "agent",
            "enroll-token",
            "--env",
            "DevTest",
            "--role",
            "web",
            "--name",
            "web-01",
            "--auto-approve",
        ],
        None,
    );
    let agents = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(
        tako_bin(),
        &[
            "agent",
            "run",
            "--server",
            &a.url,
            "--enroll",
            enroll.trim(),
            "--data-dir",
            agents.path().join("web-01").to_str().unwrap(),
        ],
    );
    agent.wait_for_line("waiting for work");

    let body = origin.push_commit("develop", "app.txt", "v2", "Second");
    let answer = post_push(&a.address, "push-2", &body, project_secret);
    assert_eq!(answer.status, 202, "{}", answer.text());
    let running = || {
        cluster
            .deployments()
            .into_iter()
            .find(|d| d.state == DeploymentState::Running && cluster.log(d.id).contains("greeting"))
    };
    assert!(
        wait_until(Duration::from_secs(60), || running().is_some()),
        "{:?}",
        cluster.deployments()
    );
    let deployment = running().unwrap();
    assert_eq!(
        deployment.claimed_by.as_ref().map(|n| n.0.clone()),
        Some(node_id(&dir_b)),
        "B runs it"
    );

    // Its log followed through A while it runs on B.
    let follower = {
        let address = a.address.clone();
        let bearer = format!("Bearer {admin}");
        let path = format!("/api/v1/deployments/{}/log?follow=true", deployment.id);
        std::thread::spawn(move || {
            request(
                &address,
                "GET",
                &path,
                &[("Authorization", &bearer), ("Accept", "text/event-stream")],
                b"",
            )
            .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&go_file, "go").unwrap();
    let followed = follower.join().unwrap();
    assert_eq!(followed.status, 200, "{}", followed.text());
    let text = followed.text();
    for expected in [
        "greeting hello from node A",
        "after the follow started",
        "on agent web-01",
        "event: end",
    ] {
        assert!(text.contains(expected), "{expected:?} not followed: {text}");
    }
    let ended = cluster
        .block(cluster.store.get_deployment(deployment.id))
        .unwrap();
    assert_eq!(
        ended.state,
        DeploymentState::Success,
        "{}",
        cluster.log(deployment.id)
    );
    let jobs = cluster
        .block(cluster.store.list_jobs(deployment.id))
        .unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].agent_name, "web-01");
    drop(agent);

    // A token made through A works on B; revoked through A, B refuses it
    // within a second.
    let created = api(
        &a,
        &admin,
        "POST",
        "/api/v1/tokens",
        r#"{"name": "ci", "role": "viewer"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let json = created.json();
    let token = json["token"].as_str().unwrap().to_owned();
    let id = json["id"].to_string();
    assert_eq!(api(&b, &token, "GET", "/api/v1/projects", "").status, 200);
    let revoked = api(&a, &admin, "DELETE", &format!("/api/v1/tokens/{id}"), "");
    assert!(revoked.status < 300, "{}", revoked.text());
    assert!(
        wait_until(Duration::from_secs(1), || api(
            &b,
            &token,
            "GET",
            "/api/v1/projects",
            ""
        )
        .status
            == 401),
        "B still takes the revoked token"
    );
}

/// Spec cluster §2 with §7 of the forge statuses: a deployment whose node
/// died is reported to its forge like any deployment that ended, by the
/// node whose sweep interrupted it (GitHub's status API stands in: it
/// cannot run here, and it checks every request as GitHub documents it).
#[test]
fn a_deployment_swept_from_a_dead_node_gets_its_failure_status_from_the_sweeping_node() {
    use tako_test_support::TempGitRepo;
    use tako_test_support::forge_api::ForgeStatusApi;
    use tako_test_support::git_server::{BareRepo, GitHttpServer};

    const STATUS_TOKEN: &str = "ghp_clusterStatusToken0123456789abcdef";
    let cluster = Cluster::new();
    let github = ForgeStatusApi::start(STATUS_TOKEN, "acme", "demo");
    let work = TempGitRepo::new();
    work.write(
        "takofile.yml",
        "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\nSteps:\n  - Name: Deploy\n    Run: |\n      echo \"deploying #{Octopus.Release.Number}\"\n      sleep 20\n",
    );
    work.commit("Add the takofile");
    let bare = BareRepo::new("acme/demo.git");
    bare.push_from(&work, &["main"]);
    let git = GitHttpServer::start(bare.root());
    let url = git.url("acme/demo.git");
    let origin = Origin { work, bare };
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    let a = cluster.node(&dir_a, &[]);
    let admin = a.token.clone().unwrap();
    let created = api(
        &a,
        &admin,
        "POST",
        "/api/v1/projects",
        &serde_json::json!({"name": "Demo", "repository": url}).to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let set = api(
        &a,
        &admin,
        "PUT",
        "/api/v1/projects/Demo/forge-status",
        &serde_json::json!({"token": STATUS_TOKEN, "forge": "github", "api_url": github.url()})
            .to_string(),
    );
    assert_eq!(set.status, 200, "{}", set.text());

    let body = origin.push_commit_as(&url, "develop", "app.txt", "v1", "The slow one");
    let answer = post_push(&a.address, "slow-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert!(
        wait_until(Duration::from_secs(60), || github
            .recorded()
            .iter()
            .any(|(state, _)| state == "pending")),
        "no pending status: {:?} {}",
        github.exchanges(),
        logs(std::slice::from_ref(&dir_a))
    );
    let b = cluster.node(&dir_b, &[]);
    a.kill();

    assert!(
        wait_until(Duration::from_secs(60), || github
            .recorded()
            .last()
            .is_some_and(|(state, _)| state == "failure")),
        "no failure status after the sweep: {:?}",
        github.recorded()
    );
    let deployment = cluster.deployments().pop().unwrap();
    assert_eq!(deployment.state, DeploymentState::Interrupted);
    assert_eq!(github.violations(), Vec::<String>::new());
    let states: Vec<String> = github.recorded().into_iter().map(|(s, _)| s).collect();
    assert_eq!(states, ["pending", "failure"]);
    assert!(
        !logs(&[dir_b]).contains(STATUS_TOKEN),
        "the token is never logged"
    );
    drop(b);
}
