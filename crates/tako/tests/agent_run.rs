//! `tako agent run` end to end: a real `tako serve`, a real git origin
//! registered as a project, a release deployed by the server (so its mirror
//! holds the commit), and a real `tako agent run` process enrolled with a
//! token from the real CLI. Jobs are put in the server's store directly
//! (as the server's remote executor will), with the server's own keyring.
//!
//! What is shown: the agent sees the release commit's files without git
//! credentials; its lines arrive in the deployment's log once and in
//! order, masked; outputs and the outcome arrive; the source route answers
//! only the job's agent and only while the job runs; a cancel reaches the
//! running step within a heartbeat and leaves no process; the data
//! directory holds no secret after a job; an agent killed with an outcome
//! in its spool delivers it at its next start before taking work; plain
//! `http://` to another machine is refused.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tako_protocol::agent::{
    CheckoutSource, Job, JobAction, JobAgent, JobFacts, JobStep, JobVariable, Secret, source_path,
};
use tako_store::{DeploymentId, DeploymentState, JobId, JobState, NewJob, SqliteStore, Store};
use tako_test_support::agent::AgentProcess;
use tako_test_support::git_server::BareRepo;
use tako_test_support::http::request;
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, processes_with, unique_marker, wait_until};

/// A sensitive variable's value; must never reach the log or the agent's disk.
const CANARY: &str = "agent-canary-Zq81x";
const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Build
    Run: echo built on the server
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// The server's store, opened beside it with its keyring.
struct Db {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    fn open(data: &Path) -> Db {
        let keys = tako_server::keys::MasterKeys::load(data, &data.join("secret.key")).unwrap();
        let store = SqliteStore::open(data.join("tako.db"))
            .unwrap()
            .with_keyring(Arc::clone(&keys.keyring));
        Db {
            store: Arc::new(store),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn job_state(&self, id: &str) -> JobState {
        self.runtime
            .block_on(self.store.get_job(&JobId(id.to_owned())))
            .unwrap()
            .state
    }

    /// The texts of the deployment's lines labelled `Test@win-01`.
    fn agent_lines(&self, deployment: DeploymentId) -> Vec<String> {
        let page = self
            .runtime
            .block_on(
                self.store
                    .read_log(deployment, tako_store::LogCursor::START, 100_000),
            )
            .unwrap();
        page.lines
            .iter()
            .filter(|l| l.step.as_deref() == Some("Test@win-01"))
            .map(|l| l.text.clone())
            .collect()
    }
}

/// A server with a project whose release was deployed to Production, and
/// an agent `win-01` (role `ps`) enrolled in a data directory.
struct World {
    data: DataDir,
    server: Option<TakoServer>,
    token: String,
    _work: TempGitRepo,
    _bare: BareRepo,
    commit: String,
    deployment: DeploymentId,
    db: Db,
    agent_dir: tempfile::TempDir,
    enroll_token: String,
}

impl World {
    fn new() -> World {
        let work = TempGitRepo::new();
        work.write("takofile.yml", TAKOFILE);
        work.write("marker.txt", "file-of-the-release-commit");
        let commit = work.commit("A release");
        let bare = BareRepo::new("demo.git");
        bare.push_from(&work, &["main"]);
        let data = DataDir::new();
        let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
        let token = server.token.clone().unwrap();
        let mut world = World {
            db: Db::open(&data.path),
            data,
            server: Some(server),
            token,
            _work: work,
            _bare: bare,
            commit,
            deployment: DeploymentId(0),
            agent_dir: tempfile::tempdir().unwrap(),
            enroll_token: String::new(),
        };
        world.ok(&[
            "project",
            "create",
            "Demo",
            "--repo",
            &world._bare.file_url(),
        ]);
        let created: serde_json::Value = serde_json::from_str(&world.ok(&[
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
        let id = created["deployments"][0]["id"].as_i64().unwrap();
        world.deployment = DeploymentId(id);
        let finished = wait_until(Duration::from_secs(60), || {
            let deployment = world
                .db
                .runtime
                .block_on(world.db.store.get_deployment(DeploymentId(id)))
                .unwrap();
            deployment.state == DeploymentState::Success
        });
        assert!(finished, "the server's own deployment did not succeed");
        world.enroll_token = world
            .ok(&[
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

    fn address(&self) -> String {
        self.server.as_ref().unwrap().address.clone()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.address()))
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

    fn agent_data(&self) -> PathBuf {
        self.agent_dir.path().join("agent")
    }

    /// Starts `tako agent run` (enrolling the first time).
    fn agent(&self) -> AgentProcess {
        AgentProcess::start(
            tako_bin(),
            &[
                "agent",
                "run",
                "--server",
                &format!("http://{}", self.address()),
                "--enroll",
                &self.enroll_token,
                "--name",
                "proposed",
                "--data-dir",
                self.agent_data().to_str().unwrap(),
            ],
        )
    }

    /// Puts a job running `script` (bash) for win-01 in the store.
    fn job(&self, id: &str, script: &str, heartbeat_seconds: u32) {
        let store = &self.db.store;
        let agent = self
            .db
            .runtime
            .block_on(store.find_agent_by_name("win-01"))
            .unwrap()
            .unwrap();
        let job = Job {
            id: id.to_owned(),
            deployment: self.deployment.0,
            agent: JobAgent {
                name: "win-01".to_owned(),
                roles: vec!["ps".to_owned()],
            },
            step: JobStep {
                index: 1,
                name: "Test".to_owned(),
                action: JobAction::Script {
                    shell: "bash".to_owned(),
                    body: script.to_owned(),
                    template: None,
                },
                working_directory: None,
                env: vec![("TAKO_PROJECT".to_owned(), "Demo".to_owned())],
                timeout_seconds: Some(600),
                timeout_text: "10m".to_owned(),
            },
            facts: JobFacts {
                project: "Demo".to_owned(),
                environment: "Production".to_owned(),
                release_number: "0.0.1".to_owned(),
                git_commit: self.commit.clone(),
                ..JobFacts::default()
            },
            variables: vec![JobVariable {
                name: "ApiKey".to_owned(),
                value: CANARY.to_owned(),
                sensitive: true,
            }],
            mask: vec![Secret(CANARY.to_owned())],
            source: CheckoutSource {
                commit: self.commit.clone(),
                path: source_path(id),
            },
            error: None,
            steps_so_far: vec![("Build".to_owned(), "Success".to_owned())],
            lease_seconds: 60,
            heartbeat_seconds,
        };
        self.db
            .runtime
            .block_on(store.create_job(NewJob {
                id: JobId(id.to_owned()),
                deployment: self.deployment,
                step_index: 1,
                step_name: "Test".to_owned(),
                agent: agent.id,
                agent_name: agent.name,
                spec: serde_json::to_string(&job).unwrap(),
                attempt: 1,
            }))
            .unwrap();
    }

    fn wait_for_state(&self, id: &str, state: JobState) {
        let reached = wait_until(Duration::from_secs(60), || self.db.job_state(id) == state);
        assert!(
            reached,
            "job {id} is {:?}, not {state:?}; log: {:?}",
            self.db.job_state(id),
            self.db.agent_lines(self.deployment)
        );
    }

    /// `GET` a job's source with `credential`: the status.
    fn source_status(&self, id: &str, credential: &str) -> u16 {
        let bearer = format!("Bearer {credential}");
        request(
            &self.address(),
            "GET",
            &source_path(id),
            &[("Authorization", bearer.as_str())],
            b"",
        )
        .unwrap()
        .status
    }
}

/// Every file under `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
        })
        .map(|e| e.path().to_owned())
        .collect()
}

#[test]
fn an_agent_runs_its_job_in_the_release_files_and_its_log_and_outputs_arrive_once() {
    let world = World::new();
    let agent = world.agent();
    agent.wait_for_line("Enrolled as win-01");
    world.job(
        "job-one",
        &format!(
            r#"echo "seen: $(cat marker.txt)"
echo "key $(get_octopusvariable ApiKey)"
for i in $(seq 1 2500); do echo "line $i"; done
echo "{CANARY} written by the script"
set_octopusvariable Answer 42
set_octopusvariable Token "{CANARY}" -sensitive
"#
        ),
        10,
    );
    world.wait_for_state("job-one", JobState::Success);
    agent.wait_for_line("Job job-one ended");

    let lines = world.db.agent_lines(world.deployment);
    assert!(
        lines
            .iter()
            .any(|l| l == "seen: file-of-the-release-commit"),
        "the script saw the release commit's file: {lines:?}"
    );
    assert!(lines.iter().any(|l| l == "key ********"), "{lines:?}");
    let numbered: Vec<&String> = lines.iter().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<String> = (1..=2500).map(|i| format!("line {i}")).collect();
    assert_eq!(numbered.len(), 2500, "every line exactly once");
    assert!(
        numbered.iter().zip(&expected).all(|(a, b)| *a == b),
        "in order"
    );
    assert!(lines.iter().all(|l| !l.contains(CANARY)), "{lines:?}");

    let outputs = world
        .db
        .runtime
        .block_on(world.db.store.job_outputs(&JobId("job-one".to_owned())))
        .unwrap()
        .unwrap();
    let outputs: serde_json::Value = serde_json::from_str(&outputs).unwrap();
    let answer = outputs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Answer")
        .unwrap();
    assert_eq!(answer["value"], "42");
    assert!(
        outputs
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "Token" && o["value"] == CANARY && o["sensitive"] == true),
        "the sensitive output reached the server: {outputs}"
    );

    // The source route: only the job's agent, only while it runs.
    let credential = std::fs::read_to_string(world.agent_data().join("credential")).unwrap();
    assert_eq!(world.source_status("job-one", credential.trim()), 409);
    let other = world.ok(&[
        "agent",
        "enroll-token",
        "--env",
        "Production",
        "--role",
        "ps",
        "--name",
        "linux-01",
        "--auto-approve",
    ]);
    let enrolled = request(
        &world.address(),
        "POST",
        "/api/v1/agent/enroll",
        &[("Content-Type", "application/json")],
        serde_json::json!({"token": other.trim(), "name": "x", "version": "0.1.0", "protocol": 1})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let other_credential = enrolled.json()["credential"].as_str().unwrap().to_owned();
    assert_eq!(world.source_status("job-one", &other_credential), 404);

    // Nothing of the job is left on the agent's disk.
    assert_eq!(
        files_holding(&world.agent_data(), CANARY),
        Vec::<PathBuf>::new()
    );
    assert!(
        std::fs::read_dir(world.agent_data().join("spool"))
            .unwrap()
            .next()
            .is_none(),
        "the spool is empty"
    );
    assert!(!world.agent_data().join("work/job-one").exists());
    let printed = agent.output();
    assert!(
        printed.iter().any(|l| l.contains("Job job-one started")),
        "{printed:?}"
    );
    assert!(printed.iter().all(|l| !l.contains(CANARY)), "{printed:?}");
}

#[test]
fn a_cancel_reaches_the_running_step_within_a_heartbeat_and_leaves_no_process() {
    let world = World::new();
    let agent = world.agent();
    agent.wait_for_line("waiting for work");
    let marker = unique_marker("agent-cancel");
    world.job(
        "job-cancel",
        &format!(
            "echo started; python3 -c 'import time; time.sleep(300)' {marker}; echo not reached"
        ),
        1,
    );
    assert!(wait_until(Duration::from_secs(60), || {
        world
            .db
            .agent_lines(world.deployment)
            .iter()
            .any(|l| l == "started")
    }));
    assert!(!processes_with(&marker).is_empty(), "the step runs");
    world
        .db
        .runtime
        .block_on(
            world
                .db
                .store
                .request_job_cancel(&JobId("job-cancel".to_owned()), chrono::Utc::now()),
        )
        .unwrap();
    world.wait_for_state("job-cancel", JobState::Cancelled);
    assert!(
        wait_until(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "the step's processes are gone"
    );
    let lines = world.db.agent_lines(world.deployment);
    assert!(!lines.iter().any(|l| l == "not reached"), "{lines:?}");
    agent.wait_for_line("Job job-cancel ended");
}

#[test]
fn an_agent_killed_with_a_spooled_outcome_delivers_it_before_taking_work() {
    let mut world = World::new();
    let mut agent = world.agent();
    agent.wait_for_line("waiting for work");
    world.job(
        "job-spooled",
        "echo begin; sleep 3; echo end; set_octopusvariable Done yes",
        10,
    );
    assert!(wait_until(Duration::from_secs(60), || {
        world
            .db
            .agent_lines(world.deployment)
            .iter()
            .any(|l| l == "begin")
    }));
    // The server goes away mid-step; the agent finishes and spools.
    world.server.take().unwrap().kill();
    let spool = world.agent_data().join("spool/job-spooled.jsonl");
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&spool).is_ok_and(|t| t.contains("\"outcome\""))
        }),
        "the outcome is spooled"
    );
    agent.kill();

