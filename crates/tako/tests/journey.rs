//! A release's journey end to end (`../shared/spec/journey.md` §1): the
//! real binary as server and client, a real git origin (`file://`), signed
//! pushes and API calls over real HTTP on 127.0.0.1. A push to `develop`
//! deploys to DevTest and `AutoDeploy` promotes the release to Staging;
//! Production refuses it until Staging succeeded (409 naming Staging), then
//! waits for an approval that its pusher may not give (`NotBy: pusher`);
//! another admin approves and the step sees `Tako.Approval.By`. A
//! rejection cancels with the note; a timeout cancels with that reason.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "journey-webhook-secret";

/// The process: Staging's step waits for `gate` to exist (so the test can
/// act while Staging has not succeeded yet), every step prints what it
/// knows of its approval.
fn takofile(gate: &Path, approval: &str) -> String {
    format!(
        r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Lifecycle:
  - Environment: DevTest
    AutoDeploy: true
  - Environment: Staging
    AutoDeploy: true
  - Environment: Production
    Requires: [Staging]
    Approval: {approval}
Steps:
  - Name: Wait for the gate
    Environments: [Staging]
    Timeout: 2m
    Run: |
      while [ ! -e '{gate}' ]; do sleep 0.1; done
  - Name: Deploy
    Run: |
      echo "deploying #{{Octopus.Release.Number}} to #{{Octopus.Environment.Name}}"
      echo "approved by [#{{Tako.Approval.By}}] note [#{{Tako.Approval.Note}}]"
"#,
        gate = gate.display()
    )
}

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

struct Journey {
    origin: Origin,
    server: TakoServer,
    admin: String,
    /// An admin token named as the pushes' pusher (`tester`).
    pusher: String,
    /// Another admin.
    reviewer: String,
    gate: tempfile::TempDir,
    pushes: std::cell::Cell<u32>,
    _data: DataDir,
}

impl Journey {
    fn new(approval: &str) -> Journey {
        let gate = tempfile::tempdir().unwrap();
        let origin = Origin::new(&takofile(&gate.path().join("open"), approval));
        let data = DataDir::new();
        let server = TakoServer::start(
            tako_bin(),
            &data.path,
            &[],
            &[("TAKO_WEBHOOK_SECRET", SECRET)],
        );
        let admin = server.token.clone().unwrap();
        let mut journey = Journey {
            origin,
            server,
            admin: admin.clone(),
            pusher: String::new(),
            reviewer: String::new(),
            gate,
            pushes: std::cell::Cell::new(0),
            _data: data,
        };
        let url = journey.origin.bare.file_url();
        journey.ok(&admin, &["project", "create", "Demo", "--repo", &url]);
        journey.pusher = journey.token("tester", "admin");
        journey.reviewer = journey.token("reviewer", "admin");
        journey
    }

