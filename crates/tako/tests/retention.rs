//! Retention end to end (`../shared/spec/journey.md` §6): the real binary
//! as server and client, a real git origin (`file://`), signed pushes over
//! real HTTP on 127.0.0.1, short settings. The takofile keeps the newest 2
//! releases (`Retention:`, overriding the server's `all`); the server keeps
//! task logs for 2 s and working directories for 1 s. A dry run counts and
//! removes nothing; a run removes the old releases with their deployments,
//! logs and deliveries, the old task logs and the working directories, and
//! never the dashboard's cells; the server logs the counts. The background
//! pass trims the audit log by itself. A bad setting stops the server with
//! a message naming it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "retention-webhook-secret";

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
  - Branch: main
    Environment: Production
Retention:
  Releases: 2
Steps:
  - Name: Deploy
    Run: |
      echo "deploying #{Octopus.Release.Number} to #{Octopus.Environment.Name}"
      echo "a file of the deployment" > left-behind.txt
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

struct World {
    origin: Origin,
    server: TakoServer,
    token: String,
    data: DataDir,
    log: std::path::PathBuf,
    pushes: std::cell::Cell<u32>,
}

impl World {
    fn new(env: &[(&str, &str)]) -> World {
        let origin = Origin::new(TAKOFILE);
        let data = DataDir::new();
        let log = data.path.parent().unwrap().join("server.log");
        let mut all = vec![("TAKO_WEBHOOK_SECRET", SECRET), ("TAKO_LOG", "info")];
        all.extend_from_slice(env);
        let server = TakoServer::start_logging_to(tako_bin(), &data.path, &[], &all, &log);
        let token = server.token.clone().unwrap();
        let world = World {
            origin,
            server,
            token,
            data,
            log,
            pushes: std::cell::Cell::new(0),
        };
        let url = world.origin.bare.file_url();
        world.ok(&["project", "create", "Demo", "--repo", &url]);
        world
    }

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

    fn api(&self, method: &str, path: &str) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
        request(
            &self.server.address,
            method,
            &format!("/api/v1{path}"),
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap()
    }