    // The server comes back (on another port); a job waits already.
    let server = TakoServer::start(tako_bin(), &world.data.path, &[], &[]);
    world.server = Some(server);
    world.job("job-next", "echo next", 10);
    let agent = AgentProcess::start(
        tako_bin(),
        &[
            "agent",
            "run",
            "--server",
            &format!("http://{}", world.address()),
            "--data-dir",
            world.agent_data().to_str().unwrap(),
        ],
    );
    world.wait_for_state("job-spooled", JobState::Success);
    world.wait_for_state("job-next", JobState::Success);
    agent.wait_for_line("Job job-next ended");
    let printed = agent.output();
    let delivered = printed
        .iter()
        .position(|l| l.contains("Job job-spooled: delivered"))
        .unwrap_or_else(|| panic!("{printed:?}"));
    let next = printed
        .iter()
        .position(|l| l.contains("Job job-next started"))
        .unwrap();
    assert!(
        delivered < next,
        "delivered before taking work: {printed:?}"
    );
    let lines = world.db.agent_lines(world.deployment);
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| *l == "begin" || *l == "end")
        .collect();
    assert_eq!(ours, ["begin", "end"], "{lines:?}");
    let outputs = world
        .db
        .runtime
        .block_on(world.db.store.job_outputs(&JobId("job-spooled".to_owned())))
        .unwrap()
        .unwrap();
    assert!(outputs.contains("\"Done\""), "{outputs}");
}

