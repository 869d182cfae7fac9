//! Nothing missed when Tako was down: the missed-push sweep, end to end.
//! The real binary, real bare origins through `file://`, pushes whose
//! webhooks never reach the server, and the outcome read back from the
//! server's own database and API. Also what a restarted server makes of a
//! stored push whose body was damaged on disk while it was down.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    Delivery, DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState,
    PageRequest, Release, SqliteStore, Store,
};
use tako_test_support::http::request;
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "it's a secret to everybody";

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
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

fn start(data: &DataDir, args: &[&str]) -> TakoServer {
    let mut all = vec!["--auto-register-projects"];
    all.extend_from_slice(args);
    TakoServer::start(
        tako_bin(),
        &data.path,
        &all,
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

    fn deliveries(&self) -> Vec<Delivery> {
        self.runtime
            .block_on(self.store.list_deliveries(None, PageRequest::first(500)))
            .unwrap()
            .items
    }

    fn delivery(&self, id: &str) -> Option<Delivery> {
        self.runtime
            .block_on(self.store.get_delivery(&DeliveryId(id.to_owned())))
            .ok()
    }

    fn releases(&self, project: &str) -> Vec<Release> {
        self.runtime.block_on(async {
            let project = self
                .store
                .find_project_by_name(project)
                .await
                .unwrap()
                .unwrap();
            let mut all = self
                .store
                .list_releases(project.id, PageRequest::first(500))
                .await
                .unwrap()
                .items;
            all.reverse();
            all
        })
    }

    fn wait_for_outcome(&self, delivery: &str) -> DeliveryOutcome {
        assert!(
            wait_until(Duration::from_secs(60), || self
                .delivery(delivery)
                .is_some_and(|d| d.outcome.is_some())),
            "delivery {delivery} was never processed; deliveries: {:?}",
            self.deliveries()
        );
        self.delivery(delivery).unwrap().outcome.unwrap()
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

    /// Stores `body` (a GitHub push) under each id, as the intake would.
    fn store_push(&self, ids: &[&str], body: &[u8]) {
        self.runtime
            .block_on(
                self.store
                    .insert_deliveries(&support::push_deliveries(ids, body)),
            )
            .unwrap();
    }

    fn recovered(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.recovered)
            .collect()
    }
}

fn head_of(origin: &Origin, branch: &str) -> String {
    origin
        .bare
        .git(&["rev-parse", &format!("refs/heads/{branch}")])
}

/// The opening of an outage: a server deploys one push to `develop`, then is
/// killed. Answers its database, to read beside the next server.
fn deploy_once_then_stop(origin: &Origin, data: &DataDir) -> Db {
    let server = start(data, &[]);
    let first = origin.push_commit("develop", "app.txt", "v1", "Before the outage");
    assert_eq!(
        post_push(&server.address, "develop-1", &first, SECRET).status,
        202
    );
    let db = Db::open(data);
    db.wait_until_finished(1);
    server.kill();
    db
}

/// The issue's scenario: stopped server, two pushes to a mapped branch and
/// one to an unmapped one, start: one release of the mapped branch's new
/// head, nothing else; the real webhook arriving late makes nothing more.
#[test]
fn pushes_missed_while_down_become_one_release_and_the_late_webhook_nothing_more() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let db = deploy_once_then_stop(&origin, &data);
    let before = head_of(&origin, "develop");

    // While Tako is down; no webhook reaches it.
    origin.push_commit("develop", "app.txt", "v2", "Missed change one");
    let last = origin.push_commit("develop", "app.txt", "v3", "Missed change two");
    origin.push_commit("feature/x", "app.txt", "x", "Unmapped change");
    let head = head_of(&origin, "develop");

    let server = start(&data, &[]);
    let swept = format!("sweep-Demo-develop-{head}");
    let DeliveryOutcome::Queued { release, .. } = db.wait_for_outcome(&swept) else {
        panic!("not queued: {:?}", db.delivery(&swept));
    };
    let recovered = db.delivery(&swept).unwrap();
    assert!(recovered.recovered);
    assert_eq!(recovered.git_ref.as_deref(), Some("refs/heads/develop"));
    assert_eq!(recovered.after.as_deref(), Some(head.as_str()));
    let deployments = db.wait_until_finished(2);
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    assert_eq!(deployments[1].release, release);
    assert_eq!(deployments[1].environment, "DevTest");
    assert_eq!(deployments[1].state, DeploymentState::Success);
    let releases = db.releases("Demo");
    assert_eq!(releases.len(), 2, "{releases:?}");
    assert_eq!(releases[1].id, release);
    assert_eq!(releases[1].commit, head);
    assert_eq!(releases[1].branch.as_deref(), Some("develop"));
    // The notes cover every missed commit since the last processed push.
    assert!(
        releases[1].notes.contains("Missed change one")
            && releases[1].notes.contains("Missed change two")
            && !releases[1].notes.contains("Before the outage"),
        "{}",
        releases[1].notes
    );
    assert_ne!(before, head);

    // The real webhook of the last push, late (GitHub's "Redeliver"):
    // the same push, another delivery id, nothing more.
    let late = post_push(&server.address, "develop-3-late", &last, SECRET);
    assert_eq!(late.status, 202, "{}", late.text());
    assert_eq!(
        db.wait_for_outcome("develop-3-late"),
        DeliveryOutcome::Duplicate
    );
    assert_eq!(db.releases("Demo").len(), 2);
    assert_eq!(db.deployments().len(), 2);
    // Nothing for the unmapped branch, nor for main (never deployed).
    let recovered: Vec<String> = db.recovered().into_iter().map(|d| d.id.0).collect();
    assert_eq!(recovered, [swept], "only the mapped branch's head");
    drop(server);
}

