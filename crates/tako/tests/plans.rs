//! Plans end to end (`../shared/spec/journey.md` §4): the real binary as
//! server and client, a real git origin (`file://`), a signed push and API
//! calls over real HTTP on 127.0.0.1. A plan creates nothing (the release
//! number it names is the one the push then makes, no deployment, no
//! working directory), shows a canary sensitive value nowhere (CLI output,
//! API answer, server log), and its step list is what the real deployment
//! then runs and skips. `tako plan` of the local repository and `tako
//! delivery plan` of the stored push say the same.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "plans-webhook-secret";
const CANARY: &str = "canary-7f3a9c-plan-secret";

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Variables:
  - Name: Colour
    Value: blue
Steps:
  - Name: Build
    Run: |
      echo "building with #{ApiKey}"
  - Name: Publish
    Run: echo publish
    ExcludeEnvironments: [DevTest]
  - Name: Production only
    Run: echo prod
    Environments: [Production]
  - Name: Blue
    Run: echo blue
    Condition: '#{if Colour == "blue"}true#{/if}'
  - Name: Red
    Run: echo red
    Condition: '#{if Colour == "red"}true#{/if}'
  - Name: On failure
    Run: echo failed
    Condition: Failure
  - Name: Always
    Run: echo always
    Condition: Always
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

struct Fixture {
    origin: Origin,
    server: TakoServer,
    admin: String,
    log: tempfile::NamedTempFile,
    data: DataDir,
}

impl Fixture {
    fn new() -> Fixture {
        let origin = Origin::new(TAKOFILE);
        let data = DataDir::new();
        let log = tempfile::NamedTempFile::new().unwrap();
        let server = TakoServer::start_logging_to(
            tako_bin(),
            &data.path,
            &[],
            &[("TAKO_WEBHOOK_SECRET", SECRET), ("TAKO_LOG", "info")],
            log.path(),
        );
        let admin = server.token.clone().unwrap();
        let fixture = Fixture {
            origin,
            server,
            admin,
            log,
            data,
        };
        let url = fixture.origin.bare.file_url();
        fixture.ok(&["project", "create", "Demo", "--repo", &url]);
        let output = fixture.tako_stdin(
            &["var", "set", "ApiKey", "--project", "Demo", "--sensitive"],
            &format!("{CANARY}\n"),
        );
        assert!(output.status.success(), "{}", text(&output));
        fixture
    }

    fn tako_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", &self.admin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", &self.admin)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "tako {args:?}:\n{}", text(&output));
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

    /// The entries of the server's working-directory root.
    fn working_dirs(&self) -> usize {
        std::fs::read_dir(self.data.path.join("work"))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }
}

