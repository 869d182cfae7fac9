//! Every `push` and `ping` example GitHub publishes (`tests/fixtures`, from
//! `@octokit/webhooks-examples`) parses, as JSON and as a form-encoded body,
//! and the push helpers read them right.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use tako_github::{Event, Push, parse_event, sign, verify_signature};

const FORM: &str = "application/x-www-form-urlencoded";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixtures whose name starts with `prefix`, sorted, as (name, bytes).
fn fixtures(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with(prefix)
                .then(|| (name, std::fs::read(&path).unwrap()))
        })
        .collect();
    found.sort();
    found
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

fn parse_push(body: &[u8]) -> Push {
    match parse_event("push", Some("application/json"), body).unwrap() {
        Event::Push(push) => *push,
        other => panic!("expected a push, got {other:?}"),
    }
}

/// `body` as GitHub sends it with content type
/// `application/x-www-form-urlencoded`.
fn form_encode(body: &[u8]) -> Vec<u8> {
    let mut form = b"payload=".to_vec();
    for &byte in body {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => form.push(byte),
            b' ' => form.push(b'+'),
            _ => form.extend_from_slice(format!("%{byte:02X}").as_bytes()),
        }
    }
    form
}

#[test]
fn every_push_example_parses() {
    let examples = fixtures("push-");
    assert_eq!(examples.len(), 10, "push fixtures went missing");
    for (name, body) in examples {
        let event = parse_event("push", Some("application/json"), &body)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let Event::Push(push) = event else {
            panic!("{name}: not a push");
        };
        assert!(push.git_ref.starts_with("refs/"), "{name}");
        assert!(push.branch().is_some() || push.tag().is_some(), "{name}");
        assert_eq!(
            push.repository.full_name, "Codertocat/Hello-World",
            "{name}"
        );
        assert!(
            push.repository
                .clone_url
                .ends_with("/Codertocat/Hello-World.git"),
            "{name}"
        );
        assert_eq!(push.repository.default_branch, "master", "{name}");
        assert_eq!(push.pusher.as_ref().unwrap().name, "Codertocat", "{name}");
        assert_eq!(push.sender.as_ref().unwrap().login, "Codertocat", "{name}");
        assert_eq!(push.is_creation(), push.created, "{name}");
        assert_eq!(push.is_deletion(), push.deleted, "{name}");
        if push.is_deletion() {
            assert_eq!(push.commit_id(), None, "{name}");
            assert_eq!(push.notes(), "", "{name}");
            assert!(push.skip_reason().is_some(), "{name}");
            assert!(push.head_commit.is_none(), "{name}");
        } else {
            assert_eq!(push.commit_id(), Some(push.after.as_str()), "{name}");
            assert!(push.notes().starts_with("- "), "{name}");
            assert_eq!(push.skip_reason(), None, "{name}");
        }
    }
}

#[test]
fn every_ping_example_parses() {
    let examples = fixtures("ping-");
    assert_eq!(examples.len(), 5, "ping fixtures went missing");
    for (name, body) in examples {
        let event = parse_event("ping", Some("application/json"), &body)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let Event::Ping {
            zen,
            hook_id,
            repository,
        } = &event
        else {
            panic!("{name}: not a ping");
        };
        assert!(!zen.is_empty(), "{name}");
        assert!(hook_id.is_some(), "{name}");
        assert_eq!(repository.is_none(), name == "ping-api-3.json", "{name}");
        assert_eq!(event.ignored_reason(), None, "{name}");
    }
}

