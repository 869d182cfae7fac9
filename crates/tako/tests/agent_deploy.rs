//! Steps with `Roles` deployed by a push to real `tako agent run`
//! processes: a real `tako serve` with a signed GitHub push, a real git
//! origin, agents enrolled with the real CLI, and where the network matters
//! a [`FaultProxy`] between agent and server.
//!
//! What is shown (issue 13's behaviours): a `Roles` step runs on the agents
//! of the deployment's environment having one of its roles, and nowhere
//! else; its outputs are named per agent and read by the next step on the
//! server; two agents run in parallel or one at a time; one failing fails
//! the step while `Always` steps still run; no matching agent fails the
//! step with the spec's message (or skips it); a 20 s network cut loses no
//! line and stores one outcome; an agent killed mid-step is interrupted
//! within its lease and not retried, and a restarted agent takes new work
//! (stopping what its previous life left running); a cancel reaches the
//! agent's step; a server killed mid-step resumes it (also a
//! `MaxParallelism: 1` step, whose next agent gets its job after the
//! restart); a sensitive value scoped to Production never crosses the
//! wire to a DevTest agent, and what an agent sends is masked; each
//! agent's job holds the values of the roles it shares with its step (a
//! secret of the db role never reaches the web agent of a `[web, db]`
//! step), and a plan shows them per agent, masked.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tako_store::{
    Deployment, DeploymentFilter, DeploymentState, LogCursor, LogLineRecord, PageRequest,
    SqliteStore, Store,
};
use tako_test_support::agent::AgentProcess;
use tako_test_support::fault_proxy::FaultProxy;
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{processes_with, unique_marker, wait_until};

const SECRET: &str = "agents-webhook-secret";
/// A sensitive variable scoped to Production.
const CANARY: &str = "prod-only-canary-Kq27w";

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// A takofile mapping `main` to Production and `develop` to DevTest.
fn takofile(steps: &str) -> String {
    format!(
        "Project: Demo\nMappings:\n  - Branch: main\n    Environment: Production\n  - Branch: develop\n    Environment: DevTest\nSteps:\n{steps}"
    )
}

/// A server, the origin pushed from, and the agents started so far.
struct World {
    origin: Origin,
    data: DataDir,
    server: Option<TakoServer>,
    token: String,
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
    agents_dir: tempfile::TempDir,
    pushes: usize,
}