/// `(name, outcome)` per step of a plan's JSON.
fn planned(plan: &Value) -> Vec<(String, String)> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_plan_creates_nothing_shows_no_secret_and_predicts_the_deployment() {
    let fixture = Fixture::new();
    // The commit is on the origin, not yet delivered.
    let body = fixture
        .origin
        .push_commit("develop", "change.txt", "1\n", "Change one");

    // The API's plan of develop's head in DevTest.
    let answer = fixture.api(
        "POST",
        "/projects/Demo/plans",
        Some(json!({"environment": "DevTest", "branch": "develop"})),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(!answer.text().contains(CANARY), "{}", answer.text());
    let plan = answer.json();
    let number = plan["release_number"].as_str().unwrap().to_owned();
    assert_eq!(plan["environment"], "DevTest");
    assert_eq!(plan["branch"], "develop");
    assert!(plan["refused"].is_null(), "{plan}");
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps[1]["reason"], "excluded from DevTest");
    assert_eq!(steps[2]["reason"], "not scoped to DevTest");
    let api_key = plan["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ApiKey")
        .unwrap();
    assert_eq!(api_key["value"], "********");
    assert_eq!(api_key["sensitive"], true);
    assert!(
        steps[0]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "Tako.Step.Name" && v["value"] == "Build"),
        "{plan}"
    );

    // The CLI says the same, as text and JSON, without the canary.
    let shown = fixture.ok(&[
        "plan",
        "--project",
        "Demo",
        "--env",
        "DevTest",
        "--branch",
        "develop",
    ]);
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(
        shown.contains("Publish — skip: excluded from DevTest"),
        "{shown}"
    );
    assert!(shown.contains("ApiKey = ********"), "{shown}");
    let again: Value = serde_json::from_str(&fixture.ok(&[
        "plan",
        "--project",
        "Demo",
        "--env",
        "DevTest",
        "--branch",
        "develop",
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(planned(&again), planned(&plan));
    assert_eq!(again["release_number"], number.as_str());

    // Nothing was created: no release, no deployment, no working directory.
    let releases = fixture.get("/projects/Demo/releases");
    assert_eq!(releases["items"].as_array().unwrap().len(), 0, "{releases}");
    let deployments = fixture.get("/deployments?project=Demo");
    assert_eq!(
        deployments["items"].as_array().unwrap().len(),
        0,
        "{deployments}"
    );
    assert_eq!(fixture.working_dirs(), 0);

    // The push: its release takes the number the plan named (no number
    // was consumed), and its deployment runs and skips what was planned.
    let answer = post_push(&fixture.server.address, "plans-1", &body, SECRET);
    assert_eq!(answer.status, 202, "{}", answer.text());
    let mut deployment = Value::Null;
    assert!(
        wait_until(Duration::from_secs(90), || {
            let page = fixture.get("/deployments?project=Demo");
            deployment = page["items"]
                .as_array()
                .unwrap()
                .first()
                .cloned()
                .unwrap_or_default();
            deployment["state"] == "success"
        }),
        "the push's deployment never succeeded: {deployment}"
    );
    let release = fixture.get(&format!("/releases/{}", deployment["release"]));
    assert_eq!(release["number"], number.as_str());
    let deployment = fixture.get(&format!("/deployments/{}", deployment["id"]));
    let ran: Vec<(String, String)> = deployment["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let state = match s["state"].as_str().unwrap() {
                "success" => "run",
                "skipped" => "skip",
                other => other,
            };
            (s["name"].as_str().unwrap().to_owned(), state.to_owned())
        })
        .collect();
    assert_eq!(ran, planned(&plan));

    // The stored delivery, planned now: the same steps, the next number.
    let shown = fixture.ok(&["delivery", "plan", "plans-1", "--output", "json"]);
    assert!(!shown.contains(CANARY), "{shown}");
    let delivery: Value = serde_json::from_str(&shown).unwrap();
    let again = &delivery["plans"][0];
    assert_eq!(again["environment"], "DevTest");
    assert_eq!(planned(again), planned(&plan));
    assert_ne!(again["release_number"], number.as_str());
    assert!(
        again["notes"].as_str().unwrap().contains("Change one"),
        "{again}"
    );

    // The local plan of the work repository, with a secret of its own.
    let local = Command::new(tako_bin())
        .args(["plan", "--env", "DevTest", "--secret"])
        .arg(format!("ApiKey={CANARY}"))
        .arg(fixture.origin.work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(local.status.success(), "{}", text(&local));
    let local = text(&local);
    assert!(!local.contains(CANARY), "{local}");
    assert!(
        local.contains("Publish — skip: excluded from DevTest"),
        "{local}"
    );
    assert!(local.contains("ApiKey = ********"), "{local}");

    let server_log = std::fs::read_to_string(fixture.log.path()).unwrap();
    assert!(server_log.contains("plan made"), "{server_log}");
    assert!(!server_log.contains(CANARY));
}

#[test]
fn a_plan_says_what_is_wrong_with_its_request() {
    let fixture = Fixture::new();
    let answer = fixture.api(
        "POST",
        "/projects/Demo/plans",
        Some(json!({"environment": "DevTest", "branch": "nope"})),
    );
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(answer.text().contains("branch nope"), "{}", answer.text());
    let answer = fixture.api(
        "POST",
        "/projects/Demo/plans",
        Some(json!({"branch": "main"})),
    );
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(answer.text().contains("environment"), "{}", answer.text());
    let answer = fixture.api(
        "POST",
        "/projects/Demo/plans",
        Some(json!({"environment": "", "branch": "main"})),
    );
    assert!(
        answer.status == 400 || answer.status == 422,
        "{}",
        answer.text()
    );
    assert!(answer.text().contains("environment"), "{}", answer.text());
    let answer = fixture.api(
        "POST",
        "/projects/Nope/plans",
        Some(json!({"environment": "DevTest"})),
    );
    assert_eq!(answer.status, 404, "{}", answer.text());
    let answer = fixture.api("POST", "/deliveries/none/plan", None);
    assert_eq!(answer.status, 404, "{}", answer.text());
}
