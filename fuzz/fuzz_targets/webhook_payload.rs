//! Fuzzes the webhook payload parser and its neighbours: the first byte picks
//! the event and content type, the rest is the body; `parse_event`,
//! `payload_json`, `DeliveryHeaders::parse` and `verify_signature` must never
//! panic, and a parsed push's accessors must not either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tako_github::Event;

const EVENTS: &[&str] = &["push", "ping", "issues", "create"];
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let event = EVENTS[usize::from(selector & 3)];
    let content_type = CONTENT_TYPES[usize::from((selector >> 2) & 3)];
    if let Ok(Event::Push(push)) = tako_github::parse_event(event, content_type, body) {
        let _ = push.branch();
        let _ = push.tag();
        let _ = push.is_deletion();
        let _ = push.is_creation();
        let _ = push.commit_id();
        let _ = push.skip_reason();
        let _ = push.notes();
    }
    let _ = tako_github::payload_json(content_type, body);
    let text = String::from_utf8_lossy(body);
    let mut parts = text.splitn(3, '\n');
    let (first, second, third) = (parts.next(), parts.next(), parts.next());
    let _ = tako_github::DeliveryHeaders::parse(first, second, third);
    let _ = tako_github::verify_signature(b"secret", body, first);
});
