//! `tako release create` end to end: the real binary as server and client,
//! a real git origin (a bare repository reached through `file://`), real
//! HTTP on 127.0.0.1. A release made by hand freezes its commit's process
//! and the project's variables exactly as a push does; numbers, conflicts,
//! unknown branches, invalid takofiles, roles and environment policies are
//! answered with the right status and a message that names the problem.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tako_test_support::TempGitRepo;
use tako_test_support::git_server::BareRepo;
use tako_test_support::server::{DataDir, TakoServer};

fn takofile(greeting_line: &str) -> String {
    format!(
        r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Staging
Steps:
  - Name: Say
    Run: |
      echo "{greeting_line} #{{Octopus.Release.Number}} from #{{Tako.Git.Branch}} in #{{Octopus.Environment.Name}}: #{{Greeting}}"
"#
    )
}

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// A server, a project registered for a bare origin, and the work tree that
/// pushes to it.
struct Fixture {
    work: TempGitRepo,
    bare: BareRepo,
    server: TakoServer,
    token: String,
    _data: DataDir,
}

impl Fixture {
    fn new() -> Fixture {
        let work = TempGitRepo::new();
        work.write("takofile.yml", &takofile("first"));
        work.commit("Add the takofile");
        let bare = BareRepo::new("demo.git");
        bare.push_from(&work, &["main"]);
        let data = DataDir::new();
        let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
        let token = server.token.clone().unwrap();
        let fixture = Fixture {
            work,
            bare,
            server,
            token,
            _data: data,
        };
        fixture.ok(&[
            "project",
            "create",
            "Demo",
            "--repo",
            &fixture.bare.file_url(),
        ]);
        fixture.ok(&["var", "set", "Greeting", "hello", "--project", "Demo"]);
        fixture
    }

    /// Commits `takofile` on `branch` (created from `main` when new) and
    /// pushes it; returns the commit.
    fn push(&self, branch: &str, takofile: &str, message: &str) -> String {
        let exists = !self.work.git(&["branch", "--list", branch]).is_empty();
        if exists {
            self.work.git(&["checkout", "-q", branch]);
        } else {
            self.work.git(&["checkout", "-q", "-b", branch, "main"]);
        }
        self.work.write("takofile.yml", takofile);
        let commit = self.work.commit(message);
        self.bare.push_from(&self.work, &[branch]);
        self.work.git(&["checkout", "-q", "main"]);
        commit
    }

    fn run_as(&self, token: &str, args: &[&str]) -> Output {
        Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_as(&self.token, args)
    }

