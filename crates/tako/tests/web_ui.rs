//! The web UI end to end in headless Chromium (through chromedriver): the
//! real `tako serve`, real git repositories, signed pushes over real HTTP,
//! and a real browser signing in, watching a deployment live, cancelling
//! one, reading variables and deliveries. Screenshots of the dashboard and
//! a deployment page are written to `target/e2e-artifacts/` (and, with
//! `TAKO_UPDATE_SCREENSHOTS=1`, to `docs/screenshots/` for the README).
//!
//! Without Chromium these tests fail; `scripts/test` installs it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use tako_test_support::browser::Browser;
use tako_test_support::http::request;
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};

const SECRET: &str = "web ui webhook secret";
const CANARY: &str = "s3cr3t-Canary-Value-42";

const TAKOFILE: &str = r##"Project: Demo
Mappings:
  - Branch: main
    Environment: Production
  - Branch: develop
    Environment: DevTest
  - Branch: slow
    Environment: Staging
Steps:
  - Name: Build
    Run: |
      for i in $(seq 1 12); do echo "build line $i"; sleep 0.4; done
      echo "a warning on stderr" >&2
  - Name: Wait
    Run: |
      if [ "#{Octopus.Environment.Name}" = "Staging" ]; then sleep 300; fi
      echo "done waiting"
