//! Deployments that wait for a person end to end (`../shared/spec/journey.md`
//! §2 and §3): the real binary as server and client, a real git origin
//! (`file://`).
//!
//! A `Uses: manual-intervention` step pauses a deployment (`paused`), frees
//! its environment's slot and the scheduler's (a second deployment to the
//! same environment runs with `max_concurrent_deployments = 1`), shows its
//! instructions (API, `tako logs`, `tako intervention show`); the server is
//! killed (`kill -9`) and restarted: the deployment is still paused, and
//! *Proceed* resumes it at the next step, in the directory it stopped in,
//! the responder and note readable as the step's Octopus output variables.
//! *Abort* fails the other with the note. Guided failure (`OnFailure:
//! ask`): *Ignore* goes on and records who; *Retry* after the cause is
//! fixed succeeds. Wrong answers are clear 4xx; answers are audited.
//! `tako run` without a terminal fails saying how to answer. Open pauses
//! are listed (`GET /api/v1/interventions`, `tako intervention list`) with
//! their masked instructions and whether the caller's role may answer; a
//! viewer's answer is refused with 403.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::Origin;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const MANUAL: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Build
    Run: |
      echo "built by #{Octopus.Deployment.Id}" > built.txt
      set_octopusvariable "Artifact" "app-#{Octopus.Release.Number}.zip"
  - Name: Wait
    Uses: manual-intervention
    With:
      Instructions: "Check #{Octopus.Action[Build].Output.Artifact} on staging, then proceed"
      Roles: [admin, Deployer]
  - Name: Ship
    Run: |
      echo "approved by #{Octopus.Action[Wait].Output.Manual.ResponsibleUser.Username}"
      echo "with the note: #{Octopus.Action[Wait].Output.Manual.Notes}"
      echo "checkout says: $(cat built.txt)"
"#;

