//! The script runner and the script API against real processes: bash, sh,
//! python3 and command templates (pwsh when installed).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tako_core::log::LogStream;
use tako_exec::process::{
    ExecError, ScriptEnd, ScriptEvent, ScriptRequest, run_script, shell_available,
};
use tako_exec::service_message::{FailureKind, ServiceMessage};
use tako_takofile::Shell;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// A working directory and a scratch directory, removed on drop.
struct Fixture {
    _dir: TempDir,
    work: PathBuf,
    scratch: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    let work = work.canonicalize().expect("canonical work dir");
    let scratch = dir.path().join("scratch");
    Fixture {
        _dir: dir,
        work,
        scratch,
    }
}

fn request(fixture: &Fixture, shell: Shell, body: &str) -> ScriptRequest {
    ScriptRequest {
        shell,
        body: body.to_owned(),
        working_dir: fixture.work.clone(),
        scratch_dir: fixture.scratch.clone(),
        env: vec![("TAKO_PROJECT".to_owned(), "demo".to_owned())],
        variables: Vec::new(),
        timeout: Duration::from_secs(60),
        kill_grace: Duration::from_secs(5),
    }
}

fn variables(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

async fn run(request: ScriptRequest) -> (ScriptEnd, Vec<ScriptEvent>) {
    let mut events = Vec::new();
    let end = run_script(request, &CancellationToken::new(), &mut |event| {
        events.push(event);
    })
    .await
    .expect("the script runs");
    (end, events)
}

fn lines(events: &[ScriptEvent], wanted: LogStream) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            ScriptEvent::Line { stream, text } if *stream == wanted => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn stdout(events: &[ScriptEvent]) -> Vec<String> {
    lines(events, LogStream::Stdout)
}

fn messages(events: &[ScriptEvent]) -> Vec<ServiceMessage> {
    events
        .iter()
        .filter_map(|event| match event {
            ScriptEvent::Message(message) => Some(message.clone()),
            ScriptEvent::Line { .. } => None,
        })
        .collect()
}

fn set_variable(name: &str, value: &str, sensitive: bool) -> ServiceMessage {
    ServiceMessage::SetVariable {
        name: name.to_owned(),
        value: value.to_owned(),
        sensitive,
    }
}

fn step_failed(message: &str) -> ServiceMessage {
    ServiceMessage::StepFailed {
        message: message.to_owned(),
        kind: FailureKind::StepFailed,
    }
}

/// A string unique to one test, to find its processes in /proc.
fn marker(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("tako-test-{name}-{}-{nanos}", std::process::id())
}

/// Pids whose command line contains `marker` (zombies have none).
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(marker)
        {
            found.push(name);
        }
    }
    found
}

/// Polls until no process carries `marker`, failing after a deadline.
async fn assert_no_process_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind with {marker}: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const SHELL_API_SCRIPT: &str = r#"
echo "a=$(get_octopusvariable 'Name With Space')"
printf '%s\n' "b=$(get_octopusvariable 'Arr[1]')"
echo "c=$(get_octopusvariable 'Ready?')"
echo "q=$(get_octopusvariable "it's")"
echo "missing=[$(get_octopusvariable 'Missing')]"
echo "case=[$(get_octopusvariable 'name with space')]"
echo "alias=$(tako_get 'Ready?')"
echo "args=$#"
set_octopusvariable "Out [x]?" "val ue"
set_octopusvariable "Secret" "hunter22" -sensitive
set_octopusvariable "Empty" ""
tako_set "Alias" "v"
printf '%s\n' "after=$(get_octopusvariable 'Arr[1]')"
echo "enc=$(encode_servicemessagevalue 'héllo')"
echo "dec=$(decode_servicemessagevalue 'aMOpbGxv')"
"#;

async fn check_shell_api(shell: Shell) {
    let fixture = fixture();
    let mut request = request(&fixture, shell, SHELL_API_SCRIPT);
    request.variables = variables(&[
        ("Name With Space", "spaced"),
        ("Arr[1]", "one $HOME `x` \\n"),
        ("Ready?", "True"),
        ("it's", "quote ' \" done"),
    ]);
    let (end, events) = run(request).await;
    assert_eq!(end, ScriptEnd::Exited(0), "{events:?}");
    assert_eq!(
        stdout(&events),
        [
            "a=spaced",
            "b=one $HOME `x` \\n",
            "c=True",
            "q=quote ' \" done",
            "missing=[]",
            "case=[]",
            "alias=True",
            "args=0",
            "after=one $HOME `x` \\n",
            "enc=aMOpbGxv",
            "dec=héllo",
        ]
    );
    assert_eq!(
        messages(&events),
        [
            set_variable("Out [x]?", "val ue", false),
            set_variable("Secret", "hunter22", true),
            set_variable("Empty", "", false),
            set_variable("Alias", "v", false),
        ]
    );
}