    /// Runs `tako args`, which must succeed; standard output and error.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let text = text(&output);
        assert!(output.status.success(), "tako {args:?} failed:\n{text}");
        text
    }

    /// Runs `tako args`, which must fail; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "tako {args:?} succeeded:\n{}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// `tako release create --project Demo ARGS --output json`.
    fn create(&self, args: &[&str]) -> Value {
        let mut all = vec!["release", "create", "--project", "Demo", "--output", "json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "tako {all:?} failed:\n{}",
            text(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn numbers(&self) -> Vec<String> {
        let listing = self.ok(&["release", "list", "--project", "Demo", "--output", "json"]);
        let releases: Value = serde_json::from_str(&listing).unwrap();
        releases
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["number"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_release_from_the_default_branch_freezes_its_process_and_deploys() {
    let fixture = Fixture::new();
    let first_commit = fixture.work.git(&["rev-parse", "HEAD"]);

    let out = fixture.ok(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--deploy-to",
        "Staging",
        "--follow",
    ]);
    assert!(
        out.contains("Release 0.0.1 of Demo created")
            && out.contains(&format!("from branch main at {}", &first_commit[..12])),
        "{out}"
    );
    assert!(
        out.contains("Deployment 1 queued: Demo 0.0.1 to Staging"),
        "{out}"
    );
    assert!(
        out.contains("first 0.0.1 from main in Staging: hello"),
        "{out}"
    );

    // The process and the variables are frozen: changing both does not
    // change how release 0.0.1 deploys.
    let second_commit = fixture.push("main", &takofile("second"), "Say it differently");
    fixture.ok(&["var", "set", "Greeting", "changed", "--project", "Demo"]);
    let again = fixture.ok(&[
        "deploy",
        "--project",
        "Demo",
        "--release",
        "0.0.1",
        "--env",
        "Production",
        "--follow",
    ]);
    assert!(
        again.contains("first 0.0.1 from main in Production: hello"),
        "{again}"
    );

    // The next release: the next number, the new head, its own process.
    let created = fixture.create(&[]);
    let release = &created["release"];
    assert_eq!(release["number"], "0.0.2", "{created}");
    assert_eq!(release["commit"], second_commit.as_str());
    assert_eq!(release["branch"], "main");
    assert!(
        release["notes"]
            .as_str()
            .unwrap()
            .starts_with("Created by first admin via the API from branch main"),
        "{created}"
    );
    assert_eq!(created["deployments"], Value::Array(Vec::new()));
    assert_eq!(fixture.numbers(), ["0.0.2", "0.0.1"]);
}

#[test]
fn versions_notes_and_older_commits_can_be_chosen() {
    let fixture = Fixture::new();
    let old = fixture.work.git(&["rev-parse", "HEAD"]);
    fixture.push("main", &takofile("newer"), "Newer");

    let created = fixture.create(&["--version", "1.0.0", "--notes", "Hand-made"]);
    assert_eq!(created["release"]["number"], "1.0.0");
    assert_eq!(created["release"]["notes"], "Hand-made");

    // The same version again: a conflict that says what to do.
    let error = fixture.fails(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--version",
        "1.0.0",
    ]);
    assert!(error.contains("409"), "{error}");
    assert!(
        error.contains("release 1.0.0 already exists in this project"),
        "{error}"
    );

    // The default number follows the last one.
    assert_eq!(fixture.create(&[])["release"]["number"], "1.0.1");

    // An older commit of main, by its short id: its own process runs, and
    // it is recorded with main (it is in main's history).
    let out = fixture.ok(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--commit",
        &old[..10],
        "--deploy-to",
        "Staging",
        "--follow",
    ]);
    assert!(out.contains("Release 1.0.2 of Demo created"), "{out}");
    assert!(
        out.contains("first 1.0.2 from main in Staging: hello"),
        "{out}"
    );
    let listing: Value = serde_json::from_str(&fixture.ok(&[
        "release",
        "list",
        "--project",
        "Demo",
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(listing[0]["commit"], old.as_str());
    assert_eq!(listing[0]["branch"], "main");
}

#[test]
fn unknown_branches_and_commits_and_invalid_takofiles_are_422() {
    let fixture = Fixture::new();

    let error = fixture.fails(&["release", "create", "--project", "Demo", "--branch", "nope"]);
    assert!(error.contains("422"), "{error}");
    assert!(
        error.contains("branch nope is not in the repository"),
        "{error}"
    );

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let error = fixture.fails(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--commit",
        missing,
    ]);
    assert!(error.contains("422"), "{error}");
    assert!(
        error.contains(&format!("commit {missing} is not in")),
        "{error}"
    );

    // A branch whose takofile does not validate: every diagnostic, with its
    // position.
    let broken = "Project: Demo\nStepz:\n  - Name: X\n    Run: echo x\n";
    fixture.push("broken", broken, "Break the takofile");
    let error = fixture.fails(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--branch",
        "broken",
    ]);
    assert!(error.contains("422"), "{error}");
    assert!(error.contains("the takofile at commit"), "{error}");
    assert!(error.contains("takofile.yml:2:1: error:"), "{error}");
    assert!(error.contains("Stepz"), "{error}");

    // A project that does not exist.
    let error = fixture.fails(&["release", "create", "--project", "Nope"]);
    assert!(
        error.contains("404") && error.contains("project Nope not found"),
        "{error}"
    );

    assert!(fixture.numbers().is_empty());
}

#[test]
fn roles_and_environment_policies_are_respected() {
    let fixture = Fixture::new();
    let viewer = fixture
        .ok(&["token", "create", "--name", "watcher", "--role", "viewer"])
        .lines()
        .find(|l| l.starts_with("tako_"))
        .unwrap()
        .to_owned();
    let output = fixture.run_as(&viewer, &["release", "create", "--project", "Demo"]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("403 Forbidden: this token's role (viewer) cannot do this")
            && error.contains("it needs the admin or deployer role"),
        "{error}"
    );

    // A deployer may; its name is in the notes.
    let deployer = fixture
        .ok(&["token", "create", "--name", "ci", "--role", "deployer"])
        .lines()
        .find(|l| l.starts_with("tako_"))
        .unwrap()
        .to_owned();
    let output = fixture.run_as(
        &deployer,
        &["release", "create", "--project", "Demo", "--output", "json"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        created["release"]["notes"]
            .as_str()
            .unwrap()
            .starts_with("Created by ci via the API"),
        "{created}"
    );

    // Production takes only main: a release of a feature branch that asks
    // to go there is refused, and nothing is created.
    fixture.ok(&[
        "env",
        "allow",
        "Production",
        "--project",
        "Demo",
        "--branch",
        "main",
    ]);
    fixture.push("feature/x", &takofile("feature"), "A feature");
    let error = fixture.fails(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--branch",
        "feature/x",
        "--deploy-to",
        "Staging",
        "--deploy-to",
        "Production",
    ]);
    assert!(error.contains("422"), "{error}");
    assert!(
        error.contains("refused by the environment policy")
            && error.contains("branch feature/x is not allowed"),
        "{error}"
    );
    assert_eq!(fixture.numbers(), ["0.0.1"]);

    // Main may go there.
    let created = fixture.create(&["--deploy-to", "Production"]);
    assert_eq!(created["release"]["number"], "0.0.2");
    assert_eq!(created["deployments"][0]["environment"], "Production");
}
