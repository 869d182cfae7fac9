//! A paused deployment in the web UI, in headless Chromium: the deployment
//! page shows the *Paused* badge and the step's instructions; *Proceed*
//! with a note runs the next step (which reads the note); a failed step
//! with `OnFailure: ask` pauses it again, and *Retry* after the cause is
//! fixed succeeds; *Abort* fails another one, whose *Retry* button then
//! deploys the release again. The answers are listed with who gave them.
//! The list of what waits (`/ui/waiting`, the navigation's badge counting
//! it) shows a paused deployment with its masked instructions and who may
//! answer; a viewer sees it without buttons and is refused (403) an
//! answer; an admin answers *Proceed* and then *Ignore* (guided failure)
//! from the list; `/ui/approvals` still leads there.
//!
//! Without Chromium these tests fail; `scripts/test` installs it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use tako_test_support::browser::Browser;
use tako_test_support::http::request;
use tako_test_support::origin::Origin;
use tako_test_support::server::{DataDir, TakoServer};

const PAUSED: &str = "Paused: waits for a person";

fn takofile(gate: &Path) -> String {
    format!(
        r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Wait
    Uses: manual-intervention
    With:
      Instructions: "Look at release #{{Octopus.Release.Number}} first"
  - Name: Check
    OnFailure: ask
    Run: |
      echo "the note was: #{{Octopus.Action[Wait].Output.Manual.Notes}}"
      [ -e '{gate}' ] || {{ echo "the gate is closed" >&2; exit 1; }}
"#,
        gate = gate.display()
    )
}

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

