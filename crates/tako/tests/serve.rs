//! `tako serve` end to end: the real binary, real git repositories (a bare
//! origin reached through `file://`), signed pushes over real HTTP on
//! 127.0.0.1, and the outcome read back from the server's own database.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState, LogCursor,
    PageRequest, SqliteStore, Store,
};
use tako_test_support::github::{PushedCommit, push_payload};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::Origin;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "it's a secret to everybody";
use tako_test_support::origin::ZERO;

const ROUTING: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Test
    Run: |
      echo "testing #{Octopus.Release.Number} in #{Octopus.Environment.Name}"
      echo "notes: #{Octopus.Release.Notes}"
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

fn post_push(server: &TakoServer, delivery: &str, body: &[u8], secret: &str) -> HttpResponse {
    tako_test_support::origin::post_push(&server.address, delivery, body, secret)
}

fn start(data: &DataDir) -> TakoServer {
    TakoServer::start(
        tako_bin(),
        &data.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    )
}

/// Reads the server's database (WAL: safe beside the running server).
struct Db {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    fn open(data: &DataDir) -> Db {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path.join("tako.db")).unwrap());
        Db {
            store,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn deployments(&self) -> Vec<Deployment> {
        let mut all = self
            .runtime
            .block_on(
                self.store
                    .list_deployments(&DeploymentFilter::default(), PageRequest::first(500)),
            )
            .unwrap()
            .items;
        all.reverse();
        all
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
            .block_on(
                self.store
                    .read_log(deployment.id, LogCursor::START, 100_000),
            )
            .unwrap();
        page.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_for_outcome(&self, delivery: &str) -> DeliveryOutcome {
        assert!(
            wait_until(Duration::from_secs(60), || self.outcome(delivery).is_some()),
            "delivery {delivery} was never processed"
        );
        self.outcome(delivery).unwrap()
    }

    fn wait_until_finished(&self, count: usize) -> Vec<Deployment> {
        let done = wait_until(Duration::from_secs(120), || {
            let deployments = self.deployments();
            deployments.len() >= count
                && deployments
                    .iter()
                    .all(|d| !matches!(d.state, DeploymentState::Queued | DeploymentState::Running))
        });
        assert!(done, "deployments did not finish: {:?}", self.deployments());
        self.deployments()
    }
}

#[test]
fn a_signed_push_becomes_one_release_and_one_deployment() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    assert!(
        server
            .token
            .as_deref()
            .is_some_and(|t| t.starts_with("tako_")),
        "{}",
        server.startup_output
    );

    let body = origin.push_commit("develop", "app.txt", "v1", "Make the app better");
    let answer = post_push(&server, "delivery-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(answer.json()["status"], "queued");

    let db = Db::open(&data);
    let DeliveryOutcome::Queued { .. } = db.wait_for_outcome("delivery-1") else {
        panic!("not queued: {:?}", db.outcome("delivery-1"));
    };
    let deployments = db.wait_until_finished(1);
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
    assert!(log.contains("notes: - Make the app better ("), "{log}");
    let steps = db
        .runtime
        .block_on(db.store.list_steps(deployments[0].id))
        .unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].name, "Test");
    assert_eq!(steps[0].state, tako_store::StepRunState::Success);
    assert!(steps[0].started_at.is_some() && steps[0].duration.is_some());

    // GitHub's "redeliver": the same delivery id creates nothing.
    let again = post_push(&server, "delivery-1", &body, SECRET);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["status"], "duplicate");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(db.deployments().len(), 1);

    // The next push gets the next number.
    let body = origin.push_commit("develop", "app.txt", "v2", "Second change");
    assert_eq!(post_push(&server, "delivery-2", &body, SECRET).status, 202);
    let deployments = db.wait_until_finished(2);
    assert!(
        db.log(&deployments[1]).contains("testing 0.0.2 in DevTest"),
        "{}",
        db.log(&deployments[1])
    );
}