    fn token(&self, name: &str, role: &str) -> String {
        let output = self.tako(
            &self.admin,
            &["token", "create", "--name", name, "--role", role],
        );
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn open_gate(&self) {
        std::fs::write(self.gate.path().join("open"), "").unwrap();
    }

    fn tako(&self, token: &str, args: &[&str]) -> Output {
        Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, token: &str, args: &[&str]) -> String {
        let output = self.tako(token, args);
        assert!(output.status.success(), "tako {args:?}:\n{}", text(&output));
        text(&output)
    }

    fn fails(&self, token: &str, args: &[&str]) -> String {
        let output = self.tako(token, args);
        assert!(
            !output.status.success(),
            "tako {args:?}:\n{}",
            text(&output)
        );
        text(&output)
    }

    fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(
            &self.server.address,
            method,
            &format!("/api/v1{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap()
    }

    fn get(&self, path: &str) -> Value {
        let answer = self.api(&self.admin, "GET", path, None);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        answer.json()
    }

    /// Pushes a commit to `develop`; returns the release number it made.
    fn push_develop(&self) -> String {
        let n = self.pushes.get() + 1;
        self.pushes.set(n);
        let body = self
            .origin
            .push_commit("develop", "change.txt", &format!("{n}\n"), "Change");
        let delivery = format!("journey-{n}");
        let answer = post_push(&self.server.address, &delivery, &body, SECRET);
        assert_eq!(answer.status, 202, "{}", answer.text());
        let mut release = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                let page = self.get("/deliveries?limit=50");
                let outcome = page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["id"] == delivery.as_str())
                    .map(|d| d["outcome"].clone())
                    .unwrap_or_default();
                release = outcome["release"].as_i64();
                !outcome.is_null()
            }) && release.is_some(),
            "the push made no release: {}",
            self.get("/deliveries?limit=50")
        );
        self.get(&format!("/releases/{}", release.unwrap()))["number"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The deployments of release `number`, oldest first.
    fn deployments_of(&self, number: &str) -> Vec<Value> {
        let release = self.get(&format!("/projects/Demo/releases/{number}"));
        let page = self.get("/deployments?project=Demo&limit=200");
        let mut mine: Vec<Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["release"] == release["id"])
            .cloned()
            .collect();
        mine.reverse();
        mine
    }

    /// Waits until release `number`'s deployment to `environment` is in
    /// `state`; returns it.
    fn wait_for(&self, number: &str, environment: &str, state: &str) -> Value {
        let mut found = None;
        let reached = wait_until(Duration::from_secs(90), || {
            found = self
                .deployments_of(number)
                .into_iter()
                .rev()
                .find(|d| d["environment"] == environment);
            found.as_ref().is_some_and(|d| d["state"] == state)
        });
        assert!(
            reached,
            "{number} never reached {state} in {environment}: {:?}",
            self.deployments_of(number)
        );
        found.unwrap()
    }

    fn log(&self, id: i64) -> String {
        self.ok(&self.admin, &["logs", &id.to_string()])
    }
}

