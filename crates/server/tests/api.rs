//! The JSON API in process: the router of `http::app` over an in-memory
//! store, called with `oneshot` (no scheduler runs, so deployments stay
//! queued until a test moves them).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use tako_server::http::app;
use tako_server::intake::{Intake, IntakeWriter, WebhookSecrets};
use tako_server::keys::MasterKeys;
use tako_server::services::Services;
use tako_server::startup::token_hash;
use tako_server::state::AppState;
use tako_store::{
    DeploymentState, LogLevel, LogLineRecord, LogStream, NewApiToken, NewDeployment, NewProject,
    NewRelease, NodeId, Project, Release, SqliteStore, Store, TokenHash,
};
use tokio::sync::Notify;
use tower::ServiceExt;

const TOKEN: &str = "tako_0123456789abcdef0123456789abcdef01234567";

struct Api {
    store: Arc<dyn Store>,
    /// The database file, for a store on disk.
    database: Option<std::path::PathBuf>,
    router: Router,
    queued: Arc<Notify>,
    keys: Arc<MasterKeys>,
    _data: tempfile::TempDir,
    /// The repositories of projects made by [`Api::project`].
    origins: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The error answer's shape: `error` is a string, `detail` is present.
    fn assert_error(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        let body = self.json();
        assert!(body["error"].is_string(), "{body}");
        assert!(body.get("detail").is_some(), "{body}");
        body
    }
}

async fn api() -> Api {
    api_with(tako_server::http::limits::Limits::default()).await
}

async fn api_with(limits: tako_server::http::limits::Limits) -> Api {
    build_api(limits, false).await
}

/// An API over a store in a database file (which a test can break).
async fn api_on_disk() -> Api {
    build_api(tako_server::http::limits::Limits::default(), true).await
}

async fn build_api(limits: tako_server::http::limits::Limits, on_disk: bool) -> Api {
    let data = tempfile::tempdir().unwrap();
    let keys = Arc::new(MasterKeys::load(data.path(), &data.path().join("secret.key")).unwrap());
    let database = on_disk.then(|| data.path().join("tako.db"));
    let store = match &database {
        Some(path) => SqliteStore::open(path).unwrap(),
        None => SqliteStore::in_memory().unwrap(),
    };
    let store: Arc<dyn Store> = Arc::new(store.with_keyring(Arc::clone(&keys.keyring)));
    store
        .create_token(NewApiToken {
            name: "test admin".to_owned(),
            hash: TokenHash(token_hash(TOKEN)),
            role: "admin".to_owned(),
            expires_at: None,
        })
        .await
        .unwrap();
    let queued = Arc::new(Notify::new());
    let secrets = WebhookSecrets::default();
    let writer = IntakeWriter::spawn(store.clone(), Arc::new(Notify::new()), 1);
    let intake_activity = writer.activity();
    let intake = Intake {
        server_secret: Some("server secret".to_owned()),
        insecure_unsigned: false,
        secrets: secrets.clone(),
        writer,
    };
    let services = Services {
        store: store.clone(),
        mirrors: tako_git::Mirrors::new(data.path().join("mirrors")),
        keys: Arc::clone(&keys),
        secrets,
        deployments_queued: queued.clone(),
        deliveries_stored: Arc::new(Notify::new()),
        jobs_created: Arc::new(Notify::new()),
        fetch_budget: limits.request_timeout * 3 / 4,
        retention: tako_server::retention::Retention::new(
            store.clone(),
            tako_git::Mirrors::new(data.path().join("mirrors")),
            data.path().join("work"),
            tako_server::retention::RetentionSettings::from_config(
                &tako_server::config::ServerConfig::default(),
            ),
            intake_activity,
        ),
        statuses: tako_server::statuses::StatusReporter::new(store.clone(), String::new(), None),
    };
    let state = Arc::new(AppState {
        services,
        intake,
        limits: limits.clone(),
        https: false,
    });
    Api {
        store,
        database,
        router: app(state),
        queued,
        keys,
        _data: data,
        origins: std::sync::Mutex::default(),
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Body>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                body
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer {
            status,
            retry_after,
            content_type,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, Some(TOKEN), None).await
    }

    async fn send(&self, method: Method, uri: &str, body: Value) -> Answer {
        self.call(method, uri, Some(TOKEN), Some(Body::from(body.to_string())))
            .await
    }

    /// A project whose repository is a real local one (without a
    /// lifecycle), so deployments can read its default branch.
    async fn project(&self, name: &str) -> Project {
        let (root, _work, url) = origin(&format!("Project: {name}\n"));
        self.origins.lock().unwrap().push(root);
        self.store
            .create_project(NewProject {
                name: name.to_owned(),
                repository_url: url,
                webhook_secret: None,
                repository_token: None,
            })
            .await
            .unwrap()
    }

    async fn release(&self, project: &Project, number: &str) -> Release {
        self.store
            .create_release(NewRelease {
                project: project.id,
                number: number.to_owned(),
                notes: String::new(),
                commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
                branch: Some("main".to_owned()),
                pusher: None,
                takofile: "Project: web\n".to_owned(),
                variables: "{\"Secret\":\"frozen-secret-value\"}".to_owned(),
                build_number: None,
            })
            .await
            .unwrap()
    }
}

