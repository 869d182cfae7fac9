//! The `git-checkout` and `git-tag` steps through the real engine, against
//! real bare repositories served over `file://` and by a real smart-HTTP
//! server (`git http-backend`) on 127.0.0.1, optionally demanding a token.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tako_core::step::StepState;
use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{
    DeploymentOutcome, DeploymentPlan, DeploymentReport, RunSettings, run_deployment,
};
use tako_exec::sink::MemorySink;
use tako_test_support::git_server::{BareRepo, GitHttpServer};
use tako_test_support::{TempGitRepo, processes_with};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ghs_GitSt3psT0kenXY9";

/// A project repository: `main` (two commits, `v1` on the first) and
/// `develop` (one more), served from a bare repository.
struct Project {
    work: TempGitRepo,
    bare: BareRepo,
    first: String,
    second: String,
    develop: String,
}

fn project() -> Project {
    let work = TempGitRepo::new();
    work.write("app.txt", "one\n");
    let first = work.commit("first");
    work.git(&["tag", "v1"]);
    work.write("app.txt", "two\n");
    let second = work.commit("second");
    work.checkout_new_branch("develop");
    work.write("app.txt", "develop\n");
    let develop = work.commit("on develop");
    work.git(&["checkout", "-q", "main"]);
    let bare = BareRepo::new("project.git");
    bare.push_from(&work, &["main", "develop", "--tags"]);
    Project {
        work,
        bare,
        first,
        second,
        develop,
    }
}

/// The deployment's directories: `work` (the checkout, empty unless a
/// project is cloned into it) and `scratch`.
struct Workspace {
    _root: tempfile::TempDir,
    settings: RunSettings,
}

impl Workspace {
    fn new() -> Workspace {
        let root = tempfile::tempdir().unwrap();
        let working_dir = root.path().join("work");
        let scratch_dir = root.path().join("scratch");
        std::fs::create_dir_all(&working_dir).unwrap();
        std::fs::create_dir_all(&scratch_dir).unwrap();
        Workspace {
            _root: root,
            settings: RunSettings {
                working_dir,
                scratch_dir,
                kill_grace: Duration::from_secs(2),
            },
        }
    }

    /// The checkout as the server makes it: a clone of the project at
    /// `commit` (detached) whose `origin` is the project's URL.
    fn with_checkout(url: &str, commit: &str) -> Workspace {
        let workspace = Workspace::new();
        let dir = workspace.dir();
        run_git(&dir, &["clone", "-q", "--no-checkout", url, "."]);
        run_git(&dir, &["checkout", "-q", "--detach", commit]);
        workspace
    }

    fn dir(&self) -> PathBuf {
        self.settings.working_dir.clone()
    }
}

fn run_git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

struct Facts<'a> {
    environment: &'a str,
    repository: &'a str,
    commit: &'a str,
}

fn plan(takofile: &str, facts: &Facts<'_>, mut variables: Vec<VariableValue>) -> DeploymentPlan {
    let takofile = tako_takofile::parse("takofile", takofile).unwrap_or_else(|d| panic!("{d}"));
    let mut all = tako_core::variables::from_takofile(&takofile);
    all.append(&mut variables);
    DeploymentPlan {
        steps: takofile.steps.unwrap(),
        facts: DeploymentFacts {
            project: "Demo".into(),
            environment: facts.environment.into(),
            release_number: "1.2.3".into(),
            deployment_id: "deployments-7".into(),
            git_repository: facts.repository.into(),
            git_branch: "main".into(),
            git_commit: facts.commit.into(),
            ..Default::default()
        },
        variables: all,
    }
}

async fn run(plan: &DeploymentPlan, workspace: &Workspace) -> (DeploymentReport, String) {
    run_cancellable(plan, workspace, &CancellationToken::new()).await
}

async fn run_cancellable(
    plan: &DeploymentPlan,
    workspace: &Workspace,
    cancel: &CancellationToken,
) -> (DeploymentReport, String) {
    let sink = MemorySink::new();
    let report = run_deployment(plan, &workspace.settings, &sink, cancel).await;
    (report, sink.text())
}

