//! Deployments reported back to GitHub, Gitea and GitLab as commit
//! statuses, through a real `tako serve`: a real repository served over
//! smart HTTP on 127.0.0.1 at `/acme/demo.git`, signed pushes, and a
//! stand-in for the forge's status API (`tako_test_support::forge_api`: the
//! forges cannot run here) that checks every request as the forge documents
//! it and answers as it does, including its errors (401, a 403 rate limit
//! with `Retry-After`). A paused deployment is `pending`, "waiting for a
//! person at step X", then reports its end (an abort's, a cancel's) too.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tako_store::{
    Deployment, DeploymentFilter, DeploymentState, LogCursor, PageRequest, SqliteStore, Store,
};
use tako_test_support::forge_api::{Answer, ForgeStatusApi};
use tako_test_support::git_server::{BareRepo, GitHttpServer};
use tako_test_support::http::request;
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, wait_until};

const SECRET: &str = "statuses webhook secret";
const STATUS_TOKEN: &str = "ghp_statusTokenCanary0123456789abcdef";
const PUBLIC_URL: &str = "https://tako.example.com";

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Deploy
    Run: |
      if [ -f broken.txt ]; then echo "broken"; exit 1; fi
      echo "deployed #{Octopus.Release.Number}"
"#;

/// A server, the repository it deploys (`http://127.0.0.1:P/acme/demo.git`,
/// registered as project Demo) and GitHub's stand-in.
struct Setup {
    data: DataDir,
    server: TakoServer,
    origin: Origin,
    url: String,
    github: ForgeStatusApi,
    server_log: tempfile::NamedTempFile,
    _git: GitHttpServer,
}

impl Setup {
    /// Everything started; the project's status token is `token` (the
    /// stand-in accepts only [`STATUS_TOKEN`]).
    fn start(token: &str) -> Setup {
        Setup::on(
            ForgeStatusApi::start(STATUS_TOKEN, "acme", "demo"),
            Some("github"),
            token,
        )
    }

    /// Like [`Setup::start`] with another forge's stand-in, `forge` set as
    /// the project's (or not).
    fn on(github: ForgeStatusApi, forge: Option<&str>, token: &str) -> Setup {
        Setup::with_url(github, forge, token, false)
    }

    /// Like [`Setup::on`]; with `file_url`, the project's repository is the
    /// origin's `file://` URL (on no forge).
    fn with_url(github: ForgeStatusApi, forge: Option<&str>, token: &str, file_url: bool) -> Setup {
        Setup::deploying(TAKOFILE, github, forge, token, file_url)
    }

    /// Like [`Setup::with_url`], the repository's takofile `takofile`.
    fn deploying(
        takofile: &str,
        github: ForgeStatusApi,
        forge: Option<&str>,
        token: &str,
        file_url: bool,
    ) -> Setup {
        let work = TempGitRepo::new();
        work.write("takofile.yml", takofile);
        work.commit("Add the takofile");
        let bare = BareRepo::new("acme/demo.git");
        bare.push_from(&work, &["main"]);
        let git = GitHttpServer::start(bare.root());
        let url = if file_url {
            bare.file_url()
        } else {
            git.url("acme/demo.git")
        };
        let origin = Origin { work, bare };
        let data = DataDir::new();
        let server_log = tempfile::NamedTempFile::new().unwrap();
        let server = TakoServer::start_logging_to(
            Path::new(env!("CARGO_BIN_EXE_tako")),
            &data.path,
            &["--public-url", PUBLIC_URL],
            &[("TAKO_WEBHOOK_SECRET", SECRET), ("TAKO_LOG", "info")],
            server_log.path(),
        );
        let setup = Setup {
            data,
            server,
            origin,
            url,
            github,
            server_log,
            _git: git,
        };
        let created = setup.api(
            "POST",
            "/api/v1/projects",
            &json!({"name": "Demo", "repository": setup.url}),
        );
        assert_eq!(created.0, 201, "{}", created.1);
        let set = setup.api(
            "PUT",
            "/api/v1/projects/Demo/forge-status",
            &json!({"token": token, "forge": forge, "api_url": setup.github.url()}),
        );
        assert_eq!(set.0, 200, "{}", set.1);
        assert_eq!(set.1["has_status_token"], true, "{}", set.1);
        setup
    }

