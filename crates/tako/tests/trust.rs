//! Trust, attacked end to end: a real `tako serve` with its log captured, the
//! CLI, signed pushes, a receiver standing in for Slack and an HTTP API. A
//! canary secret (multi-line, JSON-special characters) must never show up in
//! the log, the event stream, the API, error messages, the Slack message,
//! the server's own log, the database file (WAL included) or the working
//! directory; a push to `feature/evil` must neither reach Production nor read
//! its key; roles, revocation and key rotation hold.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tako_store::{
    DeliveryId, DeliveryOutcome, Deployment, DeploymentFilter, DeploymentState, PageRequest,
    SqliteStore, Store,
};
use tako_test_support::http::{Receiver, request};
use tako_test_support::origin::Origin;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, wait_until};

const SECRET: &str = "webhook secret for the trust test";
/// The canary: several lines, JSON-special characters, spaces, `&`, `<>`.
const CANARY: &str =
    "tako-canary-7Hq2Zp\n{\"key\": \"p@ss w0rd&x=1\\\\\"}\nfinal canary line <tag>";
/// A single-line secret that goes out in an `Authorization` header.
const HTTP_TOKEN: &str = "tok\"en-{9f3}&y=1";
/// Production's key, which a push to `feature/evil` tries to print.
const GALLERY_KEY: &str = "oy2-psgallery-key-5d8c1e";
/// The secret part of the Slack hook's URL.
const HOOK_SECRET: &str = "hOoKsEcReT77";