impl World {
    fn new(steps: &str) -> World {
        let origin = Origin::new(&takofile(steps));
        let data = DataDir::new();
        let server = TakoServer::start(
            tako_bin(),
            &data.path,
            &["--auto-register-projects"],
            &[("TAKO_WEBHOOK_SECRET", SECRET)],
        );
        let token = server.token.clone().unwrap();
        let server = Some(server);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path.join("tako.db")).unwrap());
        World {
            origin,
            data,
            server,
            token,
            store,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            agents_dir: tempfile::tempdir().unwrap(),
            pushes: 0,
        }
    }

    fn server(&self) -> &TakoServer {
        self.server.as_ref().unwrap()
    }

    /// Kills the server with SIGKILL (its data directory kept).
    fn kill_server(&mut self) {
        self.server.take().unwrap().kill();
    }

    /// Starts the server again on its data directory (on another port).
    fn restart_server(&mut self) -> &TakoServer {
        self.server = Some(TakoServer::start(
            tako_bin(),
            &self.data.path,
            &["--auto-register-projects"],
            &[("TAKO_WEBHOOK_SECRET", SECRET)],
        ));
        self.server()
    }

    /// Runs the CLI as the admin; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", &self.server().url)
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

    fn agent_dir(&self, name: &str) -> PathBuf {
        self.agents_dir.path().join(name)
    }

    /// Enrolls and starts agent `name` serving `env` with `role`, talking
    /// to `server_url` (the server, or a proxy in front of it); returns
    /// once it asks for work.
    fn agent_via(&self, name: &str, env: &str, role: &str, server_url: &str) -> AgentProcess {
        let enroll = self.ok(&[
            "agent",
            "enroll-token",
            "--env",
            env,
            "--role",
            role,
            "--name",
            name,
            "--auto-approve",
        ]);
        let agent = AgentProcess::start(
            tako_bin(),
            &[
                "agent",
                "run",
                "--server",
                server_url,
                "--enroll",
                enroll.trim(),
                "--data-dir",
                self.agent_dir(name).to_str().unwrap(),
            ],
        );
        agent.wait_for_line("waiting for work");
        agent
    }

    fn agent(&self, name: &str, env: &str, role: &str) -> AgentProcess {
        let url = self.server().url.clone();
        self.agent_via(name, env, role, &url)
    }

    /// Starts an enrolled agent again (same data directory).
    fn restart_agent(&self, name: &str) -> AgentProcess {
        let agent = AgentProcess::start(
            tako_bin(),
            &[
                "agent",
                "run",
                "--server",
                &self.server().url,
                "--data-dir",
                self.agent_dir(name).to_str().unwrap(),
            ],
        );
        agent.wait_for_line("waiting for work");
        agent
    }

    /// Commits `file` with `content` on `branch` and pushes it as a signed
    /// GitHub webhook; returns the deployment it queued.
    fn push(&mut self, branch: &str, file: &str, content: &str) -> Deployment {
        self.pushes += 1;
        let body = self.origin.push_commit(
            branch,
            file,
            content,
            &format!("Push {} to {branch}", self.pushes),
        );
        let answer = post_push(
            &self.server().address,
            &format!("delivery-{}", self.pushes),
            &body,
            SECRET,
        );
        assert_eq!(answer.status, 202, "{}", answer.text());
        let count = self.pushes;
        let delivery = tako_store::DeliveryId(format!("delivery-{count}"));
        assert!(
            wait_until(Duration::from_secs(60), || self.deployments().len()
                >= count),
            "push {count} queued no deployment: {:?}",
            self.runtime.block_on(self.store.get_delivery(&delivery))
        );
        self.deployments().pop().unwrap()
    }

    /// Every deployment, oldest first.
    fn deployments(&self) -> Vec<Deployment> {
        let mut all = self
            .runtime
            .block_on(
                self.store
                    .list_deployments(&DeploymentFilter::default(), PageRequest::first(100)),
            )
            .unwrap()
            .items;
        all.reverse();
        all
    }

    fn deployment(&self, id: tako_store::DeploymentId) -> Deployment {
        self.runtime
            .block_on(self.store.get_deployment(id))
            .unwrap()
    }

    fn finished(&self, deployment: &Deployment) -> Deployment {
        let done = wait_until(Duration::from_secs(120), || {
            !matches!(
                self.deployment(deployment.id).state,
                DeploymentState::Queued | DeploymentState::Running
            )
        });
        assert!(done, "deployment {} did not finish", deployment.id);
        self.deployment(deployment.id)
    }

    fn lines(&self, deployment: &Deployment) -> Vec<LogLineRecord> {
        self.runtime
            .block_on(
                self.store
                    .read_log(deployment.id, LogCursor::START, 100_000),
            )
            .unwrap()
            .lines
    }

    /// The texts of the lines labelled `label` (`Test@win-01`, `Report`).
    fn texts(&self, deployment: &Deployment, label: &str) -> Vec<String> {
        self.lines(deployment)
            .into_iter()
            .filter(|l| l.step.as_deref() == Some(label))
            .map(|l| l.text)
            .collect()
    }

    fn all_text(&self, deployment: &Deployment) -> String {
        self.lines(deployment)
            .iter()
            .map(|l| format!("[{}] {}", l.step.as_deref().unwrap_or("-"), l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[test]
fn a_roles_step_runs_only_on_its_agents_and_the_next_step_reads_their_outputs() {
    let mut world = World::new(
        r#"  - Name: Optional
    Roles: [gpu]
    WhenNoAgents: skip
    Run: echo never
  - Name: Test
    Roles: [ps]
    Run: |
      echo "on $TAKO_AGENT_NAME in #{Octopus.Environment.Name}: $(cat app.txt)"
      echo "key #{ApiKey}"
      if [ -e .git ]; then echo "a git directory"; else echo "files only"; fi
      set_octopusvariable Answer "42 from #{Octopus.Machine.Name}"
  - Name: Report
    Run: |
      echo "answer #{Octopus.Action[Test].Output[win-01].Answer}"
"#,
    );
    // The Production agent with the role is watched on the wire too.
    let win_wire = FaultProxy::start_recording(&world.server().address);
    let dev_wire = FaultProxy::start_recording(&world.server().address);
    let _win = world.agent_via("win-01", "Production", "ps", &win_wire.url());
    let _linux = world.agent("linux-01", "Production", "linux");
    let _dev = world.agent_via("dev-01", "DevTest", "ps", &dev_wire.url());
    let first = world.push("main", "app.txt", "v1");
    // The project exists now (auto-registered): a secret for Production.
    let set = Command::new(tako_bin())
        .args([
            "var",
            "set",
            "ApiKey",
            "--project",
            "Demo",
            "--env",
            "Production",
            "--sensitive",
        ])
        .env("TAKO_SERVER", &world.server().url)
        .env("TAKO_TOKEN", &world.token)
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(CANARY.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(set.status.success(), "{set:?}");
    world.finished(&first);

    let deployment = world.push("main", "app.txt", "v2");
    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Success, "{log}");
    assert_eq!(
        world.texts(&deployment, "Test@win-01"),
        [
            "on win-01 in Production: v2",
            "key ********",
            "files only",
            "Output variable Octopus.Action[Test].Output.Answer = 42 from win-01"
        ],
        "{log}"
    );
    assert!(
        world.texts(&deployment, "Test@linux-01").is_empty()
            && world.texts(&deployment, "Test@dev-01").is_empty()
            && world
                .texts(&deployment, "Test")
                .iter()
                .all(|l| !l.starts_with("on ")),
        "only win-01 ran the step: {log}"
    );
    assert!(
        world
            .texts(&deployment, "Report")
            .iter()
            .any(|t| t == "answer 42 from win-01"),
        "{log}"
    );
    assert!(
        log.contains("no agent in Production has any of the roles gpu"),
        "the optional step says why it was skipped: {log}"
    );
    assert!(!log.contains("never"), "{log}");
    assert!(!log.contains(CANARY), "{log}");
    // win-01 needed the secret and got it; what it sent back was masked.
    assert!(win_wire.saw(CANARY.as_bytes()));
    assert!(
        !String::from_utf8_lossy(&win_wire.sent()).contains(CANARY),
        "the agent sent the secret back unmasked"
    );

    // DevTest: dev-01 runs the step; the Production secret never reaches it.
    let dev = world.push("develop", "app.txt", "v3");
    let dev = world.finished(&dev);
    assert_eq!(
        dev.state,
        DeploymentState::Success,
        "{}",
        world.all_text(&dev)
    );
    assert_eq!(
        world.texts(&dev, "Test@dev-01")[0],
        "on dev-01 in DevTest: v3"
    );
    assert!(
        dev_wire.connections() > 0 && !dev_wire.saw(CANARY.as_bytes()),
        "the Production secret crossed the wire to the DevTest agent"
    );

    // A step whose role no agent has fails with the spec's message.
    let steps = "  - Name: Nobody\n    Roles: [nobody]\n    Run: echo never\n";
    let failing = world.push("main", "takofile.yml", &takofile(steps));
    let failing = world.finished(&failing);
    assert_eq!(failing.state, DeploymentState::Failed);
    let error = failing.error.clone().unwrap_or_default();
    assert!(
        error.contains("no agent in Production has any of the roles nobody"),
        "{error}"
    );
}

/// `start win-01 <ns>` … `end win-01 <ns>` of each agent, from the log.
fn spans_of(world: &World, deployment: &Deployment, agents: &[&str]) -> Vec<(u128, u128)> {
    agents
        .iter()
        .map(|agent| {
            let texts = world.texts(deployment, &format!("Test@{agent}"));
            let at = |word: &str| -> u128 {
                texts
                    .iter()
                    .find_map(|t| t.strip_prefix(&format!("{word} {agent} ")))
                    .unwrap_or_else(|| panic!("no {word} line of {agent}: {texts:?}"))
                    .parse()
                    .unwrap()
            };
            (at("start"), at("end"))
        })
        .collect()
}

#[test]
fn two_agents_run_a_step_in_parallel_or_one_at_a_time_and_one_failing_fails_it() {
    let timed = r#"      echo "start $TAKO_AGENT_NAME $(date +%s%N)"
      sleep 1.5
      echo "end $TAKO_AGENT_NAME $(date +%s%N)"
"#;
    let mut world = World::new(&format!(
        "  - Name: Test\n    Roles: [ps]\n    Run: |\n{timed}      if [ \"$TAKO_AGENT_NAME\" = win-02 ]; then echo broken; exit 3; fi\n  - Name: Announce\n    Condition: Always\n    Run: |\n      echo \"announced: #{{Tako.Deployment.Error}}\"\n"
    ));
    let _one = world.agent("win-01", "Production", "ps");
    let _two = world.agent("win-02", "Production", "ps");

    let parallel = world.push("main", "app.txt", "v1");
    let parallel = world.finished(&parallel);
    let log = world.all_text(&parallel);
    assert_eq!(parallel.state, DeploymentState::Failed, "{log}");
    let error = parallel.error.clone().unwrap_or_default();
    assert!(error.contains("on agent win-02"), "{error}");
    assert!(!error.contains("on agent win-01"), "{error}");
    let spans = spans_of(&world, &parallel, &["win-01", "win-02"]);
    assert!(
        spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1,
        "both ran at once: {spans:?}"
    );
    let announced: Vec<String> = world
        .texts(&parallel, "Announce")
        .into_iter()
        .filter(|t| t.starts_with("announced:"))
        .collect();
    assert_eq!(announced.len(), 1, "{log}");
    assert!(announced[0].contains("win-02"), "{announced:?}");

    // MaxParallelism: 1, both succeeding: one after the other.
    let steps =
        format!("  - Name: Test\n    Roles: [ps]\n    MaxParallelism: 1\n    Run: |\n{timed}");
    let serial = world.push("main", "takofile.yml", &takofile(&steps));
    let serial = world.finished(&serial);
    let log = world.all_text(&serial);
    assert_eq!(serial.state, DeploymentState::Success, "{log}");
    let mut spans = spans_of(&world, &serial, &["win-01", "win-02"]);
    spans.sort_unstable();
    assert!(spans[0].1 <= spans[1].0, "one at a time: {spans:?}");
    assert!(log.contains("1 at a time"), "{log}");
}

/// A step printing `line N` every 50 ms, `count` lines.
fn numbered_step(count: u32, marker: &str) -> String {
    format!(
        "  - Name: Test\n    Roles: [ps]\n    Run: |\n      for i in $(seq 1 {count}); do echo \"line $i\"; sleep 0.05; done # {marker}\n"
    )
}

fn numbered(texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .filter(|t| t.starts_with("line "))
        .cloned()
        .collect()
}

#[test]
fn a_network_cut_of_twenty_seconds_loses_no_line_and_stores_one_outcome() {
    let marker = unique_marker("agent-cut");
    let mut world = World::new(&numbered_step(600, &marker));
    let wire = FaultProxy::start(&world.server().address);
    let agent = world.agent_via("win-01", "Production", "ps", &wire.url());
    let deployment = world.push("main", "app.txt", "v1");
    assert!(
        wait_until(Duration::from_secs(60), || {
            numbered(&world.texts(&deployment, "Test@win-01")).len() >= 20
        }),
        "the step's lines arrive: {}",
        world.all_text(&deployment)
    );
    wire.cut();
    std::thread::sleep(Duration::from_secs(20));
    wire.heal();
    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Success, "{log}");
    let expected: Vec<String> = (1..=600).map(|i| format!("line {i}")).collect();
    assert_eq!(
        numbered(&world.texts(&deployment, "Test@win-01")),
        expected,
        "every line exactly once, in order"
    );
    assert_eq!(
        log.matches("Agent win-01 succeeded").count(),
        1,
        "one outcome: {log}"
    );
    assert!(
        agent
            .output()
            .iter()
            .any(|l| l.contains("Connected to the server again")),
        "{:?}",
        agent.output()
    );
}

#[test]
fn an_agent_killed_mid_step_is_interrupted_within_its_lease_and_a_restarted_one_takes_new_work() {
    let marker = unique_marker("agent-killed");
    let steps = format!(
        "  - Name: Test\n    Roles: [ps]\n    Run: |\n      echo begin\n      python3 -c 'import time; time.sleep(300)' {marker}\n"
    );
    let mut world = World::new(&steps);
    let mut agent = world.agent("win-01", "Production", "ps");
    let deployment = world.push("main", "app.txt", "v1");
    assert!(wait_until(Duration::from_secs(60), || {
        world.texts(&deployment, "Test@win-01") == ["begin"]
    }));
    agent.kill();
    let killed_at = Instant::now();
    let deployment = world.finished(&deployment);
    let took = killed_at.elapsed();
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Failed, "{log}");
    let error = deployment.error.clone().unwrap_or_default();
    assert!(
        error.contains("agent win-01 stopped answering") && error.contains("not run again"),
        "{error}"
    );
    assert!(
        took <= Duration::from_secs(75),
        "interrupted within the 60 s lease (and a poll): {took:?}"
    );
    eprintln!("agent killed → job Interrupted and deployment failed in {took:?}");
    assert_eq!(
        log.matches("Running on 1 agent").count(),
        1,
        "the step is not run again: {log}"
    );

    // The orphaned step still runs; a restarted agent stops it, then works.
    assert!(
        !processes_with(&marker).is_empty(),
        "the step outlived its agent"
    );
    let agent = world.restart_agent("win-01");
    assert!(
        wait_until(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "the previous life's step is stopped: {:?}",
        agent.output()
    );
    assert!(
        agent
            .output()
            .iter()
            .any(|l| l.contains("the previous run left running")),
        "{:?}",
        agent.output()
    );
    let steps = "  - Name: Test\n    Roles: [ps]\n    Run: echo again on $TAKO_AGENT_NAME\n";
    let next = world.push("main", "takofile.yml", &takofile(steps));
    let next = world.finished(&next);
    assert_eq!(
        next.state,
        DeploymentState::Success,
        "{}",
        world.all_text(&next)
    );
    assert_eq!(world.texts(&next, "Test@win-01"), ["again on win-01"]);
}

#[test]
fn a_cancel_reaches_the_agents_step_within_a_heartbeat_and_leaves_no_process() {
    let marker = unique_marker("agent-cancelled");
    let steps = format!(
        "  - Name: Test\n    Roles: [ps]\n    Run: |\n      echo started\n      python3 -c 'import time; time.sleep(300)' {marker}\n      echo not reached\n  - Name: After\n    Condition: Always\n    Run: echo after the cancel\n"
    );
    let mut world = World::new(&steps);
    let _agent = world.agent("win-01", "Production", "ps");
    let deployment = world.push("main", "app.txt", "v1");
    assert!(wait_until(Duration::from_secs(60), || {
        world.texts(&deployment, "Test@win-01") == ["started"]
    }));
    assert!(!processes_with(&marker).is_empty(), "the step runs");
    // The agents list shows what the agent runs now.
    let listed: serde_json::Value =
        serde_json::from_str(&world.ok(&["agent", "list", "--output", "json"])).unwrap();
    let job = &listed[0]["current_job"];
    assert_eq!(job["deployment"], deployment.id.0, "{listed}");
    assert_eq!(job["step"], "Test", "{listed}");
    let table = world.ok(&["agent", "list"]);
    assert!(
        table.contains(&format!("deployment {}: Test", deployment.id.0)),
        "{table}"
    );
    let asked = Instant::now();
    world.ok(&["cancel", &deployment.id.to_string()]);
    assert!(
        wait_until(Duration::from_secs(15), || processes_with(&marker)
            .is_empty()),
        "the agent's step stops within a heartbeat (10 s)"
    );
    eprintln!("cancel → the agent's step stopped in {:?}", asked.elapsed());
    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Cancelled, "{log}");
    let listed: serde_json::Value =
        serde_json::from_str(&world.ok(&["agent", "list", "--output", "json"])).unwrap();
    assert!(listed[0].get("current_job").is_none(), "idle: {listed}");
    assert!(!log.contains("not reached"), "{log}");
    assert!(log.contains("Agent win-01 cancelled"), "{log}");
    assert_eq!(
        world
            .texts(&deployment, "After")
            .iter()
            .filter(|t| *t == "after the cancel")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn a_server_killed_mid_step_resumes_the_deployment_when_it_is_back() {
    let steps = r#"  - Name: Build
    Run: |
      echo built
      set_octopusvariable Artifact "app-#{Octopus.Release.Number}.zip"
      set_octopusvariable Token "build-secret-Rr81" -sensitive
  - Name: Test
    Roles: [ps]
    Run: |
      echo begin
      sleep 4
      for i in $(seq 1 300); do echo "line $i"; done
      set_octopusvariable Result passed
  - Name: Report
    Run: |
      echo "report #{Octopus.Action[Build].Output.Artifact} #{Octopus.Action[Test].Output[win-01].Result} #{Octopus.Action[Build].Output.Token}"
"#;
    let mut world = World::new(steps);
    // The agent knows the proxy's address; the restarted server listens on
    // another port, and the proxy follows it.
    let wire = FaultProxy::start(&world.server().address);
    let agent = world.agent_via("win-01", "Production", "ps", &wire.url());
    let deployment = world.push("main", "app.txt", "v1");
    let test_running = || {
        let steps = world
            .runtime
            .block_on(world.store.list_steps(deployment.id))
            .unwrap();
        let kept = world
            .runtime
            .block_on(world.store.step_outputs(deployment.id))
            .unwrap();
        steps
            .get(1)
            .is_some_and(|s| s.state == tako_store::StepRunState::Running)
            && kept.len() == 1
    };
    assert!(
        wait_until(Duration::from_secs(60), || test_running()
            && world.texts(&deployment, "Test@win-01") == ["begin"]),
        "steps {:?}, outputs kept {:?}",
        world
            .runtime
            .block_on(world.store.list_steps(deployment.id)),
        world
            .runtime
            .block_on(world.store.step_outputs(deployment.id))
            .map(|k| k.len()),
    );
    world.kill_server();
    // The agent finishes the step without the server and keeps its outcome.
    let spool = world.agent_dir("win-01").join("spool");
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::fs::read_dir(&spool)
                .unwrap()
                .flatten()
                .any(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains("\"outcome\"")))
        }),
        "the outcome is spooled: {:?}",
        agent.output()
    );
    let address = world.restart_server().address.clone();
    wire.retarget(&address);
    assert!(
        world
            .server()
            .startup_output
            .contains("1 deployment(s) were waiting on agents"),
        "{}",
        world.server().startup_output
    );

    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Success, "{log}");
    assert_eq!(log.matches("built").count(), 1, "Build ran once: {log}");
    let test = world.texts(&deployment, "Test@win-01");
    assert_eq!(test.iter().filter(|t| *t == "begin").count(), 1, "{log}");
    let expected: Vec<String> = (1..=300).map(|i| format!("line {i}")).collect();
    assert_eq!(numbered(&test), expected, "every line once, in order");
    assert!(
        world
            .texts(&deployment, "Report")
            .iter()
            .any(|t| t == "report app-1.0.0.1.zip passed ********"
                || (t.starts_with("report app-") && t.ends_with(".zip passed ********"))),
        "the resumed deployment read the outputs of before and after the restart: {log}"
    );
    assert!(log.contains("it resumes there"), "{log}");
    assert!(!log.contains("build-secret-Rr81"), "{log}");
    assert_eq!(
        log.matches("Agent win-01 succeeded").count(),
        1,
        "one outcome: {log}"
    );
}