    fn api(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let token = format!("Bearer {}", self.server.token.as_deref().unwrap());
        let body = body.to_string();
        let answer = request(
            &self.server.address,
            method,
            path,
            &[
                ("Authorization", &token),
                ("Content-Type", "application/json"),
            ],
            if method == "GET" {
                b""
            } else {
                body.as_bytes()
            },
        )
        .unwrap();
        assert!(
            !answer.text().contains(STATUS_TOKEN),
            "the token leaked into {method} {path}: {}",
            answer.text()
        );
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, value)
    }

    /// Pushes a commit on main changing `file`; returns its sha.
    fn push(&self, delivery: &str, file: &str) -> String {
        let body = self
            .origin
            .push_commit_as(&self.url, "main", file, delivery, delivery);
        assert_eq!(
            post_push(&self.server.address, delivery, &body, SECRET).status,
            202
        );
        self.origin.work.git(&["rev-parse", "HEAD"])
    }

    fn store(&self) -> (Arc<dyn Store>, tokio::runtime::Runtime) {
        (
            Arc::new(SqliteStore::open(self.data.path.join("tako.db")).unwrap()),
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        )
    }

    fn finished(&self, count: usize) -> Vec<Deployment> {
        let (store, runtime) = self.store();
        let list = || {
            runtime
                .block_on(
                    store.list_deployments(&DeploymentFilter::default(), PageRequest::first(50)),
                )
                .unwrap()
                .items
        };
        let done = wait_until(Duration::from_secs(120), || {
            let all = list();
            all.len() >= count
                && all
                    .iter()
                    .all(|d| !matches!(d.state, DeploymentState::Queued | DeploymentState::Running))
        });
        assert!(done, "deployments did not finish: {:?}", list());
        let mut all = list();
        all.reverse();
        all
    }

    fn log(&self, deployment: &Deployment) -> String {
        let (store, runtime) = self.store();
        runtime
            .block_on(store.read_log(deployment.id, LogCursor::START, 100_000))
            .unwrap()
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the stand-in recorded `count` statuses.
    fn wait_for_statuses(&self, count: usize) -> Vec<(String, String)> {
        assert!(
            wait_until(Duration::from_secs(60), || self.github.recorded().len()
                >= count),
            "statuses recorded: {:?}, exchanges: {:?}",
            self.github.recorded(),
            self.github.exchanges()
        );
        self.github.recorded()
    }

    /// The token is nowhere: not in the project's answer, the task logs or
    /// the server's log; and every request was as GitHub documents it.
    fn assert_clean(&self, deployments: &[Deployment]) {
        let project = self.api("GET", "/api/v1/projects/Demo", &Value::Null);
        assert_eq!(project.1["has_status_token"], true);
        for deployment in deployments {
            assert!(!self.log(deployment).contains(STATUS_TOKEN));
        }
        let server_log = std::fs::read_to_string(self.server_log.path()).unwrap();
        assert!(!server_log.contains(STATUS_TOKEN), "{server_log}");
        assert!(!server_log.contains("statusTokenCanary"), "{server_log}");
        assert_eq!(self.github.violations(), Vec::<String>::new());
    }
}

fn production() -> String {
    "tako/Production".to_owned()
}

