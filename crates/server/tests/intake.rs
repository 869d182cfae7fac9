//! The webhook intake's rules, every row of server.md §2's table, against a
//! real (in-memory SQLite) store: which secret applies, both content types,
//! ping, other events, duplicates, and every published GitHub example.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tako_server::intake::{
    Intake, IntakeError, IntakeReply, IntakeWriter, WebhookRequest, WebhookSecrets,
};
use tako_store::{DeliveryId, NewProject, SqliteStore, Store, WebhookSecret};
use tokio::sync::Notify;

const SERVER_SECRET: &str = "server-secret";
const PROJECT_SECRET: &str = "project-secret";

async fn intake(server_secret: Option<&str>, insecure: bool) -> (Intake, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let writer = IntakeWriter::spawn(store.clone(), Arc::new(Notify::new()), 1);
    let intake = Intake {
        server_secret: server_secret.map(str::to_owned),
        insecure_unsigned: insecure,
        secrets: WebhookSecrets::default(),
        writer,
    };
    (intake, store)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../github/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

fn signed<'a>(
    event: &'a str,
    delivery: &'a str,
    body: &'a [u8],
    signature: &'a str,
) -> WebhookRequest<'a> {
    WebhookRequest {
        event: Some(event),
        delivery: Some(delivery),
        signature: Some(signature),
        content_type: Some("application/json"),
        body,
    }
}

#[tokio::test]
async fn every_published_push_and_ping_example_is_accepted() {
    let (intake, store) = intake(Some(SERVER_SECRET), false).await;
    let dir = format!("{}/../github/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let body = fixture(name);
        let signature = tako_github::sign(SERVER_SECRET.as_bytes(), &body);
        let event = if name.starts_with("ping") {
            "ping"
        } else {
            "push"
        };
        let reply = intake
            .receive(signed(event, name, &body, &signature))
            .await
            .unwrap();
        match event {
            "ping" => assert_eq!(reply, IntakeReply::Pong, "{name}"),
            _ => {
                assert_eq!(
                    reply,
                    IntakeReply::Queued {
                        delivery: name.clone()
                    },
                    "{name}"
                );
                store.get_delivery(&DeliveryId(name.clone())).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn form_encoded_bodies_are_verified_over_the_form_and_stored_as_json() {
    let (intake, store) = intake(Some(SERVER_SECRET), false).await;
    let json = fixture("push-api-0.json");
    let form = format!("payload={}", percent_encode(&json));
    let signature = tako_github::sign(SERVER_SECRET.as_bytes(), form.as_bytes());
    let request = WebhookRequest {
        event: Some("push"),
        delivery: Some("form-1"),
        signature: Some(&signature),
        content_type: Some("application/x-www-form-urlencoded"),
        body: form.as_bytes(),
    };
    assert_eq!(
        intake.receive(request).await.unwrap(),
        IntakeReply::Queued {
            delivery: "form-1".into()
        }
    );
    let claimed = store
        .claim_pending_delivery(
            &tako_store::NodeId("n".into()),
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed.body,
        Ok(json),
        "the verified JSON document is what is stored"
    );
}

fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (*b as char).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_projects_own_secret_beats_the_servers() {
    let (intake, store) = intake(Some(SERVER_SECRET), false).await;
    let body = fixture("push-api-0.json");
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let clone_url = payload["repository"]["clone_url"]
        .as_str()
        .unwrap()
        .to_owned();
    store
        .create_project(NewProject {
            name: "Hello".into(),
            repository_url: clone_url.clone(),
            webhook_secret: Some(WebhookSecret(PROJECT_SECRET.into())),
            repository_token: None,
        })
        .await
        .unwrap();
    intake
        .secrets
        .set(&clone_url, Some(PROJECT_SECRET.to_owned()));

    let with_server_secret = tako_github::sign(SERVER_SECRET.as_bytes(), &body);
    let refused = intake
        .receive(signed("push", "a", &body, &with_server_secret))
        .await
        .unwrap_err();
    assert!(matches!(refused, IntakeError::Signature(_)), "{refused}");
    let with_project_secret = tako_github::sign(PROJECT_SECRET.as_bytes(), &body);
    assert!(matches!(
        intake
            .receive(signed("push", "b", &body, &with_project_secret))
            .await
            .unwrap(),
        IntakeReply::Queued { .. }
    ));
    // Other repositories still use the server's secret.
    let full_name = payload["repository"]["full_name"].as_str().unwrap();
    let other = String::from_utf8(body.clone())
        .unwrap()
        .replace(full_name, "someone/else");
    let other_signature = tako_github::sign(SERVER_SECRET.as_bytes(), other.as_bytes());
    assert!(matches!(
        intake
            .receive(signed("push", "c", other.as_bytes(), &other_signature))
            .await
            .unwrap(),
        IntakeReply::Queued { .. }
    ));
}

#[tokio::test]
async fn without_any_secret_hooks_are_refused_unless_insecure_mode_is_on() {
    let body = fixture("push-api-0.json");
    let unsigned = WebhookRequest {
        event: Some("push"),
        delivery: Some("u"),
        signature: None,
        content_type: None,
        body: &body,
    };
    let (strict, _) = intake(None, false).await;
    assert!(matches!(
        strict.receive(unsigned).await.unwrap_err(),
        IntakeError::NoSecret
    ));
    let (trial, _) = intake(None, true).await;
    assert!(matches!(
        trial.receive(unsigned).await.unwrap(),
        IntakeReply::Queued { .. }
    ));
}

#[tokio::test]
async fn other_events_are_ignored_with_a_reason_and_duplicates_create_nothing() {
    let (intake, store) = intake(Some(SERVER_SECRET), false).await;
    let issue = br#"{"action":"opened","issue":{"number":1}}"#;
    let signature = tako_github::sign(SERVER_SECRET.as_bytes(), issue);
    let IntakeReply::Ignored { reason } = intake
        .receive(signed("issues", "i", issue, &signature))
        .await
        .unwrap()
    else {
        panic!("not ignored");
    };
    assert!(reason.contains("issues"), "{reason}");
    assert!(
        store.get_delivery(&DeliveryId("i".into())).await.is_err(),
        "ignored events are not stored"
    );

    let body = fixture("push-api-0.json");
    let signature = tako_github::sign(SERVER_SECRET.as_bytes(), &body);
    assert!(matches!(
        intake
            .receive(signed("push", "dup", &body, &signature))
            .await
            .unwrap(),
        IntakeReply::Queued { .. }
    ));
    assert_eq!(
        intake
            .receive(signed("push", "dup", &body, &signature))
            .await
            .unwrap(),
        IntakeReply::Duplicate {
            delivery: "dup".into()
        }
    );
}

#[tokio::test]
async fn concurrent_pushes_share_transactions_and_each_gets_its_answer() {
    let (intake, store) = intake(Some(SERVER_SECRET), false).await;
    let body = Arc::new(fixture("push-api-0.json"));
    let signature = Arc::new(tako_github::sign(SERVER_SECRET.as_bytes(), &body));
    let mut tasks = Vec::new();
    for n in 0..200 {
        let (intake, body, signature) = (intake.clone(), body.clone(), signature.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("burst-{}", n % 150);
            intake
                .receive(signed("push", &id, &body, &signature))
                .await
                .unwrap()
        }));
    }
    let mut queued = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), IntakeReply::Queued { .. }) {
            queued += 1;
        }
    }
    assert_eq!(queued, 150, "each distinct delivery is stored exactly once");
    let page = store
        .list_deliveries(None, tako_store::PageRequest::first(500))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 150);
}