#[test]
fn a_server_killed_during_a_one_at_a_time_step_gives_the_next_agent_its_job_after_the_restart() {
    let steps = r#"  - Name: Test
    Roles: [ps]
    MaxParallelism: 1
    Run: |
      echo "start $TAKO_AGENT_NAME"
      sleep 3
      echo "end $TAKO_AGENT_NAME"
"#;
    let mut world = World::new(steps);
    let wire = FaultProxy::start(&world.server().address);
    let _one = world.agent_via("win-01", "Production", "ps", &wire.url());
    let _two = world.agent_via("win-02", "Production", "ps", &wire.url());
    let deployment = world.push("main", "app.txt", "v1");
    // The first agent's job runs; the second agent's is not created yet.
    let first = || {
        ["win-01", "win-02"].into_iter().find(|agent| {
            world
                .texts(&deployment, &format!("Test@{agent}"))
                .contains(&format!("start {agent}"))
        })
    };
    assert!(
        wait_until(Duration::from_secs(60), || first().is_some()),
        "{}",
        world.all_text(&deployment)
    );
    let first = first().unwrap();
    let second = if first == "win-01" {
        "win-02"
    } else {
        "win-01"
    };
    let jobs = world
        .runtime
        .block_on(world.store.list_jobs(deployment.id))
        .unwrap();
    assert_eq!(jobs.len(), 1, "one at a time: {jobs:?}");
    world.kill_server();
    let address = world.restart_server().address.clone();
    wire.retarget(&address);

    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Success, "{log}");
    for agent in [first, second] {
        assert_eq!(
            world.texts(&deployment, &format!("Test@{agent}")),
            [format!("start {agent}"), format!("end {agent}")],
            "{agent} ran the step once: {log}"
        );
    }
    assert!(
        log.contains(&format!("Still to run on 1 agent ({second}), 1 at a time")),
        "{log}"
    );
    let jobs = world
        .runtime
        .block_on(world.store.list_jobs(deployment.id))
        .unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let spans: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j.agent_name.clone(),
                j.started_at.unwrap(),
                j.finished_at.unwrap(),
            )
        })
        .collect();
    let (before, after) = if spans[0].0 == first {
        (&spans[0], &spans[1])
    } else {
        (&spans[1], &spans[0])
    };
    assert!(before.2 <= after.1, "one after the other: {spans:?}");
}