#[test]
fn a_successful_deployment_reports_pending_then_success_as_github_documents() {
    let setup = Setup::start(STATUS_TOKEN);
    let sha = setup.push("ok-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    let statuses = setup.wait_for_statuses(2);
    assert_eq!(
        statuses,
        vec![
            ("pending".to_owned(), production()),
            ("success".to_owned(), production())
        ]
    );
    for exchange in setup.github.exchanges() {
        let request = &exchange.request;
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.target,
            format!("/api/v3/repos/acme/demo/statuses/{sha}")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {STATUS_TOKEN}").as_str())
        );
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        assert!(request.header("user-agent").unwrap().starts_with("Tako/"));
        let body = request.json();
        let mut fields: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            vec!["context", "description", "state", "target_url"]
        );
        assert_eq!(
            body["target_url"],
            format!("{PUBLIC_URL}/ui/deployments/{}", deployments[0].id.0)
        );
        assert!(body["description"].as_str().unwrap().contains("Production"));
    }
    setup.assert_clean(&deployments);
}

#[test]
fn a_failing_deployment_reports_failure() {
    let setup = Setup::start(STATUS_TOKEN);
    setup.push("broken-1", "broken.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Failed);
    assert_eq!(
        setup.wait_for_statuses(2),
        vec![
            ("pending".to_owned(), production()),
            ("failure".to_owned(), production())
        ]
    );
    setup.assert_clean(&deployments);
}

/// The deployment of Demo in `state`, once there is one.
fn the_one_in(setup: &Setup, state: DeploymentState) -> Deployment {
    let (store, runtime) = setup.store();
    let mut found = None;
    let there = wait_until(Duration::from_secs(60), || {
        found = runtime
            .block_on(store.list_deployments(
                &DeploymentFilter {
                    state: Some(state),
                    ..DeploymentFilter::default()
                },
                PageRequest::first(10),
            ))
            .unwrap()
            .items
            .into_iter()
            .next();
        found.is_some()
    });
    let all = runtime
        .block_on(store.list_deployments(&DeploymentFilter::default(), PageRequest::first(10)))
        .unwrap()
        .items;
    assert!(there, "no deployment became {state}: {all:?}");
    found.unwrap()
}

#[test]
fn a_paused_deployment_is_pending_waiting_for_a_person_then_reports_its_end() {
    // Proceed: pending, pending (waiting), pending, success; Abort: pending,
    // pending (waiting), failure; cancel: pending, pending (waiting), error.
    const PAUSING: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Sign off
    Uses: manual-intervention
    With:
      Instructions: "Look at #{Octopus.Release.Number} first"
  - Name: Deploy
    Run: |
      echo "deployed #{Octopus.Release.Number}"
"#;
    let setup = Setup::deploying(
        PAUSING,
        ForgeStatusApi::start(STATUS_TOKEN, "acme", "demo"),
        Some("github"),
        STATUS_TOKEN,
        false,
    );
    let pending = ("pending".to_owned(), production());
    let description = |exchange: usize| {
        setup.github.exchanges()[exchange].request.json()["description"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Paused: pending again, waiting for a person at the step.
    setup.push("pause-1", "app.txt");
    let paused = the_one_in(&setup, DeploymentState::Paused);
    assert_eq!(
        setup.wait_for_statuses(2),
        vec![pending.clone(), pending.clone()]
    );
    assert!(
        description(0).starts_with("Deploying release"),
        "{}",
        description(0)
    );
    let waiting = description(1);
    assert!(
        waiting.ends_with("to Production: waiting for a person at step Sign off"),
        "{waiting}"
    );
    assert_eq!(
        setup.github.exchanges()[1].request.json()["target_url"],
        format!("{PUBLIC_URL}/ui/deployments/{}", paused.id.0)
    );

    // Proceed: it goes on, pending (deploying) then success.
    let answer = setup.api(
        "POST",
        &format!("/api/v1/deployments/{}/interventions/proceed", paused.id.0),
        &json!({"note": "ok"}),
    );
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(
        setup.wait_for_statuses(4)[2..],
        [pending.clone(), ("success".to_owned(), production())]
    );
    assert!(
        description(2).starts_with("Deploying release"),
        "{}",
        description(2)
    );

    // Another pauses; Abort fails it: the forge hears of the failure.
    setup.push("pause-2", "other.txt");
    let paused = the_one_in(&setup, DeploymentState::Paused);
    assert_eq!(
        setup.wait_for_statuses(6)[4..],
        [pending.clone(), pending.clone()]
    );
    let answer = setup.api(
        "POST",
        &format!("/api/v1/deployments/{}/interventions/abort", paused.id.0),
        &json!({"note": "not today"}),
    );
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["state"], "failed", "{}", answer.1);
    assert_eq!(
        setup.wait_for_statuses(7)[6..],
        [("failure".to_owned(), production())]
    );

    // A third pauses and is cancelled: `error`, as a cancel reports.
    setup.push("pause-3", "third.txt");
    let paused = the_one_in(&setup, DeploymentState::Paused);
    assert_eq!(
        setup.wait_for_statuses(9)[7..],
        [pending.clone(), pending.clone()]
    );
    let cancelled = setup.api(
        "POST",
        &format!("/api/v1/deployments/{}/cancel", paused.id.0),
        &Value::Null,
    );
    assert_eq!(cancelled.0, 200, "{}", cancelled.1);
    assert_eq!(cancelled.1["state"], "cancelled", "{}", cancelled.1);
    assert_eq!(
        setup.wait_for_statuses(10)[9..],
        [("error".to_owned(), production())]
    );
    let deployments = setup.finished(3);
    setup.assert_clean(&deployments);
}

#[test]
fn a_rate_limited_status_is_retried_after_retry_after() {
    let setup = Setup::start(STATUS_TOKEN);
    setup.github.answer_next(Answer::rate_limited(1));
    setup.push("limited-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    // The pending status is retried after a second, or given up for the
    // success when the deployment ended first.
    assert!(
        wait_until(Duration::from_secs(60), || setup.github.recorded().last()
            == Some(&("success".to_owned(), production()))),
        "{:?}",
        setup.github.exchanges()
    );
    let exchanges = setup.github.exchanges();
    assert_eq!(exchanges[0].status, 403, "{exchanges:?}");
    assert_eq!(exchanges[0].request.json()["state"], "pending");
    let log = setup.log(&deployments[0]);
    assert!(log.contains("HTTP 403 Forbidden"), "{log}");
    assert!(log.contains("retrying in 1s"), "{log}");
    setup.assert_clean(&deployments);
}

#[test]
fn a_rejected_token_is_logged_on_the_deployment_which_still_succeeds() {
    let wrong = "ghp_wrongStatusTokenCanary";
    let setup = Setup::start(wrong);
    setup.push("unauthorized-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    let logged = wait_until(Duration::from_secs(30), || {
        setup
            .log(&deployments[0])
            .matches("401 Unauthorized")
            .count()
            >= 2
    });
    let log = setup.log(&deployments[0]);
    assert!(logged, "{log}");
    assert!(log.contains("giving up"), "{log}");
    assert!(!log.contains(wrong), "{log}");
    // Not retried: 401 does not get better.
    assert_eq!(setup.github.exchanges().len(), 2);
    let server_log = std::fs::read_to_string(setup.server_log.path()).unwrap();
    assert!(!server_log.contains(wrong), "{server_log}");
    assert_eq!(setup.github.recorded(), Vec::<(String, String)>::new());
}

#[test]
fn gitea_gets_pending_then_success_as_it_documents() {
    let setup = Setup::on(
        ForgeStatusApi::gitea(STATUS_TOKEN, "acme", "demo"),
        Some("gitea"),
        STATUS_TOKEN,
    );
    let sha = setup.push("gitea-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert_eq!(
        setup.wait_for_statuses(2),
        vec![
            ("pending".to_owned(), production()),
            ("success".to_owned(), production())
        ]
    );
    for exchange in setup.github.exchanges() {
        let request = &exchange.request;
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.target,
            format!("/api/v1/repos/acme/demo/statuses/{sha}")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("token {STATUS_TOKEN}").as_str())
        );
    }
    setup.assert_clean(&deployments);
}

