//! The webhook intake's pure work per push: checking the
//! `X-Hub-Signature-256` HMAC over the raw body and parsing the body into a
//! typed [`tako_github::Event`]. The body is GitHub's own example push
//! (`tests/fixtures/push-api-4.json`, 8.8 KB). Run with
//! `cargo bench -p tako-github --bench intake`.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tako_github::{DeliveryHeaders, Event, parse_event, sign, verify_signature};

/// GitHub's example push, as sent (pretty-printed JSON).
const BODY: &[u8] = include_bytes!("../tests/fixtures/push-api-4.json");
const SECRET: &[u8] = b"bench-webhook-secret-0123456789";

fn intake(c: &mut Criterion) {
    let signature = sign(SECRET, BODY);
    let mut group = c.benchmark_group("github_push_8.8KB");
    group.throughput(Throughput::Bytes(BODY.len() as u64));
    group.bench_function("verify_signature", |b| {
        b.iter(|| verify_signature(SECRET, black_box(BODY), Some(&signature)).is_ok());
    });
    group.bench_function("parse_event", |b| {
        b.iter(|| parse_event("push", Some("application/json"), black_box(BODY)).is_ok());
    });
    group.bench_function("headers_verify_parse", |b| {
        b.iter(|| {
            let Ok(headers) = DeliveryHeaders::parse(
                Some("push"),
                Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                Some(&signature),
            ) else {
                return false;
            };
            verify_signature(SECRET, black_box(BODY), headers.signature.as_deref()).is_ok()
                && matches!(
                    parse_event(&headers.event, Some("application/json"), black_box(BODY)),
                    Ok(Event::Push(_))
                )
        });
    });
    group.finish();
}

fn main() {
    assert!(
        matches!(
            parse_event("push", Some("application/json"), BODY),
            Ok(Event::Push(_))
        ),
        "the fixture is a push"
    );
    let mut criterion = Criterion::default().configure_from_args();
    intake(&mut criterion);
    criterion.final_summary();
}