async fn text_of(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// The text of `css` once the page (refreshed) shows it: a deployment's
/// state and its error message may be stored a moment apart.
async fn wait_for_text(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(text) = text_of(client, css).await {
            return text;
        }
        assert!(Instant::now() < deadline, "{css} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.refresh().await.unwrap();
    }
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Waits on the current (deployment) page until its state badge reads `state`.
async fn wait_for_state(client: &Client, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client.refresh().await.unwrap();
        let shown = text_of(client, "#steps .state .badge").await;
        if shown.as_deref() == Some(state) {
            return;
        }
        if Instant::now() > deadline {
            let url = client.current_url().await.unwrap();
            let page = text_of(client, "main").await.unwrap_or_default();
            panic!("{url} never showed {state} (shows {shown:?}):\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Types `note` into the pause panel's note and clicks the answer `action`.
async fn answer(client: &Client, action: &str, note: &str) {
    if !note.is_empty() {
        client
            .find(Locator::Css("#intervention input[name=note]"))
            .await
            .unwrap()
            .send_keys(note)
            .await
            .unwrap();
    }
    click(client, &format!("#intervention button[value={action}]")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_is_answered_with_the_pages_buttons() {
    let gate = tempfile::tempdir().unwrap();
    let gate_file = gate.path().join("open");
    let origin = Origin::new(&takofile(&gate_file));
    let data = DataDir::new();
    let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
    let token = server.token.clone().unwrap();
    let tako = |args: &[&str]| {
        let output = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", server.address))
            .env("TAKO_TOKEN", &token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "tako {args:?}: {output:?}");
    };
    tako(&[
        "project",
        "create",
        "Demo",
        "--repo",
        &origin.bare.file_url(),
    ]);
    tako(&[
        "release",
        "create",
        "--project",
        "Demo",
        "--deploy-to",
        "Production",
    ]);
    let auth = format!("Bearer {token}");
    let listed = request(
        &server.address,
        "GET",
        "/api/v1/deployments?project=Demo",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap()
    .json();
    let first = listed["items"][0]["id"].as_i64().unwrap();

    let browser = Browser::start().await;
    let client = &browser.client;
    let base = format!("http://{}", server.address);
    client.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&token)
        .await
        .unwrap();
    click(client, "form.signin button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.current_url().await.unwrap().path() != "/ui/" {
        assert!(Instant::now() < deadline, "never signed in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Paused at Wait: the badge, the instructions, Proceed and Abort.
    client
        .goto(&format!("{base}/ui/deployments/{first}"))
        .await
        .unwrap();
    wait_for_state(client, PAUSED).await;
    let panel = text_of(client, "#intervention").await.unwrap();
    assert!(panel.contains("Step Wait waits for a person"), "{panel}");
    assert!(panel.contains("Look at release 0.0.1 first"), "{panel}");
    assert!(panel.contains("admin or deployer"), "{panel}");
    assert!(
        client
            .find(Locator::Css("#intervention button[value=retry]"))
            .await
            .is_err(),
        "a manual step offers no Retry"
    );
    answer(client, "proceed", "checked in the browser").await;

    // Check fails and asks: Retry after opening the gate.
    wait_for_state(client, PAUSED).await;
    let panel = text_of(client, "#intervention").await.unwrap();
    assert!(
        panel.contains("Step Check failed (OnFailure: ask)"),
        "{panel}"
    );
    assert!(
        panel.contains("the gate is closed") || panel.contains("Step 'Check' failed"),
        "{panel}"
    );
    std::fs::write(&gate_file, "").unwrap();
    answer(client, "retry", "").await;
    wait_for_state(client, "Success").await;
    let answers = text_of(client, "#intervention .answers").await.unwrap();
    assert!(answers.contains("Proceed step Wait by"), "{answers}");
    assert!(answers.contains("checked in the browser"), "{answers}");
    assert!(answers.contains("Retry step Check by"), "{answers}");
    let log = text_of(client, "#log").await.unwrap();
    assert!(
        log.contains("the note was: checked in the browser"),
        "{log}"
    );

    // A second deployment: Abort fails it, and its Retry button deploys
    // the release again (paused at Wait once more).
    std::fs::remove_file(&gate_file).unwrap();
    let release = listed["items"][0]["release"].as_i64().unwrap();
    let second = request(
        &server.address,
        "POST",
        &format!("/api/v1/releases/{release}/deployments"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"environment":"Production"}"#,
    )
    .unwrap()
    .json()["id"]
        .as_i64()
        .unwrap();
    client
        .goto(&format!("{base}/ui/deployments/{second}"))
        .await
        .unwrap();
    wait_for_state(client, PAUSED).await;
    answer(client, "abort", "not now").await;
    wait_for_state(client, "Failed").await;
    let error = wait_for_text(client, "#steps .error").await;
    assert!(error.contains("aborted at step 'Wait' by"), "{error}");
    assert!(error.ends_with(": not now"), "{error}");
    click(client, "form.retry button[value=start]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let path = client.current_url().await.unwrap().path().to_owned();
        if path.starts_with("/ui/deployments/") && path != format!("/ui/deployments/{second}") {
            break;
        }
        assert!(Instant::now() < deadline, "the retry never opened: {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_state(client, PAUSED).await;
    browser.close().await;
}

const CANARY: &str = "waitingListCanary-7c1e2";

/// Signs `client` in with `token` (out first, when signed in).
async fn sign_in(client: &Client, base: &str, token: &str) {
    client.goto(&format!("{base}/ui/")).await.unwrap();
    if client
        .find(Locator::Css("form.signout button"))
        .await
        .is_ok()
    {
        click(client, "form.signout button").await;
    }
    client.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(client, "form.signin button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.current_url().await.unwrap().path() != "/ui/" {
        assert!(Instant::now() < deadline, "never signed in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// On `/ui/waiting`, refreshed until the paused row of `deployment` is of
/// `kind` (`manual`, `failure`), or gone with `None`.
async fn wait_for_row(client: &Client, deployment: i64, kind: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let row = format!("#pauses tr[data-deployment='{deployment}']");
    loop {
        client.refresh().await.unwrap();
        let found = match client.find(Locator::Css(&row)).await {
            Ok(element) => element.attr("data-kind").await.unwrap(),
            Err(_) => None,
        };
        if found.as_deref() == kind {
            return;
        }
        if Instant::now() > deadline {
            let page = text_of(client, "main").await.unwrap_or_default();
            panic!("{row} never became {kind:?} (is {found:?}):\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployments_are_listed_with_what_waits_and_answered_from_there() {
    let gate = tempfile::tempdir().unwrap();
    let takofile = format!(
        r#"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Wait
    Uses: manual-intervention
    With:
      Instructions: "Log in with #{{ApiKey}}, look at #{{Octopus.Release.Number}}"
  - Name: Check
    OnFailure: ask
    Run: |
      [ -e '{gate}' ] || {{ echo "the gate is closed" >&2; exit 1; }}
"#,
        gate = gate.path().join("open").display()
    );
    let origin = Origin::new(&takofile);
    let data = DataDir::new();
    let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
    let admin = server.token.clone().unwrap();
    let tako = |token: &str, args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", server.address))
            .env("TAKO_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "tako {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let url = origin.bare.file_url();
    tako(&admin, &["project", "create", "Demo", "--repo", &url], "");
    tako(
        &admin,
        &["var", "set", "ApiKey", "--project", "Demo", "--sensitive"],
        &format!("{CANARY}\n"),
    );
    let viewer = tako(
        &admin,
        &["token", "create", "--name", "vic", "--role", "viewer"],
        "",
    )
    .lines()
    .next()
    .unwrap()
    .trim()
    .to_owned();
    tako(
        &admin,
        &[
            "release",
            "create",
            "--project",
            "Demo",
            "--deploy-to",
            "Production",
        ],
        "",
    );
    let auth = format!("Bearer {admin}");
    let id = request(
        &server.address,
        "GET",
        "/api/v1/deployments?project=Demo",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap()
    .json()["items"][0]["id"]
        .as_i64()
        .unwrap();

    let browser = Browser::start().await;
    let client = &browser.client;
    let base = format!("http://{}", server.address);
    sign_in(client, &base, &admin).await;
    client
        .goto(&format!("{base}/ui/deployments/{id}"))
        .await
        .unwrap();
    wait_for_state(client, PAUSED).await;

    // The list, from the navigation: its badge counts the pause.
    click(client, "nav a[href='/ui/waiting']").await;
    assert_eq!(
        text_of(client, "#waiting-count").await.as_deref(),
        Some("1")
    );
    assert!(text_of(client, "#nothing-waits").await.is_some());
    let row = format!("#pauses tr[data-deployment='{id}']");
    let shown = text_of(client, &row).await.unwrap();
    for part in [
        "Demo",
        "Production",
        "0.0.1",
        "Wait",
        "Log in with ********, look at 0.0.1",
        "admin or deployer",
    ] {
        assert!(shown.contains(part), "{part:?} not in {shown}");
    }
    assert!(!client.source().await.unwrap().contains(CANARY));

    // A viewer sees it without buttons, no badge, and cannot answer.
    sign_in(client, &base, &viewer).await;
    client.goto(&format!("{base}/ui/waiting")).await.unwrap();
    let shown = text_of(client, &row).await.unwrap();
    assert!(shown.contains("not your role"), "{shown}");
    assert!(
        client
            .find(Locator::Css(&format!("{row} button")))
            .await
            .is_err(),
        "a viewer is offered an answer"
    );
    assert!(text_of(client, "#waiting-count").await.is_none());
    client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/ui/deployments/' + arguments[0] + '/intervene'; \
             for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], \
                                   ['action', 'proceed'], ['back', 'waiting']]) { \
               const i = document.createElement('input'); i.type = 'hidden'; \
               i.name = k; i.value = v; f.appendChild(i); } \
             document.body.appendChild(f); f.submit(); return 1;",
            vec![serde_json::json!(id)],
        )
        .await
        .unwrap();
    let error = wait_for_text(client, "main h1").await;
    assert_eq!(error, "Error 403");
    client.goto(&format!("{base}/ui/waiting")).await.unwrap();
    wait_for_row(client, id, Some("manual")).await;

    // The admin proceeds from the list, with a note; back on the list, the
    // failed Check asks: Retry, Ignore, Abort. Ignore from the list.
    sign_in(client, &base, &admin).await;
    client.goto(&format!("{base}/ui/waiting")).await.unwrap();
    client
        .find(Locator::Css(&format!("{row} input[name=note]")))
        .await
        .unwrap()
        .send_keys("checked from the list")
        .await
        .unwrap();
    click(client, &format!("{row} button[value=proceed]")).await;
    assert_eq!(client.current_url().await.unwrap().path(), "/ui/waiting");
    wait_for_row(client, id, Some("failure")).await;
    let shown = text_of(client, &row).await.unwrap();
    assert!(shown.contains("Check"), "{shown}");
    assert!(
        shown.contains("the gate is closed") || shown.contains("failed"),
        "{shown}"
    );
    for action in ["retry", "ignore", "abort"] {
        assert!(
            client
                .find(Locator::Css(&format!("{row} button[value={action}]")))
                .await
                .is_ok(),
            "no {action}"
        );
    }
    assert!(
        client
            .find(Locator::Css(&format!("{row} button[value=proceed]")))
            .await
            .is_err()
    );
    click(client, &format!("{row} button[value=ignore]")).await;
    wait_for_row(client, id, None).await;
    assert!(text_of(client, "#nothing-paused").await.is_some());
    assert!(text_of(client, "#waiting-count").await.is_none());

    // The old address still leads to the list.
    client.goto(&format!("{base}/ui/approvals")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/ui/waiting");

    client
        .goto(&format!("{base}/ui/deployments/{id}"))
        .await
        .unwrap();
    wait_for_state(client, "Success").await;
    let answers = text_of(client, "#intervention .answers").await.unwrap();
    assert!(answers.contains("Proceed step Wait by"), "{answers}");
    assert!(answers.contains("checked from the list"), "{answers}");
    assert!(answers.contains("Ignore step Check by"), "{answers}");
    browser.close().await;
}
