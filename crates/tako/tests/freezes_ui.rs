//! Freezes in the web UI (`../shared/spec/journey.md` §5), against a real
//! `tako serve`, a real git origin and signed pushes on 127.0.0.1.
//!
//! In headless Chromium an admin opens *Freezes* from the navigation,
//! creates a freeze through the form (a bad field is refused next to it,
//! what was typed kept), sees a push's deployment held (counted on the
//! freeze, linked from the deployment page), releases it early with a
//! reason (it runs; the override is audited) and ends the freeze (the next
//! push runs at once). Over plain HTTP: bad input to the form is a 4xx
//! naming the field and stores nothing; a viewer sees the list but no
//! forms, and a viewer's or deployer's posts are refused.
//!
//! Without Chromium the browser test fails; `scripts/test` installs it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use fantoccini::{Client, Locator};
use serde_json::Value;
use tako_test_support::browser::Browser;
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "freezes-ui-webhook-secret";

const TAKOFILE: &str = r#"Project: Demo
Mappings:
  - Branch: develop
    Environment: DevTest
Steps:
  - Name: Deploy
    Run: |
      echo "deploying #{Octopus.Release.Number}"
"#;

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

fn at(offset_secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Setup {
    origin: Origin,
    server: TakoServer,
    admin: String,
    pushes: std::cell::Cell<u32>,
    _data: DataDir,
}

impl Setup {
    fn new() -> Setup {
        let origin = Origin::new(TAKOFILE);
        let data = DataDir::new();
        let server = TakoServer::start(
            tako_bin(),
            &data.path,
            &[],
            &[("TAKO_WEBHOOK_SECRET", SECRET)],
        );
        let admin = server.token.clone().unwrap();
        let setup = Setup {
            origin,
            server,
            admin,
            pushes: std::cell::Cell::new(0),
            _data: data,
        };
        let output = Command::new(tako_bin())
            .args(["project", "create", "Demo", "--repo"])
            .arg(setup.origin.bare.file_url())
            .env("TAKO_SERVER", format!("http://{}", setup.server.address))
            .env("TAKO_TOKEN", &setup.admin)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "project create: {output:?}");
        setup
    }

    fn api_as(&self, token: &str, method: &str, path: &str, body: &str) -> HttpResponse {
        let auth = format!("Bearer {token}");
        request(
            &self.server.address,
            method,
            &format!("/api/v1{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap()
    }

    fn get(&self, path: &str) -> Value {
        let answer = self.api_as(&self.admin, "GET", path, "");
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        answer.json()
    }

    /// A new token with `role`.
    fn token(&self, name: &str, role: &str) -> String {
        let answer = self.api_as(
            &self.admin,
            "POST",
            "/tokens",
            &format!(r#"{{"name":"{name}","role":"{role}"}}"#),
        );
        assert_eq!(answer.status, 201, "{}", answer.text());
        answer.json()["token"].as_str().unwrap().to_owned()
    }

    /// Pushes a commit to `develop`; returns its deployment once made.
    fn push(&self) -> Value {
        let n = self.pushes.get() + 1;
        self.pushes.set(n);
        let body = self
            .origin
            .push_commit("develop", "change.txt", &format!("{n}\n"), "Change");
        let delivery = format!("freezes-ui-{n}");
        let answer = post_push(&self.server.address, &delivery, &body, SECRET);
        assert_eq!(answer.status, 202, "{}", answer.text());
        let mut deployment = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                let page = self.get("/deliveries?limit=50");
                let outcome = page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["id"] == delivery.as_str())
                    .map(|d| d["outcome"].clone())
                    .unwrap_or_default();
                deployment = outcome["deployment"].as_i64();
                !outcome.is_null()
            }),
            "the push was not processed: {}",
            self.get("/deliveries?limit=50")
        );
        let Some(deployment) = deployment else {
            panic!(
                "the push queued nothing: {}",
                self.get("/deliveries?limit=50")
            );
        };
        self.get(&format!("/deployments/{deployment}"))
    }

    fn wait_for(&self, id: i64, state: &str) -> Value {
        let mut found = Value::Null;
        let reached = wait_until(Duration::from_secs(90), || {
            found = self.get(&format!("/deployments/{id}"));
            found["state"] == state
        });
        assert!(reached, "deployment {id} never became {state}: {found}");
        found
    }
}

// ----- in the browser -----

