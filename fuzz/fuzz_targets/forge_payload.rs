//! Fuzzes the other forges' webhooks: the first byte picks the forge, the
//! event and the content type, the rest is the body; `parse_event`, the
//! normalized pushes' accessors, `Delivery::parse` and `Delivery::verify`
//! (hex HMACs, GitLab's token and signing token) must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tako_forges::{Delivery, Forge, ForgeEvent, Headers};

const EVENTS: &[(Forge, &str)] = &[
    (Forge::Gitea, "push"),
    (Forge::Gitea, "delete"),
    (Forge::GitLab, "Push Hook"),
    (Forge::GitLab, "Tag Push Hook"),
    (Forge::Bitbucket, "repo:push"),
    (Forge::Bitbucket, "diagnostics:ping"),
    (Forge::GitLab, "Issue Hook"),
    (Forge::Gitea, "issues"),
];
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (forge, event) = EVENTS[usize::from(selector & 7)];
    let content_type = CONTENT_TYPES[usize::from((selector >> 3) & 3)];
    if let Ok(ForgeEvent::Pushes(pushes)) = tako_forges::parse_event(forge, event, content_type, body)
    {
        for push in pushes {
            let _ = push.branch();
            let _ = push.tag();
            let _ = push.commit_id();
            let _ = push.skip_reason();
            let _ = push.notes();
        }
    }
    let text = String::from_utf8_lossy(body);
    let values: Vec<&str> = text.split('\n').collect();
    let headers: Headers<'_> = forge
        .header_names()
        .iter()
        .zip(values.iter())
        .map(|(name, value)| (*name, *value))
        .collect();
    if let Ok(delivery) = Delivery::parse(forge, &headers) {
        let _ = delivery.stored_id(3);
        let _ = delivery.verify("secret", body, 1_700_000_000);
        let _ = delivery.verify("whsec_c2VjcmV0", body, 1_700_000_000);
    }
});