/// A store failure while a push is routed decides nothing: the delivery is
/// not failed with the driver's words but routed again once the store
/// answers, and then deploys as usual.
#[test]
fn a_push_routed_while_the_store_fails_is_routed_again_not_failed() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    let db = Db::open(&data);
    // A real driver failure under the running server: the policies' table
    // (read on every routing) is gone for a while.
    let sql = rusqlite::Connection::open(data.path.join("tako.db")).unwrap();
    sql.busy_timeout(Duration::from_secs(10)).unwrap();
    sql.execute_batch("ALTER TABLE environment_policies RENAME TO environment_policies_away")
        .unwrap();

    let body = origin.push_commit("develop", "app.txt", "v1", "During the outage");
    let answer = post_push(&server, "delivery-outage", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        db.outcome("delivery-outage"),
        None,
        "nothing is recorded while the store fails"
    );

    sql.execute_batch("ALTER TABLE environment_policies_away RENAME TO environment_policies")
        .unwrap();
    let DeliveryOutcome::Queued { .. } = db.wait_for_outcome("delivery-outage") else {
        panic!("not queued: {:?}", db.outcome("delivery-outage"));
    };
    let deployments = db.wait_until_finished(1);
    assert_eq!(
        deployments[0].state,
        DeploymentState::Success,
        "{}",
        db.log(&deployments[0])
    );
}

#[test]
fn a_feature_branch_cannot_route_itself_to_production() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    let sneaky = ROUTING.replace("Branch: main", "Branch: feature/x");
    let body = origin.push_commit(
        "feature/x",
        "takofile.yml",
        &sneaky,
        "Route me to production",
    );
    assert_eq!(post_push(&server, "sneaky", &body, SECRET).status, 202);
    let db = Db::open(&data);
    assert_eq!(
        db.wait_for_outcome("sneaky"),
        DeliveryOutcome::Ignored {
            reason: "no mapping for branch feature/x".to_owned()
        }
    );
    assert!(db.deployments().is_empty());
}

/// `TAKO_LOG=…,tako_server::intake::batches=debug` logs each batch of
/// deliveries the intake writes (its size, how long its first push waited,
/// how long the store took), and `bench/intake_batches.py` sums such a log
/// up: every push of a burst is in exactly one batch.
#[test]
fn the_intake_logs_its_batches_for_the_bench_to_sum_up() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let log = data.path.parent().unwrap().join("batches.log");
    let server = TakoServer::start_logging_to(
        tako_bin(),
        &data.path,
        &[],
        &[
            ("TAKO_WEBHOOK_SECRET", SECRET),
            ("TAKO_LOG", "warn,tako_server::intake::batches=debug"),
        ],
        &log,
    );
    let body = origin.push_commit("develop", "app.txt", "v1", "change");
    std::thread::scope(|scope| {
        for k in 0..12 {
            let (server, body) = (&server, &body);
            scope.spawn(move || {
                let answer = post_push(server, &format!("batched-{k}"), body, SECRET);
                assert_eq!(answer.status, 202, "{}", answer.text());
            });
        }
    });
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    let batches: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("a batch of deliveries written"))
        .collect();
    let field = |line: &str, name: &str| -> u64 {
        let at = line
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        line[at + name.len() + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number in {line}"))
    };
    let mut pushes = 0;
    for line in &batches {
        pushes += field(line, "size");
        field(line, "waited_us");
        field(line, "took_us");
    }
    assert_eq!(pushes, 12, "{text}");
    assert!(!text.contains(SECRET));
    assert!(
        !text.contains('\x1b'),
        "a log that is not a terminal gets no colour codes: {text:?}"
    );
    let summary = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/intake_batches.py"))
        .arg(&log)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&summary.stdout);
    assert!(
        summary.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&summary.stderr)
    );
    assert!(
        printed.contains(&format!("batches {}, deliveries 12", batches.len())),
        "{printed}"
    );
}