#[test]
fn a_job_its_agent_never_takes_fails_after_the_connect_timeout() {
    let origin = Origin::new(&takofile(
        "  - Name: Test\n    Roles: [ps]\n    Run: echo never\n",
    ));
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &["--auto-register-projects"],
        &[
            ("TAKO_WEBHOOK_SECRET", SECRET),
            ("TAKO_AGENT_CONNECT_TIMEOUT", "2s"),
        ],
    );
    let mut world = World {
        origin,
        token: server.token.clone().unwrap(),
        server: Some(server),
        store: Arc::new(SqliteStore::open(data.path.join("tako.db")).unwrap()),
        data,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        agents_dir: tempfile::tempdir().unwrap(),
        pushes: 0,
    };
    // Enrolled (so chosen), but no `tako agent run` ever asks for work.
    let token = world.ok(&[
        "agent",
        "enroll-token",
        "--env",
        "Production",
        "--role",
        "ps",
        "--name",
        "win-01",
        "--auto-approve",
    ]);
    let enrolled = tako_test_support::http::request(
        &world.server().address,
        "POST",
        "/api/v1/agent/enroll",
        &[("Content-Type", "application/json")],
        serde_json::json!({"token": token.trim(), "name": "x", "version": env!("CARGO_PKG_VERSION"), "protocol": 1})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(enrolled.status, 201, "{}", enrolled.text());
    let deployment = world.push("main", "app.txt", "v1");
    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Failed, "{log}");
    assert!(
        deployment
            .error
            .as_deref()
            .is_some_and(|e| e.contains("agent win-01 did not take the job")),
        "{log}"
    );
}