#[test]
fn gitlab_gets_running_then_failed_as_it_documents() {
    let setup = Setup::on(
        ForgeStatusApi::gitlab(STATUS_TOKEN, "acme", "demo"),
        Some("gitlab"),
        STATUS_TOKEN,
    );
    let sha = setup.push("gitlab-1", "broken.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Failed);
    assert_eq!(
        setup.wait_for_statuses(2),
        vec![
            ("running".to_owned(), production()),
            ("failed".to_owned(), production())
        ]
    );
    for exchange in setup.github.exchanges() {
        let request = &exchange.request;
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.target,
            format!("/api/v4/projects/acme%2Fdemo/statuses/{sha}")
        );
        assert_eq!(request.header("private-token"), Some(STATUS_TOKEN));
        assert_eq!(request.header("authorization"), None);
        assert_eq!(
            request.json()["target_url"],
            format!("{PUBLIC_URL}/ui/deployments/{}", deployments[0].id.0)
        );
    }
    setup.assert_clean(&deployments);
}

#[test]
fn without_a_forge_set_the_hook_route_of_the_pushes_names_it() {
    // 127.0.0.1 is no known forge; the pushes come through /hooks/github.
    let setup = Setup::on(
        ForgeStatusApi::start(STATUS_TOKEN, "acme", "demo"),
        None,
        STATUS_TOKEN,
    );
    setup.push("route-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert_eq!(
        setup.wait_for_statuses(2),
        vec![
            ("pending".to_owned(), production()),
            ("success".to_owned(), production())
        ]
    );
    setup.assert_clean(&deployments);
}

