//! The JSON API in process: the router of `http::app` over an in-memory
//! store, called with `oneshot` (no scheduler runs, so deployments stay
//! queued until a test moves them).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use tako_server::http::{AppState, app};
use tako_server::intake::{Intake, IntakeWriter, SecretIndex};
use tako_server::startup::token_hash;
use tako_store::{
    DeploymentState, LogLevel, LogLineRecord, LogStream, NewApiToken, NewDeployment, NewProject,
    NewRelease, NodeId, Project, Release, SqliteStore, Store, TokenHash,
};
use tokio::sync::Notify;
use tower::ServiceExt;

const TOKEN: &str = "tako_0123456789abcdef0123456789abcdef01234567";

struct Api {
    store: Arc<dyn Store>,
    router: Router,
    queued: Arc<Notify>,
}

struct Answer {
    status: StatusCode,
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
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
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
    let intake = Intake {
        server_secret: Some("server secret".to_owned()),
        insecure_unsigned: false,
        secrets: Arc::new(RwLock::new(SecretIndex::default())),
        writer: IntakeWriter::spawn(store.clone(), Arc::new(Notify::new())),
    };
    let state = Arc::new(AppState {
        intake,
        store: store.clone(),
        deployments_queued: queued.clone(),
    });
    Api {
        store,
        router: app(state),
        queued,
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
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer {
            status,
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

    async fn project(&self, name: &str) -> Project {
        self.store
            .create_project(NewProject {
                name: name.to_owned(),
                repository_url: format!("https://github.com/example/{name}"),
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
        "/api/v1/deliveries",
        "/api/v1/tokens",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
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
        text.contains("tako_deployments{state=\"success\"} 0"),
        "{text}"
    );
    assert!(text.contains("tako_deployment_queue_depth 2"), "{text}");
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
