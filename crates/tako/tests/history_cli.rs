//! The command line's history listings and generated references, end to
//! end: a real `tako serve`, a real bare origin, a signed push; then
//! `tako deployment list|show` and `tako delivery list|show|replay` as people
//! and scripts read them, and `tako completions` / `tako man` generated from
//! the same clap definitions as the commands themselves.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tako_test_support::git_server::BareRepo;
use tako_test_support::github::{PushedCommit, push_payload};
use tako_test_support::http::request;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, wait_until};

const SECRET: &str = "history-webhook-secret";
const ZERO: &str = "0000000000000000000000000000000000000000";

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
    server: TakoServer,
    token: String,
    _bare: BareRepo,
    _work: TempGitRepo,
    _data: DataDir,
}

impl Fixture {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", &self.token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tako {args:?} failed:\n{}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

/// A server with project Demo, and one signed push of `main` delivered as
/// `history-1`, whose deployment has run to its end.
fn pushed() -> Fixture {
    let work = TempGitRepo::new();
    work.git(&["checkout", "-q", "-b", "main"]);
    work.write(
        "takofile.yml",
        "Project: Demo\nMappings:\n  - Branch: main\n    Environment: Staging\nSteps:\n  - Name: Say\n    Run: 'echo hello from #{Octopus.Environment.Name}'\n  - Name: Check\n    Run: echo checked\n",
    );
    let after = work.commit("Add the takofile");
    let bare = BareRepo::new("demo.git");
    bare.push_from(&work, &["main"]);
    bare.git(&["symbolic-ref", "HEAD", "refs/heads/main"]);
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let token = server.token.clone().unwrap();
    let fixture = Fixture {
        server,
        token,
        _bare: bare,
        _work: work,
        _data: data,
    };
    fixture.ok(&[
        "project",
        "create",
        "Demo",
        "--repo",
        &fixture._bare.file_url(),
    ]);
    let body = push_payload(
        &fixture._bare.file_url(),
        "main",
        "refs/heads/main",
        ZERO,
        &after,
        &[PushedCommit {
            id: after.clone(),
            message: "Add the takofile".to_owned(),
        }],
    );
    let signature = tako_github::sign(SECRET.as_bytes(), &body);
    let answer = request(
        &fixture.server.address,
        "POST",
        "/hooks/github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "history-1"),
            ("X-Hub-Signature-256", &signature),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(answer.status, 202, "{}", answer.text());
    let finished = wait_until(Duration::from_secs(60), || {
        let listed = fixture.json(&["deployment", "list", "--output", "json"]);
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["state"] == "success")
    });
    assert!(
        finished,
        "the push's deployment did not succeed: {}\n{}",
        fixture.ok(&["delivery", "list", "--output", "json"]),
        fixture.ok(&["deployment", "list", "--output", "json"])
    );
    fixture
}

#[test]
fn deployments_and_deliveries_are_listed_shown_and_replayed() {
    let fixture = pushed();

    // Deployments: the JSON is the server's, the table names the project,
    // and the filters reach the server.
    let listed = fixture.json(&[
        "deployment",
        "list",
        "--project",
        "Demo",
        "--output",
        "json",
    ]);
    let deployments = listed.as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{listed}");
    let id = deployments[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(deployments[0]["environment"], "Staging");
    let table = fixture.ok(&[
        "deployment",
        "list",
        "--env",
        "Staging",
        "--state",
        "success",
    ]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("PROJECT"),
        "{table}"
    );
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&id) && row.contains("Demo") && row.contains("success"),
        "{table}"
    );
    let none = fixture.run(&["deployment", "list", "--state", "failed"]);
    assert!(none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stdout).is_empty(),
        "{}",
        text(&none)
    );
    assert!(text(&none).contains("(none)"), "{}", text(&none));
    let bad = fixture.run(&["deployment", "list", "--state", "sideways"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("sideways"), "{}", text(&bad));

    let shown = fixture.ok(&["deployment", "show", &id]);
    assert!(shown.contains("Environment  Staging"), "{shown}");
    assert!(shown.contains("State        success"), "{shown}");
    assert!(shown.contains("1. Say  success"), "{shown}");
    assert!(shown.contains("2. Check  success"), "{shown}");
    let shown_json = fixture.json(&["deployment", "show", &id, "--output", "json"]);
    assert_eq!(shown_json["id"], deployments[0]["id"]);
    assert_eq!(shown_json["steps"].as_array().unwrap().len(), 2);
    let missing = fixture.run(&["deployment", "show", "999999"]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("999999"), "{}", text(&missing));

    // Deliveries.
    let deliveries = fixture.json(&["delivery", "list", "--output", "json"]);
    assert_eq!(deliveries.as_array().unwrap().len(), 1, "{deliveries}");
    assert_eq!(deliveries[0]["id"], "history-1");
    let table = fixture.ok(&["delivery", "list", "--project", "Demo"]);
    let row = table.lines().nth(1).unwrap();
    assert!(row.starts_with("history-1"), "{table}");
    assert!(
        row.contains("refs/heads/main") && row.contains(&format!("deployment {id}")),
        "{table}"
    );
    let shown = fixture.json(&["delivery", "show", "history-1", "--output", "json"]);
    assert_eq!(shown, deliveries[0]);
    let shown = fixture.ok(&["delivery", "show", "history-1"]);
    assert!(shown.contains("Ref          refs/heads/main"), "{shown}");
    let missing = fixture.run(&["delivery", "show", "no-such-delivery"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no-such-delivery"),
        "{}",
        text(&missing)
    );

    // A replay routes the stored body again: a second deployment.
    let replayed = fixture.run(&["delivery", "replay", "history-1"]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert!(text(&replayed).contains("history-1"), "{}", text(&replayed));
    let again = wait_until(Duration::from_secs(60), || {
        let listed = fixture.json(&["deployment", "list", "--output", "json"]);
        listed.as_array().unwrap().len() == 2
    });
    assert!(again, "the replayed delivery made no second deployment");
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    let top_level: Vec<String> = {
        let help = Command::new(tako_bin()).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .filter(|c| c != "help")
            .collect()
    };
    assert!(top_level.len() > 10, "{top_level:?}");
    assert!(top_level.iter().any(|c| c == "deployment"), "{top_level:?}");

    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = Command::new(tako_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {}", text(&output));
        let script = String::from_utf8_lossy(&output.stdout);
        for command in &top_level {
            assert!(script.contains(command.as_str()), "{shell} lacks {command}");
        }
    }
    // The bash script is valid bash.
    let script = Command::new(tako_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(checked.status.success(), "{}", text(&checked));
    let unknown = Command::new(tako_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(text(&unknown).contains("tcsh"), "{}", text(&unknown));

    let pages = dir.path().join("man1");
    let output = Command::new(tako_bin())
        .args(["man", "--out-dir"])
        .arg(&pages)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let mut expected = vec!["tako.1".to_owned()];
    expected.extend(top_level.iter().map(|c| format!("tako-{c}.1")));
    expected.extend(
        [
            "tako-deployment-list.1",
            "tako-delivery-show.1",
            "tako-agent-run.1",
        ]
        .map(str::to_owned),
    );
    for page in &expected {
        let roff =
            std::fs::read_to_string(pages.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(roff.contains(".TH"), "{page} is not a man page");
    }
    let serve = std::fs::read_to_string(pages.join("tako-serve.1")).unwrap();
    assert!(
        serve.contains("database\\-url") || serve.contains("database-url"),
        "{serve}"
    );
    let listed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        listed.lines().count(),
        std::fs::read_dir(&pages).unwrap().count()
    );
}
