//! Every published example payload in `fixtures/` (see its README for where
//! each comes from), read through the public API the intake uses, and
//! variants of them for tags, deletions and truncated commit lists.
#![allow(clippy::unwrap_used)]

use tako_forges::{Delivery, Forge, ForgeEvent, Headers, parse_event};
use tako_github::Push;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn pushes(forge: Forge, event: &str, body: &[u8]) -> Vec<Push> {
    match parse_event(forge, event, Some("application/json"), body).unwrap() {
        ForgeEvent::Pushes(pushes) => pushes,
        other => panic!("not a push: {other:?}"),
    }
}

fn edited(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn gitea_documentation_push() {
    let body = fixture("gitea-push.json");
    let headers: Headers<'_> = [
        ("X-Gitea-Event", "push"),
        ("X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
        ("X-Gitea-Signature", ""),
    ]
    .into_iter()
    .collect();
    let signature = tako_forges::signature::hmac_hex(b"123", &body);
    let mut signed = headers.clone();
    signed.insert("X-Forgejo-Signature", &signature);
    let delivery = Delivery::parse(Forge::Gitea, &signed).unwrap();
    assert_eq!(
        delivery.stored_id(0),
        "gitea-f6266f16-1bf3-46a5-9ea4-602e06ead473"
    );
    delivery.verify("123", &body, 0).unwrap();
    assert!(delivery.verify("124", &body, 0).is_err());
    assert!(
        Delivery::parse(Forge::Gitea, &headers)
            .unwrap()
            .verify("123", &body, 0)
            .is_err()
    );

    let [push] = &pushes(Forge::Gitea, "push", &body)[..] else {
        panic!()
    };
    assert_eq!(push.branch(), Some("develop"));
    assert_eq!(
        push.repository.clone_url,
        "http://localhost:3000/gitea/webhooks.git"
    );
    assert_eq!(push.repository.default_branch, "master");
    assert_eq!(
        push.commit_id(),
        Some("bffeb74224043ba2feb48d137756c8a9331c449a")
    );
    assert_eq!(push.notes(), "- Webhooks Yay! (bffeb74, Gitea)");
    assert!(!push.truncated);
    assert_eq!(push.pusher.as_ref().unwrap().name, "gitea");

    // Gitea caps the list at its feed limit and says how many there were.
    let capped = edited("gitea-push.json", |v| v["total_commits"] = 9.into());
    assert!(pushes(Forge::Gitea, "push", &capped)[0].truncated);
    // A tag push is a push of refs/tags/….
    let tag = edited("gitea-push.json", |v| v["ref"] = "refs/tags/v1.2".into());
    assert_eq!(pushes(Forge::Gitea, "push", &tag)[0].tag(), Some("v1.2"));
    // Gitea reports a deleted branch as a `delete` event.
    let deleted = br#"{"ref":"feature/x","ref_type":"branch","pusher_type":"user"}"#;
    assert_eq!(
        parse_event(Forge::Gitea, "delete", None, deleted).unwrap(),
        ForgeEvent::Ignored {
            reason: "deleted branch feature/x; deletions never deploy".to_owned()
        }
    );
    // And the form-encoded content type Gitea offers.
    let form = format!(
        "payload={}",
        String::from_utf8(body.clone())
            .unwrap()
            .replace('%', "%25")
            .replace('&', "%26")
            .replace('+', "%2B")
            .replace('#', "%23")
            .replace(' ', "+")
    );
    let event = parse_event(
        Forge::Gitea,
        "push",
        Some("application/x-www-form-urlencoded"),
        form.as_bytes(),
    )
    .unwrap();
    assert!(matches!(event, ForgeEvent::Pushes(_)), "{event:?}");
}

#[test]
fn gitlab_documentation_push_is_truncated() {
    let body = fixture("gitlab-push.json");
    let [push] = &pushes(Forge::GitLab, "Push Hook", &body)[..] else {
        panic!()
    };
    assert_eq!(push.branch(), Some("master"));
    assert_eq!(
        push.repository.clone_url,
        "http://example.com/mike/diaspora.git"
    );
    assert_eq!(push.repository.html_url, "http://example.com/mike/diaspora");
    assert_eq!(push.repository.full_name, "mike/diaspora");
    assert!(push.repository.private);
    assert!(push.truncated, "4 commits, 2 listed");
    assert_eq!(
        push.commit_id(),
        Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    );
    assert_eq!(
        push.notes(),
        "- Update Catalan translation to e38cb41. (b6568db, Jordi Mallach)\n\
         - fixed readme (da15608, GitLab dev user)"
    );
    assert_eq!(push.pusher.as_ref().unwrap().name, "jsmith");

    let all = edited("gitlab-push.json", |v| v["total_commits_count"] = 2.into());
    assert!(!pushes(Forge::GitLab, "Push Hook", &all)[0].truncated);

    let deleted = edited("gitlab-push.json", |v| {
        v["after"] = "0000000000000000000000000000000000000000".into();
        v["checkout_sha"] = serde_json::Value::Null;
        v["commits"] = serde_json::json!([]);
        v["total_commits_count"] = 0.into();
    });
    let push = &pushes(Forge::GitLab, "Push Hook", &deleted)[0];
    assert!(push.is_deletion());
    assert!(!push.truncated);
    assert_eq!(
        push.skip_reason().as_deref(),
        Some("push deleted branch master; deletions never deploy")
    );
}

#[test]
fn gitlab_documentation_tag_push() {
    let body = fixture("gitlab-tag-push.json");
    let [push] = &pushes(Forge::GitLab, "Tag Push Hook", &body)[..] else {
        panic!()
    };
    assert_eq!(push.tag(), Some("v1.0.0"));
    assert!(push.is_creation());
    assert_eq!(
        push.commit_id(),
        Some("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")
    );
    // No commits listed: the notes are read from the mirror.
    assert!(push.truncated);

    let other = parse_event(Forge::GitLab, "Issue Hook", None, b"{}").unwrap();
    assert!(matches!(other, ForgeEvent::Ignored { .. }));
}

#[test]
fn gitlab_token_and_signing_token() {
    let body = fixture("gitlab-push.json");
    let token: Headers<'_> = [
        ("X-Gitlab-Event", "Push Hook"),
        (
            "X-Gitlab-Event-UUID",
            "13792a34-cac6-4fda-95a8-c58e00a3954e",
        ),
        ("Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
        ("X-Gitlab-Token", "my-secret-token"),
    ]
    .into_iter()
    .collect();
    let delivery = Delivery::parse(Forge::GitLab, &token).unwrap();
    assert_eq!(delivery.delivery_id, "f5e5f430-f57b-4e6e-9fac-d9128cd7232f");
    delivery.verify("my-secret-token", &body, 0).unwrap();
    assert_eq!(
        delivery
            .verify("another", &body, 0)
            .unwrap_err()
            .to_string(),
        "X-Gitlab-Token does not match the body and the webhook secret"
    );

    let signing = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=";
    let now = 1_760_000_000;
    let signature = tako_forges::signature::sign_signed(
        signing,
        "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
        now,
        &body,
    );
    let stamp = now.to_string();
    let signed: Headers<'_> = [
        ("X-Gitlab-Event", "Push Hook"),
        ("Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
        ("webhook-id", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
        ("webhook-timestamp", stamp.as_str()),
        ("webhook-signature", signature.as_str()),
    ]
    .into_iter()
    .collect();
    let delivery = Delivery::parse(Forge::GitLab, &signed).unwrap();
    delivery.verify(signing, &body, now + 10).unwrap();
    assert!(delivery.verify(signing, b"{}", now).is_err());
    assert!(delivery.verify(signing, &body, now + 3600).is_err());
    // A token-only delivery does not pass a signing-token check.
    assert_eq!(
        Delivery::parse(Forge::GitLab, &token)
            .unwrap()
            .verify(signing, &body, now)
            .unwrap_err()
            .to_string(),
        "missing webhook-signature header"
    );
}

#[test]
fn bitbucket_push_with_three_changes() {
    let body = fixture("bitbucket-push.json");
    let pushes = pushes(Forge::Bitbucket, "repo:push", &body);
    assert_eq!(pushes.len(), 3);
    let [branch, tag, deleted] = &pushes[..] else {
        panic!()
    };

    assert_eq!(branch.branch(), Some("master"));
    assert_eq!(
        branch.repository.clone_url,
        "https://bitbucket.org/team_name/geordi.git"
    );
    assert_eq!(
        branch.repository.default_branch, "",
        "asked of the repository"
    );
    assert!(branch.repository.private);
    assert_eq!(branch.before, "1e65c05c1d5171631d92438a13901ca7dae9618c");
    assert_eq!(
        branch.commit_id(),
        Some("709d658dc5b6d6afcd46049c2f332ee3f515a67d")
    );
    assert_eq!(
        branch.notes(),
        "- First change (03f4a72, Ada)\n- Second change (709d658, Emma)",
        "newest first in the payload, oldest first in the notes"
    );
    assert!(!branch.truncated);

    assert_eq!(tag.tag(), Some("v1.0"));
    assert!(tag.is_creation());
    assert_eq!(tag.notes(), "- Second change (709d658, Emma)");

    assert!(deleted.is_deletion());
    assert_eq!(
        deleted.skip_reason().as_deref(),
        Some("push deleted branch feature/old; deletions never deploy")
    );

    let truncated = edited("bitbucket-push.json", |v| {
        v["push"]["changes"][0]["truncated"] = true.into();
    });
    let again = parse_event(Forge::Bitbucket, "repo:push", None, &truncated).unwrap();
    let ForgeEvent::Pushes(again) = again else {
        panic!()
    };
    assert!(again[0].truncated);

    let headers: Headers<'_> = [
        ("X-Event-Key", "repo:push"),
        ("X-Request-UUID", "afe0f1b4-6c4b-4b1c-9b67-3c1b0e5f8d2a"),
    ]
    .into_iter()
    .collect();
    let signature = format!("sha256={}", tako_forges::signature::hmac_hex(b"s", &body));
    let mut signed = headers.clone();
    signed.insert("X-Hub-Signature", &signature);
    Delivery::parse(Forge::Bitbucket, &signed)
        .unwrap()
        .verify("s", &body, 0)
        .unwrap();
    assert_eq!(
        parse_event(Forge::Bitbucket, "diagnostics:ping", None, b"{}").unwrap(),
        ForgeEvent::Ping
    );
}

/// Forge, event, content type, body, expected words.
type Case<'a> = (Forge, &'a str, Option<&'a str>, &'a [u8], &'a str);

#[test]
fn bad_payloads_say_what_is_wrong() {
    let cases: &[Case] = &[
        (Forge::GitLab, "Push Hook", None, b"{\"ref\": ", "body is not valid JSON"),
        (Forge::GitLab, "Push Hook", None, b"[]", "expected a JSON object"),
        (Forge::GitLab, "Push Hook", None, b"{}", "payload is not a GitLab push: missing field"),
        (Forge::Gitea, "push", Some("text/plain"), b"{}", "unsupported content type"),
        (Forge::Bitbucket, "repo:push", Some("application/x-www-form-urlencoded"), b"{}", "Bitbucket sends application/json"),
        (Forge::Bitbucket, "repo:push", None, br#"{"push":{"changes":[{}]},"repository":{"full_name":"a/b","links":{"html":{"href":"https://bitbucket.org/a/b"}}}}"#, "a change has neither old nor new"),
        (Forge::Gitea, "push", None, br#"{"ref":"main","before":"a","after":"b","repository":{"id":1,"name":"r","full_name":"o/r","clone_url":"u","html_url":"h"}}"#, "does not start with refs/"),
        (Forge::Gitea, "push", None, br#"{"ref":"refs/heads/x","before":"zz","after":"b","repository":{"id":1,"name":"r","full_name":"o/r","clone_url":"u","html_url":"h"}}"#, "before is not an object id"),
    ];
    for (forge, event, content_type, body, expected) in cases {
        let error = parse_event(*forge, event, *content_type, body)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{forge} {event}: {error}");
    }
}