fn main_takofile() -> String {
    r##"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
  - Branch: feature/*
    Environment: Production
Steps:
  - Name: Echo
    Run: |
      v=$(get_octopusvariable "Canary")
      printf '%s\n' "$v"
      printf '%s' "$v" | base64 -w0; echo
      python3 -c 'import json,sys,urllib.parse; v=sys.argv[1]; print(json.dumps(v)); print(urllib.parse.quote(v)); print(urllib.parse.quote_plus(v))' "$v"
      printf '%s' "$v" > in-the-checkout.txt
  - Name: Call
    Uses: http
    With:
      Url: "#{HttpUrl}"
      Headers:
        Authorization: "Bearer #{HttpToken}"
      Body: "hello"
  - Name: Fail
    Run: |
      v=$(get_octopusvariable "Canary")
      fail_step "it broke: $v"
  - Name: Notify
    Condition: Always
    Uses: slack
    With:
      WebhookUrl: "#{SlackHook}"
"##
    .to_owned()
}

const EVIL_TAKOFILE: &str = r##"Project: Demo
Mappings:
  - Branch: feature/evil
    Environment: Production
Steps:
  - Name: Steal
    Run: |
      echo "key=#{PSGalleryApiKey}"
"##;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// Every form of a secret that must never be seen: the value, each line of
/// it, its JSON-escaped, URL-encoded and base64 forms.
fn forbidden(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    forms.extend(value.lines().filter(|l| l.len() >= 4).map(str::to_owned));
    let json = serde_json::to_string(value).unwrap();
    forms.push(json[1..json.len() - 1].to_owned());
    forms.push(percent_encode(value, false));
    forms.push(percent_encode(value, true));
    forms.push(base64::engine::general_purpose::STANDARD.encode(value));
    forms.dedup();
    forms
}

fn percent_encode(value: &str, plus: bool) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char);
            }
            b' ' if plus => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn all_secrets() -> Vec<String> {
    let mut all = forbidden(CANARY);
    all.extend(forbidden(HTTP_TOKEN));
    all.push(GALLERY_KEY.to_owned());
    all.push(HOOK_SECRET.to_owned());
    all
}

fn assert_clean(what: &str, text: &str) {
    for form in all_secrets() {
        assert!(
            !text.contains(&form),
            "{what} holds a secret form {form:?}:\n{text}"
        );
    }
}

/// Every file under `dir`, searched byte for byte.
fn assert_tree_clean(dir: &Path) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for form in all_secrets() {
            assert!(
                !text.contains(&form),
                "{} holds a secret form {form:?}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

struct Cli<'a> {
    server: &'a TakoServer,
    token: String,
}

impl Cli<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", &self.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "tako {args:?} failed:\n{text}");
        text
    }

    fn api(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let auth = format!("Bearer {}", self.token);
        let answer = request(
            &self.server.address,
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap();
        (answer.status, answer.text())
    }
}

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

    fn log(&self, deployment: &Deployment) -> String {
        let page = self
            .runtime
            .block_on(
                self.store
                    .read_log(deployment.id, tako_store::LogCursor::START, 100_000),
            )
            .unwrap();
        page.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn post_push(server: &TakoServer, delivery: &str, body: &[u8]) -> u16 {
    tako_test_support::origin::post_push(&server.address, delivery, body, SECRET).status
}

#[test]
fn a_canary_secret_never_leaks_and_a_feature_branch_cannot_reach_production() {
    let receiver = Receiver::start();
    let origin = Origin::new(&main_takofile());
    let (work, bare) = (&origin.work, &origin.bare);

    let data = DataDir::new();
    let server_log = data.path.parent().unwrap().join("server.log");
    let server = TakoServer::start_logging_to(
        tako_bin(),
        &data.path,
        &["--workdir-retention", "1s"],
        &[
            ("TAKO_WEBHOOK_SECRET", SECRET),
            (
                "TAKO_LOG",
                "info,tako_server=debug,tako_exec=debug,tako_git=debug,tako_store=debug",
            ),
        ],
        &server_log,
    );
    let cli = Cli {
        server: &server,
        token: server.token.clone().unwrap(),
    };

    // Set-up through the CLI: the project, its secrets (from standard
    // input), and Production's policy.
    cli.ok(
        &["project", "create", "Demo", "--repo", &bare.file_url()],
        None,
    );
    // A forge status token (sealed, re-sealed on rotation; a file:// URL is
    // on no forge, so nothing is sent with it).
    let shown = cli.ok(
        &[
            "project",
            "set-forge-status",
            "Demo",
            "--token-file",
            "-",
            "--forge",
            "github",
            "--api-url",
            "http://127.0.0.1:9/api/v3",
        ],
        Some(HTTP_TOKEN),
    );
    assert_clean("tako project set-forge-status", &shown);
    for (name, value, extra) in [
        ("Canary", CANARY.to_owned(), None),
        ("HttpToken", HTTP_TOKEN.to_owned(), None),
        (
            "SlackHook",
            receiver.url(&format!("/services/T1/B2/{HOOK_SECRET}")),
            None,
        ),
        (
            "PSGalleryApiKey",
            GALLERY_KEY.to_owned(),
            Some("Production"),
        ),
    ] {
        let mut args = vec!["var", "set", name, "--project", "Demo", "--sensitive"];
        if let Some(environment) = extra {
            args.extend(["--env", environment]);
        }
        let shown = cli.ok(&args, Some(&value));
        assert_clean("tako var set", &shown);
    }
    cli.ok(
        &[
            "var",
            "set",
            "HttpUrl",
            &receiver.url("/api/call"),
            "--project",
            "Demo",
        ],
        None,
    );
    cli.ok(
        &[
            "env",
            "allow",
            "Production",
            "--project",
            "Demo",
            "--branch",
            "main",
        ],
        None,
    );

    // A deployer token cannot read or set variables.
    let created = cli.ok(
        &["token", "create", "--name", "ci", "--role", "deployer"],
        None,
    );
    let deployer = Cli {
        server: &server,
        token: created
            .lines()
            .find(|l| l.starts_with("tako_"))
            .unwrap()
            .to_owned(),
    };
    let refused = deployer.run(&["var", "list", "--project", "Demo"], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("role"),
        "{refused:?}"
    );
    let (status, _) = deployer.api(
        "PUT",
        "/api/v1/projects/Demo/variables/X",
        r#"{"value":"v"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = deployer.api("GET", "/api/v1/projects/Nope/variables", "");
    assert_eq!(status, 403);

    // The push to main deploys to Production; the Fail step fails it.
    let body = origin.push_commit("main", "app.txt", "v1", "Change app.txt");
    assert_eq!(post_push(&server, "delivery-main", &body), 202);
    let db = Db::open(&data);
    let DeliveryOutcome::Queued { release, .. } = db.wait_for_outcome("delivery-main") else {
        panic!("not queued: {:?}", db.outcome("delivery-main"));
    };
    let deployments = db.wait_until_finished(1);
    let deployment = &deployments[0];
    assert_eq!(deployment.environment, "Production");
    assert_eq!(
        deployment.state,
        DeploymentState::Failed,
        "{}",
        db.log(deployment)
    );
    let log = db.log(deployment);
    assert!(log.contains("********"), "{log}");
    assert!(log.contains("it broke: ********"), "{log}");
    assert_clean("the stored log", &log);
    let error = deployment.error.clone().unwrap_or_default();
    assert_clean("the deployment's error", &error);

    // The http step delivered the token intact; the Slack message is masked.
    let requests = receiver.requests();
    let call = requests
        .iter()
        .find(|r| r.target == "/api/call")
        .expect("the http step called");
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {HTTP_TOKEN}").as_str())
    );
    let slack = requests
        .iter()
        .find(|r| r.target.starts_with("/services/"))
        .expect("the slack step posted");
    let slack_body = String::from_utf8_lossy(&slack.body).to_string();
    assert!(slack_body.contains("********"), "{slack_body}");
    assert_clean("the Slack message", &slack_body);

    // The API: the deployment, its log as text and as events, variables,
    // the release, the audit log.
    let id = deployment.id.0;
    for path in [
        format!("/api/v1/deployments/{id}"),
        format!("/api/v1/deployments/{id}/log"),
        "/api/v1/projects/Demo/variables".to_owned(),
        format!("/api/v1/releases/{}", release.0),
        "/api/v1/audit?limit=200".to_owned(),
        "/api/v1/tokens".to_owned(),
    ] {
        let (status, text) = cli.api("GET", &path, "");
        assert_eq!(status, 200, "{path}: {text}");
        assert_clean(&path, &text);
    }
    let auth = format!("Bearer {}", cli.token);
    let events = request(
        &server.address,
        "GET",
        &format!("/api/v1/deployments/{id}/log?follow=true"),
        &[
            ("Authorization", auth.as_str()),
            ("Accept", "text/event-stream"),
        ],
        b"",
    )
    .unwrap()
    .text();
    assert!(events.contains("event: end"), "{events}");
    assert_clean("the event stream", &events);
    assert_clean("tako logs", &cli.ok(&["logs", &id.to_string()], None));
    assert_clean(
        "tako var list",
        &cli.ok(
            &["var", "list", "--project", "Demo", "--output", "json"],
            None,
        ),
    );

    // A push to feature/evil, whose own takofile maps itself to Production
    // and prints Production's key: refused by the policy, nothing runs.
    work.write("takofile.yml", EVIL_TAKOFILE);
    let body = origin.push_commit("feature/evil", "evil.txt", "x", "Change evil.txt");
    assert_eq!(post_push(&server, "delivery-evil", &body), 202);
    let DeliveryOutcome::Failed { reason } = db.wait_for_outcome("delivery-evil") else {
        panic!("not refused: {:?}", db.outcome("delivery-evil"));
    };
    assert!(reason.contains("environment policy"), "{reason}");
    assert!(
        reason.contains("branch feature/evil is not allowed"),
        "{reason}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(db.deployments().len(), 1);

    // Rotation: a new key, every secret still usable, nothing under the old.
    let old_key = std::fs::read(data.path.join("secret.key")).unwrap();
    let old_id = tako_store::seal::key_id(&old_key.clone().try_into().unwrap());
    let rotated = cli.ok(&["admin", "rotate-key"], None);
    assert!(rotated.contains(&old_id), "{rotated}");
    assert_ne!(
        std::fs::read(data.path.join("secret.key")).unwrap(),
        old_key
    );
    let (status, text) = cli.api(
        "POST",
        &format!("/api/v1/releases/{}/deployments", release.0),
        r#"{"environment":"Production"}"#,
    );
    assert_eq!(status, 201, "{text}");
    let deployments = db.wait_until_finished(2);
    assert!(db.log(&deployments[1]).contains("it broke: ********"));
    let calls = receiver
        .requests()
        .iter()
        .filter(|r| {
            r.target == "/api/call"
                && r.header("authorization") == Some(format!("Bearer {HTTP_TOKEN}").as_str())
        })
        .count();
    assert_eq!(calls, 2, "the token no longer opens after the rotation");

    // A revoked token gets 401.
    let tokens = cli.ok(&["token", "list", "--output", "json"], None);
    let tokens: serde_json::Value =
        serde_json::from_str(&tokens[tokens.find('[').unwrap()..=tokens.rfind(']').unwrap()])
            .unwrap();
    let ci = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    cli.ok(&["token", "revoke", &ci.to_string()], None);
    let (status, _) = deployer.api("GET", "/api/v1/projects", "");
    assert_eq!(status, 401);

    // Working directories are gone after the retention; nothing under the
    // data directory (database, WAL, mirrors, keys) and nothing the server
    // logged holds a secret, and no value is left under the old key.
    assert!(
        wait_until(Duration::from_secs(30), || {
            walk(&data.path.join("work")).is_empty()
        }),
        "working directories left: {:?}",
        walk(&data.path.join("work"))
    );
    let token_plain = cli.token.clone();
    drop(db);
    assert_tree_clean(&data.path);
    for file in walk(&data.path) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&format!("v1:{old_id}:")),
            "{}",
            file.display()
        );
        assert!(
            !text.contains(&token_plain),
            "a token in {}",
            file.display()
        );
    }
    drop(server);
    let logged = std::fs::read_to_string(&server_log).unwrap();
    assert!(logged.contains("master key rotated"), "{logged}");
    assert_clean("the server's log", &logged);
    assert!(!logged.contains(&token_plain));
}

#[test]
fn tako_run_masks_the_canary_and_leaves_no_working_directory() {
    let work = TempGitRepo::new();
    work.write(
        "takofile.yml",
        r##"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Echo
    Run: |
      v=$(get_octopusvariable "Canary")
      printf '%s\n' "$v"
      printf '%s' "$v" | base64 -w0; echo
      python3 -c 'import json,sys,urllib.parse; v=sys.argv[1]; print(json.dumps(v)); print(urllib.parse.quote(v)); print(urllib.parse.quote_plus(v))' "$v"
      printf '%s' "$v" > left-in-the-checkout.txt
      fail_step "it broke: $v"
"##,
    );
    work.commit("Add the takofile");
    // Its temporary directories go here, to be searched afterwards.
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(tako_bin())
        .args(["run"])
        .arg(work.path())
        .args(["--secret", &format!("Canary={CANARY}")])
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("it broke: ********"), "{text}");
    assert_clean("tako run", &text);
    assert_tree_clean(scratch.path());
    assert!(
        walk(scratch.path()).is_empty(),
        "left behind: {:?}",
        walk(scratch.path())
    );
}