"##;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot as a test artifact (and into the docs when asked).
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(name), &png).unwrap();
    if std::env::var_os("TAKO_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
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

struct Setup {
    server: TakoServer,
    origin: Origin,
    token: String,
    _data: DataDir,
}

fn setup() -> Setup {
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let token = server.token.clone().unwrap();
    let origin = Origin::new(TAKOFILE);
    Setup {
        server,
        origin,
        token,
        _data: data,
    }
}

fn api(setup: &Setup, method: &str, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {}", setup.token);
    let answer = request(
        &setup.server.address,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap();
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

/// The id of the newest deployment, once there is one beyond `after`.
fn wait_for_deployment(setup: &Setup, after: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api(setup, "GET", "/api/v1/deployments?limit=1", "");
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        if let Some(id) = page["items"][0]["id"].as_i64()
            && id > after
        {
            return id;
        }
        assert!(Instant::now() < deadline, "no deployment was queued");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn sign_in(client: &Client, setup: &Setup, next: &str) {
    let base = format!("http://{}", setup.server.address);
    client.goto(&format!("{base}{next}")).await.unwrap();
    let url = client.current_url().await.unwrap();
    assert!(
        url.path().ends_with("/ui/sign-in"),
        "signed out: sent to sign in, not {url}"
    );
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&setup.token)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.signin button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "back where the user was going",
        Duration::from_secs(10),
        || async {
            let url = client.current_url().await.ok()?;
            (url.path() == next).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_watch_a_deployment_live_and_read_variables_and_deliveries() {
    let setup = setup();
    let (status, body) = api(
        &setup,
        "POST",
        "/api/v1/projects",
        &format!(
            r#"{{"name":"Demo","repository":"{}"}}"#,
            setup.origin.bare.file_url()
        ),
    );
    assert!(status == 201 || status == 409, "{status} {body}");
    let (status, body) = api(
        &setup,
        "PUT",
        "/api/v1/projects/Demo/variables/ApiKey",
        &format!(r#"{{"value":"{CANARY}","sensitive":true}}"#),
    );
    assert_eq!(status, 200, "{body}");

    let browser = Browser::start().await;
    let client = &browser.client;
    sign_in(client, &setup, "/ui/").await;

    // A push to develop: the DevTest cell runs, then turns green, live.
    let body = setup
        .origin
        .push_commit("develop", "app.txt", "v1", "Add the app");
    assert_eq!(
        post_push(&setup.server.address, "d-1", &body, SECRET).status,
        202
    );
    let deployment = wait_for_deployment(&setup, 0);
    client.refresh().await.unwrap();
    let cell = "td[data-cell$=':DevTest'] .badge";
    eventually(
        "the DevTest cell shows Running",
        Duration::from_secs(20),
        || async { text_of(client, cell).await.filter(|t| t == "Running") },
    )
    .await;
    // Marks this page: a reload would lose the mark.
    client
        .execute("window.tako_mark = 'still here'; return 1;", vec![])
        .await
        .unwrap();

    // The deployment page in a second tab: its log grows while we watch.
    let dashboard_tab = client.window().await.unwrap();
    let tab = client.new_window(true).await.unwrap();
    client.switch_to_window(tab.handle).await.unwrap();
    let base = format!("http://{}", setup.server.address);
    client
        .goto(&format!("{base}/ui/deployments/{deployment}"))
        .await
        .unwrap();
    let count_lines = || async {
        client
            .find_all(Locator::Css("#log .line"))
            .await
            .map(|lines| lines.len())
            .unwrap_or(0)
    };
    eventually("the first build lines", Duration::from_secs(20), || async {
        let text = text_of(client, "#log").await?;
        text.contains("build line 2").then_some(())
    })
    .await;
    let early = count_lines().await;
    let early_text = text_of(client, "#log").await.unwrap();
    assert!(
        !early_text.contains("build line 12"),
        "the page was opened mid-step: {early_text}"
    );
    eventually("the log grows live", Duration::from_secs(20), || async {
        let text = text_of(client, "#log").await?;
        text.contains("build line 12").then_some(())
    })
    .await;
    assert!(
        count_lines().await > early,
        "lines were added to the open page"
    );
    eventually(
        "the steps show success",
        Duration::from_secs(30),
        || async {
            let text = text_of(client, "#steps").await?;
            (text.contains("Wait") && text.contains("success") && !text.contains("running"))
                .then_some(())
        },
    )
    .await;
    // The whole log arrives (the steps table may be refreshed first).
    eventually("the end of the log", Duration::from_secs(20), || async {
        let text = text_of(client, "#log").await?;
        text.contains("done waiting").then_some(())
    })
    .await;
    // stderr and Tako's own lines are told apart.
    let stderr = client
        .find(Locator::Css("#log .line.stderr .text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(stderr, "a warning on stderr");
    assert!(
        !client
            .find_all(Locator::Css("#log .line.tako"))
            .await
            .unwrap()
            .is_empty(),
        "Tako's own lines are marked"
    );
    // Search within the log.
    client
        .find(Locator::Id("log-search"))
        .await
        .unwrap()
        .send_keys("line 5")
        .await
        .unwrap();
    let visible = client
        .execute(
            "return [...document.querySelectorAll('#log .line')].filter(l => !l.classList.contains('hidden')).map(l => l.querySelector('.text').textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(visible, serde_json::json!(["build line 5"]));
    screenshot(client, "deployment.png").await;

    // Back on the dashboard: the cell turned green without a reload.
    client.switch_to_window(dashboard_tab).await.unwrap();
    eventually(
        "the DevTest cell turns Success",
        Duration::from_secs(20),
        || async { text_of(client, cell).await.filter(|t| t == "Success") },
    )
    .await;
    let mark = client
        .execute("return window.tako_mark;", vec![])
        .await
        .unwrap();
    assert_eq!(
        mark,
        serde_json::json!("still here"),
        "updated live, not reloaded"
    );
    screenshot(client, "dashboard.png").await;

    // The download is the text log.
    let (status, text) = {
        let cookie = client.get_named_cookie("tako_session").await.unwrap();
        let header = format!("tako_session={}", cookie.value());
        let answer = request(
            &setup.server.address,
            "GET",
            &format!("/ui/deployments/{deployment}/log.txt"),
            &[("Cookie", &header)],
            b"",
        )
        .unwrap();
        (
            answer.status,
            String::from_utf8_lossy(&answer.body).into_owned(),
        )
    };
    assert_eq!(status, 200);
    assert!(text.contains("[Build] stdout: build line 12"), "{text}");

    // Variables: the sensitive value is ******** and never in the page.
    client
        .goto(&format!("{base}/ui/projects/Demo/variables"))
        .await
        .unwrap();
    let row = text_of(client, "#variables tbody tr").await.unwrap();
    assert!(row.contains("ApiKey") && row.contains("********"), "{row}");
    let source = client.source().await.unwrap();
    assert!(
        !source.contains(CANARY),
        "the sensitive value never reaches the browser"
    );

    // A push to a branch with no mapping: an ignored delivery, with why.
    let body = setup
        .origin
        .push_commit("feature/x", "x.txt", "x", "Try something");
    assert_eq!(
        post_push(&setup.server.address, "d-ignored", &body, SECRET).status,
        202
    );
    client.goto(&format!("{base}/ui/deliveries")).await.unwrap();
    eventually(
        "the ignored delivery and its reason",
        Duration::from_secs(20),
        || async {
            client.refresh().await.ok()?;
            let text = text_of(client, "tr[data-delivery='d-ignored']").await?;
            text.contains("ignored: no mapping for branch feature/x")
                .then_some(())
        },
    )
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_long_deployment_from_its_page() {
    let setup = setup();
    let body = setup
        .origin
        .push_commit("slow", "slow.txt", "1", "A slow one");
    assert_eq!(
        post_push(&setup.server.address, "s-1", &body, SECRET).status,
        202
    );
    let deployment = wait_for_deployment(&setup, 0);

    let browser = Browser::start().await;
    let client = &browser.client;
    sign_in(client, &setup, &format!("/ui/deployments/{deployment}")).await;
    eventually("the Wait step runs", Duration::from_secs(30), || async {
        client.refresh().await.ok()?;
        let text = text_of(client, "#steps").await?;
        (text.contains("Wait") && text.contains("running")).then_some(())
    })
    .await;
    client
        .find(Locator::Css("form.cancel button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "the deployment is cancelled",
        Duration::from_secs(30),
        || async {
            let text = text_of(client, "#steps").await?;
            text.contains("Cancelled").then_some(())
        },
    )
    .await;
    let (_, body) = api(
        &setup,
        "GET",
        &format!("/api/v1/deployments/{deployment}"),
        "",
    );
    let dto: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(dto["state"], "cancelled", "{body}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_page_lists_agents_and_an_admin_approves_one() {
    let setup = setup();
    let (status, body) = api(
        &setup,
        "POST",
        "/api/v1/agents/enrollment-tokens",
        r#"{"name": "win-01", "environments": ["Production"], "roles": ["ps"]}"#,
    );
    assert_eq!(status, 201, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let enroll =
        serde_json::json!({"token": token, "name": "x", "version": "0.1.0", "protocol": 1});
    let enrolled = request(
        &setup.server.address,
        "POST",
        "/api/v1/agent/enroll",
        &[("Content-Type", "application/json")],
        enroll.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(enrolled.status, 201, "{}", enrolled.text());

    let browser = Browser::start().await;
    let client = &browser.client;
    sign_in(client, &setup, "/ui/agents").await;
    let row = text_of(client, "#agent-list tr[data-agent=win-01]")
        .await
        .unwrap();
    assert!(
        row.contains("pending") && row.contains("Production") && row.contains("ps"),
        "{row}"
    );
    screenshot(client, "agents-pending.png").await;
    client
        .find(Locator::Css(
            "#agent-list tr[data-agent=win-01] button[aria-label^=Approve]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the agent is approved", Duration::from_secs(10), || async {
        let row = text_of(client, "#agent-list tr[data-agent=win-01]").await?;
        row.contains("online").then_some(())
    })
    .await;
    screenshot(client, "agents.png").await;
    let (_, listed) = api(&setup, "GET", "/api/v1/agents", "");
    assert!(listed.contains(r#""state":"online""#), "{listed}");
    browser.close().await;
}

// ----- the same UI over plain HTTP: the rules a browser cannot show -----

fn header<'a>(answer: &'a tako_test_support::http::HttpResponse, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Signs in over HTTP with `token`; returns the `Cookie` header to send.
fn http_sign_in(setup: &Setup, token: &str) -> String {
    let body = format!("token={token}&next=%2Fui%2F");
    let answer = request(
        &setup.server.address,
        "POST",
        "/ui/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        answer.status,
        303,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let cookie = header(&answer, "set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(token), "the cookie never holds the token");
    cookie.split(';').next().unwrap().to_owned()
}

fn get(setup: &Setup, cookie: &str, path: &str) -> (u16, String) {
    let answer = request(
        &setup.server.address,
        "GET",
        path,
        &[("Cookie", cookie)],
        b"",
    )
    .unwrap();
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

fn post_form(setup: &Setup, cookie: &str, path: &str, form: &str) -> (u16, String) {
    let answer = request(
        &setup.server.address,
        "POST",
        path,
        &[
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    )
    .unwrap();
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[test]
fn forms_need_the_session_csrf_token_and_roles_apply() {
    let setup = setup();
    // A wrong token: 401 and the form again, no cookie.
    let answer = request(
        &setup.server.address,
        "POST",
        "/ui/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"token=tako_nope&next=%2Fui%2F",
    )
    .unwrap();
    assert_eq!(answer.status, 401);
    assert!(header(&answer, "set-cookie").is_none());
    assert!(String::from_utf8_lossy(&answer.body).contains("unknown, revoked or expired"));
    // An open redirect is refused: `next` stays on this UI.
    let answer = request(
        &setup.server.address,
        "POST",
        "/ui/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={}&next=https%3A%2F%2Fevil.example%2F", setup.token).as_bytes(),
    )
    .unwrap();
    assert_eq!(header(&answer, "location"), Some("/ui/"));

    let admin = http_sign_in(&setup, &setup.token);
    let (status, page) = get(&setup, &admin, "/ui/");
    assert_eq!(status, 200);
    let csrf = csrf_of(&page);
    // Every page carries a strict content security policy.
    let answer = request(
        &setup.server.address,
        "GET",
        "/ui/",
        &[("Cookie", &admin)],
        b"",
    )
    .unwrap();
    let csp = header(&answer, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&answer, "cache-control"), Some("no-store"));

    // Set a sensitive variable through the form: without the CSRF token, 403
    // and nothing stored; with it, stored and shown as ********.
    let body = setup.origin.push_commit("develop", "a.txt", "1", "First");
    assert_eq!(
        post_push(&setup.server.address, "h-1", &body, SECRET).status,
        202
    );
    wait_for_deployment(&setup, 0);
    let form = format!("name=Token&value={CANARY}&environments=DevTest&sensitive=true");
    let (status, page) = post_form(&setup, &admin, "/ui/projects/Demo/variables", &form);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("reload the page"), "{page}");
    let (status, page) = post_form(
        &setup,
        &admin,
        "/ui/projects/Demo/variables",
        &format!("{form}&csrf=0000"),
    );
    assert_eq!(status, 403, "{page}");
    let (_, listed) = api(&setup, "GET", "/api/v1/projects/Demo/variables", "");
    assert!(!listed.contains("Token"), "nothing stored: {listed}");
    let (status, _) = post_form(
        &setup,
        &admin,
        "/ui/projects/Demo/variables",
        &format!("{form}&csrf={csrf}"),
    );
    assert_eq!(status, 303);
    let (status, page) = get(&setup, &admin, "/ui/projects/Demo/variables");
    assert_eq!(status, 200);
    assert!(page.contains("********") && page.contains("DevTest"));
    assert!(!page.contains(CANARY), "never revealed");
    // Another site's form is refused even with a valid token.
    let answer = request(
        &setup.server.address,
        "POST",
        "/ui/projects/Demo/variables",
        &[
            ("Cookie", &admin),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "https://evil.example"),
        ],
        format!("{form}&csrf={csrf}").as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 403);

    // A viewer: reads the dashboard, cannot see variables, deploy or replay.
    let (status, body) = api(
        &setup,
        "POST",
        "/api/v1/tokens",
        r#"{"name":"watcher","role":"viewer"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let viewer_token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = http_sign_in(&setup, &viewer_token);
    let (status, page) = get(&setup, &viewer, "/ui/");
    assert_eq!(status, 200);
    let viewer_csrf = csrf_of(&page);
    assert_ne!(viewer_csrf, csrf, "each session has its own CSRF token");
    let (status, _) = get(&setup, &viewer, "/ui/projects/Demo/variables");
    assert_eq!(status, 403);
    let (status, _) = post_form(
        &setup,
        &viewer,
        "/ui/releases/1/deploy",
        &format!("environment=Production&csrf={viewer_csrf}"),
    );
    assert_eq!(status, 403);
    let (status, _) = post_form(
        &setup,
        &viewer,
        "/ui/deliveries/h-1/replay",
        &format!("csrf={viewer_csrf}"),
    );
    assert_eq!(status, 403);
    let (_, release) = get(&setup, &viewer, "/ui/releases/1");
    assert!(
        !release.contains("Deploy to"),
        "no deploy form for a viewer"
    );

    // Revoking the token ends its sessions at once.
    let (_, tokens) = api(&setup, "GET", "/api/v1/tokens", "");
    let id = serde_json::from_str::<Vec<serde_json::Value>>(&tokens)
        .unwrap()
        .iter()
        .find(|t| t["name"] == "watcher")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = api(&setup, "DELETE", &format!("/api/v1/tokens/{id}"), "");
    assert_eq!(status, 204);
    let answer = request(
        &setup.server.address,
        "GET",
        "/ui/",
        &[("Cookie", &viewer)],
        b"",
    )
    .unwrap();
    assert_eq!(answer.status, 303, "sent to sign in again");

    // The admin deploys the release to Production from its page, and a
    // delivery can be replayed (a replayed push is processed once more).
    let (status, _) = post_form(
        &setup,
        &admin,
        "/ui/releases/1/deploy",
        &format!("environment=Production&csrf={csrf}"),
    );
    assert_eq!(status, 303);
    let (status, _) = post_form(
        &setup,
        &admin,
        "/ui/deliveries/h-1/replay",
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 303);
    let releases = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = api(&setup, "GET", "/api/v1/projects/Demo/releases", "");
            let page: serde_json::Value = serde_json::from_str(&body).unwrap();
            if page["items"].as_array().unwrap().len() == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} releases: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    releases(2);
    // The same through the API (409 while the UI's replay is in flight).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api(&setup, "POST", "/api/v1/deliveries/h-1/replay", "");
        if status == 200 {
            break;
        }
        assert_eq!(status, 409, "{body}");
        assert!(Instant::now() < deadline, "the delivery stayed pending");
        std::thread::sleep(Duration::from_millis(100));
    }
    releases(3);
    let (status, _) = api(&setup, "POST", "/api/v1/deliveries/no-such/replay", "");
    assert_eq!(status, 404);
}

#[test]
fn release_notes_are_rendered_as_safe_markdown() {
    let setup = setup();
    let message = "Fix **bold** <script>alert('x')</script> [click](javascript:alert(1)) <img src=x onerror=alert(2)>";
    let body = setup.origin.push_commit("develop", "n.txt", "1", message);
    assert_eq!(
        post_push(&setup.server.address, "m-1", &body, SECRET).status,
        202
    );
    wait_for_deployment(&setup, 0);
    let admin = http_sign_in(&setup, &setup.token);
    let (status, page) = get(&setup, &admin, "/ui/releases/1");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<strong>bold</strong>"),
        "Markdown is rendered: {page}"
    );
    assert!(!page.contains("<script>alert"), "no script survives");
    assert!(
        !page.contains("javascript:"),
        "no javascript: link survives"
    );
    assert!(!page.contains("onerror"), "no event handler survives");
    // Unknown pages and bad ids are pages too, never a panic.
    let (status, page) = get(&setup, &admin, "/ui/releases/999");
    assert_eq!(status, 404);
    assert!(page.contains("release 999 not found"), "{page}");
    let (status, _) = get(&setup, &admin, "/ui/deployments/not-a-number");
    assert_eq!(status, 400);
    let (status, _) = get(&setup, &admin, "/ui/nowhere");
    assert_eq!(status, 404);
    let (status, _) = get(&setup, &admin, "/ui/?cursor=garbage");
    assert_eq!(status, 400);
}

/// A failed test (a panic before `close`) leaves no browser behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_browser_leaves_no_chromium_behind() {
    let browser = Browser::start().await;
    browser.client.goto("about:blank").await.unwrap();
    let marker = browser.marker();
    assert!(
        !tako_test_support::processes_with(&marker).is_empty(),
        "Chromium runs with its own profile"
    );
    drop(browser);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = tako_test_support::processes_with(&marker);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "Chromium left running: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
