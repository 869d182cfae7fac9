//! The step engine end to end: real processes, real step templates in the
//! OctopusDeploy/Library format, a real HTTP receiver on 127.0.0.1, and
//! cancellation.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tako_core::log::{LogLevel, LogStream};
use tako_core::step::{SkipReason, StepState};
use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{
    DeploymentOutcome, DeploymentPlan, DeploymentReport, RunSettings, run_deployment,
    run_deployment_with,
};
use tako_exec::executor::{
    AgentStep, Executors, LocalExecutor, ResolvedAction, ResolvedStep, StepExecutor, StepJob,
    StepOutput, StepRun,
};
use tako_exec::sink::{MemorySink, TaskLog};
use tokio_util::sync::CancellationToken;

struct Workspace {
    _root: tempfile::TempDir,
    settings: RunSettings,
}

fn workspace(files: &[(&str, &str)]) -> Workspace {
    let root = tempfile::tempdir().unwrap();
    let working_dir = root.path().join("work");
    let scratch_dir = root.path().join("scratch");
    std::fs::create_dir_all(&working_dir).unwrap();
    std::fs::create_dir_all(&scratch_dir).unwrap();
    for (path, content) in files {
        std::fs::write(working_dir.join(path), content).unwrap();
    }
    Workspace {
        _root: root,
        settings: RunSettings {
            working_dir,
            scratch_dir,
            kill_grace: Duration::from_secs(2),
        },
    }
}

fn plan(takofile: &str, environment: &str, mut variables: Vec<VariableValue>) -> DeploymentPlan {
    let takofile = tako_takofile::parse("takofile", takofile).unwrap_or_else(|d| panic!("{d}"));
    let mut all = tako_core::variables::from_takofile(&takofile);
    all.append(&mut variables);
    let variables = all;
    DeploymentPlan {
        steps: takofile.steps.unwrap(),
        facts: DeploymentFacts {
            project: "Demo".into(),
            environment: environment.into(),
            release_number: "1.2.3".into(),
            deployment_id: "deployments-7".into(),
            ..Default::default()
        },
        variables,
    }
}

fn run(
    plan: &DeploymentPlan,
    workspace: &Workspace,
    cancel: &CancellationToken,
) -> (DeploymentReport, String) {
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_deployment(plan, &workspace.settings, &sink, cancel));
    (report, sink.text())
}

/// Accepts one HTTP request and returns its request line, headers and body.
fn one_request_receiver() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T000/B000/XXXX",
        listener.local_addr().unwrap()
    );
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.to_ascii_lowercase().starts_with("content-length:") {
                length = line[15..].trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        sender
            .send((head, String::from_utf8(body).unwrap()))
            .unwrap();
    });
    (url, receiver)
}

/// A Bash template written the way the Library's Slack/webhook templates
/// are: helpers called in `$(...)`, bash-only syntax, `fail_step` on error.
const BASH_TEMPLATE: &str = r##"{
  "Id": "c8a8d0a4-0000-4000-8000-000000000001",
  "Name": "Notify - Webhook - Bash",
  "ActionType": "Octopus.Script",
  "Properties": {
    "Octopus.Action.Script.Syntax": "Bash",
    "Octopus.Action.Script.ScriptSource": "Inline",
    "Octopus.Action.Script.ScriptBody": "hook=$(get_octopusvariable \"nw_HookUrl\")\r\nwho=$(get_octopusvariable \"nw_Username\")\r\nmissing=$(get_octopusvariable \"nw_Unset\")\r\npayload='{\"username\": '\r\npayload+=\"\\\"$who\\\"\"\r\npayload+=', \"text\": \"#{Octopus.Project.Name} #{Octopus.Release.Number} to #{Octopus.Environment.Name}\"}'\r\necho \"posting to $hook (unset: [$missing])\"\r\ncurl -sS -X POST -H 'Content-Type: application/json' --data \"$payload\" \"$hook\"\r\nif [[ $? -ne 0 ]]\r\nthen\r\n    fail_step \"Failed!\"\r\nfi\r\nset_octopusvariable \"Sent\" \"True\""
  },
  "Parameters": [
    { "Name": "nw_HookUrl", "DefaultValue": "", "DisplaySettings": { "Octopus.ControlType": "Sensitive" } },
    { "Name": "nw_Username", "DefaultValue": "Octopus Deploy", "DisplaySettings": { "Octopus.ControlType": "SingleLineText" } },
    { "Name": "nw_Unset", "DefaultValue": "", "DisplaySettings": { "Octopus.ControlType": "SingleLineText" } }
  ]
}"##;