#[test]
fn a_repository_on_no_forge_reports_nothing_and_says_so_once() {
    let setup = Setup::with_url(
        ForgeStatusApi::start(STATUS_TOKEN, "acme", "demo"),
        Some("github"),
        STATUS_TOKEN,
        true,
    );
    setup.push("unknown-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    let said = wait_until(Duration::from_secs(30), || {
        setup
            .log(&deployments[0])
            .contains("does not name a repository on a forge")
    });
    let log = setup.log(&deployments[0]);
    assert!(said, "{log}");
    assert_eq!(
        log.matches("Commit status not reported").count(),
        1,
        "{log}"
    );
    assert!(setup.github.exchanges().is_empty());
}

#[test]
fn an_exhausted_rate_limit_is_waited_out_until_its_reset() {
    let setup = Setup::start(STATUS_TOKEN);
    setup.github.answer_next(Answer::rate_limit_exhausted(2));
    setup.push("reset-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert!(
        wait_until(Duration::from_secs(60), || setup.github.recorded().last()
            == Some(&("success".to_owned(), production()))),
        "{:?}",
        setup.github.exchanges()
    );
    let exchanges = setup.github.exchanges();
    assert_eq!(exchanges[0].status, 403, "{exchanges:?}");
    let log = setup.log(&deployments[0]);
    assert!(log.contains("HTTP 403 Forbidden"), "{log}");
    assert!(log.contains("retrying in"), "{log}");
    setup.assert_clean(&deployments);
}

#[test]
fn github_deployments_show_each_deployment_in_the_environments_panel() {
    let setup = Setup::start(STATUS_TOKEN);
    let set = setup.api(
        "PUT",
        "/api/v1/projects/Demo/forge-status",
        &json!({"token": STATUS_TOKEN, "forge": "github", "api_url": setup.github.url(),
            "deployments": true}),
    );
    assert_eq!(set.1["status_deployments"], true, "{}", set.1);
    let sha = setup.push("deploy-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert!(
        wait_until(Duration::from_secs(60), || setup.github.deployments().len()
            >= 3),
        "{:?}",
        setup.github.exchanges()
    );
    let requests = setup.github.deployments();
    assert_eq!(requests[0].target, "/api/v3/repos/acme/demo/deployments");
    let created = requests[0].json();
    assert_eq!(created["ref"], sha.as_str());
    assert_eq!(created["environment"], "Production");
    assert_eq!(created["auto_merge"], false);
    assert_eq!(created["required_contexts"], json!([]));
    let states: Vec<Value> = requests[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.target, "/api/v3/repos/acme/demo/deployments/42/statuses");
            assert_eq!(
                r.json()["log_url"],
                format!("{PUBLIC_URL}/ui/deployments/{}", deployments[0].id.0)
            );
            r.json()["state"].clone()
        })
        .collect();
    assert_eq!(states, vec![json!("in_progress"), json!("success")]);
    assert_eq!(
        setup.wait_for_statuses(2),
        vec![
            ("pending".to_owned(), production()),
            ("success".to_owned(), production())
        ]
    );
    setup.assert_clean(&deployments);
}