fn guided(gate: &Path) -> String {
    format!(
        r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Check
    OnFailure: ask
    Run: |
      [ -e '{gate}' ] || {{ echo "the gate is closed" >&2; exit 1; }}
      echo "the gate is open"
  - Name: After
    Run: |
      echo "after the check, #{{Octopus.Action[Check].Status}}"
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

struct World {
    server: Option<TakoServer>,
    address: String,
    admin: String,
    data: DataDir,
    origin: Origin,
}

impl World {
    fn start(takofile: &str) -> World {
        let origin = Origin::new(takofile);
        let data = DataDir::new();
        let server = TakoServer::start(
            tako_bin(),
            &data.path,
            &["--max-concurrent-deployments", "1"],
            &[],
        );
        let world = World {
            address: server.address.clone(),
            admin: server.token.clone().unwrap(),
            server: Some(server),
            data,
            origin,
        };
        let url = world.origin.bare.file_url();
        world.ok(&world.admin, &["project", "create", "Demo", "--repo", &url]);
        world
    }

    /// `kill -9` and a start on the same data directory.
    fn restart(&mut self) {
        self.server.take().unwrap().kill();
        let server = TakoServer::start(
            tako_bin(),
            &self.data.path,
            &["--max-concurrent-deployments", "1"],
            &[],
        );
        self.address = server.address.clone();
        self.server = Some(server);
    }

    fn tako(&self, token: &str, args: &[&str]) -> Output {
        Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.address))
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

    fn token(&self, name: &str, role: &str) -> String {
        let output = self.ok(
            &self.admin,
            &["token", "create", "--name", name, "--role", role],
        );
        output.lines().next().unwrap().trim().to_owned()
    }

    fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(
            &self.address,
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

    fn deployment(&self, id: i64) -> Value {
        self.api(&self.admin, "GET", &format!("/deployments/{id}"), None)
            .json()
    }

    /// Waits until deployment `id` is in one of `states`; returns it.
    fn until(&self, id: i64, states: &[&str]) -> Value {
        let mut found = Value::Null;
        let reached = wait_until(Duration::from_secs(60), || {
            found = self.deployment(id);
            states.contains(&found["state"].as_str().unwrap_or(""))
        });
        assert!(
            reached,
            "deployment {id} never reached {states:?}: {found}\n{}",
            self.log(id)
        );
        found
    }

    fn log(&self, id: i64) -> String {
        text(&self.tako(&self.admin, &["logs", &id.to_string()]))
    }

    /// Creates a release deployed to Production; returns the deployment.
    fn deploy_new_release(&self) -> i64 {
        self.ok(
            &self.admin,
            &[
                "release",
                "create",
                "--project",
                "Demo",
                "--deploy-to",
                "Production",
            ],
        );
        let listed = self
            .api(&self.admin, "GET", "/deployments?project=Demo", None)
            .json();
        listed["items"][0]["id"].as_i64().unwrap()
    }
}

fn states(deployment: &Value) -> Vec<(String, String)> {
    deployment["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_manual_intervention_pauses_survives_a_kill_and_proceeds_or_aborts() {
    let mut world = World::start(MANUAL);
    let first = world.deploy_new_release();
    let paused = world.until(first, &["paused"]);
    let pause = &paused["intervention"];
    assert_eq!(pause["kind"], "manual", "{paused}");
    assert_eq!(pause["step"], "Wait");
    assert_eq!(pause["actions"], json!(["proceed", "abort"]));
    assert_eq!(pause["roles"], json!(["admin", "deployer"]));
    let instructions = pause["instructions"].as_str().unwrap();
    assert!(
        instructions.starts_with("Check app-")
            && instructions.ends_with(".zip on staging, then proceed"),
        "{instructions}"
    );
    let log = world.log(first);
    assert!(
        log.contains(&format!("Step 'Wait' waits for a person: {instructions}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("tako intervention proceed|abort {first}")),
        "{log}"
    );
    let shown = world.ok(&world.admin, &["intervention", "show", &first.to_string()]);
    assert!(shown.contains(instructions), "{shown}");
    assert!(shown.contains("admin or deployer"), "{shown}");
    assert_eq!(
        states(&paused),
        [
            ("success".to_owned(), String::new()),
            ("pending".to_owned(), String::new()),
            ("pending".to_owned(), String::new()),
        ]
    );

    // Its slots are free: with one deployment at a time in all, a second
    // one to the same environment runs (up to its own pause).
    let release = paused["release"].as_i64().unwrap();
    let second = world
        .api(
            &world.admin,
            "POST",
            &format!("/releases/{release}/deployments"),
            Some(json!({"environment": "Production"})),
        )
        .json()["id"]
        .as_i64()
        .unwrap();
    world.until(second, &["paused"]);
    assert_eq!(world.deployment(first)["state"], "paused");

    // Wrong answers are refused clearly.
    let viewer = world.token("watcher", "viewer");
    let refused = world.api(
        &viewer,
        "POST",
        &format!("/deployments/{first}/interventions/proceed"),
        Some(json!({})),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("which the role admin or deployer may answer"),
        "{}",
        refused.text()
    );
    let wrong = world.api(
        &world.admin,
        "POST",
        &format!("/deployments/{first}/interventions/retry"),
        Some(json!({})),
    );
    assert_eq!(wrong.status, 409, "{}", wrong.text());
    assert!(
        wrong.text().contains("answer proceed or abort"),
        "{}",
        wrong.text()
    );
    let unknown = world.api(
        &world.admin,
        "POST",
        &format!("/deployments/{first}/interventions/maybe"),
        Some(json!({})),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.text());
    assert!(
        unknown
            .text()
            .contains("expected proceed, retry, ignore or abort")
    );

    // kill -9: still paused after the restart.
    world.restart();
    let after = world.until(first, &["paused"]);
    assert_eq!(after["intervention"]["step"], "Wait", "{after}");

    // Proceed: it resumes at the next step, in its kept directory, with
    // the responder and note as the step's outputs.
    let deployer = world.token("dora", "deployer");
    let said = world.ok(
        &deployer,
        &[
            "intervention",
            "proceed",
            &first.to_string(),
            "--note",
            "staging looks fine",
        ],
    );
    assert!(said.contains("proceed; queued to go on"), "{said}");
    let done = world.until(first, &["success", "failed", "cancelled"]);
    let log = world.log(first);
    assert_eq!(done["state"], "success", "{log}");
    assert_eq!(
        states(&done)
            .into_iter()
            .map(|(state, _)| state)
            .collect::<Vec<_>>(),
        ["success", "success", "success"],
        "{log}"
    );
    assert!(log.contains("approved by dora"), "{log}");
    assert!(log.contains("with the note: staging looks fine"), "{log}");
    assert!(
        log.contains(&format!("checkout says: built by deployments-{first}")),
        "{log}"
    );
    assert!(
        log.contains("Step 'Wait': proceed, by dora (deployer): staging looks fine"),
        "{log}"
    );
    assert!(
        log.contains("Going on in the working directory kept while it was paused"),
        "{log}"
    );
    assert_eq!(
        log.matches("Step 'Build' started").count(),
        1,
        "Build did not run again: {log}"
    );
    let again = world.api(
        &world.admin,
        "POST",
        &format!("/deployments/{first}/interventions/proceed"),
        Some(json!({})),
    );
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("waits for no one"),
        "{}",
        again.text()
    );

    // Abort: the other fails with the note.
    world.until(second, &["paused"]);
    world.ok(
        &world.admin,
        &[
            "intervention",
            "abort",
            &second.to_string(),
            "--note",
            "not during the sale",
        ],
    );
    let aborted = world.until(second, &["failed"]);
    let error = aborted["error"].as_str().unwrap();
    assert!(
        error.contains("aborted at step 'Wait' by ") && error.ends_with(": not during the sale"),
        "{error}"
    );
    let log = world.log(second);
    assert!(log.contains("not during the sale"), "{log}");
    assert!(!log.contains("approved by"), "Ship never ran: {log}");
    let pauses = world
        .api(
            &world.admin,
            "GET",
            &format!("/deployments/{second}/interventions"),
            None,
        )
        .json();
    assert_eq!(pauses[0]["answer"]["action"], "abort", "{pauses}");
    assert_eq!(pauses[0]["answer"]["note"], "not during the sale");

    // Both answers are audited.
    let audit = world.ok(&world.admin, &["admin", "audit", "--output", "json"]);
    assert!(audit.contains("deployment.intervention.proceed"), "{audit}");
    assert!(audit.contains("deployment.intervention.abort"), "{audit}");
}

#[test]
fn a_failed_step_that_asks_is_ignored_or_retried() {
    let gate = tempfile::tempdir().unwrap();
    let gate_file = gate.path().join("open");
    let world = World::start(&guided(&gate_file));
    let first = world.deploy_new_release();
    let paused = world.until(first, &["paused"]);
    let pause = &paused["intervention"];
    assert_eq!(pause["kind"], "failure", "{paused}");
    assert_eq!(pause["actions"], json!(["retry", "ignore", "abort"]));
    assert!(
        pause["instructions"]
            .as_str()
            .unwrap()
            .starts_with("Step 'Check' failed: "),
        "{pause}"
    );
    let proceed = world.api(
        &world.admin,
        "POST",
        &format!("/deployments/{first}/interventions/proceed"),
        Some(json!({})),
    );
    assert_eq!(proceed.status, 409, "{}", proceed.text());
    assert!(
        proceed.text().contains("answer retry, ignore or abort"),
        "{}",
        proceed.text()
    );

    // Ignore: it goes on as if the step had succeeded, saying who.
    let deployer = world.token("ivy", "deployer");
    world.ok(
        &deployer,
        &[
            "intervention",
            "ignore",
            &first.to_string(),
            "--note",
            "known flake",
        ],
    );
    let done = world.until(first, &["success", "failed", "cancelled"]);
    let log = world.log(first);
    assert_eq!(done["state"], "success", "{log}");
    assert_eq!(
        states(&done),
        [
            (
                "success".to_owned(),
                "failed, ignored by ivy: known flake".to_owned()
            ),
            ("success".to_owned(), String::new()),
        ],
        "{log}"
    );
    assert!(
        log.contains("Step 'Check': failure ignored by ivy (deployer): known flake"),
        "{log}"
    );
    assert!(log.contains("after the check, Success"), "{log}");

    // Retry after fixing the cause: the step runs again and succeeds.
    let second = world.deploy_new_release();
    world.until(second, &["paused"]);
    std::fs::write(&gate_file, "").unwrap();
    world.ok(
        &world.admin,
        &["intervention", "retry", &second.to_string()],
    );
    let done = world.until(second, &["success", "failed", "cancelled"]);
    let log = world.log(second);
    assert_eq!(done["state"], "success", "{log}");
    assert!(log.contains("the gate is closed"), "{log}");
    assert!(log.contains("the gate is open"), "{log}");
    assert_eq!(
        states(&done)
            .into_iter()
            .map(|(state, _)| state)
            .collect::<Vec<_>>(),
        ["success", "success"]
    );
    let audit = world.ok(&world.admin, &["admin", "audit", "--output", "json"]);
    assert!(audit.contains("deployment.intervention.ignore"), "{audit}");
    assert!(audit.contains("deployment.intervention.retry"), "{audit}");
}

#[test]
fn tako_run_without_a_terminal_says_how_to_answer() {
    let origin = Origin::new(MANUAL);
    let output = Command::new(tako_bin())
        .args(["run", "--env", "Production"])
        .arg(origin.work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("step 'Wait' waits for a person (proceed, abort), and tako run can only ask on a terminal"),
        "{said}"
    );
    assert!(
        said.contains("Check app-"),
        "the instructions are shown: {said}"
    );
    assert!(!said.contains("approved by"), "Ship never ran: {said}");

    let output = Command::new(tako_bin())
        .arg("validate")
        .arg(origin.work.path())
        .output()
        .unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains(
            "step Wait: waits for a person (manual-intervention), answered by admin or deployer"
        ),
        "{said}"
    );
}

/// A pause whose instructions name a sensitive variable, answered only by
/// deployers.
const LISTED: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Sign off
    Uses: manual-intervention
    With:
      Instructions: "Log in with #{ApiKey} and check #{Octopus.Release.Number}"
      Roles: [deployer]
  - Name: Ship
    Run: |
      echo "shipped"
"#;

const CANARY: &str = "pauseListCanary-5f3a9";

#[test]
fn open_pauses_are_listed_by_the_api_and_the_cli_with_who_may_answer() {
    use std::io::Write as _;
    let world = World::start(LISTED);
    let mut child = Command::new(tako_bin())
        .args(["var", "set", "ApiKey", "--project", "Demo", "--sensitive"])
        .env("TAKO_SERVER", format!("http://{}", world.address))
        .env("TAKO_TOKEN", &world.admin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CANARY}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let deployer = world.token("dora", "deployer");
    let viewer = world.token("vic", "viewer");

    // Nothing waits yet.
    let empty = world.api(&viewer, "GET", "/interventions", None);
    assert_eq!(empty.status, 200, "{}", empty.text());
    assert_eq!(empty.json(), json!([]));

    let id = world.deploy_new_release();
    world.until(id, &["paused"]);

    // Everyone sees it; only a deployer may answer (the step's Roles).
    for (token, may) in [(&viewer, false), (&world.admin, false), (&deployer, true)] {
        let listed = world.api(token, "GET", "/interventions?state=open", None);
        assert_eq!(listed.status, 200, "{}", listed.text());
        assert!(!listed.text().contains(CANARY), "{}", listed.text());
        let listed = listed.json();
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        let open = &listed[0];
        assert_eq!(open["deployment"], id);
        assert_eq!(open["project"], "Demo");
        assert_eq!(open["environment"], "Production");
        assert_eq!(open["release"], "0.0.1");
        assert_eq!(open["may_answer"], may, "{open}");
        let pause = &open["intervention"];
        assert_eq!(pause["step"], "Sign off");
        assert_eq!(pause["kind"], "manual");
        assert_eq!(pause["roles"], json!(["deployer"]));
        assert_eq!(pause["actions"], json!(["proceed", "abort"]));
        assert_eq!(
            pause["instructions"], "Log in with ******** and check 0.0.1",
            "{pause}"
        );
        assert!(pause["paused_at"].as_str().is_some());
        assert!(pause.get("answer").is_none());
    }
    let wrong = world.api(&viewer, "GET", "/interventions?state=answered", None);
    assert_eq!(wrong.status, 400, "{}", wrong.text());

    // The CLI: the table, --mine, JSON.
    let table = world.ok(&deployer, &["intervention", "list"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID  PROJECT  ENVIRONMENT  RELEASE  STEP"),
        "{table}"
    );
    let row = table.lines().nth(1).unwrap();
    for part in [
        &id.to_string(),
        "Demo",
        "Production",
        "0.0.1",
        "Sign off",
        "proceed|abort",
        "deployer",
        "yes",
        "Log in with ******** and check 0.0.1",
    ] {
        assert!(row.contains(part), "{part:?} not in {table}");
    }
    assert!(!table.contains(CANARY));
    let mine = world.ok(&viewer, &["intervention", "list", "--mine"]);
    assert!(mine.contains("(none)"), "{mine}");
    assert!(!mine.contains("Sign off"), "{mine}");
    let theirs = world.ok(&viewer, &["intervention", "list"]);
    assert!(theirs.lines().nth(1).unwrap().contains(" no "), "{theirs}");
    let json_out = world.tako(&deployer, &["intervention", "list", "--output", "json"]);
    assert!(json_out.status.success(), "{}", text(&json_out));
    let parsed: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(parsed[0]["deployment"], id);

    // A viewer's answer is refused; the deployer's goes, and the list empties.
    let refused = world.api(
        &viewer,
        "POST",
        &format!("/deployments/{id}/interventions/proceed"),
        Some(json!({})),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    world.ok(
        &deployer,
        &["intervention", "proceed", &id.to_string(), "--note", "ok"],
    );
    let done = world.until(id, &["success", "failed", "cancelled"]);
    assert_eq!(done["state"], "success", "{}", world.log(id));
    let listed = world.api(&viewer, "GET", "/interventions", None).json();
    assert_eq!(listed, json!([]));
    let none = world.ok(&deployer, &["intervention", "list"]);
    assert!(none.contains("(none)"), "{none}");
}