/// A Python template written the way the Library's are: fallback helper
/// definitions guarded by `globals()`, `sys` used without importing it, a
/// sensitive output variable.
const PYTHON_TEMPLATE: &str = r##"{
  "Name": "Lookup - Python",
  "ActionType": "Octopus.Script",
  "Properties": {
    "Octopus.Action.Script.Syntax": "Python",
    "Octopus.Action.Script.ScriptSource": "Inline",
    "Octopus.Action.Script.ScriptBody": "if 'get_octopusvariable' not in globals():\n    def get_octopusvariable(name):\n        return ''\n\ndef get_octopusvariable_quiet(name):\n    try:\n        return get_octopusvariable(name)\n    except Exception:\n        return ''\n\nname = get_octopusvariable_quiet('Lookup.Name')\nprint('looking up ' + name + ' for ' + get_octopusvariable_quiet('Octopus.Step.Name'))\nprint('python ' + str(sys.version_info[0]))\nset_octopusvariable('Token', 'tok-' + name + '-98765', True)\nset_octopusvariable('Plain', 'visible-' + name)\n"
  },
  "Parameters": [
    { "Name": "Lookup.Name", "DefaultValue": "#{Octopus.Environment.Name | ToLower}" }
  ]
}"##;

#[test]
fn library_style_step_templates_run_unchanged() {
    let (url, requests) = one_request_receiver();
    let ws = workspace(&[
        ("notify.json", BASH_TEMPLATE),
        ("lookup.json", PYTHON_TEMPLATE),
    ]);
    let takofile = r##"
Project: Demo
Steps:
  - Name: Notify
    Uses: notify.json
    With:
      nw_HookUrl: "#{HookUrl}"
      nw_Username: Tako
  - Name: Lookup
    Uses: lookup.json
  - Name: Use outputs
    Run: |
      echo "sent=#{Octopus.Action[Notify].Output.Sent}"
      echo "plain=#{Octopus.Action[Lookup].Output.Plain}"
      echo "token=#{Octopus.Action[Lookup].Output.Token}"
"##;
    let variables =
        vec![VariableValue::new(VariableSource::Project, "HookUrl", url.clone()).sensitive()];
    let (report, log) = run(
        &plan(takofile, "Production", variables),
        &ws,
        &CancellationToken::new(),
    );
    assert!(report.succeeded(), "{log}\n{report:?}");

    let (head, body) = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        head.starts_with("POST /services/T000/B000/XXXX HTTP/1.1"),
        "{head}"
    );
    assert_eq!(
        body,
        r#"{"username": "Tako", "text": "Demo 1.2.3 to Production"}"#
    );

    assert!(log.contains("posting to ******** (unset: [])"), "{log}");
    assert!(!log.contains(&url), "the sensitive hook URL leaked:\n{log}");
    assert!(log.contains("looking up production for Lookup"), "{log}");
    assert!(log.contains("python 3"), "{log}");
    assert!(log.contains("sent=True"), "{log}");
    assert!(log.contains("plain=visible-production"), "{log}");
    assert!(log.contains("token=********"), "{log}");
    assert!(
        !log.contains("tok-production-98765"),
        "a sensitive output leaked:\n{log}"
    );
    let token = report.outputs.iter().find(|o| o.name == "Token").unwrap();
    assert!(token.sensitive);
    assert_eq!(token.value, "********");
}

#[test]
fn cancel_stops_the_running_step_and_runs_only_always_steps() {
    let ws = workspace(&[]);
    let takofile = r##"
Project: Demo
Steps:
  - Name: Long
    Run: |
      echo started
      sleep 600
  - Name: Next
    Run: echo next
  - Name: Cleanup
    Condition: Always
    Run: echo "cleaning up"
"##;
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        canceller.cancel();
    });
    let (report, log) = run(&plan(takofile, "Production", vec![]), &ws, &cancel);
    assert_eq!(report.outcome, DeploymentOutcome::Cancelled, "{log}");
    assert_eq!(report.steps[0].state, StepState::Cancelled);
    assert_eq!(
        report.steps[1].state,
        StepState::Skipped(SkipReason::Cancelled)
    );
    assert_eq!(report.steps[2].state, StepState::Success);
    assert!(log.contains("cleaning up"), "{log}");
    assert!(!log.contains("\nnext"), "{log}");
}