#[test]
fn a_release_goes_through_its_lifecycle_and_waits_for_another_admins_approval() {
    let journey = Journey::new("{ Roles: [admin], Count: 1, NotBy: pusher }");
    let number = journey.push_develop();

    // DevTest deploys at once, and AutoDeploy takes the release to Staging,
    // whose step waits for the gate.
    let devtest = journey.wait_for(&number, "DevTest", "success");
    assert_eq!(devtest["created_by"], "tester");
    journey.wait_for(&number, "Staging", "running");

    // Production requires Staging: refused by the API and the CLI, naming it.
    let release = journey.get(&format!("/projects/Demo/releases/{number}"));
    let refused = journey.api(
        &journey.admin,
        "POST",
        &format!("/releases/{}/deployments", release["id"]),
        Some(json!({"environment": "production"})),
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    let error = refused.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("Production requires a successful deployment to Staging first"),
        "{error}"
    );
    let cli = journey.fails(
        &journey.admin,
        &[
            "deploy",
            "--project",
            "Demo",
            "--release",
            &number,
            "--env",
            "Production",
        ],
    );
    assert!(cli.contains("Staging"), "{cli}");
    // An environment outside the lifecycle is refused too.
    let outside = journey.api(
        &journey.admin,
        "POST",
        &format!("/releases/{}/deployments", release["id"]),
        Some(json!({"environment": "QA"})),
    );
    assert_eq!(outside.status, 409, "{}", outside.text());
    assert!(
        outside.text().contains("not in the project's lifecycle"),
        "{}",
        outside.text()
    );

    journey.open_gate();
    journey.wait_for(&number, "Staging", "success");
    // Production has no AutoDeploy: nothing goes there by itself.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        journey
            .deployments_of(&number)
            .iter()
            .all(|d| d["environment"] != "Production")
    );

    // Promote: the next phase is Production, which waits for an approval.
    let promoted = journey.ok(
        &journey.admin,
        &[
            "release",
            "promote",
            "--project",
            "Demo",
            "--release",
            &number,
        ],
    );
    assert!(
        promoted.contains("awaits 1 approval by admin (not its pusher)"),
        "{promoted}"
    );
    let waiting = journey.wait_for(&number, "Production", "awaiting_approval");
    let id = waiting["id"].as_i64().unwrap();
    assert_eq!(waiting["approval"]["not_by"], "pusher");

    // What waits for me: the reviewer's list has it, the pusher's does not.
    let mine = |token: &str| {
        let answer = journey.api(token, "GET", "/approvals", None);
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(mine(&journey.reviewer), [id]);
    assert!(mine(&journey.pusher).is_empty());
    let listed = journey.ok(&journey.reviewer, &["approvals"]);
    assert!(listed.contains("Production"), "{listed}");

    // The pusher cannot approve their own release.
    let own = journey.fails(&journey.pusher, &["approve", &id.to_string()]);
    assert!(
        own.contains("tester pushed release") && own.contains("NotBy: pusher"),
        "{own}"
    );
    let own = journey.api(
        &journey.pusher,
        "POST",
        &format!("/deployments/{id}/approve"),
        Some(json!({})),
    );
    assert_eq!(own.status, 403, "{}", own.text());
    assert_eq!(
        journey.get(&format!("/deployments/{id}"))["state"],
        "awaiting_approval"
    );

    // Another admin approves; the deployment runs and its step sees who.
    let approved = journey.ok(
        &journey.reviewer,
        &["approve", &id.to_string(), "--note", "ship it"],
    );
    assert!(
        approved.contains(&format!("Deployment {id} approved: queued")),
        "{approved}"
    );
    let production = journey.wait_for(&number, "Production", "success");
    assert_eq!(production["id"].as_i64(), Some(id));
    let log = journey.log(id);
    assert!(
        log.contains("approved by [reviewer] note [ship it]"),
        "{log}"
    );
    let approvals = journey.get(&format!("/deployments/{id}/approvals"));
    assert_eq!(approvals[0]["by"], "reviewer");
    assert_eq!(approvals[0]["decision"], "approved");
    assert_eq!(approvals[0]["note"], "ship it");
    // Deciding again is a conflict; the decision is in the audit log.
    let again = journey.api(
        &journey.reviewer,
        "POST",
        &format!("/deployments/{id}/approve"),
        Some(json!({})),
    );
    assert_eq!(again.status, 409, "{}", again.text());
    let audit = journey.get("/audit?limit=200").to_string();
    assert!(audit.contains("deployment.approve"), "{audit}");
    assert!(audit.contains("reviewer"), "{audit}");
    // After the last phase there is nothing to promote to.
    let last = journey.fails(
        &journey.admin,
        &[
            "release",
            "promote",
            "--project",
            "Demo",
            "--release",
            &number,
        ],
    );
    assert!(
        last.contains("succeeded in the last phase (Production)"),
        "{last}"
    );

    // A second release: a rejection cancels it with the note.
    let second = journey.push_develop();
    journey.wait_for(&second, "Staging", "success");
    journey.ok(
        &journey.admin,
        &[
            "release",
            "promote",
            "--project",
            "Demo",
            "--release",
            &second,
        ],
    );
    let waiting = journey.wait_for(&second, "Production", "awaiting_approval");
    let rejected = journey.ok(
        &journey.reviewer,
        &[
            "reject",
            &waiting["id"].to_string(),
            "--note",
            "not during the sale",
        ],
    );
    assert!(
        rejected.contains("rejected by reviewer: not during the sale"),
        "{rejected}"
    );
    let cancelled = journey.wait_for(&second, "Production", "cancelled");
    assert_eq!(
        cancelled["error"],
        "rejected by reviewer: not during the sale"
    );
}