fn run_agent(args: &[&str]) -> Output {
    Command::new(tako_bin())
        .args(args)
        .env_remove("TAKO_SERVER")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn plain_http_to_another_machine_and_a_missing_enrollment_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let data = data.to_str().unwrap();
    let refused = run_agent(&[
        "agent",
        "run",
        "--server",
        "http://10.1.2.3:8080",
        "--enroll",
        "takoenroll_x",
        "--data-dir",
        data,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--insecure-http"), "{stderr}");
    assert!(!stderr.contains("takoenroll_x"), "{stderr}");

    let unenrolled = run_agent(&[
        "agent",
        "run",
        "--server",
        "http://127.0.0.1:9",
        "--data-dir",
        data,
    ]);
    assert!(!unenrolled.status.success());
    let stderr = String::from_utf8_lossy(&unenrolled.stderr);
    assert!(stderr.contains("pass --enroll TOKEN"), "{stderr}");

    let bad_pin = run_agent(&[
        "agent",
        "run",
        "--server",
        "https://127.0.0.1:9",
        "--server-fingerprint",
        "nope",
        "--data-dir",
        data,
    ]);
    assert!(!bad_pin.status.success());
    let stderr = String::from_utf8_lossy(&bad_pin.stderr);
    assert!(stderr.contains("64 hex digits"), "{stderr}");
}