#[test]
fn condition_expressions_and_failure_steps() {
    let ws = workspace(&[]);
    let takofile = r##"
Project: Demo
Variables:
  - Name: Publish
    Value: "true"
    Environments: [Production]
Steps:
  - Name: Only when publishing
    Condition: "#{if Publish}true#{/if}"
    Run: echo publishing
  - Name: On failure
    Condition: Failure
    Run: echo rollback
  - Name: Excluded
    ExcludeEnvironments: [production]
    Run: echo never
"##;
    let (report, log) = run(
        &plan(takofile, "Production", vec![]),
        &ws,
        &CancellationToken::new(),
    );
    assert!(report.succeeded(), "{log}");
    assert_eq!(report.steps[0].state, StepState::Success);
    assert_eq!(
        report.steps[1].state,
        StepState::Skipped(SkipReason::NothingFailed)
    );
    assert!(matches!(
        report.steps[2].state,
        StepState::Skipped(SkipReason::Excluded { .. })
    ));

    let (report, log) = run(
        &plan(takofile, "DevTest", vec![]),
        &ws,
        &CancellationToken::new(),
    );
    assert!(report.succeeded(), "{log}");
    assert!(
        matches!(&report.steps[0].state, StepState::Skipped(SkipReason::ConditionFalse { value, .. }) if value.is_empty()),
        "{:?}",
        report.steps[0].state
    );
    assert!(log.contains("never"), "{log}");
}

#[test]
fn write_file_content_never_reaches_the_log() {
    let ws = workspace(&[]);
    let takofile = r##"
Project: Demo
Steps:
  - Name: Creds
    Uses: write-file
    With:
      Path: .creds
      Content: '{"ApiKey":"#{ApiKey}","User":"bob-the-builder"}'
  - Name: Check
    Run: test "$(cat .creds)" = '{"ApiKey":"key-123456","User":"bob-the-builder"}' && echo creds-ok
"##;
    let variables =
        vec![VariableValue::new(VariableSource::DeployTime, "ApiKey", "key-123456").sensitive()];
    let (report, log) = run(
        &plan(takofile, "Production", variables),
        &ws,
        &CancellationToken::new(),
    );
    assert!(report.succeeded(), "{log}");
    assert!(log.contains("creds-ok"), "{log}");
    assert!(
        !log.contains("bob-the-builder"),
        "write-file content was logged:\n{log}"
    );
}

#[test]
fn symbolic_links_out_of_the_checkout_are_refused_alike() {
    let ws = workspace(&[]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("notify.json"), BASH_TEMPLATE).unwrap();
    std::fs::write(outside.path().join("run.sh"), "echo outside-script-ran\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.settings.working_dir.join("out")).unwrap();
    let takofile = r##"
Project: Demo
Steps:
  - Name: Template
    Condition: Always
    Uses: out/notify.json
    With:
      nw_HookUrl: http://127.0.0.1:9/
  - Name: Directory
    Condition: Always
    WorkingDirectory: out
    Run: echo "ran in $(pwd)"
  - Name: Script file
    Condition: Always
    Script: out/run.sh
  - Name: Write
    Condition: Always
    Uses: write-file
    With:
      Path: out/written
      Content: x
"##;
    let (report, log) = run(
        &plan(takofile, "Production", vec![]),
        &ws,
        &CancellationToken::new(),
    );
    let expected = [
        r#"Uses "out/notify.json": leads outside the working directory through a symbolic link"#,
        r#"WorkingDirectory "out": leads outside the working directory through a symbolic link"#,
        r#"Script "out/run.sh": leads outside the working directory through a symbolic link"#,
        r#"Path "out/written" leads outside the working directory through a symbolic link"#,
    ];
    for (step, expected) in report.steps.iter().zip(expected) {
        match &step.state {
            StepState::Failed { reason } => {
                assert!(reason.starts_with(expected), "{}: {reason}", step.name);
                assert!(reason.contains("inside the checkout"), "{reason}");
            }
            other => panic!("{} was not refused: {other:?}\n{log}", step.name),
        }
    }
    assert!(!log.contains("ran in"), "{log}");
    assert!(!log.contains("outside-script-ran"), "{log}");
    assert!(!log.contains("posting to"), "{log}");
    let mut left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["notify.json", "run.sh"]);
}