#[test]
fn bad_requests_are_refused_and_nothing_is_stored() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    let body = origin.push_commit("develop", "app.txt", "v1", "change");

    let wrong = post_push(&server, "wrong-signature", &body, "not the secret");
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let unsigned = request(
        &server.address,
        "POST",
        "/hooks/github",
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "unsigned"),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(unsigned.status, 401);

    let malformed = post_push(&server, "malformed", b"{\"ref\": ", SECRET);
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    assert!(
        malformed.json()["error"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{}",
        malformed.text()
    );

    let huge = vec![b' '; 30 * 1024 * 1024];
    let too_big = post_push(&server, "huge", &huge, SECRET);
    assert_eq!(too_big.status, 413, "{}", too_big.text());

    let db = Db::open(&data);
    for id in ["wrong-signature", "unsigned", "malformed", "huge"] {
        assert!(
            db.runtime
                .block_on(db.store.get_delivery(&DeliveryId(id.to_owned())))
                .is_err(),
            "{id} was stored"
        );
    }
}

#[test]
fn pushes_to_one_environment_deploy_one_at_a_time_in_order() {
    let origin = Origin::new(&ROUTING.replace(
        "      echo \"notes: #{Octopus.Release.Notes}\"\n",
        "      echo \"notes: #{Octopus.Release.Notes}\"\n      sleep 0.2\n",
    ));
    let data = DataDir::new();
    let server = start(&data);
    for n in 1..=10 {
        let body = origin.push_commit(
            "develop",
            "app.txt",
            &format!("v{n}"),
            &format!("change {n}"),
        );
        assert_eq!(
            post_push(&server, &format!("burst-{n}"), &body, SECRET).status,
            202
        );
    }
    let db = Db::open(&data);
    let deployments = db.wait_until_finished(10);
    assert_eq!(deployments.len(), 10);
    for (index, deployment) in deployments.iter().enumerate() {
        assert_eq!(
            deployment.state,
            DeploymentState::Success,
            "{}",
            db.log(deployment)
        );
        assert!(
            db.log(deployment)
                .contains(&format!("testing 0.0.{} in DevTest", index + 1))
        );
        if let Some(next) = deployments.get(index + 1) {
            assert!(
                deployment.finished_at.unwrap() <= next.started_at.unwrap(),
                "deployments {} and {} overlapped",
                deployment.id,
                next.id
            );
        }
    }
}

#[test]
fn a_deployment_killed_with_the_server_is_interrupted_and_the_queue_goes_on() {
    let slow = ROUTING.replace(
        "      echo \"notes: #{Octopus.Release.Notes}\"\n",
        "      echo \"notes: #{Octopus.Release.Notes}\"\n      if [ \"#{Octopus.Release.Number}\" = 0.0.1 ]; then echo started-slow; sleep 30.5; fi\n",
    );
    let origin = Origin::new(&slow);
    let data = DataDir::new();
    let server = start(&data);
    let first = origin.push_commit("develop", "app.txt", "v1", "slow one");
    assert_eq!(post_push(&server, "slow", &first, SECRET).status, 202);
    let db = Db::open(&data);
    assert!(wait_until(Duration::from_secs(60), || {
        db.deployments()
            .first()
            .is_some_and(|d| db.log(d).contains("started-slow"))
    }));
    let second = origin.push_commit("develop", "app.txt", "v2", "quick one");
    assert_eq!(post_push(&server, "quick", &second, SECRET).status, 202);
    db.wait_for_outcome("quick");
    server.kill();

    let server = start(&data);
    assert!(
        server.token.is_none(),
        "a restart must not create another admin token"
    );
    let deployments = db.wait_until_finished(2);
    assert_eq!(deployments[0].state, DeploymentState::Interrupted);
    assert!(
        db.log(&deployments[0])
            .contains("Interrupted: the server stopped"),
        "{}",
        db.log(&deployments[0])
    );
    assert_eq!(
        deployments[1].state,
        DeploymentState::Success,
        "{}",
        db.log(&deployments[1])
    );
    drop(server);
}