/// Saves a screenshot as a test artifact (`target/e2e-artifacts/`).
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &png).unwrap();
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

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn value_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits until `css` is on the current page (without reloading it).
async fn wait_for_element(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.find(Locator::Css(css)).await.is_err() {
        if Instant::now() > deadline {
            let url = client.current_url().await.unwrap();
            let page = text_of(client, "main").await.unwrap_or_default();
            panic!("{url} never showed {css}:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_path(client: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = client.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "never reached {path}: at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reloads the current (deployment) page until its state badge reads `state`.
async fn wait_for_badge(client: &Client, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
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
async fn an_admin_freezes_releases_a_held_deployment_and_ends_the_freeze_in_the_browser() {
    let setup = Setup::new();
    let browser = Browser::start().await;
    let client = &browser.client;
    let base = format!("http://{}", setup.server.address);

    client.goto(&format!("{base}/ui/")).await.unwrap();
    wait_for_path(client, "/ui/sign-in").await;
    type_into(client, "#token", &setup.admin).await;
    click(client, "form.signin button[type=submit]").await;
    wait_for_path(client, "/ui/").await;

    // The navigation leads to the page; nothing is frozen yet.
    click(client, "nav a[href='/ui/freezes']").await;
    wait_for_path(client, "/ui/freezes").await;
    wait_for_element(client, "#no-freezes").await;
    wait_for_element(client, "#nothing-held").await;

    // A bad end is refused next to its field, with everything typed kept.
    let from = at(-60);
    type_into(client, "#freeze-environment", "DevTest").await;
    type_into(client, "#freeze-from", &from).await;
    type_into(client, "#freeze-to", "later").await;
    type_into(client, "#freeze-reason", "Black Friday").await;
    click(client, "#create-freeze button[type=submit]").await;
    wait_for_element(client, "#freeze-to-error").await;
    let error = text_of(client, "#freeze-to-error").await.unwrap();
    assert!(error.contains("is not an instant"), "{error}");
    assert_eq!(value_of(client, "#freeze-environment").await, "DevTest");
    assert_eq!(value_of(client, "#freeze-from").await, from);
    assert_eq!(value_of(client, "#freeze-to").await, "later");
    assert_eq!(value_of(client, "#freeze-reason").await, "Black Friday");
    screenshot(client, "freezes-refused-field.png").await;
    assert!(setup.get("/freezes").as_array().unwrap().is_empty());

    // Corrected: created, listed as frozen now, holding nothing yet.
    type_into(client, "#freeze-to", &at(3600)).await;
    click(client, "#create-freeze button[type=submit]").await;
    wait_for_element(client, "#freezes tr[data-freeze]").await;
    let freezes = setup.get("/freezes");
    let freeze = &freezes.as_array().unwrap()[0];
    let id = freeze["id"].as_i64().unwrap();
    let row = format!("#freeze-{id}");
    assert_eq!(
        text_of(client, &format!("{row} td.environment"))
            .await
            .unwrap(),
        "DevTest"
    );
    assert_eq!(
        text_of(client, &format!("{row} td.projects"))
            .await
            .unwrap(),
        "every project"
    );
    assert_eq!(
        text_of(client, &format!("{row} td.reason")).await.unwrap(),
        "Black Friday"
    );
    assert_eq!(
        text_of(client, &format!("{row} td.created-by"))
            .await
            .unwrap(),
        freeze["created_by"].as_str().unwrap()
    );
    let status = text_of(client, &format!("{row} td.status")).await.unwrap();
    assert!(status.starts_with("Frozen now until"), "{status}");
    // Its end as an instant (not turned into an age by the page's script).
    let end = chrono::DateTime::parse_from_rfc3339(freeze["to"].as_str().unwrap()).unwrap();
    let end = end.format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(status.ends_with(&end), "{status}");
    assert_eq!(
        text_of(client, &format!("{row} td.holds")).await.unwrap(),
        "0"
    );

    // A push's deployment is held: counted on the freeze, listed, and its
    // page links to the freeze.
    let held = setup.push();
    assert_eq!(held["state"], "held", "{held}");
    let deployment = held["id"].as_i64().unwrap();
    client.refresh().await.unwrap();
    assert_eq!(
        text_of(client, &format!("{row} td.holds")).await.unwrap(),
        "1"
    );
    let by = text_of(
        client,
        &format!("#held tr[data-deployment='{deployment}'] td.held-by"),
    )
    .await
    .unwrap();
    assert!(by.contains(&format!("freeze {id}")), "{by}");
    screenshot(client, "freezes-holding.png").await;
    client
        .goto(&format!("{base}/ui/deployments/{deployment}"))
        .await
        .unwrap();
    assert_eq!(
        text_of(client, "#steps .state .badge").await.as_deref(),
        Some("Held (frozen)")
    );
    let held_by = text_of(client, "p.held-by").await.unwrap();
    assert!(held_by.contains("Black Friday"), "{held_by}");
    click(client, "p.held-by a").await;
    wait_for_path(client, "/ui/freezes").await;

    // Released early with a reason: it runs, and the override is audited.
    type_into(
        client,
        &format!("#release-reason-{deployment}"),
        "urgent fix CHG-7",
    )
    .await;
    click(
        client,
        &format!("#release-{deployment} button[type=submit]"),
    )
    .await;
    wait_for_path(client, &format!("/ui/deployments/{deployment}")).await;
    wait_for_badge(client, "Success").await;
    let audit = setup.get("/audit");
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "freeze.override"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("urgent fix CHG-7"))),
        "{audit}"
    );

    // Ended from the page: gone, and the next push runs at once.
    client.goto(&format!("{base}/ui/freezes")).await.unwrap();
    wait_for_element(client, &format!("{row} button.end")).await;
    click(client, &format!("{row} button.end")).await;
    wait_for_element(client, "#no-freezes").await;
    assert!(setup.get("/freezes").as_array().unwrap().is_empty());
    let next = setup.push();
    assert_ne!(next["state"], "held", "{next}");
    setup.wait_for(next["id"].as_i64().unwrap(), "success");
    browser.close().await;
}

// ----- over plain HTTP: the rules a browser does not show -----

/// Signs in over HTTP with `token`; returns the `Cookie` header to send.
fn http_sign_in(setup: &Setup, token: &str) -> String {
    let answer = request(
        &setup.server.address,
        "POST",
        "/ui/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={token}&next=%2Fui%2Ffreezes").as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 303, "{}", answer.text());
    let cookie = answer.header("set-cookie").unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

fn page(setup: &Setup, cookie: &str) -> String {
    let answer = request(
        &setup.server.address,
        "GET",
        "/ui/freezes",
        &[("Cookie", cookie)],
        b"",
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.text()
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
    (answer.status, answer.text())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// The text of the error shown next to the form's field `field`.
fn field_error(html: &str, field: &str) -> Option<String> {
    let marker = format!("id=\"freeze-{field}-error\"");
    let at = html.find(&marker)?;
    let text = &html[at..];
    let start = text.find('>')? + 1;
    let end = text.find("</span>")?;
    Some(text[start..end].to_owned())
}

#[test]
fn bad_input_is_refused_in_the_form_and_only_admins_get_the_forms() {
    let setup = Setup::new();
    let admin = http_sign_in(&setup, &setup.admin);
    let shown = page(&setup, &admin);
    assert!(shown.contains("id=\"create-freeze\""), "{shown}");
    let csrf = csrf_of(&shown);

    let soon = at(60);
    let now = at(0);
    for (form, status, field, expected) in [
        (
            "environment=DevTest&from=tomorrow&to=later&reason=keep+me".to_owned(),
            422,
            "from",
            "is not an instant",
        ),
        (
            format!("environment=DevTest&from={soon}&to={now}&reason=keep+me"),
            422,
            "to",
            "before it starts",
        ),
        (
            "environment=DevTest&from=00:00&to=24:00&every=caturday&reason=keep+me".to_owned(),
            422,
            "every",
            "is not a day of the week",
        ),
        (
            "environment=DevTest&from=00:00&to=25:00&every=sat&reason=keep+me".to_owned(),
            422,
            "to",
            "is not a time of day",
        ),
        (
            format!("environment=DevTest&from={now}&to={soon}&reason=+"),
            422,
            "reason",
            "a reason is required",
        ),
        (
            format!("environment=&from={now}&to={soon}&reason=keep+me"),
            422,
            "environment",
            "environment must not be empty",
        ),
        (
            format!("environment=DevTest&project=nope&from={now}&to={soon}&reason=keep+me"),
            404,
            "project",
            "nope",
        ),
    ] {
        let (got, body) = post_form(
            &setup,
            &admin,
            "/ui/freezes",
            &format!("{form}&csrf={csrf}"),
        );
        assert_eq!(got, status, "{form}: {body}");
        let error = field_error(&body, field).unwrap_or_else(|| panic!("{form}: {body}"));
        assert!(error.contains(expected), "{form}: {error}");
        assert!(
            body.contains("value=\"DevTest\"") || form.starts_with("environment=&"),
            "what was typed is kept: {body}"
        );
        assert!(
            body.contains("value=\"keep me\"") || form.contains("reason=+"),
            "{body}"
        );
        // Only the field at fault says so.
        for other in ["environment", "project", "from", "to", "every", "reason"] {
            if other != field {
                assert_eq!(field_error(&body, other), None, "{form}: {other}");
            }
        }
    }
    // Without the session's CSRF token: refused, nothing stored.
    let (got, body) = post_form(
        &setup,
        &admin,
        "/ui/freezes",
        &format!("environment=DevTest&from={now}&to={soon}&reason=x"),
    );
    assert_eq!(got, 403, "{body}");
    assert!(body.contains("reload the page"), "{body}");
    assert!(
        setup.get("/freezes").as_array().unwrap().is_empty(),
        "nothing was stored"
    );
    // Releasing without a reason, and what is not held: clear errors.
    let (got, body) = post_form(
        &setup,
        &admin,
        "/ui/deployments/999/release-hold",
        &format!("reason=&csrf={csrf}"),
    );
    assert_eq!(got, 422, "{body}");
    assert!(body.contains("a reason is required"), "{body}");
    let (got, body) = post_form(
        &setup,
        &admin,
        "/ui/deployments/999/release-hold",
        &format!("reason=why&csrf={csrf}"),
    );
    assert_eq!(got, 404, "{body}");
    assert!(body.contains("not found"), "{body}");
    let (got, _) = post_form(
        &setup,
        &admin,
        "/ui/freezes/999/delete",
        &format!("csrf={csrf}"),
    );
    assert_eq!(got, 404);

    // A freeze made through the API, seen by a viewer without any form.
    let answer = setup.api_as(
        &setup.admin,
        "POST",
        "/freezes",
        &format!(
            r#"{{"environment":"DevTest","project":"Demo","from":"{now}","to":"{}","reason":"Quiet week"}}"#,
            at(3600)
        ),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let id = answer.json()["id"].as_i64().unwrap();
    let answer = setup.api_as(
        &setup.admin,
        "POST",
        "/freezes",
        r#"{"environment":"Production","every":"sat,sun","from":"00:00","to":"24:00","reason":"Weekends"}"#,
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let viewer_token = setup.token("watcher", "viewer");
    let deployer_token = setup.token("shipper", "deployer");
    for token in [&viewer_token, &deployer_token] {
        let cookie = http_sign_in(&setup, token);
        let shown = page(&setup, &cookie);
        assert!(shown.contains("Quiet week"), "{shown}");
        assert!(shown.contains("every sat,sun at 00:00 UTC"), "{shown}");
        assert!(shown.contains(">Demo<"), "the project it covers: {shown}");
        assert!(shown.contains(&format!("id=\"freeze-{id}\"")), "{shown}");
        assert!(!shown.contains("action=\"/ui/freezes\""), "{shown}");
        assert!(!shown.contains("/delete\""), "{shown}");
        assert!(!shown.contains("release-hold"), "{shown}");
        assert!(shown.contains("Only admins"), "{shown}");
        let csrf = csrf_of(&shown);
        let (got, body) = post_form(
            &setup,
            &cookie,
            "/ui/freezes",
            &format!("environment=DevTest&from={now}&to={soon}&reason=mine&csrf={csrf}"),
        );
        assert_eq!(got, 403, "{body}");
        assert!(body.contains("admin role"), "{body}");
        let (got, body) = post_form(
            &setup,
            &cookie,
            &format!("/ui/freezes/{id}/delete"),
            &format!("csrf={csrf}"),
        );
        assert_eq!(got, 403, "{body}");
        let (got, body) = post_form(
            &setup,
            &cookie,
            "/ui/deployments/1/release-hold",
            &format!("reason=mine&csrf={csrf}"),
        );
        assert_eq!(got, 403, "{body}");
    }
    let freezes = setup.get("/freezes");
    assert_eq!(freezes.as_array().unwrap().len(), 2, "{freezes}");
    assert_eq!(freezes[0]["reason"], "Quiet week");
}