/// A test-only executor: records the jobs it gets and answers with canned
/// runs (as an agent would, without running anything here).
#[derive(Default)]
struct Recording {
    jobs: std::sync::Mutex<Vec<(ResolvedStep, Option<String>)>>,
}

#[async_trait::async_trait]
impl StepExecutor for Recording {
    async fn run(
        &self,
        job: StepJob<'_>,
        log: &mut TaskLog<'_>,
        _cancel: &CancellationToken,
    ) -> StepRun {
        self.jobs
            .lock()
            .unwrap()
            .push((job.step.clone(), job.first_error.map(str::to_owned)));
        log.write(
            LogStream::Stdout,
            LogLevel::Info,
            &format!("remote ran {}", job.step.name),
        );
        let mut run = StepRun {
            state: StepState::Success,
            outputs: Vec::new(),
            artifacts: Vec::new(),
        };
        match job.step.name.as_str() {
            "Remote build" => {
                run.outputs = vec![
                    StepOutput {
                        name: "Version".into(),
                        value: "2.0.7".into(),
                        sensitive: false,
                        machine: Some("win-01".into()),
                    },
                    StepOutput {
                        name: "Token".into(),
                        value: "tok-from-the-agent-4711".into(),
                        sensitive: true,
                        machine: None,
                    },
                ];
            }
            "Remote deploy" => {
                run.state = StepState::Failed {
                    reason: "the agent said no".into(),
                };
            }
            _ => {}
        }
        run
    }
}

/// Steps named `Remote ...` go to the recording executor, the rest run here.
struct Split {
    local: LocalExecutor,
    remote: Recording,
}

impl Executors for Split {
    fn for_step(&self, step: &tako_takofile::Step) -> &dyn StepExecutor {
        if step.name.starts_with("Remote") {
            &self.remote
        } else {
            &self.local
        }
    }
}

#[test]
fn each_step_goes_to_the_executor_chosen_for_it() {
    let ws = workspace(&[]);
    let takofile = r##"
Project: Demo
Variables:
  - Name: Greeting
    Value: hello
Steps:
  - Name: Local first
    Run: echo local-one
  - Name: Remote build
    Env:
      WHO: "#{Greeting} agent"
    Run: |
      echo "#{Greeting} from #{Octopus.Environment.Name}"
  - Name: Use outputs
    Run: |
      echo "version=#{Octopus.Action[Remote build].Output.Version}"
      echo "on-win-01=#{Octopus.Action[Remote build].Output[win-01].Version}"
      echo "token=#{Octopus.Action[Remote build].Output.Token}"
  - Name: Remote deploy
    Uses: write-file
    With:
      Path: "#{Greeting}.txt"
      Content: x
  - Name: Not after a failure
    Run: echo never-runs
  - Name: Report
    Condition: Always
    Run: echo "error=#{Octopus.Deployment.Error}"
  - Name: Remote cleanup
    Condition: Always
    Run: echo cleanup
"##;
    let executors = Split {
        local: LocalExecutor::new(ws.settings.clone()),
        remote: Recording::default(),
    };
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_deployment_with(
        &plan(takofile, "Production", vec![]),
        &ws.settings,
        &sink,
        &CancellationToken::new(),
        &executors,
    ));
    let log = sink.text();

    let jobs = executors.remote.jobs.lock().unwrap().clone();
    let names: Vec<_> = jobs.iter().map(|(step, _)| step.name.as_str()).collect();
    assert_eq!(names, ["Remote build", "Remote deploy", "Remote cleanup"]);
    let (build, error_then) = &jobs[0];
    assert_eq!(build.index, 1);
    assert_eq!(error_then, &None);
    match &build.action {
        ResolvedAction::Script {
            body, variables, ..
        } => {
            assert_eq!(body.trim_end(), "echo \"hello from Production\"");
            assert!(variables.contains(&("Greeting".to_owned(), "hello".to_owned())));
        }
        other => panic!("not a script: {other:?}"),
    }
    assert!(
        build
            .env
            .contains(&("WHO".to_owned(), "hello agent".to_owned()))
    );
    assert!(
        build
            .env
            .contains(&("TAKO_PROJECT".to_owned(), "Demo".to_owned()))
    );
    match &jobs[1].0.action {
        ResolvedAction::Builtin { parameters, .. } => assert_eq!(
            parameters[0],
            (
                "Path".to_owned(),
                tako_takofile::WithValue::Text("hello.txt".to_owned())
            )
        ),
        other => panic!("not a built-in: {other:?}"),
    }
    assert!(!ws.settings.working_dir.join("hello.txt").exists());
    assert_eq!(
        jobs[2].1.as_deref(),
        Some("Step 'Remote deploy' failed: the agent said no")
    );

    assert!(log.contains("local-one"), "{log}");
    assert!(log.contains("remote ran Remote build"), "{log}");
    assert!(log.contains("version=2.0.7"), "{log}");
    assert!(log.contains("on-win-01=2.0.7"), "{log}");
    assert!(log.contains("token=********"), "{log}");
    assert!(!log.contains("tok-from-the-agent-4711"), "{log}");
    assert!(
        log.contains("error=Step 'Remote deploy' failed: the agent said no"),
        "{log}"
    );
    assert!(!log.contains("never-runs"), "{log}");
    let states: Vec<_> = report.steps.iter().map(|s| s.state.status_name()).collect();
    assert_eq!(
        states,
        [
            "Success", "Success", "Success", "Failed", "Skipped", "Success", "Success"
        ]
    );
    assert_eq!(
        report.outcome,
        DeploymentOutcome::Failed {
            error: "Step 'Remote deploy' failed: the agent said no".into()
        }
    );
    let token = report.outputs.iter().find(|o| o.name == "Token").unwrap();
    assert_eq!((token.value.as_str(), token.sensitive), ("********", true));
}