/// Deliveries of one push that wait together (stored while the server was
/// down, so the router claims them in one batch, with the sweep's own):
/// one release, and the others are duplicates. Each queued outcome is
/// committed before the next delivery of the batch is routed.
#[test]
fn one_push_delivered_three_times_in_one_claimed_batch_makes_one_release() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let db = deploy_once_then_stop(&origin, &data);

    let push = origin.push_commit("develop", "app.txt", "v2", "Delivered twice");
    db.store_push(&["twice-a", "twice-b", "twice-c"], &push);
    // A lease longer than the wait: a delivery whose outcome could not be
    // recorded (a second release of the push, refused) would wait for it.
    let server = start(&data, &["--deployment-lease", "10m"]);
    let outcomes: Vec<DeliveryOutcome> = ["twice-a", "twice-b", "twice-c"]
        .iter()
        .map(|id| db.wait_for_outcome(id))
        .collect();
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, DeliveryOutcome::Queued { .. }))
        .count();
    let swept_queued = db
        .recovered()
        .iter()
        .filter(|d| matches!(d.outcome, Some(DeliveryOutcome::Queued { .. })))
        .count();
    assert_eq!(queued + swept_queued, 1, "one queued: {outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            DeliveryOutcome::Queued { .. } | DeliveryOutcome::Duplicate
        )),
        "{outcomes:?}"
    );
    db.wait_until_finished(2);
    assert_eq!(db.releases("Demo").len(), 2, "one release per push");
    drop(server);
}

/// A stored push whose body was damaged on disk (the database is SQLite's,
/// whose bodies are LZ4-compressed) fails its own delivery with the reason,
/// never the router: the same push's intact delivery is routed as usual.
#[test]
fn a_push_whose_stored_body_was_damaged_fails_alone_and_says_why() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let db = deploy_once_then_stop(&origin, &data);
    let push = origin.push_commit("develop", "app.txt", "v2", "Stored, then damaged");
    db.store_push(&["damaged", "intact"], &push);
    let raw = rusqlite::Connection::open(data.path.join("tako.db")).unwrap();
    let changed = raw
        .execute(
            "UPDATE deliveries SET body = substr(body, 1, 64)
             WHERE id = 'damaged' AND body_codec = 'lz4'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1, "the push was stored compressed");
    drop(raw);

    let server = start(&data, &[]);
    let DeliveryOutcome::Failed { reason } = db.wait_for_outcome("damaged") else {
        panic!("not failed: {:?}", db.delivery("damaged"));
    };
    assert!(
        reason.starts_with("the stored body (lz4) cannot be decoded: "),
        "{reason}"
    );
    assert!(
        matches!(
            db.wait_for_outcome("intact"),
            DeliveryOutcome::Queued { .. }
        ),
        "{:?}",
        db.delivery("intact")
    );
    assert_eq!(db.wait_until_finished(2).len(), 2);
    drop(server);
}