#[test]
fn a_roles_step_with_retries_gives_its_agent_a_new_job_per_attempt() {
    let counter = tempfile::tempdir().unwrap();
    let count = counter.path().join("tries");
    let mut world = World::new(&format!(
        r#"  - Name: Test
    Roles: [ps]
    Retries: 2
    RetryDelay: 0s
    Run: |
      n=$(cat '{count}' 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > '{count}'
      echo "try $n on $TAKO_AGENT_NAME"
      set_octopusvariable Try "$n"
      if [ "$n" -lt 3 ]; then exit 7; fi
  - Name: Report
    Run: |
      echo "counted try #{{Octopus.Action[Test].Output.Try}}"
"#,
        count = count.display()
    ));
    let _win = world.agent("win-01", "Production", "ps");
    let deployment = world.push("main", "app.txt", "v1");
    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Success, "{log}");
    // Three jobs, one per attempt, each run once by the agent.
    let jobs = world
        .runtime
        .block_on(world.store.list_jobs(deployment.id))
        .unwrap();
    let attempts: Vec<(u32, &str, tako_store::JobState)> = jobs
        .iter()
        .map(|j| (j.attempt, j.agent_name.as_str(), j.state))
        .collect();
    use tako_store::JobState::{Failed, Success};
    assert_eq!(
        attempts,
        [
            (1, "win-01", Failed),
            (2, "win-01", Failed),
            (3, "win-01", Success)
        ],
        "{log}"
    );
    let ids: std::collections::HashSet<&str> = jobs.iter().map(|j| j.id.0.as_str()).collect();
    assert_eq!(ids.len(), 3, "a new job per attempt");
    assert_eq!(
        world.texts(&deployment, "Test@win-01"),
        [
            "try 1 on win-01",
            "Output variable Octopus.Action[Test].Output.Try = 1",
            "try 2 on win-01",
            "Output variable Octopus.Action[Test].Output.Try = 2",
            "try 3 on win-01",
            "Output variable Octopus.Action[Test].Output.Try = 3",
        ],
        "{log}"
    );
    // Each attempt labelled, as a local step's are, and per agent.
    for (n, ended) in [(1, "failed"), (2, "failed"), (3, "succeeded")] {
        assert!(
            log.contains(&format!("Step 'Test': attempt {n} of 3")),
            "attempt {n}: {log}"
        );
        assert!(
            log.contains(&format!("(job job-{}-0-", deployment.id.0))
                && log.lines().any(|l| l.contains("Waiting for agent win-01")
                    && l.contains(&format!("attempt {n} of 3"))),
            "attempt {n} waits for its job: {log}"
        );
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("Agent win-01 {ended}"))
                    && l.contains(&format!("(attempt {n} of 3)"))),
            "attempt {n} {ended}: {log}"
        );
    }
    // Only the attempt that counted left its output.
    assert!(
        world
            .texts(&deployment, "Report")
            .iter()
            .any(|t| t == "counted try 3"),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "3");
}