#[tokio::test]
async fn bash_get_and_set_variables() {
    check_shell_api(Shell::Bash).await;
}

#[tokio::test]
async fn sh_get_and_set_variables() {
    check_shell_api(Shell::Sh).await;
}

#[tokio::test]
async fn bash_fail_step_exits_1_with_message() {
    for (shell, body) in [
        (
            Shell::Bash,
            "echo before\nfail_step 'it broke'\necho after\n",
        ),
        (Shell::Sh, "echo before\ntako_fail 'it broke'\necho after\n"),
    ] {
        let fixture = fixture();
        let (end, events) = run(request(&fixture, shell, body)).await;
        assert_eq!(end, ScriptEnd::Exited(1));
        assert_eq!(stdout(&events), ["before"]);
        assert_eq!(messages(&events), [step_failed("it broke")]);
    }
}

#[tokio::test]
async fn exit_codes_pass_through_and_stderr_alone_does_not_fail() {
    let fixture = fixture();
    let (end, events) = run(request(&fixture, Shell::Bash, "echo oops >&2\n")).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    assert_eq!(lines(&events, LogStream::Stderr), ["oops"]);

    let (end, _) = run(request(&fixture, Shell::Bash, "exit 3\n")).await;
    assert_eq!(end, ScriptEnd::Exited(3));

    let (end, _) = run(request(&fixture, Shell::Sh, "kill -9 $$\n")).await;
    assert_eq!(end, ScriptEnd::Signalled(9));
}

#[tokio::test]
async fn shell_artifacts() {
    for shell in [Shell::Bash, Shell::Sh] {
        let fixture = fixture();
        let body = "printf hello > out.txt\nnew_octopusartifact out.txt\nnew_octopusartifact \"$(pwd)/out.txt\" Report\n";
        let (end, events) = run(request(&fixture, shell.clone(), body)).await;
        assert_eq!(end, ScriptEnd::Exited(0), "{events:?}");
        let path = fixture.work.join("out.txt").display().to_string();
        let artifacts: Vec<ServiceMessage> = messages(&events)
            .into_iter()
            .filter(|m| matches!(m, ServiceMessage::CreateArtifact { .. }))
            .collect();
        assert_eq!(
            artifacts,
            [
                ServiceMessage::CreateArtifact {
                    path: path.clone(),
                    name: "out.txt".into(),
                    length: Some(5)
                },
                ServiceMessage::CreateArtifact {
                    path: path.clone(),
                    name: "Report".into(),
                    length: Some(5)
                },
            ]
        );
        assert_eq!(stdout(&events)[0], "Collecting out.txt as an artifact...");

        let (end, events) = run(request(
            &fixture,
            shell,
            "new_octopusartifact missing.txt\necho after\n",
        ))
        .await;
        assert_eq!(end, ScriptEnd::Exited(127));
        assert!(stdout(&events).is_empty(), "{events:?}");
    }
}

#[tokio::test]
async fn service_messages_are_consumed_not_shown() {
    let fixture = fixture();
    let body = "echo '##octopus[stdout-verbose]'\necho 'text ##octopus[mask value='\\''czNjcmV0'\\'']'\nwrite_verbose 'hello    world'\nupdate_progress 50 half\necho '##octopus[setVariable name='\\''!!'\\'']'\necho '##octopus[stderr-ignore]' >&2\n";
    let (end, events) = run(request(&fixture, Shell::Bash, body)).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    assert_eq!(
        stdout(&events),
        ["hello world", "##octopus[setVariable name='!!']"]
    );
    let level = |stream, level: &str| ServiceMessage::LogLevel {
        stream,
        level: level.to_owned(),
    };
    // A message on stderr is consumed too; its order relative to stdout is
    // only the order of arrival, so it is checked apart.
    let ignore = level(LogStream::Stderr, "ignore");
    let mut messages = messages(&events);
    let position = messages.iter().position(|m| *m == ignore);
    assert!(position.is_some(), "{messages:?}");
    messages.retain(|m| *m != ignore);
    assert!(lines(&events, LogStream::Stderr).is_empty());
    assert_eq!(
        messages,
        [
            level(LogStream::Stdout, "verbose"),
            ServiceMessage::Mask {
                value: "s3cret".into()
            },
            level(LogStream::Stdout, "verbose"),
            level(LogStream::Stdout, "default"),
            ServiceMessage::Progress {
                percentage: "50".into(),
                message: "half".into()
            },
        ]
    );
}