/// A test-only executor of `Roles` steps: asks the engine for the step as
/// the jobs of agents with some roles would hold it.
#[derive(Default)]
struct PerAgent {
    here: std::sync::Mutex<Option<ResolvedStep>>,
    jobs: std::sync::Mutex<Vec<std::sync::Arc<AgentStep>>>,
}

#[async_trait::async_trait]
impl StepExecutor for PerAgent {
    async fn run(
        &self,
        job: StepJob<'_>,
        log: &mut TaskLog<'_>,
        _cancel: &CancellationToken,
    ) -> StepRun {
        *self.here.lock().unwrap() = Some(job.step.clone());
        let for_agents = job
            .for_agents
            .expect("a step with Roles is resolved per agent");
        for roles in [&["web"][..], &["DB", "other"], &["extra", "WEB"]] {
            let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
            let step = for_agents.resolve_for(&roles, log).unwrap();
            self.jobs.lock().unwrap().push(step);
        }
        StepRun {
            state: StepState::Success,
            outputs: Vec::new(),
            artifacts: Vec::new(),
        }
    }
}

impl Executors for PerAgent {
    fn for_step(&self, _step: &tako_takofile::Step) -> &dyn StepExecutor {
        self
    }
}

#[test]
fn a_roles_step_is_resolved_for_each_agent_with_the_roles_it_shares_with_the_step() {
    const DB_CANARY: &str = "db-canary-Qx81";
    const ALL_SECRET: &str = "all-secret-Lm42";
    let ws = workspace(&[]);
    let takofile = r##"
Project: Demo
Variables:
  - Name: Color
    Value: blue
    Roles: [web]
  - Name: Other
    Value: other-only
    Roles: [other]
Steps:
  - Name: Both
    Roles: [web, db]
    Run: echo "color=#{Color} key=#{DbKey} other=#{Other} all=#{All}"
"##;
    let variables = vec![
        VariableValue::new(VariableSource::Project, "DbKey", DB_CANARY)
            .for_roles(["db"])
            .sensitive(),
        VariableValue::new(VariableSource::Project, "All", ALL_SECRET).sensitive(),
    ];
    let executor = PerAgent::default();
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_deployment_with(
        &plan(takofile, "Production", variables),
        &ws.settings,
        &sink,
        &CancellationToken::new(),
        &executor,
    ));
    assert!(report.succeeded(), "{}", sink.text());
    let body = |step: &ResolvedStep| match &step.action {
        ResolvedAction::Script { body, .. } => body.trim_end().to_owned(),
        other => panic!("not a script: {other:?}"),
    };
    let holds = |step: &ResolvedStep, value: &str| {
        format!("{:?}", step.action).contains(value) || format!("{:?}", step.env).contains(value)
    };
    // Here (`tako run`): the values of every role of the step; one scoped
    // to a role the step does not target never applies.
    let here = executor.here.lock().unwrap().clone().unwrap();
    assert_eq!(
        body(&here),
        format!("echo \"color=blue key={DB_CANARY} other=#{{Other}} all={ALL_SECRET}\"")
    );
    let jobs = executor.jobs.lock().unwrap().clone();
    // The web agent: its values, no secret of the db role anywhere.
    assert_eq!(
        body(&jobs[0].step),
        format!("echo \"color=blue key=#{{DbKey}} other=#{{Other}} all={ALL_SECRET}\"")
    );
    assert!(!holds(&jobs[0].step, DB_CANARY));
    assert_eq!(jobs[0].secrets, [ALL_SECRET]);
    // The db agent (with a role the step does not target): the db values.
    assert_eq!(
        body(&jobs[1].step),
        format!("echo \"color=#{{Color}} key={DB_CANARY} other=#{{Other}} all={ALL_SECRET}\"")
    );
    assert!(
        jobs[1].secrets.contains(&DB_CANARY.to_owned()),
        "{:?}",
        jobs[1]
    );
    // An agent with the same relevant roles shares the web agent's job.
    assert!(std::sync::Arc::ptr_eq(&jobs[0], &jobs[2]));
    let log = sink.text();
    assert!(
        !log.contains(DB_CANARY) && !log.contains(ALL_SECRET),
        "{log}"
    );
}