/// A running server's periodic sweep picks up a push whose webhook never
/// came; the API lists its delivery as recovered; later sweeps add nothing.
#[test]
fn a_push_whose_webhook_never_came_is_recovered_by_the_next_sweep() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data, &["--missed-push-sweep", "1s"]);
    let token = server.token.clone().unwrap();
    let first = origin.push_commit("develop", "app.txt", "v1", "Delivered");
    assert_eq!(
        post_push(&server.address, "develop-1", &first, SECRET).status,
        202
    );
    let db = Db::open(&data);
    db.wait_until_finished(1);

    origin.push_commit("develop", "app.txt", "v2", "Its webhook was lost");
    let head = head_of(&origin, "develop");
    let swept = format!("sweep-Demo-develop-{head}");
    let DeliveryOutcome::Queued { .. } = db.wait_for_outcome(&swept) else {
        panic!("not queued: {:?}", db.delivery(&swept));
    };
    let deployments = db.wait_until_finished(2);
    assert_eq!(deployments[1].state, DeploymentState::Success);

    let answer = request(
        &server.address,
        "GET",
        "/api/v1/deliveries",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let listed = answer.json();
    let items = listed["items"].as_array().unwrap();
    let find = |id: &str| {
        items
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
    };
    assert_eq!(find(&swept)["recovered"], true);
    assert_eq!(find(&swept)["after"], head.as_str());
    assert_eq!(find(&swept)["outcome"]["kind"], "queued");
    assert_eq!(find("develop-1")["recovered"], false);

    // The web UI's deliveries list marks it.
    let signed_in = request(
        &server.address,
        "POST",
        "/ui/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={token}&next=%2Fui%2F").as_bytes(),
    )
    .unwrap();
    let cookie = signed_in
        .headers
        .iter()
        .find(|(name, _)| name == "set-cookie")
        .map(|(_, value)| value.split(';').next().unwrap().to_owned())
        .unwrap();
    let page = request(
        &server.address,
        "GET",
        "/ui/deliveries",
        &[("Cookie", &cookie)],
        b"",
    )
    .unwrap();
    assert_eq!(page.status, 200);
    let html = page.text();
    let row = |id: &str| {
        let at = html
            .find(&format!("data-delivery=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} not on the page: {html}"));
        html[at..].split("</tr>").next().unwrap().to_owned()
    };
    assert!(row(&swept).contains("(recovered by sweep)"), "{html}");
    assert!(!row("develop-1").contains("recovered"), "{html}");

    // A few more sweeps: the same head is never recovered twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(db.recovered().len(), 1, "{:?}", db.recovered());
    assert_eq!(db.releases("Demo").len(), 2);
    drop(server);
}

/// A project whose remote is unreachable is logged at each sweep; the
/// other projects are swept and the server goes on serving.
#[test]
fn an_unreachable_remote_is_logged_and_the_others_are_still_swept() {
    // `Away` sorts first: its failure must not stop `Demo`'s sweep.
    let away = Origin::new(&ROUTING.replace("Project: Demo", "Project: Away"));
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let logs = tempfile::tempdir().unwrap();
    let log_file = logs.path().join("server.log");
    let server = TakoServer::start_logging_to(
        tako_bin(),
        &data.path,
        &["--auto-register-projects", "--missed-push-sweep", "1s"],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
        &log_file,
    );
    let db = Db::open(&data);
    let body = away.push_commit("develop", "app.txt", "v1", "Away's first");
    assert_eq!(
        post_push(&server.address, "away-1", &body, SECRET).status,
        202
    );
    db.wait_until_finished(1);
    let body = origin.push_commit("develop", "app.txt", "v1", "Demo's first");
    assert_eq!(
        post_push(&server.address, "demo-1", &body, SECRET).status,
        202
    );
    db.wait_until_finished(2);

    // Away's remote disappears; Demo gets a push whose webhook is lost.
    std::fs::remove_dir_all(away.bare.path()).unwrap();
    origin.push_commit("develop", "app.txt", "v2", "Lost webhook");
    let head = head_of(&origin, "develop");
    let swept = format!("sweep-Demo-develop-{head}");
    let DeliveryOutcome::Queued { .. } = db.wait_for_outcome(&swept) else {
        panic!("not queued: {:?}", db.delivery(&swept));
    };
    let logged = || {
        std::fs::read_to_string(&log_file)
            .unwrap_or_default()
            .lines()
            .any(|line| {
                line.contains("missed-push sweep: cannot check the project's branches")
                    && line.contains("Away")
            })
    };
    assert!(
        wait_until(Duration::from_secs(30), logged),
        "{}",
        std::fs::read_to_string(&log_file).unwrap_or_default()
    );

    // The server goes on: a webhook still deploys (to main, which no sweep
    // compares: it has no processed push yet).
    let body = origin.push_commit("main", "app.txt", "v3", "After the failure");
    assert_eq!(
        post_push(&server.address, "demo-3", &body, SECRET).status,
        202
    );
    let DeliveryOutcome::Queued { .. } = db.wait_for_outcome("demo-3") else {
        panic!("not queued: {:?}", db.delivery("demo-3"));
    };
    let deployments = db.wait_until_finished(4);
    assert!(
        deployments
            .iter()
            .all(|d| d.state == DeploymentState::Success),
        "{deployments:?}"
    );
    assert!(
        db.recovered()
            .iter()
            .all(|d| d.id.0.starts_with("sweep-Demo-"))
    );
    drop(server);
}
