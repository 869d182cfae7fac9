//! Deployment freezes end to end (`../shared/spec/journey.md` §5): the
//! real binary as server and client, a real git origin (`file://`), signed
//! pushes and API calls over real HTTP on 127.0.0.1. A freeze refuses a
//! manual deployment (409 naming it and its end); a push's automatic
//! deployment is `held` until the freeze ends (a short one, ending by
//! time), then runs; an admin's override (of a manual deployment, of a held
//! one) is audited with its reason; a deployer may not override.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "freezes-webhook-secret";

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Deploy
    Run: |
      echo "deploying #{Octopus.Release.Number}"
"#;

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

fn at(offset_secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Fixture {
    origin: Origin,
    server: TakoServer,
    admin: String,
    pushes: std::cell::Cell<u32>,
    _data: DataDir,
}

impl Fixture {
    fn new() -> Fixture {
        let origin = Origin::new(TAKOFILE);
        let data = DataDir::new();
        let server = TakoServer::start(
            tako_bin(),
            &data.path,
            &[],
            &[("TAKO_WEBHOOK_SECRET", SECRET)],
        );
        let admin = server.token.clone().unwrap();
        let fixture = Fixture {
            origin,
            server,
            admin,
            pushes: std::cell::Cell::new(0),
            _data: data,
        };
        let url = fixture.origin.bare.file_url();
        fixture.ok(
            &fixture.admin,
            &["project", "create", "Demo", "--repo", &url],
        );
        fixture
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

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        let auth = format!("Bearer {}", self.admin);
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
        let answer = self.api("GET", path, None);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        answer.json()
    }

    /// Pushes a commit to `develop`; returns its deployment once made.
    fn push(&self) -> Value {
        let n = self.pushes.get() + 1;
        self.pushes.set(n);
        let body = self
            .origin
            .push_commit("develop", "change.txt", &format!("{n}\n"), "Change");
        let delivery = format!("freezes-{n}");
        let answer = post_push(&self.server.address, &delivery, &body, SECRET);
        assert_eq!(answer.status, 202, "{}", answer.text());
        let mut deployment = None;
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
                deployment = outcome["deployment"].as_i64();
                !outcome.is_null()
            }),
            "the push was not processed: {}",
            self.get("/deliveries?limit=50")
        );
        let Some(deployment) = deployment else {
            panic!(
                "the push queued nothing: {}",
                self.get("/deliveries?limit=50")
            );
        };
        self.get(&format!("/deployments/{deployment}"))
    }

    fn wait_for(&self, id: &Value, state: &str, within: Duration) -> Value {
        let mut found = Value::Null;
        let reached = wait_until(within, || {
            found = self.get(&format!("/deployments/{id}"));
            found["state"] == state
        });
        assert!(reached, "deployment {id} never became {state}: {found}");
        found
    }

    fn audit(&self) -> Vec<Value> {
        let shown = self.ok(&self.admin, &["admin", "audit", "--output", "json"]);
        // The listing's JSON is the page's entries.
        let entries: Value = serde_json::from_str(&shown).unwrap();
        entries.as_array().unwrap().clone()
    }
}