#[test]
fn an_approval_nobody_gives_times_out_and_roles_are_enforced() {
    let journey = Journey::new("{ Roles: [deployer], Timeout: 3s }");
    journey.open_gate();
    let number = journey.push_develop();
    journey.wait_for(&number, "Staging", "success");
    let release = journey.get(&format!("/projects/Demo/releases/{number}"));
    let created = journey.api(
        &journey.admin,
        "POST",
        &format!("/releases/{}/deployments", release["id"]),
        Some(json!({"environment": "Production"})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["state"], "awaiting_approval");
    let id = created.json()["id"].as_i64().unwrap();

    // Only the role the approval names may approve.
    let admin = journey.api(
        &journey.reviewer,
        "POST",
        &format!("/deployments/{id}/approve"),
        Some(json!({"note": "x"})),
    );
    assert_eq!(admin.status, 403, "{}", admin.text());
    assert!(
        admin
            .text()
            .contains("needs an approval by the role deployer"),
        "{}",
        admin.text()
    );

    let cancelled = journey.wait_for(&number, "Production", "cancelled");
    let error = cancelled["error"].as_str().unwrap();
    assert!(
        error.starts_with("approval timed out: not approved by "),
        "{error}"
    );
    let late = journey.tako(&journey.admin, &["approve", &id.to_string()]);
    assert!(!late.status.success());
    assert!(
        text(&late).contains("awaits no approval"),
        "{}",
        text(&late)
    );
    let audit = journey.get("/audit?limit=200").to_string();
    assert!(audit.contains("deployment.approval_timeout"), "{audit}");
}

#[test]
fn pushes_and_releases_made_by_hand_go_through_the_lifecycle_too() {
    let gate = tempfile::tempdir().unwrap();
    let takofile = format!(
        r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
  - Branch: main
    Environment: Production
Lifecycle:
  - Environment: DevTest
    Approval: {{ NotBy: pusher, Timeout: 1h }}
  - Environment: Production
    Requires: DevTest
Steps:
  - Name: Deploy
    Run: |
      echo "deploying to #{{Octopus.Environment.Name}} ({})"
"#,
        gate.path().display()
    );
    let origin = Origin::new(&takofile);
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let admin = server.token.clone().unwrap();
    let journey = Journey {
        origin,
        server,
        admin: admin.clone(),
        pusher: String::new(),
        reviewer: String::new(),
        gate,
        pushes: std::cell::Cell::new(0),
        _data: data,
    };
    let url = journey.origin.bare.file_url();
    journey.ok(&admin, &["project", "create", "Demo", "--repo", &url]);

    // A push mapped to a phase with an approval waits for it.
    let number = journey.push_develop();
    let waiting = journey.wait_for(&number, "DevTest", "awaiting_approval");
    assert_eq!(waiting["created_by"], "tester");
    assert_eq!(waiting["approval"]["roles"], json!(["admin"]));

    // A push mapped to a phase with Requires makes no release.
    let body = journey
        .origin
        .push_commit("main", "change.txt", "main\n", "On main");
    assert_eq!(
        post_push(&journey.server.address, "journey-main", &body, SECRET).status,
        202
    );
    let mut reason = String::new();
    assert!(wait_until(Duration::from_secs(60), || {
        let page = journey.get("/deliveries?limit=50");
        let found = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "journey-main")
            .and_then(|d| d["outcome"]["reason"].as_str().map(str::to_owned));
        reason = found.unwrap_or_default();
        !reason.is_empty()
    }));
    assert!(
        reason.contains(
            "no release made: Production requires a successful deployment to DevTest first"
        ),
        "{reason}"
    );

    // A release made by hand: --deploy-to a phase it may not enter is a
    // 409 and creates nothing; one with an approval waits.
    let refused = journey.fails(
        &admin,
        &[
            "release",
            "create",
            "--project",
            "Demo",
            "--branch",
            "develop",
            "--deploy-to",
            "Production",
        ],
    );
    assert!(
        refused.contains("Production requires a successful deployment to DevTest first"),
        "{refused}"
    );
    let created = journey.ok(
        &admin,
        &[
            "release",
            "create",
            "--project",
            "Demo",
            "--branch",
            "develop",
            "--deploy-to",
            "devtest",
        ],
    );
    assert!(
        created.contains("awaits 1 approval by admin (not its pusher)"),
        "{created}"
    );
    assert!(created.contains("to DevTest"), "{created}");
}
