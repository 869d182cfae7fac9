//! Retrying a failed deployment end to end (`../shared/spec/journey.md`
//! §3): the real binary as server and client, a real git origin
//! (`file://`). A deployment whose third step fails is retried whole (every
//! step runs again), then from its failed step: steps 1–2 are shown as
//! *skipped: succeeded in deployment #N* with their outputs carried over,
//! the run starts at step 3 in the failed deployment's kept working
//! directory, and a retry whose directory is gone checks out afresh and
//! says so. What cannot be retried is a clear 409.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::Origin;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

fn takofile(gate: &Path) -> String {
    format!(
        r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Build
    Run: |
      echo "building in #{{Octopus.Deployment.Id}}"
      echo "built by #{{Octopus.Deployment.Id}}" > built.txt
      set_octopusvariable "Artifact" "app-#{{Octopus.Release.Number}}.zip"
  - Name: Stamp
    Run: |
      echo "stamping"
      set_octopusvariable "Stamp" "stamped"
  - Name: Ship
    Run: |
      echo "shipping #{{Octopus.Action[Build].Output.Artifact}} and #{{Octopus.Action[Stamp].Output.Stamp}}"
      echo "checkout says: $(cat built.txt)"
      [ -e '{gate}' ] || {{ echo "the gate is closed" >&2; exit 1; }}
  - Name: After
    Run: echo "after the ship"
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
    server: TakoServer,
    token: String,
    data: DataDir,
    _origin: Origin,
}

impl World {
    fn tako(&self, args: &[&str]) -> Output {
        Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", &self.token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.tako(args);
        assert!(output.status.success(), "tako {args:?}:\n{}", text(&output));
        text(&output)
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
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

    /// Waits until deployment `id` ends; returns it (with its steps).
    fn ended(&self, id: i64) -> Value {
        let mut found = Value::Null;
        let ended = wait_until(Duration::from_secs(60), || {
            found = self.api("GET", &format!("/deployments/{id}"), None).json();
            ["success", "failed", "cancelled"].contains(&found["state"].as_str().unwrap_or(""))
        });
        assert!(ended, "deployment {id} never ended: {found}");
        found
    }

    fn log(&self, id: i64) -> String {
        self.ok(&["logs", &id.to_string()])
    }

    /// Retries `id` through the CLI; returns the new deployment's id.
    fn retry(&self, id: i64, from_failed_step: bool) -> i64 {
        let id = id.to_string();
        let mut args = vec!["deploy", "retry", id.as_str()];
        if from_failed_step {
            args.push("--from-failed-step");
        }
        let said = self.ok(&args);
        assert!(
            said.contains(&format!("retrying deployment {id} to Production")),
            "{said}"
        );
        said.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

fn step_states(deployment: &Value) -> Vec<(String, String)> {
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
fn a_failed_deployment_is_retried_whole_or_from_its_failed_step_in_its_kept_directory() {
    let gate = tempfile::tempdir().unwrap();
    let gate_file = gate.path().join("open");
    let origin = Origin::new(&takofile(&gate_file));
    let data = DataDir::new();
    let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
    let world = World {
        token: server.token.clone().unwrap(),
        server,
        data,
        _origin: origin,
    };
    let url = world._origin.bare.file_url();
    world.ok(&["project", "create", "Demo", "--repo", &url]);
    let made = world.ok(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--deploy-to",
        "Production",
    ]);
    let deployments = world.api("GET", "/deployments?project=Demo", None).json();
    let first = deployments["items"][0]["id"].as_i64().unwrap();
    let failed = world.ended(first);
    assert_eq!(failed["state"], "failed", "{made}\n{}", world.log(first));
    let states: Vec<String> = step_states(&failed).into_iter().map(|(s, _)| s).collect();
    assert_eq!(states, ["success", "success", "failed", "skipped"]);

    // What cannot be retried says why.
    let answer = world.api(
        "POST",
        &format!("/deployments/{first}/retry"),
        Some(json!({"from_failed_step": "yes"})),
    );
    assert!(
        answer.status == 400 || answer.status == 422,
        "{}",
        answer.text()
    );
    let answer = world.api("POST", "/deployments/999999/retry", Some(json!({})));
    assert_eq!(answer.status, 404, "{}", answer.text());

    // A whole retry: a new deployment running every step again.
    let whole = world.retry(first, false);
    assert_ne!(whole, first);
    let again = world.ended(whole);
    assert_eq!(again["state"], "failed");
    assert_eq!(again["release"], failed["release"]);
    let log = world.log(whole);
    assert!(
        log.contains(&format!("building in deployments-{whole}")),
        "{log}"
    );
    assert!(log.contains("stamping"), "{log}");

    // From the failed step, with the gate open: steps 1–2 are carried over
    // with their outputs, step 3 runs in deployment #first's directory.
    std::fs::write(&gate_file, "").unwrap();
    let resumed = world.retry(first, true);
    let done = world.ended(resumed);
    let log = world.log(resumed);
    assert_eq!(done["state"], "success", "{log}");
    assert_eq!(
        done["retry_of"],
        json!({"deployment": first, "from_failed_step": true}),
        "the API says what the deployment retries"
    );
    assert_eq!(again["retry_of"]["from_failed_step"], false, "{again}");
    let states = step_states(&done);
    let carried = format!("succeeded in deployment #{first}");
    assert_eq!(
        states,
        [
            ("skipped".to_owned(), carried.clone()),
            ("skipped".to_owned(), carried.clone()),
            ("success".to_owned(), String::new()),
            ("success".to_owned(), String::new()),
        ],
        "{log}"
    );
    assert!(
        log.contains(&format!("Step 'Build' skipped: {carried}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("Step 'Stamp' skipped: {carried}")),
        "{log}"
    );
    assert!(!log.contains("building in"), "{log}");
    assert!(!log.contains("stamping"), "{log}");
    assert!(log.contains("shipping app-"), "{log}");
    assert!(log.contains(".zip and stamped"), "{log}");
    assert!(
        log.contains(&format!(
            "Reusing the working directory of deployment #{first}"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("checkout says: built by deployments-{first}")),
        "{log}"
    );
    assert!(log.contains("after the ship"), "{log}");
    // Each retry is audited, naming the new deployment.
    let audit = world.ok(&["admin", "audit", "--output", "json"]);
    assert!(
        audit.contains(&format!(
            "retried as deployment #{resumed} from its failed step"
        )),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("retried as deployment #{whole}\"")),
        "{audit}"
    );

    // A succeeded deployment is not retried; neither is one without a
    // failed step from its failed step.
    let answer = world.api(
        "POST",
        &format!("/deployments/{resumed}/retry"),
        Some(json!({})),
    );
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains("only a failed or cancelled deployment"),
        "{}",
        answer.text()
    );

    // The whole retry's directory is gone: a fresh checkout, said so; the
    // carried outputs still reach step 3 (the checkout has no built.txt).
    let kept = world.data.path.join("work").join(whole.to_string());
    assert!(kept.join("checkout").is_dir(), "{}", kept.display());
    std::fs::remove_dir_all(&kept).unwrap();
    let fresh = world.retry(whole, true);
    let done = world.ended(fresh);
    let log = world.log(fresh);
    assert_eq!(done["state"], "success", "{log}");
    assert!(
        log.contains(&format!(
            "The working directory of deployment #{whole} is no longer kept: checking out"
        )),
        "{log}"
    );
    assert!(log.contains(".zip and stamped"), "{log}");
    assert!(!log.contains("checkout says: built by"), "{log}");
    assert!(!log.contains("building in"), "{log}");
}