#[test]
fn a_resumed_deployment_takes_its_recorded_steps_as_done_with_their_outputs() {
    use tako_core::step::StepReport;
    use tako_exec::engine::{RecordedStep, resume_deployment_with};

    let takofile = r#"Project: Demo
Steps:
  - Name: Build
    Run: echo build ran again
  - Name: Check
    Run: echo check ran again
  - Name: Test
    Condition: Always
    Run: |
      echo "token #{Octopus.Action[Build].Output.Token}"
      echo "error #{if Tako.Deployment.Error}#{Tako.Deployment.Error}#{/if}"
  - Name: After failure
    Condition: Failure
    Run: echo failure seen
"#;
    let ws = workspace(&[]);
    let done = vec![
        RecordedStep {
            report: StepReport {
                name: "Build".into(),
                state: StepState::Success,
                duration: Duration::from_secs(1),
            },
            outputs: vec![StepOutput {
                name: "Token".into(),
                value: "resume-canary".into(),
                sensitive: true,
                machine: None,
            }],
        },
        RecordedStep {
            report: StepReport {
                name: "Check".into(),
                state: StepState::Failed {
                    reason: "exit code 2".into(),
                },
                duration: Duration::from_secs(1),
            },
            outputs: Vec::new(),
        },
    ];
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = LocalExecutor::new(ws.settings.clone());
    let report = runtime.block_on(resume_deployment_with(
        &plan(takofile, "Production", vec![]),
        &ws.settings,
        &sink,
        &CancellationToken::new(),
        &local,
        done,
    ));
    let text = sink.text();
    assert!(!text.contains("ran again"), "{text}");
    assert!(text.contains("Resuming where it stopped"), "{text}");
    // A sensitive recorded output is readable and masked.
    assert!(text.contains("token ********"), "{text}");
    assert!(!text.contains("resume-canary"), "{text}");
    // The recorded failure counts: the deployment fails with its error,
    // and the `Failure` step runs.
    assert!(
        text.contains("error Step 'Check' failed: exit code 2"),
        "{text}"
    );
    assert!(text.contains("failure seen"), "{text}");
    assert_eq!(report.steps.len(), 4);
    assert_eq!(
        report.outcome,
        DeploymentOutcome::Failed {
            error: "Step 'Check' failed: exit code 2".into()
        }
    );
}

