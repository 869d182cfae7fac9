//! The `slack` and `http` steps through the real engine, against a small
//! HTTP receiver on 127.0.0.1 that records each request and answers as told.
//!
//! Slack cannot run here, so the receiver stands in for it and checks the
//! request exactly as Slack documents incoming webhooks: a POST with
//! `Content-Type: application/json` and the message JSON as the body.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tako_core::step::StepState;
use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{
    DeploymentOutcome, DeploymentPlan, DeploymentReport, RunSettings, run_deployment,
};
use tako_exec::sink::MemorySink;
use tokio_util::sync::CancellationToken;

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    method: String,
    /// The request target: path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// How the receiver answers one request.
#[derive(Clone)]
struct Answer {
    status: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    /// Never answer (hold the connection open for a while instead).
    silent: bool,
}

impl Answer {
    fn new(status: &'static str, body: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            silent: false,
        }
    }

    fn silent() -> Answer {
        Answer {
            silent: true,
            ..Answer::new("200 OK", "")
        }
    }
}

/// A receiver that answers one connection per `answers` item, in order.
/// Returns its base URL (`http://127.0.0.1:port`) and the requests seen.
fn receiver(answers: Vec<Answer>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (sender, received) = mpsc::channel();
    thread::spawn(move || {
        for answer in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap();
                }
                headers.push((name, value));
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            sender
                .send(Received {
                    method,
                    target,
                    headers,
                    body: String::from_utf8(body).unwrap(),
                })
                .unwrap();
            let mut stream = stream;
            if answer.silent {
                // Hold the connection without answering, then give up.
                thread::sleep(Duration::from_secs(20));
                continue;
            }
            let mut response = format!(
                "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                answer.status,
                answer.body.len()
            );
            for (name, value) in &answer.headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str("\r\n");
            response.push_str(&answer.body);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (base, received)
}

struct Workspace {
    _root: tempfile::TempDir,
    settings: RunSettings,
}

fn workspace() -> Workspace {
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

fn plan(takofile: &str, mut variables: Vec<VariableValue>) -> DeploymentPlan {
    let takofile = tako_takofile::parse("takofile", takofile).unwrap_or_else(|d| panic!("{d}"));
    let mut all = tako_core::variables::from_takofile(&takofile);
    all.append(&mut variables);
    DeploymentPlan {
        steps: takofile.steps.unwrap(),
        facts: DeploymentFacts {
            project: "Demo".into(),
            environment: "Production".into(),
            release_number: "1.2.3".into(),
            release_id: "releases-3".into(),
            deployment_id: "deployments-7".into(),
            web_base_url: "https://tako.example.com/".into(),
            ..Default::default()
        },
        variables: all,
    }
}

fn run(plan: &DeploymentPlan, cancel: &CancellationToken) -> (DeploymentReport, String) {
    let workspace = workspace();
    let sink = MemorySink::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_deployment(plan, &workspace.settings, &sink, cancel));
    (report, sink.text())
}

fn sensitive(name: &str, value: &str) -> VariableValue {
    VariableValue::new(VariableSource::DeployTime, name, value).sensitive()
}

fn next(requests: &mpsc::Receiver<Received>) -> Received {
    requests.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// Checks the request is what Slack's incoming webhooks take, and returns
/// its JSON.
fn slack_request(request: &Received, path: &str) -> Value {
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, path);
    assert_eq!(request.header("content-type"), Some("application/json"));
    request.json()
}

const HOOK_PATH: &str = "/services/T0001/B0002/hOoKsEcReTtOkEn";

#[test]
fn a_successful_deployment_posts_a_green_message_with_links() {
    let (base, requests) = receiver(vec![Answer::new("200 OK", "ok")]);
    let hook = format!("{base}{HOOK_PATH}");
    let takofile = r##"
Project: Demo
Steps:
  - Name: Build
    Run: echo built
  - Name: Notify
    Condition: Always
    Uses: slack
    With:
      WebhookUrl: "#{SlackHook}"
"##;
    let before = chrono::Utc::now().timestamp();
    let (report, log) = run(
        &plan(takofile, vec![sensitive("SlackHook", &hook)]),
        &CancellationToken::new(),
    );
    let after = chrono::Utc::now().timestamp();
    assert!(report.succeeded(), "{log}\n{report:?}");
    let request = next(&requests);
    let mut body = slack_request(&request, HOOK_PATH);
    let ts = body["attachments"][0]["ts"].as_i64().unwrap();
    assert!((before..=after).contains(&ts), "{ts}");
    body["attachments"][0]["ts"] = json!(0);
    assert_eq!(
        body,
        json!({
            "text": "Deployed Demo 1.2.3 to Production",
            "attachments": [{
                "color": "good",
                "fallback": "Deployed Demo 1.2.3 to Production",
                "title": "Deployed Demo 1.2.3 to Production",
                "title_link": "https://tako.example.com/deployments/deployments-7",
                "fields": [
                    {"title": "Project", "value": "<https://tako.example.com/projects/Demo|Demo>", "short": true},
                    {"title": "Release", "value": "<https://tako.example.com/releases/releases-3|1.2.3>", "short": true},
                    {"title": "Environment", "value": "Production", "short": true},
                ],
                "footer": "Tako",
                "ts": 0,
            }],
        })
    );
    let shown = format!("POST {base}/… answered 200 OK ok");
    assert!(log.contains(&shown), "{log}");
    assert!(!log.contains("hOoKsEcReTtOkEn"), "{log}");
}

#[test]
fn a_failed_deployment_posts_a_red_message_naming_the_step_and_its_masked_error() {
    let (base, requests) = receiver(vec![Answer::new("200 OK", "ok")]);
    let hook = format!("{base}{HOOK_PATH}");
    let takofile = r##"
Project: Demo
Steps:
  - Name: Push <module>
    Run: |
      fail_step "the gallery refused key #{ApiKey} & more"
  - Name: Skipped
    Run: echo never
  - Name: Notify
    Condition: Always
    Uses: slack
    With:
      WebhookUrl: "#{SlackHook}"
      Channel: "#deploys"
"##;
    let (report, log) = run(
        &plan(
            takofile,
            vec![
                sensitive("SlackHook", &hook),
                sensitive("ApiKey", "oy2-api-key-123456"),
            ],
        ),
        &CancellationToken::new(),
    );
    assert!(!report.succeeded(), "{log}");
    assert_eq!(report.steps[2].state, StepState::Success, "{log}");
    let request = next(&requests);
    let body = slack_request(&request, HOOK_PATH);
    assert!(
        !request.body.contains("oy2-api-key-123456"),
        "{}",
        request.body
    );
    let text = "Failed to deploy Demo 1.2.3 to Production: Step 'Push &lt;module&gt;' failed: the gallery refused key ******** &amp; more";
    let ts = body["attachments"][0]["ts"].clone();
    assert!(ts.is_i64());
    assert_eq!(
        body,
        json!({
            "text": text,
            "channel": "#deploys",
            "attachments": [{
                "color": "danger",
                "fallback": text,
                "title": "Failed to deploy Demo 1.2.3 to Production",
                "title_link": "https://tako.example.com/deployments/deployments-7",
                "fields": [
                    {"title": "Project", "value": "<https://tako.example.com/projects/Demo|Demo>", "short": true},
                    {"title": "Release", "value": "<https://tako.example.com/releases/releases-3|1.2.3>", "short": true},
                    {"title": "Environment", "value": "Production", "short": true},
                    {"title": "Step that failed", "value": "Push &lt;module&gt;", "short": true},
                ],
                "footer": "Tako",
                "ts": ts,
            }],
        })
    );
    assert!(!log.contains("hOoKsEcReTtOkEn"), "{log}");
}

#[test]
fn explicit_text_channel_username_and_icon_are_sent_as_given() {
    let (base, requests) = receiver(vec![Answer::new("200 OK", "ok")]);
    let takofile = format!(
        r##"
Project: Demo
Steps:
  - Name: Notify
    Uses: slack
    With:
      WebhookUrl: "{base}{HOOK_PATH}"
      Text: "<!here> #{{Octopus.Project.Name}} is out: <https://example.com|notes> & more"
      Channel: "#releases"
      Username: Tako Bot
      IconUrl: https://example.com/tako.png
"##
    );
    let (report, log) = run(&plan(&takofile, vec![]), &CancellationToken::new());
    assert!(report.succeeded(), "{log}");
    let body = slack_request(&next(&requests), HOOK_PATH);
    assert_eq!(
        body,
        json!({
            "text": "<!here> Demo is out: <https://example.com|notes> & more",
            "channel": "#releases",
            "username": "Tako Bot",
            "icon_url": "https://example.com/tako.png",
        })
    );
    // Not even a plain (non-sensitive) webhook URL's token reaches the log.
    assert!(!log.contains("hOoKsEcReTtOkEn"), "{log}");
}

#[test]
fn each_slack_error_is_a_clear_failure_without_the_webhook_url() {
    let mut rate_limited = Answer::new("429 Too Many Requests", "rate_limited");
    rate_limited.headers.push(("Retry-After", "30"));
    let cases = [
        (
            Answer::new("400 Bad Request", "invalid_payload"),
            "Slack rejected the message as invalid (answered 400 invalid_payload)",
        ),
        (
            Answer::new("403 Forbidden", "invalid_token"),
            "Slack refused the webhook's token (revoked or wrong WebhookUrl?) (answered 403 invalid_token)",
        ),
        (
            Answer::new("404 Not Found", "no_service"),
            "the Slack webhook does not exist any more (removed app or wrong WebhookUrl?) (answered 404 no_service)",
        ),
        (
            Answer::new("404 Not Found", "channel_not_found"),
            "the Slack channel does not exist (check Channel) (answered 404 channel_not_found)",
        ),
        (
            Answer::new("410 Gone", "channel_is_archived"),
            "the Slack channel is archived (answered 410 channel_is_archived)",
        ),
        (
            rate_limited,
            "Slack is rate limiting this webhook (answered 429 rate_limited); retry after 30 seconds",
        ),
    ];
    let (base, requests) = receiver(cases.iter().map(|(answer, _)| answer.clone()).collect());
    // A plain variable, not a sensitive one: the step itself must keep the
    // token out of the log, not only the masker.
    let mut takofile = String::from("Project: Demo\nSteps:\n");
    for index in 0..cases.len() {
        takofile.push_str(&format!(
            "  - Name: Notify {index}\n    Condition: Always\n    Uses: slack\n    With:\n      WebhookUrl: \"#{{SlackHook}}\"\n"
        ));
    }
    let hook = format!("{base}{HOOK_PATH}");
    let variables = vec![VariableValue::new(
        VariableSource::Project,
        "SlackHook",
        hook.clone(),
    )];
    let (report, log) = run(&plan(&takofile, variables), &CancellationToken::new());
    assert!(!report.succeeded(), "{log}");
    for (index, (_, expected)) in cases.iter().enumerate() {
        slack_request(&next(&requests), HOOK_PATH);
        match &report.steps[index].state {
            StepState::Failed { reason } => {
                assert_eq!(reason, expected);
                assert!(!reason.contains("hOoKsEcReTtOkEn"), "{reason}");
            }
            other => panic!("step {index}: {other:?}\n{log}"),
        }
    }
    assert!(
        log.contains(&format!(
            "POST {base}/… answered 410 Gone channel_is_archived"
        )),
        "{log}"
    );
    assert!(!log.contains("hOoKsEcReTtOkEn"), "{log}");
    assert!(!log.contains(HOOK_PATH), "{log}");
    if let DeploymentOutcome::Failed { error } = &report.outcome {
        assert!(!error.contains("hOoKsEcReTtOkEn"), "{error}");
    }
}

#[test]
fn a_webhook_that_cannot_be_reached_fails_without_its_url() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let takofile = format!(
        "Project: Demo\nSteps:\n  - Name: Notify\n    Uses: slack\n    With:\n      WebhookUrl: http://127.0.0.1:{port}{HOOK_PATH}\n"
    );
    let (report, log) = run(&plan(&takofile, vec![]), &CancellationToken::new());
    match &report.steps[0].state {
        StepState::Failed { reason } => {
            assert!(
                reason.starts_with(&format!(
                    "could not post to Slack: could not connect to http://127.0.0.1:{port}/…"
                )),
                "{reason}"
            );
            assert!(!reason.contains("hOoKsEcReTtOkEn"), "{reason}");
        }
        other => panic!("{other:?}\n{log}"),
    }
    assert!(!log.contains("hOoKsEcReTtOkEn"), "{log}");
}