#[tokio::test]
async fn both_streams_partial_lines_and_invalid_utf8() {
    let fixture = fixture();
    let body = "echo out\necho err >&2\nprintf 'bad\\377byte\\r\\n'\nprintf 'no newline' >&2\nprintf last\n";
    let (end, events) = run(request(&fixture, Shell::Bash, body)).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    assert_eq!(stdout(&events), ["out", "bad\u{fffd}byte", "last"]);
    assert_eq!(lines(&events, LogStream::Stderr), ["err", "no newline"]);
}

#[tokio::test]
async fn large_output_on_both_streams_and_long_lines() {
    let fixture = fixture();
    let body = "seq 1 200000\nseq 1 100000 >&2\nhead -c 200000 /dev/zero | tr '\\0' x\necho\n";
    let (end, events) = run(request(&fixture, Shell::Bash, body)).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    let out = stdout(&events);
    assert_eq!(out.len(), 200000 + 4);
    assert_eq!(out[199_999], "200000");
    let long: usize = out[200000..].iter().map(String::len).sum();
    assert_eq!(long, 200000);
    assert!(out[200000..].iter().all(|l| l.len() <= 64 * 1024));
    assert_eq!(lines(&events, LogStream::Stderr).len(), 100000);
}

#[tokio::test]
async fn environment_is_clean() {
    let fixture = fixture();
    let mut request = request(&fixture, Shell::Bash, "env\n");
    request.env.push(("STEP_VAR".into(), "x y".into()));
    let (end, events) = run(request).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    let names: Vec<String> = stdout(&events)
        .iter()
        .filter_map(|line| line.split_once('=').map(|(n, _)| n.to_owned()))
        .collect();
    // What bash itself sets is allowed besides what we pass.
    let allowed = [
        "TAKO_PROJECT",
        "STEP_VAR",
        "PATH",
        "HOME",
        "LANG",
        "PWD",
        "SHLVL",
        "_",
        "OLDPWD",
    ];
    for name in &names {
        assert!(allowed.contains(&name.as_str()), "{name} leaked");
    }
    assert!(stdout(&events).contains(&"STEP_VAR=x y".to_owned()));
    for inherited in ["PATH", "HOME", "LANG"] {
        if let Ok(value) = std::env::var(inherited) {
            assert!(
                stdout(&events).contains(&format!("{inherited}={value}")),
                "{inherited} missing"
            );
        }
    }
    // Our own environment has more than that (cargo sets CARGO_*).
    assert!(std::env::vars().any(|(name, _)| !allowed.contains(&name.as_str())));
}

#[tokio::test]
async fn stdin_is_closed_and_cwd_is_the_working_dir() {
    let fixture = fixture();
    let body = "if read -r line; then echo \"got $line\"; else echo eof; fi\nreadlink /proc/self/fd/0\npwd\n";
    let (end, events) = run(request(&fixture, Shell::Bash, body)).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    assert_eq!(
        stdout(&events),
        ["eof", "/dev/null", &fixture.work.display().to_string()]
    );
}

#[tokio::test]
async fn scratch_files_are_private_and_an_unlimited_timeout_works() {
    use std::os::unix::fs::PermissionsExt as _;
    let fixture = fixture();
    let mut request = request(&fixture, Shell::Bash, "echo ok\n");
    request.variables = variables(&[("Secret", "hunter22")]);
    request.timeout = Duration::MAX;
    let (end, events) = run(request).await;
    assert_eq!(end, ScriptEnd::Exited(0));
    assert_eq!(stdout(&events), ["ok"]);
    let mode = |path: PathBuf| {
        std::fs::metadata(&path)
            .map(|meta| meta.permissions().mode() & 0o777)
            .expect("metadata")
    };
    assert_eq!(mode(fixture.scratch.clone()), 0o700);
    assert_eq!(mode(fixture.scratch.join("helpers.sh")), 0o600);
    // Nothing was written into the working directory.
    assert_eq!(
        std::fs::read_dir(&fixture.work).expect("work dir").count(),
        0
    );
}