#[test]
fn a_step_failing_twice_then_passing_with_two_retries_succeeds_with_three_labelled_attempts() {
    let ws = workspace(&[]);
    let takofile = r#"
Project: Demo
Steps:
  - Name: Flaky
    Retries: 2
    RetryDelay: 0s
    Run: |
      n=$(( $(cat counter 2>/dev/null || echo 0) + 1 ))
      echo $n > counter
      echo "try number $n"
      set_octopusvariable "Try" "$n"
      [ $n -ge 3 ] || { echo "not yet" >&2; exit 1; }
  - Name: Reads
    Run: |
      echo "the last try was #{Octopus.Action[Flaky].Output.Try}"
"#;
    let (report, log) = run(
        &plan(takofile, "Production", vec![]),
        &ws,
        &CancellationToken::new(),
    );
    assert!(report.succeeded(), "{log}");
    assert_eq!(report.steps[0].state, StepState::Success);
    let attempts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Step 'Flaky': attempt"))
        .collect();
    assert_eq!(attempts.len(), 5, "{log}");
    assert!(attempts[0].ends_with("attempt 1 of 3"), "{log}");
    assert!(
        attempts[1]
            .contains("attempt 1 of 3 failed: the script exited with code 1; trying again in 0s"),
        "{log}"
    );
    assert!(attempts[2].ends_with("attempt 2 of 3"), "{log}");
    assert!(attempts[3].contains("attempt 2 of 3 failed"), "{log}");
    assert!(attempts[4].ends_with("attempt 3 of 3"), "{log}");
    for n in 1..=3 {
        assert!(log.contains(&format!("try number {n}")), "{log}");
    }
    // Only the attempt that counted leaves its output.
    let tries: Vec<&str> = report
        .outputs
        .iter()
        .filter(|o| o.name == "Try")
        .map(|o| o.value.as_str())
        .collect();
    assert_eq!(tries, ["3"]);
    assert!(log.contains("the last try was 3"), "{log}");
    assert_eq!(
        std::fs::read_to_string(ws.settings.working_dir.join("counter")).unwrap(),
        "3\n"
    );
}

#[test]
fn a_step_failing_every_attempt_fails_after_its_retries_and_cancel_ends_the_wait() {
    let ws = workspace(&[]);
    let takofile = r#"
Project: Demo
Steps:
  - Name: Broken
    Retries: 1
    RetryDelay: 0s
    Run: echo attempt >> count; exit 3
"#;
    let (report, log) = run(
        &plan(takofile, "Production", vec![]),
        &ws,
        &CancellationToken::new(),
    );
    assert!(!report.succeeded(), "{log}");
    assert!(
        matches!(&report.steps[0].state, StepState::Failed { reason } if reason.contains("code 3")),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.settings.working_dir.join("count")).unwrap(),
        "attempt\nattempt\n"
    );
    assert!(log.contains("attempt 2 of 2"), "{log}");

    // A cancel during the delay ends the step at once, without another attempt.
    let ws = workspace(&[]);
    let slow = takofile.replace("RetryDelay: 0s", "RetryDelay: 1h");
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    let timer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        canceller.cancel();
    });
    let started = std::time::Instant::now();
    let (report, log) = run(&plan(&slow, "Production", vec![]), &ws, &cancel);
    timer.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "{log}");
    assert_eq!(report.outcome, DeploymentOutcome::Cancelled, "{log}");
    assert_eq!(report.steps[0].state, StepState::Cancelled, "{log}");
    assert_eq!(
        std::fs::read_to_string(ws.settings.working_dir.join("count")).unwrap(),
        "attempt\n"
    );
}

