//! `tako run` and `tako validate` end to end: the real binary on real git
//! repositories, running real bash and python processes.

use std::process::{Command, Output};
use std::time::Duration;

use tako_test_support::{TempGitRepo, processes_with, text_of, unique_marker, wait_until};

fn tako(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tako"))
        .args(args)
        .env_remove("TAKO_ENV")
        .env_remove("TAKO_BRANCH")
        .output()
        .expect("tako runs")
}

fn run_in(repo: &TempGitRepo, extra: &[&str]) -> (i32, String) {
    let path = repo.path().to_str().expect("utf-8 path").to_owned();
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.push(&path);
    let output = tako(&args);
    let (stdout, stderr) = text_of(&output);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

const PIPELINE: &str = r##"
Project: Demo
Mappings:
  - Branch: main
    Environment: Production
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Test
    Run: echo "testing in $TAKO_ENVIRONMENT"
  - Name: Publish
    Environments: [Production]
    Run: echo publishing
  - Name: Break
    Run: |
      echo about to fail
      exit 3
  - Name: After
    Run: echo should not run
  - Name: Notify
    Condition: Always
    Run: |
      echo "error was: #{Octopus.Deployment.Error}"
      echo "status of Break: #{Octopus.Action[Break].Status}"
"##;

#[test]
fn skipped_steps_show_their_reason_and_always_steps_see_the_error() {
    let repo = TempGitRepo::new();
    repo.write("takofile.yml", PIPELINE);
    repo.commit("pipeline");
    let (code, out) = run_in(&repo, &["--env", "DevTest"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("testing in DevTest"), "{out}");
    assert!(out.contains("skipped: not scoped to DevTest"), "{out}");
    assert!(!out.contains("publishing"), "{out}");
    assert!(out.contains("skipped: an earlier step failed"), "{out}");
    assert!(!out.contains("should not run"), "{out}");
    assert!(
        out.contains(r##"error was: Step 'Break' failed: the script exited with code 3"##),
        "{out}"
    );
    assert!(out.contains("status of Break: Failed"), "{out}");
    // The summary table lists every step with its state.
    let summary = out.split("STEP").nth(1).expect("a summary table");
    for (step, state) in [
        ("Test", "succeeded"),
        ("Publish", "skipped: not scoped to DevTest"),
        ("Break", "failed: the script exited with code 3"),
        ("After", "skipped: an earlier step failed"),
        ("Notify", "succeeded"),
    ] {
        assert!(
            summary
                .lines()
                .any(|line| line.starts_with(step) && line.contains(state)),
            "{step} should be {state}:\n{summary}"
        );
    }
}

#[test]
fn environment_defaults_to_the_current_branchs_mapping() {
    let repo = TempGitRepo::new();
    repo.write("takofile.yml", "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\nSteps:\n  - Name: Where\n    Run: echo \"env=#{Tako.Environment.Name} branch=#{Tako.Git.Branch}\"\n");
    repo.commit("first");
    repo.checkout_new_branch("develop");
    let (code, out) = run_in(&repo, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("env=DevTest branch=develop"), "{out}");

    repo.checkout_new_branch("feature/x");
    let (code, out) = run_in(&repo, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("branch feature/x maps to no environment"),
        "{out}"
    );
}

#[test]
fn outputs_flow_from_bash_and_python_to_later_steps() {
    let repo = TempGitRepo::new();
    repo.write(
        "takofile",
        r##"
Project: Outputs
Steps:
  - Name: From Bash
    Run: set_octopusvariable "Greeting" "hello from bash"
  - Name: From Python
    Shell: python
    Run: |
      set_octopusvariable("Answer", "42")
      print("python read: " + get_octopusvariable("Octopus.Action[From Bash].Output.Greeting"))
  - Name: Reader
    Run: |
      echo "substituted: #{Octopus.Action[From Bash].Output.Greeting} / #{Octopus.Action[From Python].Output.Answer}"
      echo "helper: $(get_octopusvariable "Octopus.Action[From Python].Output.Answer")"
      echo "tako alias: #{Tako.Action[From Python].Output.Answer}"
"##,
    );
    repo.commit("outputs");
    let (code, out) = run_in(&repo, &["--env", "Production"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("python read: hello from bash"), "{out}");
    assert!(out.contains("substituted: hello from bash / 42"), "{out}");
    assert!(out.contains("helper: 42"), "{out}");
    assert!(out.contains("tako alias: 42"), "{out}");
    assert!(
        !out.contains("##octopus["),
        "service messages must be consumed: {out}"
    );
}

#[test]
fn secrets_never_appear_in_the_output() {
    let repo = TempGitRepo::new();
    repo.write(
        "takofile",
        r##"
Project: Secrets
Steps:
  - Name: Leaky
    Run: |
      echo "plain: #{ApiKey}"
      echo "in a longer line: prefix#{ApiKey}suffix"
      echo "from helper: $(get_octopusvariable ApiKey)"
      echo "#{Cert}"
      echo "stderr: #{ApiKey}" >&2
      printf '%s' "#{ApiKey}" | base64
      set_octopusvariable "Derived" "#{ApiKey}"
      fail_step "could not use #{ApiKey}"
  - Name: Later
    Condition: Always
    Run: |
      echo "error seen: #{Octopus.Deployment.Error}"
"##,
    );
    repo.commit("secrets");
    let secret = "sk-live-51Hq9Zr2";
    let cert = "-----BEGIN-----\nMIIBline2secret\n-----END-----";
    let (code, out) = run_in(
        &repo,
        &[
            "--env",
            "Production",
            "--secret",
            &format!("ApiKey={secret}"),
            "--secret",
            &format!("Cert={cert}"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains(secret), "secret leaked:\n{out}");
    assert!(
        !out.contains("MIIBline2secret"),
        "a line of a multi-line secret leaked:\n{out}"
    );
    assert!(
        !out.contains("c2stbGl2ZS01MUhxOVpy"),
        "base64 form leaked:\n{out}"
    );
    assert!(out.contains("plain: ********"), "{out}");
    assert!(out.contains("prefix********suffix"), "{out}");
    assert!(out.contains("from helper: ********"), "{out}");
    assert!(out.contains("could not use ********"), "{out}");
    assert!(
        out.contains("error seen: Step 'Leaky' failed: could not use ********"),
        "{out}"
    );
}

#[test]
fn a_timed_out_step_leaves_no_process_behind() {
    let marker = unique_marker("timeout");
    let repo = TempGitRepo::new();
    repo.write(
        "takofile",
        &format!(
            "Project: Timeout\nSteps:\n  - Name: Hang\n    Timeout: 1s\n    Run: |\n      bash -c 'exec -a {marker} sleep 1000' &\n      sleep 1000\n"
        ),
    );
    repo.commit("hang");
    let (code, out) = run_in(&repo, &["--env", "Production"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("timed out after 1s"), "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "processes left behind: {:?}",
        processes_with(&marker)
    );
}

#[test]
fn a_flaky_step_with_retries_passes_on_its_third_attempt_and_validate_shows_them() {
    let repo = TempGitRepo::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = dir.path().join("counter");
    repo.write(
        "takofile.yml",
        &format!(
            "Project: Demo\nSteps:\n  - Name: Flaky\n    Retries: 2\n    RetryDelay: 0s\n    Run: |\n      n=$(( $(cat '{0}' 2>/dev/null || echo 0) + 1 ))\n      echo $n > '{0}'\n      echo \"try $n\"\n      [ $n -ge 3 ]\n",
            counter.display()
        ),
    );
    repo.commit("flaky");
    let (code, output) = run_in(&repo, &["--env", "Production"]);
    assert_eq!(code, 0, "{output}");
    for n in 1..=3 {
        assert!(output.contains(&format!("attempt {n} of 3")), "{output}");
        assert!(output.contains(&format!("try {n}")), "{output}");
    }
    assert!(
        output.contains("attempt 2 of 3 failed: the script exited with code 1"),
        "{output}"
    );
    assert!(!output.contains("attempt 3 of 3 failed"), "{output}");

    let path = repo.path().to_str().expect("utf-8").to_owned();
    let output = tako(&["validate", &path]);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("step Flaky: Retries 2 (up to 3 attempts), RetryDelay 0s"),
        "{stdout}"
    );
}

#[test]
fn validate_reports_every_diagnostic_with_its_position() {
    let repo = TempGitRepo::new();
    repo.write("takofile.yml", "Project: Demo\nMapings:\n  - Branch: main\n    Environment: Production\nSteps:\n  - Name: A\n    Run: echo\n    Uses: slack\n");
    let path = repo.path().to_str().expect("utf-8").to_owned();
    let output = tako(&["validate", &path]);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("takofile.yml:2:1:"), "{stdout}");
    assert!(stdout.contains("Mappings"), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.contains("error")).count() >= 2,
        "{stdout}"
    );

    repo.write("takofile.yml", "Project: Demo\n");
    let output = tako(&["validate", &path]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text_of(&output));
}

#[test]
fn validate_knows_the_lifecycle() {
    let repo = TempGitRepo::new();
    let head = "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\nLifecycle:\n  - Environment: DevTest\n    AutoDeploy: true\n";
    repo.write(
        "takofile.yml",
        &format!("{head}  - Environment: Production\n    Requires: [Staging]\n    Approval: {{ Roles: [admin], NotBy: pusher }}\n  - Environment: Staging\n"),
    );
    let path = repo.path().to_str().expect("utf-8").to_owned();
    let output = tako(&["validate", &path]);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("takofile.yml:9:16: error: Production requires Staging, a later phase (line 11): no release could reach Production"),
        "{stdout}"
    );

    repo.write(
        "takofile.yml",
        &format!("{head}  - Environment: Staging\n    AutoDeploy: true\n  - Environment: Production\n    Requires: [Staging]\n    Approval: {{ Roles: [admin], NotBy: pusher }}\n"),
    );
    let output = tako(&["validate", &path]);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("lifecycle: DevTest (AutoDeploy) → Staging (AutoDeploy) → Production (requires Staging; 1 approval by admin, not by the pusher, within 7d)"),
        "{stdout}"
    );
}

#[test]
fn the_seed_example_runs_in_both_environments() {
    let example = tako_test_support::workspace_root().join("examples/seed");
    let example = example.to_str().expect("utf-8 path");
    let secrets = [
        "--secret",
        "StatusCakeUser=seed-user-4711",
        "--secret",
        "StatusCakeApiKey=seed-key-0815",
    ];

    let mut args = vec!["run", "--env", "DevTest"];
    args.extend_from_slice(&secrets);
    args.push(example);
    let output = tako(&args);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("release 1.4.0-ci.1"), "{stdout}");
    assert!(
        stdout.contains("credentials file is valid JSON for user ********"),
        "{stdout}"
    );
    assert!(
        stdout.contains("testing StatusCakeDSC 1.4.0 in DevTest"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped: not scoped to DevTest"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would tell Slack (green): deployed StatusCakeDSC 1.4.0-ci.1 to DevTest"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("seed-user-4711") && !stdout.contains("seed-key-0815"),
        "{stdout}"
    );

    let mut args = vec!["run", "--env", "Production", "--build", "12"];
    args.extend_from_slice(&secrets);
    args.push(example);
    let output = tako(&args);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("would publish StatusCakeDSC 1.4.0 from branch master"),
        "{stdout}"
    );
    assert!(stdout.contains("would tag the commit v1.4.0"), "{stdout}");
    assert!(
        stdout.contains("deployed StatusCakeDSC 1.4.0-ci.12 to Production"),
        "{stdout}"
    );

    // Without the secrets the tests fail, and Slack hears about it in red.
    let output = tako(&["run", "--env", "DevTest", example]);
    let (stdout, stderr) = text_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("would tell Slack (red): failed to deploy StatusCakeDSC"),
        "{stdout}"
    );
}