    fn get(&self, path: &str) -> Value {
        let answer = self.api("GET", path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        answer.json()
    }

    /// Pushes a commit to `branch` and waits for its deployment to succeed;
    /// returns (release number, deployment id).
    fn deploy(&self, branch: &str) -> (String, i64) {
        let n = self.pushes.get() + 1;
        self.pushes.set(n);
        let body = self
            .origin
            .push_commit(branch, "change.txt", &format!("{n}\n"), "Change");
        let delivery = format!("retention-{n}");
        let answer = post_push(&self.server.address, &delivery, &body, SECRET);
        assert_eq!(answer.status, 202, "{}", answer.text());
        let mut outcome = Value::Null;
        assert!(
            wait_until(Duration::from_secs(60), || {
                outcome = self.get("/deliveries?limit=50")["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["id"] == delivery.as_str())
                    .map(|d| d["outcome"].clone())
                    .unwrap_or_default();
                !outcome.is_null()
            }),
            "the push was never routed"
        );
        let deployment = outcome["deployment"]
            .as_i64()
            .unwrap_or_else(|| panic!("the push deployed nothing: {outcome}"));
        let mut state = Value::Null;
        assert!(
            wait_until(Duration::from_secs(60), || {
                state = self.get(&format!("/deployments/{deployment}"))["state"].clone();
                state == "success" || state == "failed"
            }),
            "deployment {deployment} never ended"
        );
        assert_eq!(state, "success");
        let release = outcome["release"].as_i64().unwrap();
        let number = self.get(&format!("/releases/{release}"))["number"]
            .as_str()
            .unwrap()
            .to_owned();
        (number, deployment)
    }

    fn log_of(&self, deployment: i64) -> String {
        self.ok(&["logs", &deployment.to_string()])
    }

    /// The server's log, without its terminal colours.
    fn server_log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut plain = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }
}

#[test]
fn retention_removes_what_the_settings_say_and_never_a_dashboard_cell() {
    let world = World::new(&[
        ("TAKO_RETENTION_INTERVAL", "off"),
        ("TAKO_RETENTION_TASK_LOGS", "2s"),
        ("TAKO_WORKDIR_RETENTION", "1s"),
    ]);
    let mut develop = Vec::new();
    for _ in 0..4 {
        develop.push(world.deploy("develop"));
    }
    let production = world.deploy("main");
    let work = world.data.path.join("work");
    assert!(work.join(production.1.to_string()).is_dir());
    std::thread::sleep(Duration::from_secs(3));

    // Newest 2 overall (4th develop, main) and per environment (3rd and
    // 4th in DevTest, main in Production): the first two releases go.
    let dry = world.ok(&["admin", "retention", "run", "--dry-run"]);
    assert!(
        dry.contains("Retention would remove: 2 release(s)"),
        "{dry}"
    );
    assert!(dry.contains("5 working directory(ies)"), "{dry}");
    for (number, _) in &develop {
        let found = world.api("GET", &format!("/projects/Demo/releases/{number}"));
        assert_eq!(found.status, 200, "a dry run removed {number}");
    }

    let run = world.ok(&["admin", "retention", "run"]);
    // The third release's log is the only old log left once its two
    // elders went with their logs; the cells keep theirs.
    assert!(
        run.contains(
            "Retention removed: 2 release(s) (with their deployments), 1 task log(s), 0 delivery(ies)"
        ),
        "{run}"
    );
    assert!(run.contains("5 working directory(ies)"), "{run}");
    for (number, deployment) in &develop[..2] {
        let gone = world.api("GET", &format!("/projects/Demo/releases/{number}"));
        assert_eq!(gone.status, 404, "{number}: {}", gone.text());
        let gone = world.api("GET", &format!("/deployments/{deployment}"));
        assert_eq!(gone.status, 404, "{deployment}: {}", gone.text());
    }
    // The deliveries that made them went with them; the others stay.
    let deliveries: Vec<String> = world.get("/deliveries?limit=50")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    for gone in ["retention-1", "retention-2"] {
        assert!(!deliveries.iter().any(|d| d == gone), "{deliveries:?}");
    }
    for kept in ["retention-3", "retention-4", "retention-5"] {
        assert!(deliveries.iter().any(|d| d == kept), "{deliveries:?}");
    }
    let (third, third_deployment) = &develop[2];
    assert_eq!(
        world
            .api("GET", &format!("/projects/Demo/releases/{third}"))
            .status,
        200
    );
    assert!(
        !world.log_of(*third_deployment).contains("deploying"),
        "the third release's log is gone"
    );
    for (_, cell) in [&develop[3], &production] {
        assert!(
            world.log_of(*cell).contains("deploying"),
            "a cell keeps its log"
        );
    }
    let dashboard = world
        .api("GET", "/deployments?project=Demo&limit=200")
        .json();
    let kept: Vec<i64> = dashboard["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();
    for cell in [develop[3].1, production.1] {
        assert!(kept.contains(&cell), "{cell} kept ({kept:?})");
    }
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "working directories left: {left:?}");

    // Nothing more to do; the server logged each pass's counts.
    let again = world.ok(&["admin", "retention", "run"]);
    assert!(again.contains("Retention removed: 0 release(s)"), "{again}");
    let log = world.server_log();
    assert!(
        log.contains("retention pass done") && log.contains("releases=2"),
        "{log}"
    );

    // Deployers may not.
    let created = world.tako(&["token", "create", "--name", "dev", "--role", "deployer"]);
    assert!(created.status.success(), "{}", text(&created));
    let deployer = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let output = Command::new(tako_bin())
        .args(["admin", "retention", "run", "--dry-run"])
        .env("TAKO_SERVER", format!("http://{}", world.server.address))
        .env("TAKO_TOKEN", &deployer)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("admin"), "{}", text(&output));
}

#[test]
fn the_background_pass_trims_the_audit_log_by_itself() {
    let world = World::new(&[
        ("TAKO_RETENTION_INTERVAL", "1s"),
        ("TAKO_RETENTION_AUDIT_LOG", "1s"),
    ]);
    let audited = |world: &World| {
        world.get("/audit?limit=200")["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert!(audited(&world) > 0, "creating the project was audited");
    assert!(
        wait_until(Duration::from_secs(30), || audited(&world) == 0),
        "the audit log was never trimmed: {}",
        world.get("/audit?limit=200")
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            world.server_log().contains("retention pass done")
        }),
        "{}",
        world.server_log()
    );
}

#[test]
fn a_bad_retention_setting_stops_the_server_and_names_it() {
    let data = DataDir::new();
    let output = Command::new(tako_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data.path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TAKO_RETENTION_RELEASES", "none")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = text(&output);
    assert!(
        said.contains("retention_releases from TAKO_RETENTION_RELEASES")
            && said.contains("expected all or a whole number from 1"),
        "{said}"
    );
}