#[test]
fn create_release_false_deploys_the_newest_existing_release() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    let body = origin.push_commit("develop", "app.txt", "v1", "first");
    assert_eq!(post_push(&server, "develop-1", &body, SECRET).status, 202);
    let db = Db::open(&data);
    db.wait_until_finished(1);

    origin.work.git(&["checkout", "-q", "main"]);
    let promote_only = format!("{ROUTING}CreateRelease: false\n");
    let body = origin.push_commit(
        "main",
        "takofile.yml",
        &promote_only,
        "Promote, do not build",
    );
    assert_eq!(post_push(&server, "main-1", &body, SECRET).status, 202);
    let deployments = db.wait_until_finished(2);
    assert_eq!(deployments[1].environment, "Production");
    assert_eq!(
        deployments[1].release, deployments[0].release,
        "the existing release is deployed"
    );
    assert!(
        db.log(&deployments[1])
            .contains("testing 0.0.1 in Production"),
        "{}",
        db.log(&deployments[1])
    );
}

#[test]
fn sigkill_during_a_burst_loses_no_acknowledged_delivery() {
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let body = Arc::new(push_payload(
        "https://github.com/acme/unregistered.git",
        "main",
        "refs/heads/main",
        ZERO,
        "1111111111111111111111111111111111111111",
        &[PushedCommit {
            id: "1111111111111111111111111111111111111111".into(),
            message: "burst".into(),
        }],
    ));
    let signature = Arc::new(tako_github::sign(SECRET.as_bytes(), &body));
    let address = Arc::new(server.address.clone());
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for thread in 0..8 {
        let (body, signature, address, acknowledged) = (
            body.clone(),
            signature.clone(),
            address.clone(),
            acknowledged.clone(),
        );
        senders.push(std::thread::spawn(move || {
            for n in 0..63 {
                let id = format!("burst-{thread}-{n}");
                let answer = request(
                    &address,
                    "POST",
                    "/hooks/github",
                    &[
                        ("Content-Type", "application/json"),
                        ("X-GitHub-Event", "push"),
                        ("X-GitHub-Delivery", &id),
                        ("X-Hub-Signature-256", &signature),
                    ],
                    &body,
                );
                match answer {
                    Ok(answer) if answer.status == 202 => acknowledged.lock().unwrap().push(id),
                    Ok(answer) => panic!("unexpected answer {}: {}", answer.status, answer.text()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill it in the middle of the burst.
    assert!(wait_until(Duration::from_secs(60), || acknowledged
        .lock()
        .unwrap()
        .len()
        >= 150));
    server.kill();
    for sender in senders {
        sender.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < 504,
        "the kill came too late to test anything"
    );

    let _server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let db = Db::open(&data);
    for id in &acknowledged {
        assert_eq!(
            db.wait_for_outcome(id),
            DeliveryOutcome::Ignored {
                reason: "project not registered for repository acme/demo".to_owned()
            },
            "{id}"
        );
    }
    let stored = || {
        db.runtime
            .block_on(db.store.list_deliveries(None, PageRequest::first(1000)))
            .unwrap()
            .items
    };
    assert!(stored().len() >= acknowledged.len());
    // Deliveries stored just before the kill but never acknowledged are
    // processed too (their sender saw the connection drop).
    assert!(
        wait_until(Duration::from_secs(60), || stored()
            .iter()
            .all(|d| d.outcome.is_some())),
        "every stored delivery is processed after the restart"
    );
}

#[test]
fn logs_follow_shows_lines_as_a_slow_step_prints_them_and_deploy_promotes() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let slow = ROUTING.replace(
        "      echo \"notes: #{Octopus.Release.Notes}\"\n",
        "      for i in 1 2 3 4 5; do echo \"tick $i\"; sleep 0.4; done\n",
    );
    let origin = Origin::new(&slow);
    let data = DataDir::new();
    let server = start(&data);
    let token = server.token.clone().unwrap();
    let url = format!("http://{}", server.address);
    let body = origin.push_commit("develop", "app.txt", "v1", "slow ticks");
    assert_eq!(post_push(&server, "ticks", &body, SECRET).status, 202);
    let db = Db::open(&data);
    db.wait_for_outcome("ticks");
    let deployment = db.deployments()[0].clone();

    let mut follower = Command::new(tako_bin())
        .args([
            "logs",
            &deployment.id.to_string(),
            "--follow",
            "--server",
            &url,
            "--token",
            &token,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut seen_while_running = false;
    let mut output = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("tick 1") {
            let state = db
                .runtime
                .block_on(db.store.get_deployment(deployment.id))
                .unwrap()
                .state;
            seen_while_running = state == DeploymentState::Running;
        }
        output.push_str(&line);
        output.push('\n');
    }
    let status = follower.wait().unwrap();
    assert!(status.success(), "{output}");
    assert!(
        seen_while_running,
        "the first line arrived only after the end:\n{output}"
    );
    assert!(output.contains("tick 5"), "{output}");

    // Promote the same release to Production with the CLI, following it.
    let deploy = Command::new(tako_bin())
        .args([
            "deploy",
            "--project",
            "Demo",
            "--release",
            "0.0.1",
            "--env",
            "Production",
            "--follow",
            "--server",
            &url,
            "--token",
            &token,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&deploy.stdout).into_owned()
        + &String::from_utf8_lossy(&deploy.stderr);
    assert!(deploy.status.success(), "{text}");
    assert!(text.contains("testing 0.0.1 in Production"), "{text}");
    let deployments = db.deployments();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[1].release, deployments[0].release);
}

#[test]
fn start_up_problems_are_clear_and_exit_non_zero() {
    use std::process::Command;

    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(tako_bin());
        command.arg("serve").args(args).env("TAKO_LOG", "error");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // A port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let data = DataDir::new();
    let data_dir = data.path.to_str().unwrap();
    let (code, stderr) = run(&["--listen", &address, "--data-dir", data_dir], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}"))
            && stderr.contains("choose another with --listen"),
        "{stderr}"
    );

    // An unwritable data directory (a file stands where it should be).
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let inside_a_file = blocker.path().join("data");
    let (code, stderr) = run(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            inside_a_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not usable") && stderr.contains("--data-dir"),
        "{stderr}"
    );

    // An invalid setting, named with where it came from.
    let (code, stderr) = run(
        &["--data-dir", data_dir],
        &[("TAKO_MAX_CONCURRENT_DEPLOYMENTS", "many")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("max_concurrent_deployments from TAKO_MAX_CONCURRENT_DEPLOYMENTS"),
        "{stderr}"
    );
}

#[test]
fn a_private_repository_is_fetched_with_its_token_and_the_token_stays_secret() {
    use std::process::{Command, Stdio};
    use tako_test_support::git_server::GitHttpServer;

    const REPO_TOKEN: &str = "ghp_privateRepoToken0123456789";
    let origin = Origin::new(ROUTING);
    let git_http = GitHttpServer::with_token(origin.bare.root(), REPO_TOKEN);
    let url = git_http.url(origin.bare.name());
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), REPO_TOKEN).unwrap();
    let register = Command::new(tako_bin())
        .args([
            "project",
            "create",
            "Demo",
            "--repo",
            &url,
            "--repo-token-file",
        ])
        .arg(token_file.path())
        .args([
            "--server",
            &format!("http://{}", server.address),
            "--token",
            server.token.as_deref().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        register.status.success(),
        "{}",
        String::from_utf8_lossy(&register.stderr)
    );

    let body = origin.push_commit_as(&url, "develop", "app.txt", "v1", "private change");
    assert_eq!(post_push(&server, "private-1", &body, SECRET).status, 202);
    let db = Db::open(&data);
    let deployments = db.wait_until_finished(1);
    assert_eq!(
        deployments[0].state,
        DeploymentState::Success,
        "{:?} {}",
        db.outcome("private-1"),
        db.log(&deployments[0])
    );
    assert!(
        git_http
            .requests()
            .iter()
            .any(|r| r.authorized_header && r.status == 200),
        "the token was never sent"
    );
    assert!(!db.log(&deployments[0]).contains(REPO_TOKEN));
    for dir in ["mirrors", "work"] {
        let grep = Command::new("grep")
            .args(["-r", "-l", REPO_TOKEN])
            .arg(data.path.join(dir))
            .output()
            .unwrap();
        assert!(
            grep.stdout.is_empty(),
            "the token was written under {dir}: {}",
            String::from_utf8_lossy(&grep.stdout)
        );
    }
}

#[test]
fn a_sigterm_stops_the_server_cleanly_and_leaves_no_script_running() {
    let marker = tako_test_support::unique_marker("sigterm");
    let slow = ROUTING.replace(
        "      echo \"notes: #{Octopus.Release.Notes}\"\n",
        &format!("      echo \"notes: #{{Octopus.Release.Notes}}\"\n      echo started-slow; sh -c 'sleep 30.7; echo {marker}'\n"),
    );
    let origin = Origin::new(&slow);
    let data = DataDir::new();
    let server = start(&data);
    let first = origin.push_commit("develop", "app.txt", "v1", "slow one");
    assert_eq!(post_push(&server, "slow", &first, SECRET).status, 202);
    let db = Db::open(&data);
    assert!(wait_until(Duration::from_secs(60), || {
        db.deployments()
            .first()
            .is_some_and(|d| db.log(d).contains("started-slow"))
    }));
    assert!(!tako_test_support::processes_with(&marker).is_empty());

    // What systemd sends: the server exits 0, within its grace period, and
    // takes the running script with it.
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("tako serve exits after SIGTERM");
    assert!(status.success(), "tako serve exited {status} after SIGTERM");
    assert!(
        wait_until(Duration::from_secs(10), || {
            tako_test_support::processes_with(&marker).is_empty()
        }),
        "the deployment's script outlived the server"
    );
    // Stopping is not failing: the deployment is still Running in the
    // store, and the next start marks it Interrupted, as after a crash.
    assert_eq!(db.deployments()[0].state, DeploymentState::Running);
    let server = start(&data);
    let deployments = db.wait_until_finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Interrupted);
    drop(server);
}

/// A stop closes the database as its last act: SQLite's writer runs its
/// final checkpoint and the WAL file is removed, so nothing is left for
/// the next start to replay (and what retention freed reaches the file).
#[test]
fn a_sigterm_closes_the_database_and_leaves_no_write_ahead_log() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    for n in 0..5 {
        let body = origin.push_commit("develop", "app.txt", &format!("v{n}"), "a change");
        assert_eq!(
            post_push(&server, &format!("wal-{n}"), &body, SECRET).status,
            202
        );
    }
    let db = Db::open(&data);
    db.wait_until_finished(5);
    // The test's own connections go first: the server's must be the last.
    drop(db);
    let wal = data.path.join("tako.db-wal");
    assert!(wal.exists(), "the running server keeps a WAL file");
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("tako serve exits after SIGTERM");
    assert!(status.success(), "tako serve exited {status} after SIGTERM");
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        left,
        0,
        "the stop left {left} bytes of WAL in {}",
        wal.display()
    );
}

/// Deployments run below the intake's CPU priority (`deployment_nice`,
/// default 10): a step's script inherits its thread's nice value, read here
/// from `/proc/self/stat` by the script itself; `0` leaves it unchanged.
#[cfg(target_os = "linux")]
#[test]
fn a_steps_script_runs_at_the_deployment_nice_value() {
    const NICE: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Nice
    Run: |
      echo "nice=$(cut -d' ' -f19 /proc/self/stat) done"
"#;
    let own: i64 = std::fs::read_to_string("/proc/self/stat")
        .unwrap()
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    for (setting, expected) in [(None, (own + 10).min(19)), (Some("0"), own)] {
        let origin = Origin::new(NICE);
        let data = DataDir::new();
        let mut env = vec![("TAKO_WEBHOOK_SECRET", SECRET)];
        if let Some(value) = setting {
            env.push(("TAKO_DEPLOYMENT_NICE", value));
        }
        let server = TakoServer::start(tako_bin(), &data.path, &["--auto-register-projects"], &env);
        let body = origin.push_commit("main", "app.txt", "v1", "Nice");
        assert_eq!(post_push(&server, "nice-1", &body, SECRET).status, 202);
        let db = Db::open(&data);
        let deployments = db.wait_until_finished(1);
        let log = db.log(&deployments[0]);
        assert_eq!(deployments[0].state, DeploymentState::Success, "{log}");
        assert!(
            log.contains(&format!("nice={expected} ")),
            "deployment_nice {setting:?}: expected nice {expected}: {log}"
        );
    }
}