/// Sets a project variable of Demo with the CLI (the value on standard
/// input, as secrets are given).
fn set_variable(world: &World, args: &[&str], value: &str) {
    let set = Command::new(tako_bin())
        .args(["var", "set"])
        .args(args)
        .args(["--project", "Demo"])
        .env("TAKO_SERVER", &world.server().url)
        .env("TAKO_TOKEN", &world.token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(value.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(set.status.success(), "{set:?}");
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn variables_scoped_to_a_role_reach_only_the_steps_and_agents_of_that_role() {
    const DB_CANARY: &str = "db-only-canary-Zr81p";
    let mut world = World::new(
        r#"  - Name: Web
    Roles: [web]
    Run: |
      echo "web: #{Greeting}, key [#{DbKey}], color [#{Color}]"
  - Name: Db
    Roles: [db]
    Run: |
      echo "db: #{Greeting}, key #{DbKey}, color [#{Color}]"
  - Name: Both
    Roles: [web, db]
    Run: |
      echo "both on #{Tako.Agent.Name}: #{Greeting}, key [#{DbKey}], color [#{Color}]"
  - Name: Server
    Run: |
      echo "server: #{Greeting}, color [#{Color}]"
Variables:
  - Name: Color
    Value: blue
    Roles: [web]
"#,
    );
    let web_wire = FaultProxy::start_recording(&world.server().address);
    let db_wire = FaultProxy::start_recording(&world.server().address);
    let _web = world.agent_via("web-01", "Production", "web", &web_wire.url());
    let _db = world.agent_via("db-01", "Production", "db", &db_wire.url());
    let first = world.push("main", "app.txt", "v1");
    world.finished(&first);
    // The project exists now: a secret for the db role, a greeting for all
    // and one for each role.
    set_variable(&world, &["DbKey", "--role", "db", "--sensitive"], DB_CANARY);
    set_variable(&world, &["Greeting"], "hello all");
    set_variable(&world, &["Greeting", "--role", "WEB"], "hello web");
    set_variable(&world, &["Greeting", "--role", "db"], "hello db");
    let listed = world.ok(&["var", "list", "--project", "Demo"]);
    assert!(
        listed.contains("roles WEB") && listed.contains("roles db"),
        "{listed}"
    );

    let deployment = world.push("main", "app.txt", "v2");
    let deployment = world.finished(&deployment);
    let log = world.all_text(&deployment);
    assert_eq!(deployment.state, DeploymentState::Success, "{log}");
    assert_eq!(
        world.texts(&deployment, "Web@web-01"),
        ["web: hello web, key [#{DbKey}], color [blue]"],
        "{log}"
    );
    assert_eq!(
        world.texts(&deployment, "Db@db-01"),
        ["db: hello db, key ********, color [#{Color}]"],
        "{log}"
    );
    // One step on both agents: each job holds the values of the roles its
    // agent shares with the step, not those of the other's.
    assert_eq!(
        world.texts(&deployment, "Both@web-01"),
        ["both on web-01: hello web, key [#{DbKey}], color [blue]"],
        "{log}"
    );
    assert_eq!(
        world.texts(&deployment, "Both@db-01"),
        ["both on db-01: hello db, key [********], color [#{Color}]"],
        "{log}"
    );
    assert!(
        world
            .texts(&deployment, "Server")
            .iter()
            .any(|t| t == "server: hello all, color [#{Color}]"),
        "{log}"
    );
    assert!(!log.contains(DB_CANARY), "{log}");
    // The db agent got the secret (and sent it back masked); the web agent
    // never, though it ran a step of the db role too: not in its jobs, not
    // in their lists of values to mask, not on disk.
    assert!(
        db_wire.saw(DB_CANARY.as_bytes()),
        "the db agent's job holds its secret"
    );
    assert!(!String::from_utf8_lossy(&db_wire.sent()).contains(DB_CANARY));
    assert!(web_wire.connections() > 0);
    assert!(
        !web_wire.saw(DB_CANARY.as_bytes()),
        "the db role's secret crossed the wire to the web agent"
    );
    for file in files_under(&world.agent_dir("web-01")) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes
                .windows(DB_CANARY.len())
                .any(|w| w == DB_CANARY.as_bytes()),
            "{} holds the db role's secret",
            file.display()
        );
    }

    // The plan shows, per agent of the step, what its job would hold; the
    // secret masked, in the API's answer and the CLI's text alike.
    let auth = format!("Bearer {}", world.token);
    let answer = tako_test_support::http::request(
        &world.server().address,
        "POST",
        "/api/v1/projects/Demo/plans",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"environment": "Production"}"#,
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(!answer.text().contains(DB_CANARY), "{}", answer.text());
    let plan: serde_json::Value = answer.json();
    let both = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Both")
        .unwrap()
        .clone();
    let mut agents: Vec<&str> = both["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    agents.sort_unstable();
    assert_eq!(agents, ["db-01", "web-01"], "{both}");
    let job_value = |agent: &str, name: &str| {
        let job = both["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["agent"] == agent)
            .unwrap_or_else(|| panic!("no job for {agent}: {both}"));
        job["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| (v["value"].clone(), v["sensitive"].clone()))
    };
    assert_eq!(
        job_value("web-01", "Greeting"),
        Some(("hello web".into(), false.into()))
    );
    assert_eq!(
        job_value("web-01", "Color"),
        Some(("blue".into(), false.into()))
    );
    assert_eq!(job_value("web-01", "DbKey"), None);
    assert_eq!(
        job_value("db-01", "Greeting"),
        Some(("hello db".into(), false.into()))
    );
    assert_eq!(
        job_value("db-01", "DbKey"),
        Some(("********".into(), true.into()))
    );
    assert_eq!(job_value("db-01", "Color"), None);
    assert_eq!(
        job_value("db-01", "Tako.Agent.Name"),
        Some(("db-01".into(), false.into()))
    );
    let shown = world.ok(&["plan", "--project", "Demo", "--env", "Production"]);
    assert!(!shown.contains(DB_CANARY), "{shown}");
    let web_part = shown
        .split("on web-01 (roles web):")
        .nth(1)
        .unwrap_or_else(|| panic!("{shown}"));
    let db_part = shown
        .split("on db-01 (roles db):")
        .nth(1)
        .unwrap_or_else(|| panic!("{shown}"));
    let until_next = |part: &str| -> String {
        part.lines()
            .skip(1)
            .take_while(|l| l.starts_with("         "))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (web_shown, db_shown) = (until_next(web_part), until_next(db_part));
    assert!(web_shown.contains("Greeting = hello web"), "{shown}");
    assert!(!web_shown.contains("DbKey"), "{shown}");
    assert!(db_shown.contains("Greeting = hello db"), "{shown}");
    assert!(db_shown.contains("DbKey = ********"), "{shown}");
}