#[test]
fn every_example_parses_form_encoded_and_is_signed_over_the_form() {
    let secret = b"It's a Secret to Everybody";
    for (name, body) in fixtures("p") {
        let event = if name.starts_with("push-") {
            "push"
        } else {
            "ping"
        };
        let form = form_encode(&body);
        let header = sign(secret, &form);
        verify_signature(secret, &form, Some(&header)).unwrap();
        // The signature covers the form body, not the JSON inside it.
        assert!(verify_signature(secret, &body, Some(&header)).is_err());
        let from_form =
            parse_event(event, Some(FORM), &form).unwrap_or_else(|err| panic!("{name}: {err}"));
        let from_json = parse_event(event, Some("application/json"), &body).unwrap();
        assert_eq!(from_form, from_json, "{name}");
    }
}

#[test]
fn tag_creation() {
    let push = parse_push(&fixture("push-api-0.json"));
    assert_eq!(push.tag(), Some("simple-tag"));
    assert_eq!(push.branch(), None);
    assert!(push.is_creation());
    assert!(!push.is_deletion());
    assert!(push.commits.is_empty());
    assert_eq!(
        push.notes(),
        "- Adding a .gitignore file (6113728, Codertocat)"
    );
    assert_eq!(
        push.commit_id(),
        Some("6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    );
}

#[test]
fn tag_deletion_never_deploys() {
    let push = parse_push(&fixture("push-api-2.json"));
    assert_eq!(push.tag(), Some("simple-tag"));
    assert!(push.is_deletion());
    assert!(!push.is_creation());
    assert_eq!(
        push.skip_reason().as_deref(),
        Some("push deleted tag simple-tag; deletions never deploy")
    );
}

#[test]
fn branch_creation() {
    let push = parse_push(&fixture("push-api-4.json"));
    assert_eq!(push.branch(), Some("master"));
    assert!(push.is_creation());
    assert_eq!(push.commits.len(), 1);
    let commit = &push.commits[0];
    assert_eq!(commit.author.username.as_deref(), Some("Codertocat"));
    assert_eq!(commit.added, ["README.md"]);
    assert_eq!(commit.timestamp.as_deref(), Some("2019-05-15T15:19:25Z"));
    assert_eq!(push.notes(), "- Initial commit (6113728, Codertocat)");
    assert_eq!(push.repository.id, 186_853_002);
    assert!(!push.repository.private);
}

/// A later push to a feature branch: GitHub's example, edited the way a
/// normal update looks (several commits, multi-line messages).
#[test]
fn branch_update_with_several_commits() {
    let mut value: serde_json::Value = serde_json::from_slice(&fixture("push-api-4.json")).unwrap();
    value["ref"] = "refs/heads/feature/login".into();
    value["before"] = "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into();
    value["after"] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into();
    value["created"] = false.into();
    let first = value["commits"][0].clone();
    let mut second = first.clone();
    second["id"] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into();
    second["message"] = "Add login form\n\nWith validation.\n\nCo-authored-by: X <x@y>".into();
    let mut third = first.clone();
    third["id"] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into();
    third["message"] = "Fix typo".into();
    third["author"]["name"] = "Octocat".into();
    value["commits"] = serde_json::json!([second, third]);
    value["head_commit"] = value["commits"][1].clone();
    let push = parse_push(&serde_json::to_vec(&value).unwrap());
    assert_eq!(push.branch(), Some("feature/login"));
    assert!(!push.is_creation());
    assert_eq!(
        push.notes(),
        "- Add login form (aaaaaaa, Codertocat)\n- Fix typo (bbbbbbb, Octocat)"
    );
}

/// Old payloads lack `repository.default_branch`; Tako assumes `master`.
#[test]
fn missing_default_branch_is_master() {
    let mut value: serde_json::Value = serde_json::from_slice(&fixture("push-api-4.json")).unwrap();
    value["repository"]
        .as_object_mut()
        .unwrap()
        .remove("default_branch");
    let push = parse_push(&serde_json::to_vec(&value).unwrap());
    assert_eq!(push.repository.default_branch, "master");
}

#[test]
fn a_ping_is_not_a_push() {
    let err = parse_event("push", None, &fixture("ping-api-0.json")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("payload is not a push: missing field `ref`"),
        "{err}"
    );
}