fn failure(report: &DeploymentReport, index: usize) -> String {
    match &report.steps[index].state {
        StepState::Failed { reason } => reason.clone(),
        other => panic!("step {index} did not fail: {other:?}"),
    }
}

/// Files under `dir` holding the token or the header built from it.
fn files_holding_the_token(dir: &Path) -> Vec<String> {
    let header =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    let mut found = Vec::new();
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            let text = String::from_utf8_lossy(&bytes);
            if text.contains(TOKEN) || text.contains(&header) {
                found.push(entry.display().to_string());
            }
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if meta.is_file() {
            files.push(path);
        }
    }
    files
}

/// Watches every process's command line for the token until stopped;
/// reports whether it was ever seen, and whether a process mentioning
/// `marker` (the operation being watched) was seen at all.
struct CmdlineWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(bool, bool)>,
}

impl CmdlineWatch {
    fn start(marker: &str) -> CmdlineWatch {
        let marker = marker.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let header =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
            let mut token_seen = false;
            let mut operation_seen = false;
            while !flag.load(Ordering::SeqCst) {
                token_seen |=
                    !processes_with(TOKEN).is_empty() || !processes_with(&header).is_empty();
                operation_seen |= !processes_with(&marker).is_empty();
                std::thread::sleep(Duration::from_millis(2));
            }
            (token_seen, operation_seen)
        });
        CmdlineWatch { stop, thread }
    }

    fn seen(self) -> (bool, bool) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_chosen_by_an_environment_scoped_variable() {
    let project = project();
    let url = project.bare.file_url();
    let takofile = r##"
Project: Demo
Variables:
  - Name: GitBranch
    Value: main
    Environments: [Production]
  - Name: GitBranch
    Value: develop
    Environments: [DevTest]
Steps:
  - Name: Checkout
    Uses: git-checkout
    With:
      Ref: "#{GitBranch}"
  - Name: Show
    Run: |
      echo "commit=#{Octopus.Action[Checkout].Output.Commit}"
      echo "content=$(cat app.txt)"
"##;
    for (environment, expected, content) in [
        ("Production", &project.second, "two"),
        ("DevTest", &project.develop, "develop"),
    ] {
        // The deployment's checkout starts at the release's commit (`v1`).
        let workspace = Workspace::with_checkout(&url, &project.first);
        let facts = Facts {
            environment,
            repository: &url,
            commit: &project.first,
        };
        let (report, log) = run(&plan(takofile, &facts, vec![]), &workspace).await;
        assert!(report.succeeded(), "{environment}: {log}");
        assert!(log.contains(&format!("commit={expected}")), "{log}");
        assert!(log.contains(&format!("content={content}")), "{log}");
        assert_eq!(run_git(&workspace.dir(), &["rev-parse", "HEAD"]), *expected);
    }

    // Without Ref: the release's commit, already present, no fetch needed.
    let workspace = Workspace::with_checkout(&url, &project.second);
    std::fs::write(workspace.dir().join("untracked.txt"), "kept").unwrap();
    let facts = Facts {
        environment: "Production",
        repository: &url,
        commit: &project.first,
    };
    let takofile = r##"
Project: Demo
Steps:
  - Name: Checkout
    Uses: git-checkout
"##;
    let (report, log) = run(&plan(takofile, &facts, vec![]), &workspace).await;
    assert!(report.succeeded(), "{log}");
    assert!(!log.contains("Fetching"), "{log}");
    assert_eq!(
        run_git(&workspace.dir(), &["rev-parse", "HEAD"]),
        project.first
    );
    assert!(workspace.dir().join("untracked.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_repository_over_http_with_a_token_that_is_never_written() {
    let project = project();
    let other = project_named("tools.git");
    let server = GitHttpServer::with_token(other.bare.root(), TOKEN);
    let other_url = server.url(other.bare.name());
    let workspace = Workspace::with_checkout(&project.bare.file_url(), &project.second);
    let takofile = format!(
        r##"
Project: Demo
Steps:
  - Name: Tools
    Uses: git-checkout
    With:
      Repository: {other_url}
      Ref: v1
      Path: vendor/tools
      Token: "#{{ToolsToken}}"
  - Name: Show
    Run: |
      echo "tools at #{{Octopus.Action[Tools].Output.Commit}} $(cat vendor/tools/app.txt)"
"##
    );
    let facts = Facts {
        environment: "Production",
        repository: &project.bare.file_url(),
        commit: &project.second,
    };
    let variables =
        vec![VariableValue::new(VariableSource::Project, "ToolsToken", TOKEN).sensitive()];
    let watch = CmdlineWatch::start(&other_url);
    let (report, log) = run(&plan(&takofile, &facts, variables.clone()), &workspace).await;
    let (seen_in_cmdline, watched) = watch.seen();
    assert!(watched, "the watch never saw git run");
    assert!(report.succeeded(), "{log}");
    assert!(
        log.contains(&format!("tools at {} one", other.first)),
        "{log}"
    );
    assert!(
        !seen_in_cmdline,
        "the token appeared in a process's command line"
    );
    assert!(!log.contains(TOKEN), "{log}");
    let clone = workspace.dir().join("vendor/tools");
    let config = std::fs::read_to_string(clone.join(".git/config")).unwrap();
    assert!(config.contains(&other_url), "{config}");
    assert!(
        !config.to_ascii_lowercase().contains("extraheader"),
        "{config}"
    );
    assert_eq!(
        files_holding_the_token(&workspace.dir()),
        Vec::<String>::new()
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.status != 401 || !r.authorized_header),
        "{:?}",
        server.requests()
    );

    // A second run fetches into the same clone (now another ref).
    let again = takofile.replace("Ref: v1", "Ref: develop");
    let (report, log) = run(&plan(&again, &facts, variables), &workspace).await;
    assert!(report.succeeded(), "{log}");
    assert!(log.contains("Fetching"), "{log}");
    assert!(
        log.contains(&format!("tools at {} develop", other.develop)),
        "{log}"
    );

    // A wrong token (given literally, not as a sensitive variable): refused,
    // and still not shown.
    let workspace = Workspace::with_checkout(&project.bare.file_url(), &project.second);
    let wrong = takofile.replace("\"#{ToolsToken}\"", "ghs_Wr0ngT0kenLiteral");
    let (report, log) = run(&plan(&wrong, &facts, vec![]), &workspace).await;
    assert!(!report.succeeded(), "{log}");
    let message = failure(&report, 0);
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains("the Token was refused"), "{message}");
    assert!(!message.contains("ghs_Wr0ngT0kenLiteral"), "{message}");
    assert!(!log.contains("ghs_Wr0ngT0kenLiteral"), "{log}");

    // No token at all for a repository that needs one.
    let workspace = Workspace::with_checkout(&project.bare.file_url(), &project.second);
    let none = takofile.replace("      Token: \"#{ToolsToken}\"\n", "");
    let (report, log) = run(&plan(&none, &facts, vec![]), &workspace).await;
    assert!(!report.succeeded(), "{log}");
    let message = failure(&report, 0);
    assert!(message.contains("needs a Token"), "{message}");
}