#[test]
fn a_freeze_refuses_manual_deploys_holds_a_push_until_it_ends_and_overrides_are_audited() {
    let fixture = Fixture::new();
    let admin = fixture.admin.clone();
    let output = fixture.tako(
        &admin,
        &["token", "create", "--name", "dev", "--role", "deployer"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let deployer = String::from_utf8_lossy(&output.stdout).trim().to_owned();

    // A long freeze: the push's deployment is held, not run.
    let shown = fixture.ok(
        &admin,
        &[
            "freeze",
            "create",
            "--env",
            "DevTest",
            "--from",
            &at(-60),
            "--to",
            &at(3600),
            "--reason",
            "Black Friday",
        ],
    );
    assert!(shown.contains("Freeze 1 created"), "{shown}");
    let held = fixture.push();
    assert_eq!(held["state"], "held", "{held}");
    let release = fixture.get(&format!("/releases/{}", held["release"]));
    let number = release["number"].as_str().unwrap().to_owned();

    // A manual deployment is refused, naming the freeze and its end.
    let refused = fixture.api(
        "POST",
        &format!("/releases/{}/deployments", release["id"]),
        Some(json!({"environment": "DevTest"})),
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("freeze 1"), "{}", refused.text());
    assert!(
        refused.text().contains("Black Friday"),
        "{}",
        refused.text()
    );
    let refused = fixture.fails(
        &admin,
        &[
            "deploy",
            "--project",
            "Demo",
            "--release",
            &number,
            "--env",
            "DevTest",
        ],
    );
    assert!(refused.contains("DevTest is frozen"), "{refused}");
    assert!(refused.contains("until"), "{refused}");
    // A deployer may not override; an admin may, with a reason, audited.
    let denied = fixture.fails(
        &deployer,
        &[
            "deploy",
            "--project",
            "Demo",
            "--release",
            &number,
            "--env",
            "DevTest",
            "--override-freeze",
            "hotfix",
        ],
    );
    assert!(denied.contains("admin"), "{denied}");
    let overridden = fixture.ok(
        &admin,
        &[
            "deploy",
            "--project",
            "Demo",
            "--release",
            &number,
            "--env",
            "DevTest",
            "--override-freeze",
            "hotfix CHG-42",
        ],
    );
    assert!(overridden.contains("DevTest"), "{overridden}");
    let audit = fixture.audit();
    let entry = audit
        .iter()
        .find(|e| e["action"] == "freeze.override")
        .unwrap_or_else(|| panic!("no override audited: {audit:?}"));
    assert!(
        entry["detail"].as_str().unwrap().contains("hotfix CHG-42"),
        "{entry}"
    );
    // The held deployment stays held meanwhile.
    assert_eq!(
        fixture.get(&format!("/deployments/{}", held["id"]))["state"],
        "held"
    );

    // A short freeze overlaps, the long one is deleted: the held deployment
    // waits for the short one to end by itself, then runs.
    fixture.ok(
        &admin,
        &[
            "freeze",
            "create",
            "--env",
            "devtest",
            "--from",
            &at(-5),
            "--to",
            &at(4),
            "--reason",
            "short",
        ],
    );
    let listed = fixture.ok(&admin, &["freeze", "list"]);
    assert!(listed.contains("frozen now, until"), "{listed}");
    fixture.ok(&admin, &["freeze", "delete", "1"]);
    assert_eq!(
        fixture.get(&format!("/deployments/{}", held["id"]))["state"],
        "held"
    );
    fixture.wait_for(&held["id"], "success", Duration::from_secs(90));

    // A held deployment released early by an admin, audited.
    fixture.ok(
        &admin,
        &[
            "freeze",
            "create",
            "--env",
            "DevTest",
            "--every",
            "mon,tue,wed,thu,fri,sat,sun",
            "--from",
            "00:00",
            "--to",
            "24:00",
            "--reason",
            "always",
        ],
    );
    let second = fixture.push();
    assert_eq!(second["state"], "held", "{second}");
    let id = second["id"].to_string();
    let denied = fixture.fails(&deployer, &["freeze", "release", &id, "--reason", "x"]);
    assert!(denied.contains("admin"), "{denied}");
    fixture.ok(
        &admin,
        &["freeze", "release", &id, "--reason", "urgent fix"],
    );
    fixture.wait_for(&second["id"], "success", Duration::from_secs(90));
    assert!(
        fixture
            .audit()
            .iter()
            .any(|e| e["action"] == "freeze.override"
                && e["detail"].as_str().unwrap().contains("urgent fix")),
        "{:?}",
        fixture.audit()
    );
    // Releasing what is not held is a conflict.
    let answer = fixture.api(
        "POST",
        &format!("/deployments/{id}/release-hold"),
        Some(json!({"reason": "again"})),
    );
    assert_eq!(answer.status, 409, "{}", answer.text());
}

#[test]
fn bad_freezes_are_refused_with_what_to_write() {
    let fixture = Fixture::new();
    for (body, expected) in [
        (
            json!({"environment": "P", "from": "tomorrow", "to": "later", "reason": "x"}),
            "not an instant",
        ),
        (
            json!({"environment": "P", "from": at(60), "to": at(0), "reason": "x"}),
            "before it starts",
        ),
        (
            json!({"environment": "P", "from": "00:00", "to": "24:00", "every": "caturday", "reason": "x"}),
            "not a day of the week",
        ),
        (
            json!({"environment": "P", "from": at(0), "to": at(60), "reason": " "}),
            "a reason is required",
        ),
        (
            json!({"environment": "P", "from": at(0), "to": at(60), "reason": "x", "project": "nope"}),
            "nope",
        ),
    ] {
        let answer = fixture.api("POST", "/freezes", Some(body.clone()));
        assert!(
            answer.status == 422 || answer.status == 404,
            "{body}: {}",
            answer.text()
        );
        assert!(
            answer.text().contains(expected),
            "{body}: {}",
            answer.text()
        );
    }
    let answer = fixture.api("DELETE", "/freezes/99", None);
    assert_eq!(answer.status, 404, "{}", answer.text());
}