fn line(step: Option<&str>, text: &str) -> LogLineRecord {
    LogLineRecord {
        timestamp: Utc::now(),
        step: step.map(str::to_owned),
        stream: LogStream::Stdout,
        level: LogLevel::Info,
        text: text.to_owned(),
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let api = api().await;
    api.project("web").await;

    let none = api.call(Method::GET, "/api/v1/projects", None, None).await;
    none.assert_error(StatusCode::UNAUTHORIZED);
    let wrong = api
        .call(Method::GET, "/api/v1/projects", Some("tako_wrong"), None)
        .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED);
    let malformed = api
        .router
        .clone()
        .oneshot(
            Request::get("/api/v1/projects")
                .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);

    // A token created through the API works, and stops working once revoked.
    let created = api
        .send(Method::POST, "/api/v1/tokens", json!({"name": "ci"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created = created.json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "admin");
    let ok = api
        .call(Method::GET, "/api/v1/projects", Some(&token), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let id = tako_store::TokenId(created["id"].as_i64().unwrap());
    api.store.revoke_token(id).await.unwrap();
    let revoked = api
        .call(Method::GET, "/api/v1/projects", Some(&token), None)
        .await;
    revoked.assert_error(StatusCode::UNAUTHORIZED);

    // The listing never shows a token, and records the use.
    let tokens = api.get("/api/v1/tokens").await;
    assert!(!tokens.body.contains(&token));
    assert!(!tokens.body.contains(TOKEN));
    assert!(
        tokens.json()[0]["last_used_at"].is_string(),
        "{}",
        tokens.body
    );
}

#[tokio::test]
async fn without_a_token_missing_and_existing_resources_look_the_same() {
    let api = api().await;
    api.project("web").await;
    for uri in [
        "/api/v1/projects/web",
        "/api/v1/projects/nope",
        "/api/v1/deployments/999",
        "/api/v1/no-such-route",
    ] {
        let answer = api.call(Method::GET, uri, None, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    api.get("/api/v1/projects/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/deployments/999")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/no-such-route")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(api.get("/api/v1/projects/WEB").await.json()["name"], "web");
}

#[tokio::test]
async fn projects_are_created_listed_and_conflicts_are_409() {
    let api = api().await;
    let body = json!({"name": "web", "repository": "https://github.com/example/web.git",
        "webhook_secret": "hook-secret-value"});
    let created = api
        .send(Method::POST, "/api/v1/projects", body.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(!created.body.contains("hook-secret-value"));
    assert_eq!(created.json()["has_webhook_secret"], true);

    let again = api.send(Method::POST, "/api/v1/projects", body).await;
    again.assert_error(StatusCode::CONFLICT);

    let list = api.get("/api/v1/projects").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    assert!(!list.body.contains("hook-secret-value"));
}

#[tokio::test]
async fn bad_bodies_paths_and_queries_answer_in_the_error_shape() {
    let api = api().await;
    api.project("web").await;
    let syntax = api
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(TOKEN),
            Some(Body::from("{not json")),
        )
        .await;
    syntax.assert_error(StatusCode::BAD_REQUEST);
    let missing = api
        .send(Method::POST, "/api/v1/projects", json!({"name": "x"}))
        .await;
    let body = missing.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"].as_str().unwrap().contains("repository"),
        "{body}"
    );
    let empty_name = api
        .send(
            Method::POST,
            "/api/v1/projects",
            json!({"name": " ", "repository": "https://github.com/o/r"}),
        )
        .await;
    empty_name.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let big = "x".repeat(2 * 1024 * 1024);
    let too_large = api
        .send(
            Method::POST,
            "/api/v1/projects",
            json!({"name": "big", "repository": big}),
        )
        .await;
    too_large.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
    api.get("/api/v1/deployments/abc")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    api.get("/api/v1/deployments?limit=abc")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    api.get("/api/v1/deployments?limit=0")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    api.get("/api/v1/deployments?state=sleeping")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    api.get("/api/v1/deployments?cursor=-4")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    api.call(Method::DELETE, "/api/v1/projects", Some(TOKEN), None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn sensitive_variables_are_never_returned() {
    let api = api().await;
    api.project("web").await;
    let set = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/variables/DbPassword",
            json!({"value": "hunter2-secret", "sensitive": true, "environments": ["Production"]}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert!(!set.body.contains("hunter2-secret"));
    assert_eq!(set.json()["value"], "********");
    let plain = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/variables/Greeting",
            json!({"value": "hello"}),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);

    let list = api.get("/api/v1/projects/web/variables").await;
    assert!(!list.body.contains("hunter2-secret"), "{}", list.body);
    let list = list.json();
    let by_name = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("DbPassword")["value"], "********");
    assert_eq!(by_name("DbPassword")["environments"], json!(["Production"]));
    assert_eq!(by_name("Greeting")["value"], "hello");

    let id = by_name("Greeting")["id"].as_i64().unwrap();
    let deleted = api
        .call(
            Method::DELETE,
            &format!("/api/v1/projects/web/variables/{id}"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    api.call(
        Method::DELETE,
        &format!("/api/v1/projects/web/variables/{id}"),
        Some(TOKEN),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deployments_page_newest_first_with_cursors() {
    let api = api().await;
    let project = api.project("web").await;
    let release = api.release(&project, "1.0.0").await;

    let mut ids = Vec::new();
    for _ in 0..5 {
        let answer = api
            .send(
                Method::POST,
                &format!("/api/v1/releases/{}/deployments", release.id),
                json!({"environment": "Staging"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert_eq!(answer.json()["state"], "queued");
        ids.push(answer.json()["id"].as_i64().unwrap());
    }
    // The scheduler was woken: a permit is waiting.
    tokio::time::timeout(Duration::from_secs(1), api.queued.notified())
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut uri = "/api/v1/deployments?project=web&limit=2".to_owned();
    loop {
        let page = api.get(&uri).await.json();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                uri = format!("/api/v1/deployments?project=web&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    let filtered = api
        .get("/api/v1/deployments?environment=Production")
        .await
        .json();
    assert_eq!(filtered["items"], json!([]));
    api.get("/api/v1/deployments?project=nope")
        .await
        .assert_error(StatusCode::NOT_FOUND);

    let releases = api.get("/api/v1/projects/web/releases").await;
    assert!(!releases.body.contains("frozen-secret-value"));
    assert_eq!(releases.json()["items"][0]["number"], "1.0.0");
    let by_number = api.get("/api/v1/projects/web/releases/1.0.0").await.json();
    assert_eq!(by_number["id"], release.id.0);

    let one = api
        .get(&format!("/api/v1/deployments/{}", ids[0]))
        .await
        .json();
    assert_eq!(one["steps"], json!([]));
    let cancelled = api
        .call(
            Method::POST,
            &format!("/api/v1/deployments/{}/cancel", ids[0]),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(cancelled.json()["state"], "cancelled");
    api.call(
        Method::POST,
        &format!("/api/v1/deployments/{}/cancel", ids[0]),
        Some(TOKEN),
        None,
    )
    .await
    .assert_error(StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_log_reads_as_text_and_follows_as_events_until_the_end() {
    let api = api().await;
    let project = api.project("web").await;
    let release = api.release(&project, "1.0.0").await;
    let deployment = api
        .store
        .create_deployment(NewDeployment {
            release: release.id,
            environment: "Staging".to_owned(),
            approval: None,
            created_by: None,
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    let node = NodeId("test".to_owned());
    api.store
        .claim_next_deployment(&node, Duration::from_secs(60), 4)
        .await
        .unwrap()
        .unwrap();
    api.store
        .append_log(
            deployment.id,
            &[line(None, "Deploying"), line(Some("Build"), "compiling")],
        )
        .await
        .unwrap();

    let text = api
        .get(&format!("/api/v1/deployments/{}/log", deployment.id))
        .await;
    assert!(text.content_type.starts_with("text/plain"));
    let lines: Vec<&str> = text.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.body);
    assert!(lines[0].ends_with(" [-] stdout: Deploying"), "{}", lines[0]);
    assert!(
        lines[1].ends_with(" [Build] stdout: compiling"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[1].find(' '),
        Some(12),
        "HH:MM:SS.mmm first: {}",
        lines[1]
    );

    let store = api.store.clone();
    let id = deployment.id;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        store
            .append_log(id, &[line(Some("Build"), "done building")])
            .await
            .unwrap();
        store
            .finish_deployment(id, DeploymentState::Success, None)
            .await
            .unwrap();
    });
    let events = tokio::time::timeout(
        Duration::from_secs(20),
        api.get(&format!(
            "/api/v1/deployments/{}/log?follow=true",
            deployment.id
        )),
    )
    .await
    .unwrap();
    writer.await.unwrap();
    assert!(events.content_type.starts_with("text/event-stream"));
    let body = events.body;
    let deploying = body.find("Deploying").unwrap();
    let done = body.find("done building").unwrap();
    let end = body.find("event: end").unwrap();
    assert!(deploying < done && done < end, "{body}");
    assert!(body.contains("id: 3"), "{body}");
    assert!(body[end..].contains("\"state\":\"success\""), "{body}");
}

#[tokio::test]
async fn openapi_document_lists_the_paths() {
    let api = api().await;
    let answer = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/projects",
        "/api/v1/projects/{name}",
        "/api/v1/projects/{name}/variables",
        "/api/v1/projects/{name}/variables/{var}",
        "/api/v1/projects/{name}/releases",
        "/api/v1/releases/{id}",
        "/api/v1/releases/{id}/deployments",
        "/api/v1/deployments",
        "/api/v1/deployments/{id}",
        "/api/v1/deployments/{id}/cancel",
        "/api/v1/deployments/{id}/log",
        "/api/v1/deployments/{id}/jobs",
        "/api/v1/deliveries",
        "/api/v1/tokens",
        "/metrics",
        "/hooks/github",
        "/hooks/gitea",
        "/hooks/gitlab",
        "/hooks/bitbucket",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(
        paths["/api/v1/projects/{name}/releases"]["post"].is_object(),
        "{doc}"
    );
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{doc}"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let api = api().await;
    let project = api.project("web").await;
    let release = api.release(&project, "1.0.0").await;
    for _ in 0..2 {
        api.store
            .create_deployment(NewDeployment {
                release: release.id,
                environment: "Staging".to_owned(),
                approval: None,
                created_by: None,
                retry_of: None,
                hold: false,
            })
            .await
            .unwrap();
    }
    let answer = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("text/plain; version=0.0.4"));
    let text = answer.body;
    assert!(text.contains("# TYPE tako_deployments gauge"), "{text}");
    assert!(
        text.contains("tako_deployments{state=\"queued\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("tako_deployments{state=\"success\"} 0")
            && text.contains("tako_deployments{state=\"awaiting_approval\"} 0"),
        "{text}"
    );
    assert!(text.contains("tako_deployment_queue_depth 2"), "{text}");
    assert!(
        text.contains("# TYPE tako_step_duration_seconds summary"),
        "{text}"
    );
    assert!(
        text.contains("tako_deliveries{outcome=\"queued\"} 0"),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("tako_"), "{line}");
        value.parse::<f64>().unwrap();
    }
}

#[tokio::test]
async fn deliveries_list_with_outcomes() {
    let api = api().await;
    let answer = api.get("/api/v1/deliveries?limit=10").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json(), json!({"items": [], "next_cursor": null}));
}

impl Api {
    async fn call_as(&self, token: &str, method: Method, uri: &str, body: Option<Value>) -> Answer {
        self.call(
            method,
            uri,
            Some(token),
            body.map(|b| Body::from(b.to_string())),
        )
        .await
    }

    async fn new_token(&self, name: &str, role: &str) -> (i64, String) {
        let created = self
            .send(
                Method::POST,
                "/api/v1/tokens",
                json!({"name": name, "role": role}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let body = created.json();
        (
            body["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test]
async fn a_deployer_cannot_read_or_set_variables_and_403_reveals_nothing() {
    let api = api().await;
    let project = api.project("web").await;
    let release = api.release(&project, "1.0.0").await;
    let (_, deployer) = api.new_token("ci", "deployer").await;
    let (_, viewer) = api.new_token("eyes", "viewer").await;

    for uri in [
        "/api/v1/projects/web/variables",
        "/api/v1/projects/no-such-project/variables",
    ] {
        let answer = api.call_as(&deployer, Method::GET, uri, None).await;
        let body = answer.assert_error(StatusCode::FORBIDDEN);
        assert!(
            body["error"].as_str().unwrap().contains("admin role"),
            "{body}"
        );
        assert!(!answer.body.contains("no-such-project"), "{}", answer.body);
    }
    let put = api
        .call_as(
            &deployer,
            Method::PUT,
            "/api/v1/projects/web/variables/Key",
            Some(json!({"value": "x", "sensitive": true})),
        )
        .await;
    put.assert_error(StatusCode::FORBIDDEN);
    // Refused before the body is read: even a malformed one is a 403.
    let put = api
        .call(
            Method::PUT,
            "/api/v1/projects/web/variables/Key",
            Some(&deployer),
            Some(Body::from("{not json")),
        )
        .await;
    put.assert_error(StatusCode::FORBIDDEN);
    for (method, uri, body) in [
        (
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "more"})),
        ),
        (Method::GET, "/api/v1/tokens", None),
        (Method::POST, "/api/v1/admin/rotate-key", None),
        (
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "x", "repository": "https://github.com/a/x"})),
        ),
    ] {
        api.call_as(&deployer, method, uri, body)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }

    // What a deployer may do: read, deploy, cancel.
    let projects = api
        .call_as(&deployer, Method::GET, "/api/v1/projects", None)
        .await;
    assert_eq!(projects.status, StatusCode::OK, "{}", projects.body);
    let deployed = api
        .call_as(
            &deployer,
            Method::POST,
            &format!("/api/v1/releases/{}/deployments", release.id),
            Some(json!({"environment": "Staging"})),
        )
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    let id = deployed.json()["id"].as_i64().unwrap();
    let cancelled = api
        .call_as(
            &deployer,
            Method::POST,
            &format!("/api/v1/deployments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);

    // A viewer only reads.
    api.call_as(
        &viewer,
        Method::POST,
        &format!("/api/v1/releases/{}/deployments", release.id),
        Some(json!({"environment": "Staging"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    let read = api
        .call_as(&viewer, Method::GET, "/api/v1/deployments", None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
}

#[tokio::test]
async fn a_revoked_or_expired_token_gets_401_and_tokens_are_stored_hashed() {
    let api = api().await;
    let (id, token) = api.new_token("temp", "deployer").await;
    let ok = api
        .call_as(&token, Method::GET, "/api/v1/projects", None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let stored = api.store.list_tokens().await.unwrap();
    let kept = stored.iter().find(|t| t.id.0 == id).unwrap();
    assert_eq!(kept.hash.0, token_hash(&token));
    let listing = api.get("/api/v1/tokens").await;
    assert!(!listing.body.contains(&token), "{}", listing.body);

    let revoked = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    api.call_as(&token, Method::GET, "/api/v1/projects", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    api.call(Method::DELETE, "/api/v1/tokens/99999", Some(TOKEN), None)
        .await
        .assert_error(StatusCode::NOT_FOUND);

    let expiring = api
        .send(
            Method::POST,
            "/api/v1/tokens",
            json!({"name": "soon", "expires_in_days": 7}),
        )
        .await;
    assert_eq!(expiring.status, StatusCode::CREATED, "{}", expiring.body);
    assert!(expiring.json()["expires_at"].is_string());
    api.send(
        Method::POST,
        "/api/v1/tokens",
        json!({"name": "never", "expires_in_days": 0}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn rotating_the_master_key_through_the_api_keeps_secrets_usable() {
    let api = api().await;
    api.project("web").await;
    let set = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/variables/ApiKey",
            json!({"value": "rotate-me-secret", "sensitive": true}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert!(!set.body.contains("rotate-me-secret"));
    let before = api.keys.keyring.current_id();
    let rotated = api
        .send(Method::POST, "/api/v1/admin/rotate-key", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let body = rotated.json();
    assert_eq!(body["old_key"], before.as_str());
    assert_eq!(body["new_key"], api.keys.keyring.current_id().as_str());
    assert_eq!(body["resealed"], 1);
    assert_eq!(
        api.keys.keyring.key_ids(),
        vec![api.keys.keyring.current_id()]
    );
    let project = api
        .store
        .find_project_by_name("web")
        .await
        .unwrap()
        .unwrap();
    let variables = api.store.list_variables(project.id).await.unwrap();
    assert_eq!(variables[0].value, "rotate-me-secret");
    let listed = api.get("/api/v1/projects/web/variables").await;
    assert!(listed.body.contains("********"), "{}", listed.body);
    assert!(!listed.body.contains("rotate-me-secret"));
}

/// A policy that cannot be read is an outage (503, try again), never a
/// refusal (422), and the driver's words stay in the server's log.
#[tokio::test]
async fn a_policy_check_during_a_store_outage_is_a_503_without_the_drivers_text() {
    let api = api_on_disk().await;
    let project = api.project("web").await;
    let release = api.release(&project, "1.0.0").await;
    // A real driver failure under the running store: the policies' table
    // is gone.
    let database = rusqlite::Connection::open(api.database.as_ref().unwrap()).unwrap();
    database
        .execute_batch("DROP TABLE environment_policies")
        .unwrap();
    let answer = api
        .send(
            Method::POST,
            &format!("/api/v1/releases/{}/deployments", release.id.0),
            json!({"environment": "Production"}),
        )
        .await;
    let body = answer.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert_eq!(
        body["error"], "the server's database is unavailable: retry shortly",
        "{body}"
    );
    for internal in ["no such table", "environment_policies", "sqlite", "policy"] {
        assert!(
            !answer.body.to_lowercase().contains(internal),
            "{internal} leaked: {}",
            answer.body
        );
    }
    let queued = api
        .store
        .list_deployments(
            &tako_store::DeploymentFilter::default(),
            tako_store::PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(queued.items.is_empty(), "nothing was queued");
}

#[tokio::test]
async fn environment_policies_refuse_other_branches_with_a_reason() {
    let api = api().await;
    let project = api.project("web").await;
    let from_main = api.release(&project, "1.0.0").await;
    let mut evil = NewRelease {
        project: project.id,
        number: "1.0.1".to_owned(),
        notes: String::new(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        branch: Some("feature/evil".to_owned()),
        pusher: None,
        takofile: "Project: web\n".to_owned(),
        variables: "[]".to_owned(),
        build_number: None,
    };
    let from_evil = api.store.create_release(evil.clone()).await.unwrap();
    evil.number = "1.0.2".to_owned();
    evil.branch = Some("release/2.0".to_owned());
    let from_release = api.store.create_release(evil).await.unwrap();

    let set = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/environments/Production",
            json!({"allowed_branches": ["main", "release/*"]}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let listed = api.get("/api/v1/projects/web/environments").await.json();
    assert_eq!(listed[0]["allowed_branches"], json!(["main", "release/*"]));

    let deploy = |release: i64, environment: &'static str| {
        let api = &api;
        async move {
            api.send(
                Method::POST,
                &format!("/api/v1/releases/{release}/deployments"),
                json!({"environment": environment}),
            )
            .await
        }
    };
    assert_eq!(
        deploy(from_main.id.0, "Production").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        deploy(from_release.id.0, "production").await.status,
        StatusCode::CREATED
    );
    let refused = deploy(from_evil.id.0, "Production").await;
    let body = refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("environment policy"), "{message}");
    assert!(
        message.contains("branch feature/evil is not allowed"),
        "{message}"
    );
    // Environments without a policy stay open.
    assert_eq!(
        deploy(from_evil.id.0, "Staging").await.status,
        StatusCode::CREATED
    );

    api.send(
        Method::PUT,
        "/api/v1/projects/web/environments/Production",
        json!({"allowed_branches": ["[bad"]}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let (_, deployer) = api.new_token("ci", "deployer").await;
    api.call_as(
        &deployer,
        Method::PUT,
        "/api/v1/projects/web/environments/Production",
        Some(json!({"allowed_branches": ["**"]})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    let removed = api
        .call(
            Method::DELETE,
            "/api/v1/projects/web/environments/production",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(
        deploy(from_evil.id.0, "Production").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn every_mutating_request_is_audited_without_values() {
    let api = api().await;
    api.project("web").await;
    let secret = "audit-canary-value";
    let set = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/variables/ApiKey",
            json!({"value": secret, "sensitive": true}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let (_, deployer) = api.new_token("ci", "deployer").await;
    api.call_as(
        &deployer,
        Method::PUT,
        "/api/v1/projects/web/variables/ApiKey",
        Some(json!({"value": secret})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    api.call(Method::POST, "/api/v1/tokens", None, Some(Body::from("{}")))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // Reads are not audited.
    api.get("/api/v1/projects").await;

    let audit = api.get("/api/v1/audit?limit=10").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert!(!audit.body.contains(secret), "{}", audit.body);
    let items = audit.json()["items"].as_array().unwrap().clone();
    let summary: Vec<(String, String, String)> = items
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!(summary[0].0, "anonymous");
    assert_eq!(summary[0].2, "denied");
    assert!(summary[1].0.contains("(ci, deployer)"), "{summary:?}");
    assert_eq!(summary[1].1, "PUT /api/v1/projects/{name}/variables/{var}");
    assert_eq!(summary[1].2, "denied");
    assert_eq!(summary[2].1, "POST /api/v1/tokens");
    assert!(summary[3].0.contains("(test admin, admin)"), "{summary:?}");
    assert_eq!(summary[3].2, "ok");
    assert_eq!(items[3]["target"], "/api/v1/projects/web/variables/ApiKey");
    api.call_as(&deployer, Method::GET, "/api/v1/audit", None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_webhook_beyond_the_slots_gets_503_with_retry_after() {
    let api = api_with(tako_server::http::limits::Limits {
        webhook_slots: Arc::new(tokio::sync::Semaphore::new(0)),
        request_timeout: Duration::from_secs(30),
    })
    .await;
    let response = api
        .router
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/hooks/github")
                .header("X-GitHub-Event", "ping")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_408() {
    let api = api_with(tako_server::http::limits::Limits {
        webhook_slots: Arc::new(tokio::sync::Semaphore::new(4)),
        request_timeout: Duration::from_millis(200),
    })
    .await;
    api.project("web").await;
    let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let started = std::time::Instant::now();
    let response = api
        .router
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::PUT)
                .uri("/api/v1/projects/web/variables/Slow")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(never))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(5));
    let big = "x".repeat(tako_server::http::limits::SMALL_BODY_BYTES + 10);
    let answer = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/variables/Big",
            json!({"value": big}),
        )
        .await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_projects_webhook_secret_is_rotated_write_only() {
    let api = api().await;
    api.project("web").await;
    let set = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/webhook-secret",
            json!({"webhook_secret": "rotated-hook-secret"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["has_webhook_secret"], true);
    assert!(!set.body.contains("rotated-hook-secret"));
    let project = api
        .store
        .find_project_by_name("web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(project.webhook_secret.unwrap().0, "rotated-hook-secret");
    let cleared = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/webhook-secret",
            json!({"webhook_secret": null}),
        )
        .await;
    assert_eq!(cleared.json()["has_webhook_secret"], false);
    let (_, deployer) = api.new_token("ci", "deployer").await;
    api.call_as(
        &deployer,
        Method::PUT,
        "/api/v1/projects/web/webhook-secret",
        Some(json!({"webhook_secret": "mine"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
}

/// Runs git hermetically in `dir` (no user or system configuration).
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A bare origin with one commit on `main` holding `takofile`; the work tree
/// that pushes to it, and the origin's `file://` URL.
fn origin(takofile: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let bare = root.path().join("origin.git");
    std::fs::create_dir_all(&work).unwrap();
    git(
        root.path(),
        &["init", "-q", "--bare", "-b", "main", "origin.git"],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("takofile.yml"), takofile).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let url = format!("file://{}", bare.display());
    (root, work, url)
}

const PROCESS: &str = "Project: web\nSteps:\n  - Name: Hi\n    Run: echo hi\n";

#[tokio::test]
async fn releases_are_created_by_hand_on_the_push_path() {
    let api = api().await;
    let (_origin, work, url) = origin(PROCESS);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let project = api
        .store
        .create_project(NewProject {
            name: "web".to_owned(),
            repository_url: url,
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap();
    let secret = api
        .send(
            Method::PUT,
            "/api/v1/projects/web/variables/Key",
            json!({"value": "frozen-sealed-secret", "sensitive": true}),
        )
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{}", secret.body);

    // `{}`: the default branch's head, the first number, no deployment.
    let created = api
        .send(Method::POST, "/api/v1/projects/web/releases", json!({}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = created.json();
    assert_eq!(body["release"]["number"], "0.0.1");
    assert_eq!(body["release"]["commit"], head.as_str());
    assert_eq!(body["release"]["branch"], "main");
    assert_eq!(body["deployments"], json!([]));
    let stored = api
        .store
        .find_release_by_number(project.id, "0.0.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.takofile, PROCESS);
    assert_eq!(stored.build_number, Some(1));
    assert!(stored.variables.contains("\"Key\""), "{}", stored.variables);
    assert!(!stored.variables.contains("frozen-sealed-secret"));

    // With deploy_to: queued (and the scheduler woken).
    let created = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            json!({"version": "2.0.0", "notes": "by hand", "deploy_to": ["Staging", "staging"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = created.json();
    assert_eq!(body["release"]["number"], "2.0.0");
    assert_eq!(body["release"]["notes"], "by hand");
    let deployments = body["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{body}");
    assert_eq!(deployments[0]["environment"], "Staging");
    assert_eq!(deployments[0]["state"], "queued");
    tokio::time::timeout(Duration::from_secs(1), api.queued.notified())
        .await
        .unwrap();

    // A version that exists: 409, and the counter did not move.
    let again = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            json!({"version": "2.0.0"}),
        )
        .await;
    let error = again.assert_error(StatusCode::CONFLICT);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("2.0.0 already exists"),
        "{error}"
    );
    let next = api
        .send(Method::POST, "/api/v1/projects/web/releases", json!({}))
        .await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.body);
    assert_eq!(next.json()["release"]["number"], "2.0.1");
    assert_eq!(next.json()["release"]["build_number"], 3);

    // Bad input, unknown names: 422 naming them; unknown project: 404.
    for (request, expected) in [
        (
            json!({"branch": "nope"}),
            "branch nope is not in the repository",
        ),
        (json!({"commit": "not-a-sha"}), "is not a commit id"),
        (
            json!({"commit": "0123456789abcdef0123456789abcdef01234567"}),
            "commit 0123456789abcdef0123456789abcdef01234567 is not in the repository",
        ),
        (json!({"version": "1.0 beta"}), "must not contain spaces"),
        (json!({"deploy_to": [""]}), "environment must not be empty"),
    ] {
        let answer = api
            .send(
                Method::POST,
                "/api/v1/projects/web/releases",
                request.clone(),
            )
            .await;
        let error = answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            error["error"].as_str().unwrap().contains(expected),
            "{request}: {error}"
        );
    }
    let unknown_field = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            json!({"versoin": "1.0.0"}),
        )
        .await;
    unknown_field.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    api.send(Method::POST, "/api/v1/projects/nope/releases", json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    // A viewer may not; a 403 before the project is looked up.
    let (_, viewer) = api.new_token("eyes", "viewer").await;
    for uri in [
        "/api/v1/projects/web/releases",
        "/api/v1/projects/nope/releases",
    ] {
        let answer = api
            .call_as(&viewer, Method::POST, uri, Some(json!({})))
            .await;
        let error = answer.assert_error(StatusCode::FORBIDDEN);
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("admin or deployer"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_invalid_takofile_or_an_unreachable_repository_is_named() {
    let api = api().await;
    let (_origin, work, url) = origin("Project: web\nStepz: []\n");
    api.store
        .create_project(NewProject {
            name: "web".to_owned(),
            repository_url: url,
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap();
    let answer = api
        .send(Method::POST, "/api/v1/projects/web/releases", json!({}))
        .await;
    let error = answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let head = git(&work, &["rev-parse", "--short=7", "HEAD"]);
    assert_eq!(
        error["error"],
        format!("the takofile at commit {head} is invalid")
    );
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .starts_with("takofile.yml:2:1: error: unknown key Stepz"),
        "{error}"
    );

    api.store
        .create_project(NewProject {
            name: "gone".to_owned(),
            repository_url: "file:///nonexistent/tako/gone.git".to_owned(),
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap();
    let answer = api
        .send(Method::POST, "/api/v1/projects/gone/releases", json!({}))
        .await;
    let error = answer.assert_error(StatusCode::BAD_GATEWAY);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot fetch file:///nonexistent/tako/gone.git"),
        "{error}"
    );
}

#[tokio::test]
async fn a_commit_off_every_branch_is_fetched_by_id_and_names_no_branch() {
    let api = api().await;
    let (origin, work, url) = origin(PROCESS);
    api.store
        .create_project(NewProject {
            name: "web".to_owned(),
            repository_url: url,
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap();
    // The mirror exists before the commit does.
    let first = api
        .send(Method::POST, "/api/v1/projects/web/releases", json!({}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    // Like a pull request's head: on the server, on no branch.
    std::fs::write(work.join("takofile.yml"), PROCESS.replace("hi", "pull")).unwrap();
    git(&work, &["commit", "-q", "-am", "pull request"]);
    let pull = git(&work, &["rev-parse", "HEAD"]);
    let bare = origin.path().join("origin.git");
    git(
        &work,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "HEAD:refs/pull/1/head",
        ],
    );

    // With a branch it is not on: 422 naming both.
    let answer = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            json!({"commit": pull, "branch": "main"}),
        )
        .await;
    let error = answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error["error"],
        format!("commit {pull} is not on branch main"),
        "{error}"
    );

    // Protected environments refuse a release that names no branch, and
    // nothing is created.
    api.send(
        Method::PUT,
        "/api/v1/projects/web/environments/Production",
        json!({"allowed_branches": ["main"]}),
    )
    .await;
    let answer = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            json!({"commit": pull, "deploy_to": ["Production"]}),
        )
        .await;
    let error = answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("this release names no branch"),
        "{error}"
    );

    let created = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            json!({"commit": pull}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = created.json();
    assert_eq!(body["release"]["number"], "0.0.2");
    assert_eq!(body["release"]["commit"], pull.as_str());
    assert_eq!(body["release"]["branch"], Value::Null);
    assert!(
        body["release"]["notes"]
            .as_str()
            .unwrap()
            .ends_with(&format!("from commit {}", &pull[..7])),
        "{body}"
    );
}

#[tokio::test]
async fn a_project_needs_a_repository_url_tako_can_fetch() {
    let api = api().await;
    for repository in ["UÒ", "not a url", "ftp://example.com/r.git"] {
        let answer = api
            .send(
                Method::POST,
                "/api/v1/projects",
                json!({"name": "odd", "repository": repository}),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{repository}: {}",
            answer.body
        );
        assert!(answer.body.contains("repository"), "{}", answer.body);
    }
    let listed = api.get("/api/v1/projects").await;
    assert!(
        !listed.body.contains("odd"),
        "nothing registered: {}",
        listed.body
    );
}

/// Enrolls an agent with a fresh token; returns (agent JSON, credential).
async fn enroll(api: &Api, token: &str, name: &str, protocol: u32) -> Answer {
    api.call(
        Method::POST,
        "/api/v1/agent/enroll",
        None,
        Some(Body::from(
            json!({"token": token, "name": name, "version": "0.1.0", "protocol": protocol})
                .to_string(),
        )),
    )
    .await
}

#[tokio::test]
async fn agents_enroll_once_wait_for_approval_and_their_credential_opens_only_agent_routes() {
    let api = api().await;
    api.project("web").await;
    let (_, viewer) = api.new_token("eyes", "viewer").await;
    let request = json!({"name": "win-01", "environments": ["Production"], "roles": ["ps"]});
    // Only admins create enrollment tokens.
    let refused = api
        .call_as(
            &viewer,
            Method::POST,
            "/api/v1/agents/enrollment-tokens",
            Some(request.clone()),
        )
        .await;
    refused.assert_error(StatusCode::FORBIDDEN);
    let created = api
        .send(Method::POST, "/api/v1/agents/enrollment-tokens", request)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.json()["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("takoenroll_"), "{token}");

    // Another protocol is refused naming both versions, and uses nothing.
    let old = enroll(&api, &token, "win-01", 0).await;
    let body = old.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("protocol 0")
            && body["error"].as_str().unwrap().contains("protocol 1"),
        "{body}"
    );

    // The token's name, environments and roles win over the agent's.
    let enrolled = enroll(&api, &token, "something-else", 1).await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{}", enrolled.body);
    let reply = enrolled.json();
    assert_eq!(reply["agent"]["name"], "win-01");
    assert_eq!(reply["agent"]["state"], "pending");
    assert_eq!(reply["agent"]["environments"], json!(["Production"]));
    assert_eq!(reply["agent"]["roles"], json!(["ps"]));
    let credential = reply["credential"].as_str().unwrap().to_owned();
    assert!(credential.starts_with("takoagent_"), "{credential}");

    // Single use.
    let reused = enroll(&api, &token, "win-02", 1).await;
    let body = reused.assert_error(StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown, used or expired"),
        "{body}"
    );

    // Pending: no work, and it is told why.
    let me = api
        .call_as(&credential, Method::GET, "/api/v1/agent/me", None)
        .await;
    let body = me.assert_error(StatusCode::FORBIDDEN);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("waits for an admin's approval"),
        "{body}"
    );
    let listed = api.get("/api/v1/agents").await.json();
    assert_eq!(listed[0]["state"], "pending");
    assert!(!listed.to_string().contains(&credential));

    let approved = api
        .send(Method::POST, "/api/v1/agents/win-01/approve", json!({}))
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let me = api
        .call_as(&credential, Method::GET, "/api/v1/agent/me", None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["state"], "active");
    assert_eq!(api.get("/api/v1/agents").await.json()[0]["state"], "online");

    // An agent's credential opens nothing for people.
    for (method, uri) in [
        (Method::GET, "/api/v1/projects"),
        (Method::GET, "/api/v1/projects/web/variables"),
        (Method::GET, "/api/v1/tokens"),
        (Method::GET, "/api/v1/agents"),
        (Method::POST, "/api/v1/agents/win-01/rotate"),
    ] {
        let answer = api.call_as(&credential, method, uri, None).await;
        let body = answer.assert_error(StatusCode::FORBIDDEN);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("agent's credential"),
            "{uri}: {body}"
        );
    }

    // Disabled: refused at its next call; enabled again: back.
    api.send(Method::POST, "/api/v1/agents/win-01/disable", json!({}))
        .await;
    let me = api
        .call_as(&credential, Method::GET, "/api/v1/agent/me", None)
        .await;
    assert!(
        me.assert_error(StatusCode::FORBIDDEN)["error"]
            .as_str()
            .unwrap()
            .contains("is disabled")
    );
    let again = api
        .send(Method::POST, "/api/v1/agents/win-01/disable", json!({}))
        .await;
    again.assert_error(StatusCode::CONFLICT);
    api.send(Method::POST, "/api/v1/agents/win-01/enable", json!({}))
        .await;

    // Rotation: the old credential stops working, the new one works.
    let rotated = api
        .send(Method::POST, "/api/v1/agents/win-01/rotate", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let fresh = rotated.json()["credential"].as_str().unwrap().to_owned();
    let old = api
        .call_as(&credential, Method::GET, "/api/v1/agent/me", None)
        .await;
    old.assert_error(StatusCode::UNAUTHORIZED);
    let new = api
        .call_as(&fresh, Method::GET, "/api/v1/agent/me", None)
        .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);

    // Removed: refused.
    let removed = api
        .call(Method::DELETE, "/api/v1/agents/win-01", Some(TOKEN), None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    api.call_as(&fresh, Method::GET, "/api/v1/agent/me", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    api.send(Method::POST, "/api/v1/agents/win-01/approve", json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_enrollment_requests_get_clear_answers() {
    let api = api().await;
    for (body, status) in [
        (
            json!({"environments": [], "roles": ["ps"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"environments": ["P"], "roles": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"environments": ["P"], "roles": ["ps"], "expires_in_minutes": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"environments": ["a/b"], "roles": ["ps"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"environments": ["P"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let answer = api
            .send(
                Method::POST,
                "/api/v1/agents/enrollment-tokens",
                body.clone(),
            )
            .await;
        answer.assert_error(status);
    }
    let garbage = api
        .call(
            Method::POST,
            "/api/v1/agent/enroll",
            None,
            Some(Body::from("{\"token\": 5}")),
        )
        .await;
    assert!(garbage.status.is_client_error(), "{}", garbage.body);
    let unknown = enroll(&api, "takoenroll_nope", "x", 1).await;
    unknown.assert_error(StatusCode::UNAUTHORIZED);
    let no_credential = api.call(Method::GET, "/api/v1/agent/me", None, None).await;
    no_credential.assert_error(StatusCode::UNAUTHORIZED);
}

/// A release made by hand and its deployments are one transaction: when
/// queuing the deployments fails (a real driver failure: the table is gone
/// under the running store), the release is not kept either, and the same
/// request succeeds once the store is back.
#[tokio::test]
async fn a_release_by_hand_and_its_deployments_are_kept_together_or_not_at_all() {
    let api = api_on_disk().await;
    let (_origin, _work, url) = origin(PROCESS);
    let project = api
        .store
        .create_project(NewProject {
            name: "web".to_owned(),
            repository_url: url,
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap();
    let database = rusqlite::Connection::open(api.database.as_ref().unwrap()).unwrap();
    database
        .execute_batch("ALTER TABLE deployments RENAME TO deployments_away")
        .unwrap();
    let request = json!({"version": "1.0.0", "deploy_to": ["Staging", "Production"]});
    let failed = api
        .send(
            Method::POST,
            "/api/v1/projects/web/releases",
            request.clone(),
        )
        .await;
    failed.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        api.store
            .find_release_by_number(project.id, "1.0.0")
            .await
            .unwrap()
            .is_none(),
        "the release was not kept without its deployments"
    );
    database
        .execute_batch("ALTER TABLE deployments_away RENAME TO deployments")
        .unwrap();
    let created = api
        .send(Method::POST, "/api/v1/projects/web/releases", request)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json()["deployments"].as_array().unwrap().len(), 2);
}

/// An active agent `name` (enrolled and approved through the API); its
/// credential.
async fn active_agent(api: &Api, name: &str) -> String {
    let created = api
        .send(
            Method::POST,
            "/api/v1/agents/enrollment-tokens",
            json!({"name": name, "environments": ["Production"], "roles": ["ps"], "auto_approve": true}),
        )
        .await;
    let token = created.json()["token"].as_str().unwrap().to_owned();
    let enrolled = enroll(api, &token, name, 1).await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{}", enrolled.body);
    enrolled.json()["credential"].as_str().unwrap().to_owned()
}

/// A job for agent `name` on a fresh deployment, its spec carrying a secret
/// to mask.
async fn job_for(api: &Api, name: &str, id: &str) -> tako_store::Deployment {
    let project = match api.store.find_project_by_name("web").await.unwrap() {
        Some(project) => project,
        None => api.project("web").await,
    };
    let release = api.release(&project, &format!("1.0.{}", id.len())).await;
    let deployment = api
        .store
        .create_deployment(NewDeployment {
            release: release.id,
            environment: "Production".to_owned(),
            approval: None,
            created_by: None,
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    let agent = api.store.find_agent_by_name(name).await.unwrap().unwrap();
    let spec = json!({
        "id": id, "deployment": deployment.id.0, "agent": {"name": name, "roles": ["ps"]},
        "step": {"index": 0, "name": "Test", "action": {"kind": "script", "shell": "bash", "body": "echo hi"},
                 "working_directory": null, "env": [], "timeout_seconds": 60, "timeout_text": "1m"},
        "facts": {"project": "web", "environment": "Production", "release_number": "1", "release_notes": "",
                  "release_id": "r", "deployment_id": "d", "build": 1, "git_repository": "", "git_branch": "",
                  "git_commit": "", "git_pusher": "", "web_base_url": "", "manifest": null},
        "variables": [{"name": "Key", "value": "canary-agent-secret", "sensitive": true}],
        "mask": ["canary-agent-secret"],
        "source": {"commit": "0123456789abcdef0123456789abcdef01234567", "path": "/x"},
        "error": null, "steps_so_far": [], "lease_seconds": 60, "heartbeat_seconds": 10
    });
    // The spec is what the agent will parse: it must be a valid job.
    serde_json::from_value::<tako_protocol::agent::Job>(spec.clone()).unwrap();
    api.store
        .create_job(tako_store::NewJob {
            id: tako_store::JobId(id.to_owned()),
            deployment: deployment.id,
            step_index: 0,
            step_name: "Test".to_owned(),
            agent: agent.id,
            agent_name: agent.name,
            spec: spec.to_string(),
            attempt: 1,
        })
        .await
        .unwrap();
    deployment
}

fn chunk(job: &str, seq: u64, texts: &[&str]) -> Value {
    json!({"job": job, "seq": seq, "lines": texts.iter().map(|t| json!({
        "timestamp": "2026-12-06T08:00:00.000Z", "stream": "stdout", "level": "info", "text": t
    })).collect::<Vec<_>>()})
}

#[tokio::test]
async fn an_agent_sends_consecutive_chunks_in_one_batch_stored_once_in_order() {
    let api = api().await;
    let win = active_agent(&api, "win-01").await;
    let other = active_agent(&api, "linux-01").await;
    let deployment = job_for(&api, "win-01", "job-a").await;
    let taken = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/next?wait=0",
            Some(json!({"version": "0.1.0", "protocol": 1})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    let logs = |credential: &str, body: Value| {
        let credential = credential.to_owned();
        let api = &api;
        async move {
            api.call_as(
                &credential,
                Method::POST,
                "/api/v1/agent/jobs/job-a/logs",
                Some(body),
            )
            .await
        }
    };
    let batch = |chunks: Vec<Value>| json!({"job": "job-a", "chunks": chunks});
    let ack = |answer: Answer| {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.json()["stored_through"].as_u64().unwrap()
    };
    logs(&other, batch(vec![chunk("job-a", 1, &["x"])]))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(
        ack(logs(
            &win,
            batch(vec![
                chunk("job-a", 1, &["one"]),
                chunk("job-a", 2, &["two", "key canary-agent-secret"])
            ])
        )
        .await),
        2
    );
    // A resend overlapping what is stored: only the new chunk is stored.
    assert_eq!(
        ack(logs(
            &win,
            batch(vec![
                chunk("job-a", 2, &["two"]),
                chunk("job-a", 3, &["three"])
            ])
        )
        .await),
        3
    );
    // A batch after a gap stores nothing and says where to start again.
    assert_eq!(
        ack(logs(
            &win,
            batch(vec![
                chunk("job-a", 5, &["five"]),
                chunk("job-a", 6, &["six"])
            ])
        )
        .await),
        3
    );
    // Bad batches are refused whole, with what is wrong.
    let too_many: Vec<Value> = (4..4 + 65).map(|n| chunk("job-a", n, &["x"])).collect();
    for (body, status, says) in [
        (batch(vec![]), StatusCode::BAD_REQUEST, "at least one chunk"),
        (
            batch(vec![chunk("job-a", 4, &["x"]), chunk("job-a", 6, &["x"])]),
            StatusCode::BAD_REQUEST,
            "numbered consecutively",
        ),
        (
            batch(vec![chunk("job-a", 4, &["x"]), chunk("job-b", 5, &["x"])]),
            StatusCode::BAD_REQUEST,
            "names job job-b",
        ),
        (
            json!({"job": "job-b", "chunks": [chunk("job-a", 4, &["x"])]}),
            StatusCode::BAD_REQUEST,
            "names job job-b",
        ),
        (
            batch(vec![
                chunk("job-a", 4, &["x"]),
                json!({"job": "job-a", "seq": 5, "lines": [{"timestamp": "yesterday", "stream": "stdout", "level": "info", "text": "x"}]}),
            ]),
            StatusCode::BAD_REQUEST,
            "line 1 of chunk 5",
        ),
        (
            batch(too_many),
            StatusCode::BAD_REQUEST,
            "at most 64 chunks",
        ),
        (
            json!({"job": "job-a", "chunks": "four"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
    ] {
        let answer = logs(&win, body).await;
        let error = answer.assert_error(status);
        assert!(error["error"].as_str().unwrap().contains(says), "{error}");
    }
    let text = tako_server::services::logs_text(api.store.as_ref(), deployment.id).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].ends_with("[Test@win-01] stdout: one"), "{text}");
    assert!(lines[1].ends_with("two"), "{text}");
    assert!(lines[2].ends_with("key ********"), "masked again: {text}");
    assert!(lines[3].ends_with("three"), "{text}");
}

#[tokio::test]
async fn an_agent_takes_its_job_sends_its_log_once_in_order_and_reports_once() {
    let api = api().await;
    let win = active_agent(&api, "win-01").await;
    let other = active_agent(&api, "linux-01").await;
    let deployment = job_for(&api, "win-01", "job-a").await;
    let next = |credential: &str| {
        let credential = credential.to_owned();
        let api = &api;
        async move {
            api.call_as(
                &credential,
                Method::POST,
                "/api/v1/agent/jobs/next?wait=0",
                Some(json!({"version": "0.1.0", "protocol": 1})),
            )
            .await
        }
    };
    // Another agent gets nothing; its agent gets the job, once.
    assert_eq!(next(&other).await.status, StatusCode::NO_CONTENT);
    let taken = next(&win).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    let job: tako_protocol::agent::Job = serde_json::from_str(&taken.body).unwrap();
    assert_eq!(job.id, "job-a");
    assert_eq!(next(&win).await.status, StatusCode::NO_CONTENT);
    // An old protocol is refused naming both versions.
    let old = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/next?wait=0",
            Some(json!({"version": "0.0.9", "protocol": 0})),
        )
        .await;
    assert!(
        old.assert_error(StatusCode::UNPROCESSABLE_ENTITY)["error"]
            .as_str()
            .unwrap()
            .contains("tako 0.0.9, protocol 0")
    );

    let log = |credential: &str, body: Value| {
        let credential = credential.to_owned();
        let api = &api;
        async move {
            api.call_as(
                &credential,
                Method::POST,
                "/api/v1/agent/jobs/job-a/log",
                Some(body),
            )
            .await
        }
    };
    // Another agent's call about it: 404, whatever it sends.
    log(&other, chunk("job-a", 1, &["x"]))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let ack = |answer: Answer| {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.json()["stored_through"].as_u64().unwrap()
    };
    assert_eq!(
        ack(log(&win, chunk("job-a", 1, &["one", "key canary-agent-secret"])).await),
        1
    );
    assert_eq!(
        ack(log(&win, chunk("job-a", 3, &["three"])).await),
        1,
        "a gap is not stored"
    );
    assert_eq!(
        ack(log(&win, chunk("job-a", 1, &["one"])).await),
        1,
        "a resend is not stored"
    );
    assert_eq!(ack(log(&win, chunk("job-a", 2, &["two"])).await), 2);
    assert_eq!(ack(log(&win, chunk("job-a", 3, &["three"])).await), 3);
    // Garbage gets a clear answer and stores nothing.
    for (body, status) in [
        (chunk("job-b", 4, &["x"]), StatusCode::BAD_REQUEST),
        (chunk("job-a", 0, &["x"]), StatusCode::BAD_REQUEST),
        (
            json!({"job": "job-a", "seq": 4, "lines": [{"timestamp": "yesterday", "stream": "stdout", "level": "info", "text": "x"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"job": "job-a", "seq": 4, "lines": [{"timestamp": "2026-12-06T08:00:00Z", "stream": "stdin", "level": "info", "text": "x"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"job": "job-a", "seq": "four"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        log(&win, body.clone()).await.assert_error(status);
    }
    let too_many: Vec<String> = (0..5001).map(|n| n.to_string()).collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    log(&win, chunk("job-a", 4, &refs))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    let text = tako_server::services::logs_text(api.store.as_ref(), deployment.id).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].contains("[Test@win-01] stdout: one"), "{text}");
    assert!(
        lines[1].ends_with("key ********"),
        "masked again on the server: {text}"
    );
    assert!(lines[3].ends_with("three"), "{text}");
    // A skewed agent clock: its times are kept within the job's run, and
    // the lines stay in the order sent.
    let before = Utc::now();
    let skewed = json!({"job": "job-a", "seq": 4, "lines": [
        {"timestamp": "2099-01-01T00:00:00Z", "stream": "stdout", "level": "info", "text": "from the future"},
        {"timestamp": "1999-01-01T00:00:00Z", "stream": "stdout", "level": "info", "text": "from the past"},
    ]});
    assert_eq!(ack(log(&win, skewed).await), 4);
    let page = api
        .store
        .read_log(deployment.id, tako_store::LogCursor::START, 100)
        .await
        .unwrap();
    let job = api
        .store
        .get_job(&tako_store::JobId("job-a".to_owned()))
        .await
        .unwrap();
    let started = job.started_at.unwrap();
    let tail: Vec<_> = page.lines.iter().rev().take(2).rev().collect();
    assert_eq!(tail[0].text, "from the future");
    assert_eq!(tail[1].text, "from the past");
    assert!(
        tail[0].timestamp >= before && tail[0].timestamp <= Utc::now(),
        "{tail:?}"
    );
    assert_eq!(tail[1].timestamp, started, "{tail:?}");

    // Heartbeats carry a cancel request.
    let beat = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/job-a/heartbeat",
            None,
        )
        .await;
    assert_eq!(beat.json()["cancel_requested"], false, "{}", beat.body);
    api.store
        .request_job_cancel(&tako_store::JobId("job-a".to_owned()), Utc::now())
        .await
        .unwrap();
    let beat = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/job-a/heartbeat",
            None,
        )
        .await;
    assert_eq!(beat.json()["cancel_requested"], true, "{}", beat.body);

    // One outcome; the same again is fine; a different one is refused.
    let outcome = json!({"job": "job-a", "state": "cancelled", "reason": "stopped: canary-agent-secret",
        "outputs": [], "duration_ms": 20, "last_seq": 4});
    let report = |body: Value| {
        let win = win.clone();
        let api = &api;
        async move {
            api.call_as(
                &win,
                Method::POST,
                "/api/v1/agent/jobs/job-a/outcome",
                Some(body),
            )
            .await
        }
    };
    assert_eq!(report(outcome.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(report(outcome.clone()).await.status, StatusCode::NO_CONTENT);
    let mut different = outcome;
    different["state"] = json!("success");
    report(different).await.assert_error(StatusCode::CONFLICT);
    let job = api
        .store
        .get_job(&tako_store::JobId("job-a".to_owned()))
        .await
        .unwrap();
    assert_eq!(job.reason.as_deref(), Some("stopped: ********"));
    // After the end, no more log.
    log(&win, chunk("job-a", 5, &["late"]))
        .await
        .assert_error(StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_interrupted_jobs_late_report_changes_nothing_and_is_logged() {
    let api = api().await;
    let win = active_agent(&api, "win-01").await;
    let deployment = job_for(&api, "win-01", "job-late").await;
    api.call_as(
        &win,
        Method::POST,
        "/api/v1/agent/jobs/next?wait=0",
        Some(json!({"version": "0.1.0", "protocol": 1})),
    )
    .await;
    let interrupted = api
        .store
        .interrupt_expired_jobs(Utc::now() + chrono::TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(interrupted.len(), 1);
    let late = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/job-late/outcome",
            Some(
                json!({"job": "job-late", "state": "success", "reason": null, "outputs": [],
                "duration_ms": 5, "last_seq": 0}),
            ),
        )
        .await;
    let body = late.assert_error(StatusCode::CONFLICT);
    assert!(
        body["error"].as_str().unwrap().contains("late report"),
        "{body}"
    );
    let text = tako_server::services::logs_text(api.store.as_ref(), deployment.id).await;
    assert!(text.contains("Late report from agent win-01"), "{text}");
}

#[tokio::test]
async fn metrics_count_agents_online_and_jobs_running() {
    let api = api().await;
    let metrics = || async { api.call(Method::GET, "/metrics", None, None).await.body };
    let text = metrics().await;
    assert!(text.contains("# TYPE tako_agents_online gauge"), "{text}");
    assert!(text.contains("tako_agents_online 0\n"), "{text}");
    assert!(text.contains("tako_jobs_running 0\n"), "{text}");

    let win = active_agent(&api, "win-01").await;
    active_agent(&api, "linux-01").await;
    // linux-01 last called ten minutes ago: offline.
    let linux = api
        .store
        .find_agent_by_name("linux-01")
        .await
        .unwrap()
        .unwrap();
    api.store
        .touch_agent(
            linux.id,
            "0.1.0",
            chrono::Utc::now() - chrono::TimeDelta::minutes(10),
        )
        .await
        .unwrap();
    // A third waits for approval.
    let created = api
        .send(
            Method::POST,
            "/api/v1/agents/enrollment-tokens",
            json!({"name": "mac-01", "environments": ["Production"], "roles": ["ps"]}),
        )
        .await;
    let token = created.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        enroll(&api, &token, "mac-01", 1).await.status,
        StatusCode::CREATED
    );

    // win-01 calls for work and takes its job.
    job_for(&api, "win-01", "job-m").await;
    let taken = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/next?wait=0",
            Some(json!({"version": "0.1.0", "protocol": 1})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);

    let text = metrics().await;
    assert!(text.contains("tako_agents_online 1\n"), "{text}");
    assert!(text.contains("tako_agents{state=\"online\"} 1\n"), "{text}");
    assert!(
        text.contains("tako_agents{state=\"offline\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("tako_agents{state=\"pending\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("tako_agents{state=\"disabled\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("tako_jobs_running 1\n"), "{text}");
    // The gauge follows the agents list's rule.
    let listed = api.get("/api/v1/agents").await.json();
    let online = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|agent| agent["state"] == "online")
        .count();
    assert_eq!(online, 1, "{listed}");
}

#[tokio::test]
async fn a_deployments_jobs_show_which_agent_ran_what_and_its_log_names_the_agent() {
    let api = api().await;
    let win = active_agent(&api, "win-01").await;
    active_agent(&api, "linux-01").await;
    let deployment = job_for(&api, "win-01", "job-win").await;
    let linux = api
        .store
        .find_agent_by_name("linux-01")
        .await
        .unwrap()
        .unwrap();
    api.store
        .create_job(tako_store::NewJob {
            id: tako_store::JobId("job-linux".to_owned()),
            deployment: deployment.id,
            step_index: 0,
            step_name: "Test".to_owned(),
            agent: linux.id,
            agent_name: linux.name.clone(),
            spec: "{}".to_owned(),
            attempt: 1,
        })
        .await
        .unwrap();
    let path = format!("/api/v1/deployments/{}/jobs", deployment.id);

    let pending = api.get(&path).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.body);
    let jobs = pending.json();
    let seen: Vec<(&str, &str, &str)> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["agent"].as_str().unwrap(),
                j["step"].as_str().unwrap(),
                j["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("linux-01", "Test", "pending"),
            ("win-01", "Test", "pending")
        ]
    );

    // win-01 takes its job (over its own route) and reports a failure.
    let taken = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/next?wait=0",
            Some(json!({"version": "0.1.0", "protocol": 1})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    let outcome = api
        .call_as(
            &win,
            Method::POST,
            "/api/v1/agent/jobs/job-win/outcome",
            Some(
                json!({"job": "job-win", "state": "failed", "reason": "exit code 3",
                "outputs": [{"name": "Answer", "value": "canary-output-value", "sensitive": true}],
                "duration_ms": 1500, "last_seq": 0}),
            ),
        )
        .await;
    assert_eq!(outcome.status, StatusCode::NO_CONTENT, "{}", outcome.body);

    let ended = api.get(&path).await;
    assert_eq!(ended.status, StatusCode::OK);
    let win_job = &ended.json()[1];
    assert_eq!(win_job["id"], "job-win");
    assert_eq!(win_job["agent"], "win-01");
    assert_eq!(win_job["step_index"], 0);
    assert_eq!(win_job["log_label"], "Test@win-01");
    assert_eq!(win_job["state"], "failed");
    assert_eq!(win_job["reason"], "exit code 3");
    assert_eq!(win_job["duration_ms"], 1500);
    assert!(win_job["started_at"].is_string(), "{win_job}");
    assert!(win_job["finished_at"].is_string(), "{win_job}");
    assert_eq!(ended.json()[0]["state"], "pending");
    assert!(ended.json()[0]["started_at"].is_null());
    // Neither the specification's secret nor an output's value leaves.
    assert!(
        !ended.body.contains("canary-agent-secret"),
        "{}",
        ended.body
    );
    assert!(
        !ended.body.contains("canary-output-value"),
        "{}",
        ended.body
    );

    // Unknown deployments and callers without a token.
    api.get("/api/v1/deployments/999/jobs")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let anonymous = api.call(Method::GET, &path, None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(!anonymous.body.contains("win-01"));

    // The followed log names the agent of an agent's line, and only there.
    let node = NodeId("test".to_owned());
    api.store
        .claim_next_deployment(&node, Duration::from_secs(60), 4)
        .await
        .unwrap()
        .unwrap();
    api.store
        .append_log(
            deployment.id,
            &[
                line(Some("Test@win-01"), "from the agent"),
                line(Some("Mail ops@corp"), "a server step with an @"),
            ],
        )
        .await
        .unwrap();
    api.store
        .finish_deployment(deployment.id, DeploymentState::Failed, None)
        .await
        .unwrap();
    let events = api
        .get(&format!(
            "/api/v1/deployments/{}/log?follow=true",
            deployment.id
        ))
        .await;
    let lines: Vec<Value> = events
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v.get("text").is_some())
        .collect();
    assert_eq!(lines.len(), 2, "{}", events.body);
    assert_eq!(lines[0]["step"], "Test@win-01");
    assert_eq!(lines[0]["agent"], "win-01");
    assert_eq!(lines[1]["step"], "Mail ops@corp");
    assert!(lines[1].get("agent").is_none(), "{}", lines[1]);
    let text = api
        .get(&format!("/api/v1/deployments/{}/log", deployment.id))
        .await;
    assert!(
        text.body.contains(" [Test@win-01] stdout: from the agent"),
        "{}",
        text.body
    );
}

#[tokio::test]
async fn approvals_need_the_count_of_different_people_and_never_the_creator() {
    let api = api().await;
    let takofile = "Project: web\nMappings:\n  - Branch: main\n    Environment: Staging\nLifecycle:\n  - Environment: Staging\n  - Environment: Production\n    Approval: { Roles: [admin, deployer], Count: 2, NotBy: creator }\n";
    let (root, _work, url) = origin(takofile);
    api.origins.lock().unwrap().push(root);
    let project = api
        .store
        .create_project(NewProject {
            name: "web".to_owned(),
            repository_url: url,
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap();
    let release = api.release(&project, "1.0.0").await;
    let (_, ci) = api.new_token("ci", "deployer").await;
    let (_, other) = api.new_token("other", "admin").await;
    let (_, viewer) = api.new_token("eyes", "viewer").await;

    let created = api
        .call_as(
            &ci,
            Method::POST,
            &format!("/api/v1/releases/{}/deployments", release.id),
            Some(json!({"environment": "production"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let deployment = created.json();
    assert_eq!(deployment["state"], "awaiting_approval");
    assert_eq!(deployment["environment"], "Production");
    assert_eq!(deployment["created_by"], "ci");
    assert_eq!(deployment["approval"]["count"], 2);
    let id = deployment["id"].as_i64().unwrap();
    let approve = |token: String, note: Value| {
        let api = &api;
        async move {
            api.call_as(
                &token,
                Method::POST,
                &format!("/api/v1/deployments/{id}/approve"),
                Some(json!({ "note": note })),
            )
            .await
        }
    };
    let waiting_for = |token: String| {
        let api = &api;
        async move {
            let answer = api
                .call_as(&token, Method::GET, "/api/v1/approvals", None)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.json().as_array().unwrap().len()
        }
    };
    assert_eq!(
        waiting_for(ci.clone()).await,
        0,
        "not the creator's to approve"
    );
    assert_eq!(waiting_for(other.clone()).await, 1);
    assert_eq!(waiting_for(viewer.clone()).await, 0);

    let own = approve(ci.clone(), json!("mine")).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(own.body.contains("ci created deployment"), "{}", own.body);
    assert!(own.body.contains("NotBy: creator"), "{}", own.body);
    let eyes = approve(viewer, Value::Null).await;
    assert_eq!(eyes.status, StatusCode::FORBIDDEN, "{}", eyes.body);
    assert!(
        eyes.body
            .contains("needs an approval by the role admin or deployer"),
        "{}",
        eyes.body
    );
    let long = approve(TOKEN.to_owned(), json!("x".repeat(2001))).await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST, "{}", long.body);

    let first = approve(TOKEN.to_owned(), json!("one")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.json()["state"], "awaiting_approval", "1 of 2");
    assert_eq!(waiting_for(TOKEN.to_owned()).await, 0, "already decided");
    let second = approve(other, json!("two")).await;
    assert_eq!(second.json()["state"], "queued");
    let decisions = api
        .get(&format!("/api/v1/deployments/{id}/approvals"))
        .await
        .json();
    assert_eq!(decisions[0]["by"], "test admin");
    assert_eq!(decisions[1]["by"], "other");
    let late = api
        .call_as(
            TOKEN,
            Method::POST,
            &format!("/api/v1/deployments/{id}/reject"),
            Some(json!({})),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert!(late.body.contains("awaits no approval"), "{}", late.body);

    // Staging has no approval: queued at once, and the filter knows the
    // new state.
    let staging = api
        .send(
            Method::POST,
            &format!("/api/v1/releases/{}/deployments", release.id),
            json!({"environment": "Staging"}),
        )
        .await;
    assert_eq!(staging.json()["state"], "queued", "{}", staging.body);
    let listed = api.get("/api/v1/deployments?state=awaiting_approval").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
}