fn project_named(name: &str) -> Project {
    let project = project();
    let bare = BareRepo::new(name);
    bare.push_from(&project.work, &["main", "develop", "--tags"]);
    Project { bare, ..project }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_refs_unreachable_repositories_and_bad_paths_fail_clearly() {
    let project = project();
    let url = project.bare.file_url();
    let facts = Facts {
        environment: "Production",
        repository: &url,
        commit: &project.second,
    };
    let checkout = |with: &str| {
        format!(
            "Project: Demo\nSteps:\n  - Name: Checkout\n    Uses: git-checkout\n    With:\n{with}"
        )
    };

    let workspace = Workspace::with_checkout(&url, &project.second);
    let (report, log) = run(
        &plan(&checkout("      Ref: no-such-branch\n"), &facts, vec![]),
        &workspace,
    )
    .await;
    let message = failure(&report, 0);
    assert!(message.contains("unknown ref"), "{message}\n{log}");
    assert!(message.contains("no-such-branch"), "{message}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = Instant::now();
    let (report, _) = run(
        &plan(
            &checkout(&format!(
                "      Repository: http://127.0.0.1:{port}/nothing.git\n      Path: other\n"
            )),
            &facts,
            vec![],
        ),
        &workspace,
    )
    .await;
    let message = failure(&report, 0);
    assert!(message.contains("unreachable"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(30));

    let server = GitHttpServer::start(project.bare.root());
    let (report, _) = run(
        &plan(
            &checkout(&format!(
                "      Repository: {}\n      Path: other\n",
                server.url("absent.git")
            )),
            &facts,
            vec![],
        ),
        &workspace,
    )
    .await;
    let message = failure(&report, 0);
    assert!(message.contains("unreachable"), "{message}");

    // Path: outside, not empty, or a clone of something else.
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), workspace.dir().join("link")).unwrap();
    std::fs::create_dir_all(workspace.dir().join("full")).unwrap();
    std::fs::write(workspace.dir().join("full/file"), "x").unwrap();
    for (path, expected) in [
        ("../escape", "inside"),
        ("/tmp/x", "absolute"),
        ("link/x", "symbolic link"),
        ("full", "neither an empty directory"),
    ] {
        let (report, _) = run(
            &plan(
                &checkout(&format!("      Repository: {url}\n      Path: {path}\n")),
                &facts,
                vec![],
            ),
            &workspace,
        )
        .await;
        let message = failure(&report, 0);
        assert!(message.contains(expected), "{path}: {message}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    let other = project_named("other.git");
    let (report, _) = run(
        &plan(
            &checkout(&format!("      Repository: {}\n", other.bare.file_url())),
            &facts,
            vec![],
        ),
        &workspace,
    )
    .await;
    let message = failure(&report, 0);
    assert!(message.contains("is a clone of"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_pushed_idempotently_and_moved_only_with_force() {
    let project = project();
    let url = project.bare.file_url();
    let facts = Facts {
        environment: "Production",
        repository: &url,
        commit: &project.second,
    };
    let takofile = r##"
Project: Demo
Steps:
  - Name: Tag
    Uses: git-tag
  - Name: Annotated
    Uses: git-tag
    With:
      Tag: "release-#{Octopus.Release.Number}"
      Message: "Release #{Octopus.Release.Number} to #{Octopus.Environment.Name}"
  - Name: Show
    Run: |
      echo "tagged #{Octopus.Action[Tag].Output.Tag} and #{Octopus.Action[Annotated].Output.Tag}"
"##;
    let workspace = Workspace::with_checkout(&url, &project.second);
    let (report, log) = run(&plan(takofile, &facts, vec![]), &workspace).await;
    assert!(report.succeeded(), "{log}");
    assert!(log.contains("tagged v1.2.3 and release-1.2.3"), "{log}");
    assert_eq!(
        project.bare.git(&["rev-parse", "refs/tags/v1.2.3"]),
        project.second
    );
    assert_eq!(project.bare.git(&["cat-file", "-t", "v1.2.3"]), "commit");
    assert_eq!(
        project.bare.git(&["cat-file", "-t", "release-1.2.3"]),
        "tag"
    );
    let object = project.bare.git(&["cat-file", "tag", "release-1.2.3"]);
    assert!(object.contains("Release 1.2.3 to Production"), "{object}");
    assert!(object.contains("tagger Tako <tako@localhost>"), "{object}");

    // Again, from a fresh checkout: nothing to do, success.
    let workspace = Workspace::with_checkout(&url, &project.second);
    let (report, log) = run(&plan(takofile, &facts, vec![]), &workspace).await;
    assert!(report.succeeded(), "{log}");
    assert!(log.contains("Tag v1.2.3 already points at"), "{log}");
    assert!(log.contains("Tag release-1.2.3 already points at"), "{log}");

    // The same name for another commit: refused, naming both commits.
    let moved = Facts {
        commit: &project.develop,
        ..facts
    };
    let workspace = Workspace::with_checkout(&url, &project.develop);
    let only_tag = "Project: Demo\nSteps:\n  - Name: Tag\n    Uses: git-tag\n";
    let (report, log) = run(&plan(only_tag, &moved, vec![]), &workspace).await;
    let message = failure(&report, 0);
    assert!(message.contains("already points at"), "{message}\n{log}");
    assert!(message.contains(&project.second[..7]), "{message}");
    assert!(message.contains(&project.develop[..7]), "{message}");
    assert!(message.contains("Force"), "{message}");
    assert_eq!(
        project.bare.git(&["rev-parse", "refs/tags/v1.2.3"]),
        project.second
    );

    // With Force, it moves.
    let forced = format!("{only_tag}    With:\n      Force: true\n");
    let (report, log) = run(&plan(&forced, &moved, vec![]), &workspace).await;
    assert!(report.succeeded(), "{log}");
    assert_eq!(
        project.bare.git(&["rev-parse", "refs/tags/v1.2.3"]),
        project.develop
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_pushed_over_http_with_a_token() {
    let project = project();
    let server = GitHttpServer::with_token(project.bare.root(), TOKEN);
    let url = server.url(project.bare.name());
    let facts = Facts {
        environment: "Production",
        repository: &url,
        commit: &project.first,
    };
    let takofile = r##"
Project: Demo
Steps:
  - Name: Tag
    Uses: git-tag
    With:
      Tag: deployed-#{Octopus.Environment.Name}
      Token: "#{PushToken}"
"##;
    let workspace = Workspace::with_checkout(&project.bare.file_url(), &project.first);
    run_git(&workspace.dir(), &["remote", "set-url", "origin", &url]);
    let variables =
        vec![VariableValue::new(VariableSource::Project, "PushToken", TOKEN).sensitive()];
    let (report, log) = run(&plan(takofile, &facts, variables), &workspace).await;
    assert!(report.succeeded(), "{log}");
    assert_eq!(
        project
            .bare
            .git(&["rev-parse", "refs/tags/deployed-Production"]),
        project.first
    );
    assert!(!log.contains(TOKEN), "{log}");
    assert_eq!(
        files_holding_the_token(&workspace.dir()),
        Vec::<String>::new()
    );

    let wrong =
        vec![VariableValue::new(VariableSource::Project, "PushToken", "nope-token").sensitive()];
    let renamed = takofile.replace("deployed-", "other-");
    let (report, _) = run(&plan(&renamed, &facts, wrong), &workspace).await;
    let message = failure(&report, 0);
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_a_checkout_promptly() {
    // A server that accepts connections and never answers: git would wait
    // for its network time limit; the cancel must not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let project = project();
    let url = project.bare.file_url();
    let facts = Facts {
        environment: "Production",
        repository: &url,
        commit: &project.second,
    };
    let takofile = format!(
        "Project: Demo\nSteps:\n  - Name: Checkout\n    Uses: git-checkout\n    With:\n      Repository: http://127.0.0.1:{port}/slow.git\n      Path: slow\n"
    );
    let workspace = Workspace::new();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let (report, log) =
        run_cancellable(&plan(&takofile, &facts, vec![]), &workspace, &cancel).await;
    assert!(!report.succeeded(), "{log}");
    // The step and the deployment are cancelled, not failed.
    assert_eq!(report.outcome, DeploymentOutcome::Cancelled, "{log}");
    assert_eq!(
        report.steps[0].state,
        tako_core::step::StepState::Cancelled,
        "{log}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{log}");
    let marker = format!("127.0.0.1:{port}/slow.git");
    assert!(
        tako_test_support::wait_until(Duration::from_secs(5), || processes_with(&marker)
            .is_empty()),
        "git processes survived the cancel"
    );
    drop(holder);
}
