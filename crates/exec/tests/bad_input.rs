//! Bad input to built-in steps and templates: each fails its step with a
//! message that says what and where, and nothing after it is published or
//! tagged half-way.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use tako_core::step::StepState;
use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{DeploymentPlan, DeploymentReport, RunSettings, run_deployment};
use tako_exec::sink::MemorySink;
use tokio_util::sync::CancellationToken;

const MODULE_PSM1: &str = "function Get-Thing { 'thing' }\n";

/// Runs `takofile` in a checkout holding `files`; returns the report and log.
fn run(
    takofile: &str,
    files: &[(&str, &str)],
    variables: Vec<VariableValue>,
) -> (DeploymentReport, String) {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let scratch = root.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    for (path, content) in files {
        let file = work.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    std::fs::create_dir_all(&work).unwrap();
    let takofile = tako_takofile::parse("takofile", takofile).unwrap_or_else(|d| panic!("{d}"));
    let plan = DeploymentPlan {
        steps: takofile.steps.unwrap(),
        facts: DeploymentFacts {
            project: "Demo".into(),
            environment: "Production".into(),
            release_number: "1.0.0".into(),
            deployment_id: "deployments-1".into(),
            ..Default::default()
        },
        variables,
    };
    let settings = RunSettings {
        working_dir: work,
        scratch_dir: scratch,
        kill_grace: Duration::from_secs(2),
    };
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_deployment(
        &plan,
        &settings,
        &sink,
        &CancellationToken::new(),
    ));
    (report, sink.text())
}

fn failure(report: &DeploymentReport, step: usize) -> String {
    match &report.steps[step].state {
        StepState::Failed { reason } => reason.clone(),
        other => panic!("step {step} did not fail: {other:?}"),
    }
}

/// A publish step followed by a step that must never run after it failed.
fn publish_then_tag(feed: &str) -> String {
    format!(
        "Project: Demo\nSteps:\n  - Name: Publish\n    Uses: publish-psmodule\n    With:\n      Path: Mod\n      Feed: \"{feed}\"\n      ApiKey: \"#{{ApiKey}}\"\n  - Name: After\n    Run: echo tagging-now\n"
    )
}

fn key() -> Vec<VariableValue> {
    vec![VariableValue::new(VariableSource::Project, "ApiKey", "key-0123456789").sensitive()]
}

fn manifest(body: &str) -> String {
    format!("@{{\n    RootModule = 'Mod.psm1'\n{body}}}\n")
}

#[test]
fn a_manifest_with_a_syntax_error_names_its_line() {
    let psd1 = manifest(
        "    ModuleVersion = '1.0.0'\n    Author = 'Me'\n    Description = 'D'\n    Tags = @('a' 'b')\n",
    );
    let (report, log) = run(
        &publish_then_tag("http://127.0.0.1:9/"),
        &[("Mod/Mod.psd1", &psd1), ("Mod/Mod.psm1", MODULE_PSM1)],
        key(),
    );
    let reason = failure(&report, 0);
    assert!(
        reason.contains("Mod.psd1") && reason.contains("line 6"),
        "{reason}"
    );
    assert!(!log.contains("tagging-now"), "{log}");
}

#[test]
fn a_missing_author_or_a_version_that_is_not_a_version_is_refused() {
    let no_author = manifest("    ModuleVersion = '1.0.0'\n    Description = 'D'\n");
    let (report, _) = run(
        &publish_then_tag("http://127.0.0.1:9/"),
        &[("Mod/Mod.psd1", &no_author), ("Mod/Mod.psm1", MODULE_PSM1)],
        key(),
    );
    assert!(
        failure(&report, 0).contains("Author"),
        "{}",
        failure(&report, 0)
    );

    let bad_version =
        manifest("    ModuleVersion = 'one.two'\n    Author = 'Me'\n    Description = 'D'\n");
    let (report, _) = run(
        &publish_then_tag("http://127.0.0.1:9/"),
        &[
            ("Mod/Mod.psd1", &bad_version),
            ("Mod/Mod.psm1", MODULE_PSM1),
        ],
        key(),
    );
    let reason = failure(&report, 0);
    assert!(reason.contains("one.two"), "{reason}");
}

#[test]
fn a_feed_that_is_down_or_answers_html_fails_without_publishing() {
    let good = manifest("    ModuleVersion = '1.0.0'\n    Author = 'Me'\n    Description = 'D'\n");
    let files = [
        ("Mod/Mod.psd1", good.as_str()),
        ("Mod/Mod.psm1", MODULE_PSM1),
    ];

    // Down: nothing listens on the port.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/api/v2/", closed.local_addr().unwrap());
    drop(closed);
    let (report, log) = run(&publish_then_tag(&down), &files, key());
    let reason = failure(&report, 0);
    assert!(reason.contains("127.0.0.1"), "{reason}");
    assert!(
        !log.contains("tagging-now") && !log.contains("key-0123456789"),
        "{log}"
    );

    // HTML: a login page where the feed should be.
    let html = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v2/", html.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in html.incoming().take(4).flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let body = "<html><body>Please sign in</body></html>";
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let (report, log) = run(&publish_then_tag(&url), &files, key());
    let reason = failure(&report, 0);
    assert!(
        reason.to_lowercase().contains("html")
            || reason.contains("not a NuGet feed")
            || reason.contains("feed"),
        "{reason}"
    );
    assert!(!log.contains("tagging-now"), "{log}");
}

#[test]
fn a_slack_url_answering_404_fails_the_step_with_the_url_masked() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T1/B1/hookSecret99",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        if let Some(Ok(stream)) = listener.incoming().next() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let mut length = 0;
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno_service");
        }
    });
    let takofile = "Project: Demo\nSteps:\n  - Name: Notify\n    Uses: slack\n    With:\n      WebhookUrl: \"#{Hook}\"\n";
    let variables = vec![VariableValue::new(VariableSource::Project, "Hook", url).sensitive()];
    let (report, log) = run(takofile, &[], variables);
    let reason = failure(&report, 0);
    assert!(
        reason.contains("404") && reason.contains("no_service"),
        "{reason}"
    );
    assert!(
        !reason.contains("hookSecret99") && !log.contains("hookSecret99"),
        "{reason}\n{log}"
    );
}

#[test]
fn a_template_that_is_not_a_template_and_a_powershell_template_without_pwsh() {
    let takofile = "Project: Demo\nSteps:\n  - Name: T\n    Uses: tpl.json\n";
    let (report, _) = run(takofile, &[("tpl.json", "{\"hello\": \"world\"}")], vec![]);
    let reason = failure(&report, 0);
    assert!(
        reason.contains("tpl.json") && reason.contains("ScriptBody"),
        "{reason}"
    );

    let (report, _) = run(takofile, &[("tpl.json", "[1, 2")], vec![]);
    let reason = failure(&report, 0);
    assert!(
        reason.contains("tpl.json") && reason.contains("invalid JSON"),
        "{reason}"
    );

    if tako_exec::process::shell_available(&tako_takofile::Shell::Pwsh) {
        eprintln!("pwsh is installed: the missing-pwsh message cannot be tested here");
        return;
    }
    let pwsh = r#"{"Name": "PS", "ActionType": "Octopus.Script", "Properties": {"Octopus.Action.Script.Syntax": "PowerShell", "Octopus.Action.Script.ScriptBody": "Write-Host hi"}, "Parameters": []}"#;
    let (report, _) = run(takofile, &[("tpl.json", pwsh)], vec![]);
    let reason = failure(&report, 0);
    assert!(reason.contains("this template needs pwsh"), "{reason}");
}