#[test]
fn a_repository_github_does_not_know_is_logged_and_not_retried() {
    // GitHub answers 404 for a repository the token cannot see.
    let setup = Setup::on(
        ForgeStatusApi::start(STATUS_TOKEN, "acme", "other"),
        Some("github"),
        STATUS_TOKEN,
    );
    setup.push("missing-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert!(wait_until(Duration::from_secs(30), || {
        setup.log(&deployments[0]).matches("404 Not Found").count() >= 2
    }));
    assert_eq!(setup.github.exchanges().len(), 2);
    assert!(setup.log(&deployments[0]).contains("giving up"));
    assert!(!setup.log(&deployments[0]).contains(STATUS_TOKEN));
}

#[test]
fn a_commit_github_refuses_with_422_is_logged_and_the_next_status_still_goes() {
    let setup = Setup::start(STATUS_TOKEN);
    setup.github.answer_next(Answer {
        status: 422,
        headers: Vec::new(),
        body: r#"{"message":"No commit found for SHA: 0000","documentation_url":"https://docs.github.com/rest/commits/statuses#create-a-commit-status"}"#.to_owned(),
    });
    setup.push("unprocessable-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert!(
        wait_until(Duration::from_secs(30), || setup.github.recorded()
            == vec![("success".to_owned(), production())]),
        "{:?}",
        setup.github.exchanges()
    );
    assert_eq!(setup.github.exchanges()[0].status, 422);
    assert_eq!(setup.github.exchanges().len(), 2);
    let log = setup.log(&deployments[0]);
    assert!(log.contains("422 Unprocessable Entity"), "{log}");
    setup.assert_clean(&deployments);
}

#[test]
fn the_status_token_is_write_only_refused_when_unsendable_and_removable() {
    let setup = Setup::start(STATUS_TOKEN);
    let refused = setup.api(
        "PUT",
        "/api/v1/projects/Demo/forge-status",
        &json!({"token": "ghp_with space", "forge": "github"}),
    );
    assert_eq!(refused.0, 422, "{}", refused.1);
    assert!(
        !refused.1.to_string().contains("with space"),
        "{}",
        refused.1
    );
    let refused = setup.api(
        "PUT",
        "/api/v1/projects/Demo/forge-status",
        &json!({"token": STATUS_TOKEN, "forge": "sourcehut"}),
    );
    assert_eq!(refused.0, 422, "{}", refused.1);
    let listed = setup.api("GET", "/api/v1/projects", &Value::Null);
    assert_eq!(listed.1[0]["has_status_token"], true, "{}", listed.1);

    // The CLI removes it; then nothing is reported.
    let cleared = std::process::Command::new(env!("CARGO_BIN_EXE_tako"))
        .args(["project", "set-forge-status", "Demo", "--clear"])
        .args(["--server", &setup.server.url])
        .args(["--token", setup.server.token.as_deref().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        cleared.status.success(),
        "{}",
        String::from_utf8_lossy(&cleared.stderr)
    );
    let project = setup.api("GET", "/api/v1/projects/Demo", &Value::Null);
    assert_eq!(project.1["has_status_token"], false, "{}", project.1);
    setup.push("cleared-1", "app.txt");
    let deployments = setup.finished(1);
    assert_eq!(deployments[0].state, DeploymentState::Success);
    std::thread::sleep(Duration::from_millis(500));
    assert!(setup.github.exchanges().is_empty());
    assert!(!setup.log(&deployments[0]).contains("Commit status"));
}