#[tokio::test]
async fn python_script_api() {
    let fixture = fixture();
    let body = r#"
import json
print(__name__)
print(sys.argv[1:])
print('get_octopusvariable' in globals(), 'failstep' in globals())
print(get_octopusvariable("Name With Space"), get_octopusvariable("Ready?"))
print(repr(get_octopusvariable("Missing")))
print(octopusvariables["Arr[1]"])
print(base64.b64encode(b"x").decode(), binascii.hexlify(b"x").decode(), os.getcwd())
set_octopusvariable("Out [x]?", "val ue")
set_octopusvariable("Secret", "hunter22", True)
print(get_octopusvariable("Out [x]?"))
printverbose(("a", 1))
updateprogress(10, "ten")
with open("report.txt", "w") as f:
    f.write("abc")
createartifact("report.txt")
print(decode(encode("héllo")))
"#;
    let mut request = request(&fixture, Shell::Python, body);
    request.variables = variables(&[
        ("Name With Space", "spaced"),
        ("Arr[1]", "one"),
        ("Ready?", "True"),
    ]);
    let (end, events) = run(request).await;
    assert_eq!(end, ScriptEnd::Exited(0), "{events:?}");
    assert_eq!(
        stdout(&events),
        [
            "__main__",
            "[]",
            "True True",
            "spaced True",
            "''",
            "one",
            &format!("eA== 78 {}", fixture.work.display()),
            "val ue",
            "('a', 1)",
            &format!(
                "Artifact report.txt will be collected from {} after this step completes",
                fixture.work.join("report.txt").display()
            ),
            "héllo",
        ]
    );
    let verbose = ServiceMessage::LogLevel {
        stream: LogStream::Stdout,
        level: "verbose".into(),
    };
    let default = ServiceMessage::LogLevel {
        stream: LogStream::Stdout,
        level: "default".into(),
    };
    assert_eq!(
        messages(&events),
        [
            set_variable("Out [x]?", "val ue", false),
            set_variable("Secret", "hunter22", true),
            verbose.clone(),
            default.clone(),
            ServiceMessage::Progress {
                percentage: "10".into(),
                message: "ten".into()
            },
            verbose,
            default,
            ServiceMessage::CreateArtifact {
                path: fixture.work.join("report.txt").display().to_string(),
                name: "report.txt".into(),
                length: Some(3)
            },
        ]
    );
}

#[tokio::test]
async fn python_failstep_exits_255_and_exceptions_exit_1() {
    let fixture = fixture();
    let (end, events) = run(request(
        &fixture,
        Shell::Python,
        "print('before')\nfailstep('it broke')\nprint('after')\n",
    ))
    .await;
    assert_eq!(end, ScriptEnd::Exited(255));
    assert_eq!(stdout(&events), ["before"]);
    assert_eq!(messages(&events), [step_failed("it broke")]);

    let (end, events) = run(request(&fixture, Shell::Python, "raise ValueError('x')\n")).await;
    assert_eq!(end, ScriptEnd::Exited(1));
    assert!(
        lines(&events, LogStream::Stderr)
            .iter()
            .any(|l| l.contains("ValueError: x"))
    );
}

#[tokio::test]
async fn command_template_runs_the_body_file() {
    let fixture = fixture();
    let body = "print('from python')\nprint(\"##octopus[mask value='czNjcmV0']\")\n";
    let (end, events) = run(request(
        &fixture,
        Shell::Command("python3 {0}".into()),
        body,
    ))
    .await;
    assert_eq!(end, ScriptEnd::Exited(0), "{events:?}");
    assert_eq!(stdout(&events), ["from python"]);
    assert_eq!(
        messages(&events),
        [ServiceMessage::Mask {
            value: "s3cret".into()
        }]
    );
}

#[tokio::test]
async fn missing_interpreter_is_an_error() {
    let fixture = fixture();
    let mut request = request(&fixture, Shell::Python, "print(1)\n");
    request.env.push(("PATH".into(), "/nonexistent".into()));
    let error = run_script(request, &CancellationToken::new(), &mut |_| {})
        .await
        .expect_err("python3 cannot be found");
    assert!(matches!(error, ExecError::NotFound { .. }));
    assert_eq!(error.to_string(), "python3 not found on PATH");

    let request = request_with_template(&fixture, "tako-no-such-program {0}");
    let error = run_script(request, &CancellationToken::new(), &mut |_| {})
        .await
        .expect_err("the program cannot be found");
    assert_eq!(error.to_string(), "tako-no-such-program not found on PATH");
}