#[test]
fn http_sends_method_headers_and_body_and_its_outputs_are_readable_later() {
    let (base, requests) = receiver(vec![Answer::new("201 Created", r#"{"id":42}"#)]);
    let takofile = r##"
Project: Demo
Steps:
  - Name: Call
    Uses: http
    With:
      Method: put
      Url: "#{ApiBase}/api/items/7?key=query-secret-99"
      Headers:
        Authorization: "Bearer #{ApiToken}"
        X-Release: "#{Octopus.Release.Number}"
      Body: '{"name":"#{Octopus.Project.Name}"}'
  - Name: Use
    Run: echo 'status=#{Octopus.Action[Call].Output.StatusCode} body=#{Octopus.Action[Call].Output.Body}'
"##;
    let variables = vec![
        VariableValue::new(VariableSource::Project, "ApiBase", base.clone()),
        sensitive("ApiToken", "tok-abcdef-123456"),
    ];
    let (report, log) = run(&plan(takofile, variables), &CancellationToken::new());
    assert!(report.succeeded(), "{log}\n{report:?}");
    let request = next(&requests);
    assert_eq!(request.method, "PUT");
    assert_eq!(request.target, "/api/items/7?key=query-secret-99");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer tok-abcdef-123456")
    );
    assert_eq!(request.header("x-release"), Some("1.2.3"));
    assert_eq!(request.body, r#"{"name":"Demo"}"#);
    assert!(
        log.contains(&format!(
            "PUT {base}/api/items/7 answered 201 Created (9 bytes read)"
        )),
        "{log}"
    );
    assert!(log.contains(r#"status=201 body={"id":42}"#), "{log}");
    assert!(!log.contains("query-secret-99"), "{log}");
    assert!(!log.contains("tok-abcdef-123456"), "{log}");
}

#[test]
fn http_expect_status_accepts_what_is_listed_and_fails_on_the_rest() {
    let long_body = format!("boom with tok-abcdef-123456 {}", "x".repeat(3000));
    let (base, requests) = receiver(vec![
        Answer::new("404 Not Found", "nothing here"),
        Answer::new("500 Internal Server Error", &long_body),
    ]);
    let takofile = format!(
        r##"
Project: Demo
Steps:
  - Name: Lookup
    Uses: http
    With:
      Method: GET
      Url: {base}/lookup
      ExpectStatus: 200-299, 404
  - Name: Post
    Uses: http
    With:
      Url: {base}/post
"##
    );
    let (report, log) = run(
        &plan(&takofile, vec![sensitive("Secret", "tok-abcdef-123456")]),
        &CancellationToken::new(),
    );
    assert_eq!(report.steps[0].state, StepState::Success, "{log}");
    assert_eq!(next(&requests).method, "GET");
    let post = next(&requests);
    assert_eq!((post.method.as_str(), post.body.as_str()), ("POST", ""));
    match &report.steps[1].state {
        StepState::Failed { reason } => {
            let expected = format!(
                "POST {base}/post answered 500 Internal Server Error, expected 2xx; body: boom with ******** "
            );
            // The body is quoted up to 1 KiB only (28 bytes of text, then
            // 996 of the 3000 `x`), masked.
            assert_eq!(reason, &format!("{expected}{}", "x".repeat(996)));
        }
        other => panic!("{other:?}\n{log}"),
    }
    assert!(!log.contains("tok-abcdef-123456"), "{log}");
}

#[test]
fn http_times_out_against_a_receiver_that_never_answers() {
    let (base, requests) = receiver(vec![Answer::silent()]);
    let takofile = format!(
        "Project: Demo\nSteps:\n  - Name: Call\n    Uses: http\n    With:\n      Url: {base}/slow\n      Timeout: 1s\n"
    );
    let started = Instant::now();
    let (report, log) = run(&plan(&takofile, vec![]), &CancellationToken::new());
    assert!(started.elapsed() < Duration::from_secs(8), "{log}");
    assert_eq!(next(&requests).target, "/slow");
    match &report.steps[0].state {
        StepState::Failed { reason } => {
            assert_eq!(reason, &format!("{base}/slow did not answer within 1s"));
        }
        other => panic!("{other:?}\n{log}"),
    }
}

#[test]
fn http_stops_when_the_deployment_is_cancelled() {
    let (base, _requests) = receiver(vec![Answer::silent()]);
    let takofile = format!(
        "Project: Demo\nSteps:\n  - Name: Call\n    Uses: http\n    With:\n      Url: {base}/slow\n      Timeout: 5m\n"
    );
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        canceller.cancel();
    });
    let started = Instant::now();
    let (report, log) = run(&plan(&takofile, vec![]), &cancel);
    assert!(started.elapsed() < Duration::from_secs(8), "{log}");
    assert_eq!(report.outcome, DeploymentOutcome::Cancelled, "{log}");
}
