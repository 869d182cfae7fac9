//! Pushes from Gitea/Forgejo, GitLab and Bitbucket Cloud through a real
//! `tako serve`: real git repositories (a bare origin reached through
//! `file://`), each forge's signed (or token-carrying) deliveries over real
//! HTTP on 127.0.0.1, built from its published example payload
//! (`crates/forges/tests/fixtures`), and the outcome read back from the
//! server's own database.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tako_store::{
    DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState, LogCursor,
    PageRequest, SqliteStore, Store,
};
use tako_test_support::git_server::BareRepo;
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, ZERO};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, wait_until};

const SECRET: &str = "it's a secret to every forge";

const ROUTING: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
  - Branch: develop
    Environment: DevTest
  - Tag: v*
    Environment: Staging
Steps:
  - Name: Test
    Run: |
      echo "testing #{Octopus.Release.Number} in #{Octopus.Environment.Name}"
      echo "notes: #{Octopus.Release.Notes}"
"#;

fn start(data: &DataDir) -> TakoServer {
    TakoServer::start(
        Path::new(env!("CARGO_BIN_EXE_tako")),
        &data.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    )
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../forges/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Reads the server's database (WAL: safe beside the running server).
struct Db {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    fn open(data: &DataDir) -> Db {
        Db {
            store: Arc::new(SqliteStore::open(data.path.join("tako.db")).unwrap()),
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

    fn stored(&self, delivery: &str) -> bool {
        self.runtime
            .block_on(self.store.get_delivery(&DeliveryId(delivery.to_owned())))
            .is_ok()
    }

    fn outcome(&self, delivery: &str) -> Option<DeliveryOutcome> {
        self.runtime
            .block_on(self.store.get_delivery(&DeliveryId(delivery.to_owned())))
            .ok()
            .and_then(|d| d.outcome)
    }

    fn wait_for_outcome(&self, delivery: &str) -> DeliveryOutcome {
        assert!(
            wait_until(Duration::from_secs(60), || self.outcome(delivery).is_some()),
            "delivery {delivery} was never processed"
        );
        self.outcome(delivery).unwrap()
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

    fn deployment_to(&self, environment: &str) -> Deployment {
        let deployments = self.deployments();
        let found = deployments
            .iter()
            .find(|d| d.environment == environment)
            .unwrap_or_else(|| panic!("no deployment to {environment}: {deployments:?}"));
        assert_eq!(found.state, DeploymentState::Success, "{}", self.log(found));
        found.clone()
    }
}

fn post(server: &TakoServer, forge: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(
        &server.address,
        "POST",
        &format!("/hooks/{forge}"),
        &all,
        body,
    )
    .unwrap()
}

fn head_of(bare: &BareRepo, git_ref: &str) -> String {
    bare.git(&["rev-parse", git_ref])
}

/// Commits `n` changes on `branch` of `origin` and pushes; returns
/// (before, the commits oldest first).
fn commit_on(origin: &Origin, branch: &str, messages: &[&str]) -> (String, Vec<String>) {
    let exists = !origin
        .bare
        .git(&["for-each-ref", &format!("refs/heads/{branch}")])
        .is_empty();
    let before = if exists {
        head_of(&origin.bare, &format!("refs/heads/{branch}"))
    } else {
        ZERO.to_owned()
    };
    if exists {
        origin.work.git(&["checkout", "-q", branch]);
    } else {
        origin.work.git(&["checkout", "-q", "-b", branch]);
    }
    let mut commits = Vec::new();
    for (n, message) in messages.iter().enumerate() {
        origin.work.write("app.txt", &format!("{message} {n}"));
        commits.push(origin.work.commit(message));
    }
    origin.bare.push_from(&origin.work, &[branch]);
    (before, commits)
}

fn gitea_commit(id: &str, message: &str) -> Value {
    json!({
        "id": id, "message": message,
        "author": {"name": "Gitea", "email": "someone@gitea.io", "username": "gitea"}
    })
}

#[test]
fn gitea_pushes_deploy_tags_too_and_bad_signatures_store_nothing() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    let db = Db::open(&data);
    let url = origin.bare.file_url();

    let (before, commits) = commit_on(&origin, "develop", &["Make the app better"]);
    let mut payload = fixture("gitea-push.json");
    payload["ref"] = "refs/heads/develop".into();
    payload["before"] = before.into();
    payload["after"] = commits[0].clone().into();
    payload["commits"] = json!([gitea_commit(&commits[0], "Make the app better")]);
    payload["repository"]["clone_url"] = url.clone().into();
    payload["repository"]["html_url"] = url.clone().into();
    payload["repository"]["default_branch"] = "main".into();
    let body = serde_json::to_vec(&payload).unwrap();
    let signature = tako_forges::signature::hmac_hex(SECRET.as_bytes(), &body);
    let headers = |delivery: &'static str, signature: &str| {
        vec![
            ("X-Gitea-Event", "push".to_owned()),
            ("X-Gitea-Delivery", delivery.to_owned()),
            ("X-Gitea-Signature", signature.to_owned()),
        ]
    };
    let send = |headers: Vec<(&str, String)>, body: &[u8]| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        post(&server, "gitea", &headers, body)
    };

    // A wrong or missing signature: 401, nothing stored.
    let wrong = tako_forges::signature::hmac_hex(b"not the secret", &body);
    let answer = send(headers("bad-1", &wrong), &body);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(
        answer.text().contains("X-Gitea-Signature does not match"),
        "{}",
        answer.text()
    );
    let answer = send(headers("bad-2", "")[..2].to_vec(), &body);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(!db.stored("gitea-bad-1") && !db.stored("gitea-bad-2"));

    let answer = send(headers("d-1", &signature), &body);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(answer.json()["delivery"], "gitea-d-1");
    let DeliveryOutcome::Queued { .. } = db.wait_for_outcome("gitea-d-1") else {
        panic!("{:?}", db.outcome("gitea-d-1"));
    };
    db.wait_until_finished(1);
    let log = db.log(&db.deployment_to("DevTest"));
    assert!(log.contains("notes: - Make the app better ("), "{log}");

    // A redelivery (the same X-Gitea-Delivery) is stored once.
    let again = send(headers("d-1", &signature), &body);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["status"], "duplicate");

    // A tag push, as Forgejo names its headers.
    origin.work.git(&["tag", "v1.0"]);
    origin.bare.push_from(&origin.work, &["--tags"]);
    let mut tag = payload.clone();
    tag["ref"] = "refs/tags/v1.0".into();
    tag["before"] = ZERO.into();
    tag["commits"] = json!([]);
    tag["head_commit"] = gitea_commit(&commits[0], "Make the app better");
    let body = serde_json::to_vec(&tag).unwrap();
    let signature = tako_forges::signature::hmac_hex(SECRET.as_bytes(), &body);
    let answer = post(
        &server,
        "gitea",
        &[
            ("X-Forgejo-Event", "push"),
            ("X-Forgejo-Delivery", "t-1"),
            ("X-Forgejo-Signature", &signature),
        ],
        &body,
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    db.wait_until_finished(2);
    db.deployment_to("Staging");

    // Gitea reports a deleted branch as a `delete` event: acknowledged,
    // nothing stored.
    let deleted = serde_json::to_vec(&json!({
        "ref": "develop", "ref_type": "branch", "pusher_type": "user",
        "repository": payload["repository"].clone()
    }))
    .unwrap();
    let signature = tako_forges::signature::hmac_hex(SECRET.as_bytes(), &deleted);
    let answer = send(
        vec![
            ("X-Gitea-Event", "delete".to_owned()),
            ("X-Gitea-Delivery", "del-1".to_owned()),
            ("X-Gitea-Signature", signature),
        ],
        &deleted,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["status"], "ignored");
    assert!(!db.stored("gitea-del-1"));
    assert_eq!(db.deployments().len(), 2);
}

fn gitlab_payload(
    url: &str,
    git_ref: &str,
    before: &str,
    after: &str,
    commits: Value,
    total: usize,
) -> Value {
    let mut payload = fixture("gitlab-push.json");
    payload["ref"] = git_ref.into();
    payload["before"] = before.into();
    payload["after"] = after.into();
    payload["checkout_sha"] = after.into();
    payload["commits"] = commits;
    payload["total_commits_count"] = total.into();
    payload["project"]["git_http_url"] = url.into();
    payload["project"]["web_url"] = url.into();
    payload["project"]["default_branch"] = "main".into();
    payload
}

#[test]
fn gitlab_truncated_pushes_get_their_notes_from_the_mirror() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let server = start(&data);
    let db = Db::open(&data);
    let url = origin.bare.file_url();

    // Three commits; GitLab lists only the newest (as it lists the newest 20).
    let messages = ["First of three", "Second of three", "Third of three"];
    commit_on(&origin, "develop", &["Start develop"]);
    let (before, commits) = commit_on(&origin, "develop", &messages);
    let listed = json!([{
        "id": commits[2], "message": "Third of three", "title": "Third of three",
        "author": {"name": "GitLab dev user", "email": "dev@example.com"}
    }]);
    let body = serde_json::to_vec(&gitlab_payload(
        &url,
        "refs/heads/develop",
        &before,
        &commits[2],
        listed,
        3,
    ))
    .unwrap();
    let send = |event: &str, key: &str, token: &str, body: &[u8]| {
        post(
            &server,
            "gitlab",
            &[
                ("X-Gitlab-Event", event),
                (
                    "X-Gitlab-Event-UUID",
                    "13792a34-cac6-4fda-95a8-c58e00a3954e",
                ),
                ("Idempotency-Key", key),
                ("X-Gitlab-Token", token),
            ],
            body,
        )
    };

    let answer = send("Push Hook", "bad", "not the token", &body);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(!db.stored("gitlab-bad"));

    let answer = send("Push Hook", "k-1", SECRET, &body);
    assert_eq!(answer.status, 202, "{}", answer.text());
    db.wait_until_finished(1);
    let log = db.log(&db.deployment_to("DevTest"));
    for message in messages {
        assert!(
            log.contains(message),
            "{message} missing from the notes:\n{log}"
        );
    }
    assert!(
        !log.contains("Start develop"),
        "only the pushed commits:\n{log}"
    );
    let first = log.find("First of three").unwrap();
    let third = log.find("Third of three").unwrap();
    assert!(first < third, "oldest first:\n{log}");

    // "Resend Request" keeps the Idempotency-Key: stored once.
    let again = send("Push Hook", "k-1", SECRET, &body);
    assert_eq!(again.json()["status"], "duplicate", "{}", again.text());

    // A tag push lists no commits: its commit's subject is read too.
    origin.work.git(&["tag", "v2.0"]);
    origin.bare.push_from(&origin.work, &["--tags"]);
    let mut tag = gitlab_payload(&url, "refs/tags/v2.0", ZERO, &commits[2], json!([]), 0);
    tag["object_kind"] = "tag_push".into();
    let body = serde_json::to_vec(&tag).unwrap();
    let answer = send("Tag Push Hook", "k-2", SECRET, &body);
    assert_eq!(answer.status, 202, "{}", answer.text());
    db.wait_until_finished(2);
    let log = db.log(&db.deployment_to("Staging"));
    assert!(log.contains("notes: - Third of three ("), "{log}");

    // A branch deletion is stored and ignored, as GitHub's is.
    let deleted = gitlab_payload(&url, "refs/heads/develop", &commits[2], ZERO, json!([]), 0);
    let answer = send(
        "Push Hook",
        "k-3",
        SECRET,
        &serde_json::to_vec(&deleted).unwrap(),
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(
        db.wait_for_outcome("gitlab-k-3"),
        DeliveryOutcome::Ignored {
            reason: "push deleted branch develop; deletions never deploy".to_owned()
        }
    );
    assert_eq!(db.deployments().len(), 2);
}

#[test]
fn gitlab_signing_tokens_are_checked_with_the_clock() {
    let origin = Origin::new(ROUTING);
    let data = DataDir::new();
    let signing = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=";
    let server = TakoServer::start(
        Path::new(env!("CARGO_BIN_EXE_tako")),
        &data.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", signing)],
    );
    let db = Db::open(&data);
    let url = origin.bare.file_url();
    let (before, commits) = commit_on(&origin, "develop", &["Signed change"]);
    let listed = json!([{"id": commits[0], "message": "Signed change", "author": {"name": "Dev"}}]);
    let body = serde_json::to_vec(&gitlab_payload(
        &url,
        "refs/heads/develop",
        &before,
        &commits[0],
        listed,
        1,
    ))
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let send = |key: &str, at: i64, body: &[u8]| {
        let signature = tako_forges::signature::sign_signed(signing, key, at, body);
        let at = at.to_string();
        post(
            &server,
            "gitlab",
            &[
                ("X-Gitlab-Event", "Push Hook"),
                ("Idempotency-Key", key),
                ("webhook-id", key),
                ("webhook-timestamp", &at),
                ("webhook-signature", &signature),
            ],
            body,
        )
    };
    let stale = send("s-old", now - 3600, &body);
    assert_eq!(stale.status, 401, "{}", stale.text());
    assert!(
        stale.text().contains("webhook-timestamp"),
        "{}",
        stale.text()
    );
    assert!(!db.stored("gitlab-s-old"));
    let answer = send("s-1", now, &body);
    assert_eq!(answer.status, 202, "{}", answer.text());
    db.wait_until_finished(1);
    db.deployment_to("DevTest");
}

#[test]
fn bitbucket_pushes_of_several_refs_deploy_each_and_are_stored_once() {
    // Bitbucket's clone URL is the repository's page and `.git`.
    let work = TempGitRepo::new();
    work.write("takofile.yml", ROUTING);
    work.commit("Add the takofile");
    let bare = BareRepo::new("demo.git");
    bare.push_from(&work, &["main"]);
    let origin = Origin { work, bare };
    let data = DataDir::new();
    let server = start(&data);
    let db = Db::open(&data);
    let page = origin.bare.file_url();

    let (before, commits) = commit_on(&origin, "develop", &["Bitbucket change"]);
    origin.work.git(&["tag", "v3.0"]);
    origin.bare.push_from(&origin.work, &["--tags"]);
    let mut payload = fixture("bitbucket-push.json");
    payload["repository"]["links"]["html"]["href"] = page.clone().into();
    let changes = payload["push"]["changes"].as_array_mut().unwrap();
    // The branch: created (no `old`), its one commit listed.
    changes[0]["new"]["name"] = "develop".into();
    changes[0]["new"]["target"]["hash"] = commits[0].clone().into();
    changes[0]["old"] = Value::Null;
    changes[0]["created"] = true.into();
    changes[0]["commits"] = json!([{
        "hash": commits[0], "message": "Bitbucket change\n",
        "author": {"raw": "Emma <emma@example.com>"}
    }]);
    assert_eq!(before, ZERO);
    // The tag, created on the same commit.
    changes[1]["new"]["name"] = "v3.0".into();
    changes[1]["new"]["target"]["hash"] = commits[0].clone().into();
    // The deleted branch.
    changes[2]["old"]["target"]["hash"] = commits[0].clone().into();
    let body = serde_json::to_vec(&payload).unwrap();
    let signature = format!(
        "sha256={}",
        tako_forges::signature::hmac_hex(SECRET.as_bytes(), &body)
    );
    let send = |delivery: &str, signature: &str| {
        post(
            &server,
            "bitbucket",
            &[
                ("X-Event-Key", "repo:push"),
                ("X-Request-UUID", delivery),
                ("X-Hook-UUID", "{8ff6d6e5-7b3b-4f3c-9d56-7f3c6b0f1a2b}"),
                ("X-Hub-Signature", signature),
            ],
            &body,
        )
    };

    let bad = send(
        "bad",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert_eq!(bad.status, 401, "{}", bad.text());
    assert!(!db.stored("bitbucket-bad"));

    let answer = send("r-1", &signature);
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(answer.json()["delivery"], "bitbucket-r-1");
    db.wait_until_finished(2);
    let log = db.log(&db.deployment_to("DevTest"));
    assert!(log.contains("notes: - Bitbucket change ("), "{log}");
    db.deployment_to("Staging");
    assert_eq!(
        db.wait_for_outcome("bitbucket-r-1-2"),
        DeliveryOutcome::Ignored {
            reason: "push deleted branch feature/old; deletions never deploy".to_owned()
        }
    );

    // Bitbucket's retry (the same X-Request-UUID): stored once.
    let again = send("r-1", &signature);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["status"], "duplicate");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(db.deployments().len(), 2);
}