#[test]
fn a_step_that_waits_for_a_person_pauses_and_the_answered_run_goes_on() {
    use tako_core::state::InterventionKind;
    use tako_core::step::StepReport;
    use tako_exec::engine::{RecordedStep, resume_deployment_with};

    let takofile = r#"Project: Demo
Steps:
  - Name: Build
    Run: |
      echo build ran
      set_octopusvariable "Artifact" "app.zip"
  - Name: Not here
    Environments: [Staging]
    Uses: manual-intervention
    With:
      Instructions: never shown
  - Name: Wait
    Uses: manual-intervention
    With:
      Instructions: "Check #{Octopus.Action[Build].Output.Artifact} with #{Secret}"
      Roles: [Admin]
  - Name: Flaky
    OnFailure: ask
    Run: |
      [ -e gate ] || { echo "gate closed" >&2; exit 1; }
      echo "gate open, notes: #{Octopus.Action[Wait].Output.Manual.Notes}"
"#;
    let ws = workspace(&[]);
    let secret = VariableValue::new(VariableSource::Project, "Secret", "pause-canary").sensitive();
    let plan = plan(takofile, "Production", vec![secret]);
    let (report, text) = run(&plan, &ws, &CancellationToken::new());
    let DeploymentOutcome::Paused(pause) = &report.outcome else {
        panic!("{:?}\n{text}", report.outcome);
    };
    assert_eq!(pause.index, 2);
    assert_eq!(pause.step, "Wait");
    assert_eq!(pause.kind, InterventionKind::Manual);
    assert_eq!(pause.instructions, "Check app.zip with ********");
    assert_eq!(pause.roles, ["admin"]);
    assert_eq!(
        pause
            .done
            .iter()
            .map(|d| d.report.name.as_str())
            .collect::<Vec<_>>(),
        ["Build", "Not here"]
    );
    assert_eq!(pause.done[0].outputs[0].value, "app.zip");
    assert!(!text.contains("pause-canary"), "{text}");
    assert!(!format!("{pause:?}").contains("app.zip\""), "{pause:?}");
    assert!(
        text.contains("Step 'Wait' waits for a person: Check app.zip with ********"),
        "{text}"
    );
    assert!(
        !text.contains("gate"),
        "nothing after the pause ran: {text}"
    );

    // Answered: the step is recorded, the run goes on; the failed step asks.
    let mut done = pause.done.clone();
    done.push(RecordedStep {
        report: StepReport {
            name: "Wait".into(),
            state: StepState::Success,
            duration: Duration::ZERO,
        },
        outputs: vec![StepOutput {
            name: "Manual.Notes".into(),
            value: "fine".into(),
            sensitive: false,
            machine: None,
        }],
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = LocalExecutor::new(ws.settings.clone());
    let resume = |done: Vec<RecordedStep>| {
        let sink = MemorySink::new();
        let report = runtime.block_on(resume_deployment_with(
            &plan,
            &ws.settings,
            &sink,
            &CancellationToken::new(),
            &local,
            done,
        ));
        (report, sink.text())
    };
    let (report, text) = resume(done.clone());
    let DeploymentOutcome::Paused(pause) = &report.outcome else {
        panic!("{:?}\n{text}", report.outcome);
    };
    assert_eq!(pause.kind, InterventionKind::Failure);
    assert_eq!(pause.step, "Flaky");
    assert!(
        pause.instructions.starts_with("Step 'Flaky' failed: "),
        "{}",
        pause.instructions
    );
    assert!(text.contains("gate closed"), "{text}");
    assert!(
        !text.contains("build ran"),
        "Build is not run again: {text}"
    );

    // Retry after the cause is fixed: the same step runs again, and passes.
    std::fs::write(ws.settings.working_dir.join("gate"), "").unwrap();
    let (report, text) = resume(pause.done.clone());
    assert_eq!(report.outcome, DeploymentOutcome::Succeeded, "{text}");
    assert!(text.contains("gate open, notes: fine"), "{text}");
}

#[test]
fn a_template_secret_made_of_another_roles_secret_is_not_in_an_agents_values_to_mask() {
    const DB_CANARY: &str = "db-canary-Tp55";
    let ws = workspace(&[("notify.json", BASH_TEMPLATE)]);
    let takofile = r##"
Project: Demo
Steps:
  - Name: Notify
    Roles: [web, db]
    Uses: notify.json
    With:
      nw_HookUrl: "https://hooks/?password=#{DbKey}"
"##;
    let variables = vec![
        VariableValue::new(VariableSource::Project, "DbKey", DB_CANARY)
            .for_roles(["db"])
            .sensitive(),
    ];
    let executor = PerAgent::default();
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_deployment_with(
        &plan(takofile, "Production", variables),
        &ws.settings,
        &sink,
        &CancellationToken::new(),
        &executor,
    ));
    assert!(report.succeeded(), "{}", sink.text());
    let derived = format!("https://hooks/?password={DB_CANARY}");
    // Every form a masker would send for the db agent's derived secret.
    let forms = tako_core::Masker::with_values([derived.as_str(), DB_CANARY]);
    let jobs = executor.jobs.lock().unwrap().clone();
    let web = tako_core::Masker::with_values(jobs[0].secrets.iter().map(String::as_str));
    for pattern in web.patterns() {
        assert!(
            !pattern.contains(DB_CANARY) && !forms.patterns().any(|f| f == pattern),
            "the web agent would be told to mask a form of the db secret"
        );
    }
    assert!(jobs[1].secrets.contains(&derived), "{:?}", jobs[1]);
    let log = sink.text();
    assert!(!log.contains(DB_CANARY), "{log}");
}
