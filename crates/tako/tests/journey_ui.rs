//! A release's journey in the web UI, in headless Chromium: the release
//! page shows the lifecycle and offers *Deploy to…* only for environments
//! the release may enter (saying why not for the others), a deployment
//! into a phase with an approval shows the *Awaiting approval* badge, the
//! list of what waits for me has it, *Approve* with a note runs it, and
//! the dashboard orders its columns by the lifecycle.
//!
//! Without Chromium these tests fail; `scripts/test` installs it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use tako_test_support::browser::Browser;
use tako_test_support::http::request;
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};

const SECRET: &str = "journey ui webhook secret";

const TAKOFILE: &str = r##"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Lifecycle:
  - Environment: DevTest
    AutoDeploy: true
  - Environment: Staging
  - Environment: Production
    Requires: [Staging]
    Approval: { Roles: [admin], NotBy: pusher }
Steps:
  - Name: Deploy
    Run: echo "approved by [#{Tako.Approval.By}] note [#{Tako.Approval.Note}]"
"##;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

struct Setup {
    server: TakoServer,
    origin: Origin,
    token: String,
    _data: DataDir,
}

fn api(setup: &Setup, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
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
    let json = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
    (answer.status, json)
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_offers_what_the_lifecycle_allows_and_an_approval_is_given_in_the_ui() {
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let setup = Setup {
        token: server.token.clone().unwrap(),
        server,
        origin: Origin::new(TAKOFILE),
        _data: data,
    };
    let body = format!(
        r#"{{"name":"Demo","repository":"{}"}}"#,
        setup.origin.bare.file_url()
    );
    assert_eq!(api(&setup, "POST", "/api/v1/projects", &body).0, 201);
    // A push to develop (its pusher is `tester`): DevTest deploys.
    let push = setup
        .origin
        .push_commit("develop", "app.txt", "v1", "Add the app");
    assert_eq!(
        post_push(&setup.server.address, "ui-1", &push, SECRET).status,
        202
    );
    let release = eventually("DevTest succeeds", Duration::from_secs(60), || async {
        let (_, page) = api(&setup, "GET", "/api/v1/deployments?limit=1", "");
        let newest = &page["items"][0];
        (newest["state"] == "success").then(|| newest["release"].as_i64().unwrap())
    })
    .await;

    let browser = Browser::start().await;
    let client = &browser.client;
    let base = format!("http://{}", setup.server.address);
    client.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&setup.token)
        .await
        .unwrap();
    click(client, "form.signin button[type=submit]").await;
    eventually("signed in", Duration::from_secs(10), || async {
        let url = client.current_url().await.ok()?;
        (url.path() == "/ui/").then_some(())
    })
    .await;

    // The release page: the lifecycle, and Deploy to… without Production.
    client
        .goto(&format!("{base}/ui/releases/{release}"))
        .await
        .unwrap();
    let options = || async {
        let mut names = Vec::new();
        for option in client
            .find_all(Locator::Css("select#environment option"))
            .await
            .unwrap()
        {
            names.push(option.attr("value").await.unwrap().unwrap());
        }
        names
    };
    assert_eq!(options().await, ["DevTest", "Staging"]);
    let production = text_of(client, "#lifecycle li[data-environment='Production']")
        .await
        .unwrap();
    assert!(
        production.contains("requires a successful deployment to Staging"),
        "{production}"
    );

    // Deploy to Staging from the form; then Production is offered.
    client
        .find(Locator::Css("select#environment option[value='Staging']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(client, "form.deploy button[type=submit]").await;
    eventually("the deployment page", Duration::from_secs(10), || async {
        let url = client.current_url().await.ok()?;
        url.path().starts_with("/ui/deployments/").then_some(())
    })
    .await;
    wait_for_state(client, "Success").await;
    client
        .goto(&format!("{base}/ui/releases/{release}"))
        .await
        .unwrap();
    assert_eq!(options().await, ["DevTest", "Staging", "Production"]);
    client
        .find(Locator::Css(
            "select#environment option[value='Production']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(client, "form.deploy button[type=submit]").await;
    eventually("the badge", Duration::from_secs(10), || async {
        let shown = text_of(client, "#steps .state .badge").await?;
        (shown == "Awaiting approval").then_some(())
    })
    .await;
    let panel = text_of(client, "#approval").await.unwrap();
    assert!(
        panel.contains("1 approval by admin, not by its pusher"),
        "{panel}"
    );
    let url = client.current_url().await.unwrap();
    let deployment: i64 = url.path().rsplit('/').next().unwrap().parse().unwrap();

    // What waits for me lists it (the navigation's badge counts it);
    // approve it there with a note, and come back to the list.
    click(client, "nav a[href='/ui/waiting']").await;
    assert_eq!(
        text_of(client, "#waiting-count").await.as_deref(),
        Some("1")
    );
    let row = format!("#approvals tr[data-deployment='{deployment}']");
    assert!(
        text_of(client, &row).await.unwrap().contains("Production"),
        "the approvals list has the deployment"
    );
    client
        .find(Locator::Css(&format!("{row} input[name=note]")))
        .await
        .unwrap()
        .send_keys("ok from the browser")
        .await
        .unwrap();
    click(client, &format!("{row} button[value=approve]")).await;
    eventually("the list again", Duration::from_secs(10), || async {
        let url = client.current_url().await.ok()?;
        (url.path() == "/ui/waiting").then_some(())
    })
    .await;
    assert!(text_of(client, "#nothing-waits").await.is_some());
    assert!(text_of(client, "#waiting-count").await.is_none());
    client
        .goto(&format!("{base}/ui/deployments/{deployment}"))
        .await
        .unwrap();
    wait_for_state(client, "Success").await;
    let decisions = text_of(client, "#approval .decisions").await.unwrap();
    assert!(decisions.contains("Approved by first admin"), "{decisions}");
    let log = text_of(client, "#log").await.unwrap();
    assert!(
        log.contains("approved by [first admin] note [ok from the browser]"),
        "{log}"
    );
    // The list's old address still leads to it.
    client.goto(&format!("{base}/ui/approvals")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/ui/waiting");
    assert!(text_of(client, "#nothing-waits").await.is_some());

    // The dashboard orders its columns by the lifecycle (not by name).
    client.goto(&format!("{base}/ui/")).await.unwrap();
    let mut headers = Vec::new();
    for th in client
        .find_all(Locator::Css("table thead th"))
        .await
        .unwrap()
    {
        headers.push(th.text().await.unwrap());
    }
    assert_eq!(headers, ["Project", "DevTest", "Staging", "Production"]);
    browser.close().await;
}
