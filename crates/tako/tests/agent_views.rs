//! Steps on agents as people see them, end to end: a real `tako serve`, a
//! real git origin, a real `tako agent run` (`win-01`, role `ps`) and a
//! takofile whose `Test` step has `Roles`. The scheduler's agent executor
//! makes the job; headless Chromium watches the deployment page while the
//! job waits for its agent, runs and ends (the agents' table and the log's
//! `Test@win-01` lines arrive live, the step and the agent shown apart);
//! the release page shows each step's targets; the JSON API lists the
//! deployment's jobs; `tako logs` prints the agent's lines as
//! `[Test@win-01]` and Tako's per-agent outcome lines, and a later step
//! reads the agent's output as `Octopus.Action[Test].Output[win-01].Answer`.
//!
//! Without Chromium these tests fail; `scripts/test` installs it.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use tako_test_support::browser::Browser;
use tako_test_support::git_server::BareRepo;
use tako_test_support::http::request;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, wait_until};

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Build
    Retries: 1
    RetryDelay: 0s
    Run: echo built on the server
  - Name: Test
    Roles: [ps, web]
    MaxParallelism: 1
    Run: |
      echo "tested on #{Octopus.Machine.Name}"
      set_octopusvariable Answer 42
  - Name: Migrate
    TargetRoles: [db]
    WhenNoAgents: skip
    SkipOfflineAgents: true
    Run: echo never
  - Name: Report
    Run: |
      echo "answer from win-01 #{Octopus.Action[Test].Output[win-01].Answer}"
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// A running `tako agent run`, its output collected line by line.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(address: &str, enroll: &str, data: &Path) -> Agent {
        let mut child = Command::new(tako_bin())
            .args([
                "agent",
                "run",
                "--server",
                &format!("http://{address}"),
                "--enroll",
                enroll,
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .env_remove("TAKO_SERVER")
            .env_remove("TAKO_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Agent { child, lines }
    }

    fn wait_for_line(&self, needle: &str) {
        let seen = wait_until(Duration::from_secs(60), || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
        });
        assert!(
            seen,
            "the agent never printed {needle:?}: {:?}",
            self.lines.lock().unwrap()
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with project `Demo` and agent `win-01` (role `ps`) enrolled.
struct World {
    server: TakoServer,
    token: String,
    enroll_token: String,
    agent_dir: tempfile::TempDir,
    _data: DataDir,
    _work: TempGitRepo,
    _bare: BareRepo,
}

impl World {
    fn new() -> World {
        let work = TempGitRepo::new();
        work.write("takofile.yml", TAKOFILE);
        work.commit("A process with a step on agents");
        let bare = BareRepo::new("demo.git");
        bare.push_from(&work, &["main"]);
        let data = DataDir::new();
        let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
        let token = server.token.clone().unwrap();
        let mut world = World {
            server,
            token,
            enroll_token: String::new(),
            agent_dir: tempfile::tempdir().unwrap(),
            _data: data,
            _work: work,
            _bare: bare,
        };
        world.tako(&[
            "project",
            "create",
            "Demo",
            "--repo",
            &world._bare.file_url(),
        ]);
        world.enroll_token = world
            .tako(&[
                "agent",
                "enroll-token",
                "--env",
                "Production",
                "--role",
                "ps",
                "--name",
                "win-01",
                "--auto-approve",
            ])
            .trim()
            .to_owned();
        world
    }

    /// Runs the `tako` client; its standard output.
    fn tako(&self, args: &[&str]) -> String {
        let output = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", &self.server.url)
            .env("TAKO_TOKEN", &self.token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tako {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn agent(&self) -> Agent {
        Agent::start(
            &self.server.address,
            &self.enroll_token,
            &self.agent_dir.path().join("agent"),
        )
    }

    /// `GET` an API path with the admin token: status and body.
    fn api(&self, path: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token);
        let answer = request(
            &self.server.address,
            "GET",
            path,
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        (
            answer.status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    fn deployment_state(&self, id: i64) -> String {
        let (status, body) = self.api(&format!("/api/v1/deployments/{id}"));
        assert_eq!(status, 200, "{body}");
        body["state"].as_str().unwrap().to_owned()
    }
}

/// Polls `check` until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn sign_in(client: &Client, world: &World, next: &str) {
    client
        .goto(&format!("{}{next}", world.server.url))
        .await
        .unwrap();
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&world.token)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.signin button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("signed in", Duration::from_secs(10), || async {
        let url = client.current_url().await.ok()?;
        (url.path() == next).then_some(())
    })
    .await;
}

/// A log line as the page shows it: its step's `data-step` and
/// `data-agent`, the text of its `.agent` part, its text.
type ShownLine = (Option<String>, Option<String>, Option<String>, String);

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_the_api_and_tako_logs_show_which_agent_ran_what() {
    let world = World::new();
    // Enrolled, then stopped: the job waits for it while the page is open.
    {
        let agent = world.agent();
        agent.wait_for_line("Enrolled as win-01");
    }
    let created: serde_json::Value = serde_json::from_str(&world.tako(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--deploy-to",
        "Production",
        "--output",
        "json",
    ]))
    .unwrap();
    let deployment = created["deployments"][0]["id"].as_i64().unwrap();
    let release = created["release"]["id"].as_i64().unwrap();

    let browser = Browser::start().await;
    let client = &browser.client;
    let page = format!("/ui/deployments/{deployment}");
    sign_in(client, &world, &page).await;
    // The job waits for its agent: listed pending, live.
    let row = "#jobs tr[data-step=Test][data-agent=win-01]";
    eventually("the pending job", Duration::from_secs(30), || async {
        let text = text_of(client, row).await?;
        text.contains("pending").then_some(())
    })
    .await;
    assert_eq!(world.deployment_state(deployment), "running");

    let agent = world.agent();
    eventually("the job's success", Duration::from_secs(60), || async {
        let text = text_of(client, row).await?;
        text.contains("success").then_some(text)
    })
    .await;
    // The agent's line arrived live, under step Test with its agent apart.
    let live = eventually("the agent's line", Duration::from_secs(30), || async {
        let lines = client
            .execute(
                "return [...document.querySelectorAll('#log .line')].map(l => { \
                   const s = l.querySelector('.step'); \
                   return [s.dataset.step || null, s.dataset.agent || null, \
                           (s.querySelector('.agent') || {}).textContent || null, \
                           l.querySelector('.text').textContent]; });",
                vec![],
            )
            .await
            .ok()?;
        let lines: Vec<ShownLine> = serde_json::from_value(lines).ok()?;
        lines
            .iter()
            .any(|l| l.3 == "tested on win-01")
            .then_some(lines)
    })
    .await;
    let tested = live.iter().find(|l| l.3 == "tested on win-01").unwrap();
    assert_eq!(
        (
            tested.0.as_deref(),
            tested.1.as_deref(),
            tested.2.as_deref()
        ),
        (Some("Test"), Some("win-01"), Some("@win-01")),
        "{live:?}"
    );
    assert!(
        live.iter()
            .any(|l| l.0.as_deref() == Some("Build") && l.1.is_none()),
        "a server step's lines name no agent: {live:?}"
    );
    let png = client.screenshot().await.unwrap();
    std::fs::write(artifacts().join("deployment-agents.png"), &png).unwrap();
    eventually(
        "the deployment's success",
        Duration::from_secs(30),
        || async { (world.deployment_state(deployment) == "success").then_some(()) },
    )
    .await;

    // Rendered by the server alike (the page's script may swap the steps
    // box in meanwhile: its elements are read again until they hold).
    client.refresh().await.unwrap();
    eventually("the job's row", Duration::from_secs(10), || async {
        let text = text_of(client, row).await?;
        (text.contains("Test") && text.contains("win-01") && text.contains("success")).then_some(())
    })
    .await;
    let step = client
        .find(Locator::Css(
            "#log .line .step[data-step=Test][data-agent=win-01]",
        ))
        .await
        .unwrap();
    assert_eq!(step.text().await.unwrap(), "Test@win-01");
    eventually("the skipped step", Duration::from_secs(10), || async {
        let text = text_of(client, "#steps").await?;
        (text.contains("Migrate") && text.contains("skipped")).then_some(())
    })
    .await;

    // The release page: each step's targets in the frozen process.
    client
        .goto(&format!("{}/ui/releases/{release}", world.server.url))
        .await
        .unwrap();
    let cells = |step: &'static str| async move {
        client
            .execute(
                &format!(
                    "return [...document.querySelectorAll('#process-steps tr[data-step={step}] td')].map(c => c.textContent);"
                ),
                vec![],
            )
            .await
            .unwrap()
    };
    assert_eq!(
        cells("Build").await,
        serde_json::json!(["1", "Build", "1 (0s apart)", "the server", "—", "—", "—"])
    );
    assert_eq!(
        cells("Test").await,
        serde_json::json!([
            "2",
            "Test",
            "—",
            "agents with roles ps, web",
            "1 at a time",
            "fail",
            "no: offline agents are waited for"
        ])
    );
    assert_eq!(
        cells("Migrate").await,
        serde_json::json!([
            "3",
            "Migrate",
            "—",
            "agents with role db",
            "all at once",
            "skip",
            "yes: offline agents are left out"
        ])
    );
    browser.close().await;
    drop(agent);

    // The API: the deployment's jobs.
    let (status, jobs) = world.api(&format!("/api/v1/deployments/{deployment}/jobs"));
    assert_eq!(status, 200, "{jobs}");
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["step"], "Test");
    assert_eq!(jobs[0]["step_index"], 1);
    assert_eq!(jobs[0]["agent"], "win-01");
    assert_eq!(jobs[0]["log_label"], "Test@win-01");
    assert_eq!(jobs[0]["state"], "success");
    assert!(jobs[0]["duration_ms"].is_u64(), "{jobs:?}");
    assert!(jobs[0]["started_at"].is_string(), "{jobs:?}");

    // `tako logs`: the agent's lines labelled `[Test@win-01]`, and Tako's
    // lines on choosing the agents and on how each ended.
    let log = world.tako(&["logs", &deployment.to_string()]);
    let has = |needle: &str| log.lines().any(|l| l.contains(needle));
    assert!(has("[Test@win-01] stdout: tested on win-01"), "{log}");
    assert!(has("[Test] tako: Running on 1 agent (win-01)"), "{log}");
    assert!(has("[Test] tako: Agent win-01 succeeded in"), "{log}");
    assert!(has("[Migrate] tako: Step 'Migrate' skipped"), "{log}");
    assert!(has("[Build] stdout: built on the server"), "{log}");
    // A later step reads the agent's output by Octopus's name for it.
    assert!(has("[Report] stdout: answer from win-01 42"), "{log}");
    let followed = world.tako(&["logs", &deployment.to_string(), "--follow"]);
    assert!(
        followed
            .lines()
            .any(|l| l.contains("[Test@win-01] stdout: tested on win-01")),
        "{followed}"
    );
}