fn request_with_template(fixture: &Fixture, template: &str) -> ScriptRequest {
    request(fixture, Shell::Command(template.into()), "x\n")
}

/// A script that starts background processes (one of them detached by a
/// double fork) carrying `marker` as argv[0] and then sleeps itself.
fn sleeper_script(marker: &str, before: &str) -> String {
    format!(
        "{before}\n(exec -a {marker}-bg sleep 1000) &\n( (exec -a {marker}-orphan sleep 1000) & )\necho ready\nexec -a {marker}-fg sleep 1000\n"
    )
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let fixture = fixture();
    let marker = marker("timeout");
    let mut request = request(&fixture, Shell::Bash, &sleeper_script(&marker, ""));
    request.timeout = Duration::from_millis(300);
    request.kill_grace = Duration::from_secs(5);
    let started = Instant::now();
    let (end, events) = run(request).await;
    assert_eq!(end, ScriptEnd::TimedOut);
    assert_eq!(stdout(&events), ["ready"]);
    // SIGTERM sufficed: no need to wait for the grace period.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_no_process_with(&marker).await;
}

#[tokio::test]
async fn timeout_escalates_to_sigkill_after_the_grace() {
    let fixture = fixture();
    let marker = marker("sigkill");
    // Ignored signals are inherited: every process of the group ignores TERM.
    let mut request = request(
        &fixture,
        Shell::Bash,
        &sleeper_script(&marker, "trap '' TERM"),
    );
    request.timeout = Duration::from_millis(200);
    request.kill_grace = Duration::from_millis(300);
    let started = Instant::now();
    let (end, _) = run(request).await;
    assert_eq!(end, ScriptEnd::TimedOut);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_no_process_with(&marker).await;
}

#[tokio::test]
async fn cancel_kills_the_whole_group() {
    let fixture = fixture();
    let marker = marker("cancel");
    let request = request(&fixture, Shell::Sh, &sleeper_script_sh(&marker));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut events = Vec::new();
    let started = Instant::now();
    let end = run_script(request, &cancel, &mut |event| {
        if matches!(&event, ScriptEvent::Line { text, .. } if text == "ready") {
            trigger.cancel();
        }
        events.push(event);
    })
    .await
    .expect("the script runs");
    assert_eq!(end, ScriptEnd::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_no_process_with(&marker).await;
}

/// Like [`sleeper_script`] for a POSIX sh without `exec -a`: the marker is
/// an argument of a waiting shell.
fn sleeper_script_sh(marker: &str) -> String {
    format!(
        "sh -c 'sleep 1000; : {marker}' &\n(sh -c 'sleep 1000; : {marker}' &)\necho ready\nsh -c 'sleep 1000; : {marker}'\n"
    )
}

#[tokio::test]
async fn normal_exit_cleans_up_background_children_without_hanging() {
    for redirect in ["", ">/dev/null 2>&1"] {
        let fixture = fixture();
        let marker = marker("background");
        let body = format!(
            "(exec -a {marker}-bg sleep 1000) {redirect} &\n( (exec -a {marker}-orphan sleep 1000) {redirect} & )\necho done\n"
        );
        let started = Instant::now();
        let (end, events) = run(request(&fixture, Shell::Bash, &body)).await;
        assert_eq!(end, ScriptEnd::Exited(0));
        assert_eq!(stdout(&events), ["done"]);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_no_process_with(&marker).await;
    }
}

#[tokio::test]
async fn pwsh_script_api_when_installed() {
    if !shell_available(&Shell::Pwsh) {
        skip("pwsh is not on PATH");
        return;
    }
    let fixture = fixture();
    let body = "Write-Host $OctopusParameters['Name']\nSet-OctopusVariable -name 'Out' -value 'v' -sensitive\nFail-Step 'broke'\n";
    let mut request = request(&fixture, Shell::Pwsh, body);
    request.variables = variables(&[("Name", "value")]);
    let (end, events) = run(request).await;
    assert_eq!(end, ScriptEnd::Exited(1), "{events:?}");
    assert_eq!(stdout(&events), ["value"]);
    assert_eq!(
        messages(&events),
        [set_variable("Out", "v", true), step_failed("broke")]
    );
}

/// Reports a skipped test on standard error.
#[allow(clippy::print_stderr)]
fn skip(reason: &str) {
    eprintln!("skipped: {reason}");
}
