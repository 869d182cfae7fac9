//! Garbage in, an error out, never a panic: truncated and mutated payloads,
//! invalid UTF-8, deep nesting (serde_json stops at 128 levels), random
//! bytes, for every event and both content types.

use std::path::Path;

use tako_github::{DeliveryHeaders, Event, PayloadError, parse_event, verify_signature};

const CONTENT_TYPES: [Option<&str>; 3] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    None,
];
const EVENTS: [&str; 3] = ["push", "ping", "issues"];

/// xorshift64*: a tiny deterministic generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Parses `body` every way the intake could; only the absence of a panic
/// matters (and that errors render).
fn parse_every_way(body: &[u8]) {
    for event in EVENTS {
        for content_type in CONTENT_TYPES {
            if let Err(err) = parse_event(event, content_type, body) {
                assert!(!err.to_string().is_empty());
            }
        }
    }
    let _ = verify_signature(b"secret", body, std::str::from_utf8(body).ok());
    let text = String::from_utf8_lossy(body);
    let _ = DeliveryHeaders::parse(Some(&text), Some(&text), Some(&text));
}

fn push_example() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/push-api-4.json"))
        .unwrap_or_default()
}

#[test]
fn truncated_payloads_are_errors() {
    let body = push_example();
    assert!(!body.is_empty());
    for end in 0..body.len() - 2 {
        let err = parse_event("push", Some("application/json"), &body[..end]).unwrap_err();
        assert!(
            matches!(err, PayloadError::InvalidJson { .. }),
            "cut at {end}: {err}"
        );
    }
}

#[test]
fn randomly_mutated_payloads_never_panic() {
    let body = push_example();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2_000 {
        let mut mutated = body.clone();
        for _ in 0..=rng.below(8) {
            let at = rng.below(mutated.len());
            match rng.below(4) {
                0 => mutated[at] = u8::try_from(rng.below(256)).unwrap_or(0),
                1 => {
                    mutated.remove(at);
                }
                2 => {
                    let bytes = b"{}[]\",:\\0e-+\xff\xc3";
                    mutated.insert(at, bytes[rng.below(bytes.len())]);
                }
                _ => mutated.truncate(at),
            }
            if mutated.is_empty() {
                break;
            }
        }
        parse_every_way(&mutated);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..2_000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len)
            .map(|_| u8::try_from(rng.below(256)).unwrap_or(0))
            .collect();
        parse_every_way(&bytes);
    }
}

#[test]
fn invalid_utf8_is_an_error() {
    let body = b"{\"ref\": \"refs/heads/\xff\xfe\"}";
    let err = parse_event("push", None, body).unwrap_err();
    assert!(matches!(err, PayloadError::InvalidJson { .. }), "{err}");
    // The same bytes percent-encoded in a form.
    let form = b"payload=%7B%22ref%22%3A%22%FF%22%7D";
    let err = parse_event("push", Some("application/x-www-form-urlencoded"), form).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("form field payload is not valid JSON: "),
        "{err}"
    );
}

/// 100 000 levels would overflow a test thread's stack if anything recursed
/// per level. Nothing does: the typed fields have a fixed depth, and serde_json
/// skips what Tako does not read (unknown fields, other events' bodies)
/// without recursion.
#[test]
fn deep_nesting_never_overflows_the_stack() {
    let depth = 100_000;
    let arrays = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    for event in EVENTS {
        let err = parse_event(event, None, arrays.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("invalid type: sequence"),
            "{event}: {err}"
        );
    }
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let err = parse_event("push", None, objects.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("payload is not a push: missing field `ref`"),
        "{err}"
    );
    assert!(matches!(
        parse_event("ping", None, objects.as_bytes()),
        Ok(Event::Ping { hook_id: None, .. })
    ));
    assert!(parse_event("issues", None, objects.as_bytes()).is_ok());
    for field in ["hook", "commits", "repository", "head_commit"] {
        let inside = format!(
            "{{\"ref\":\"refs/heads/x\",\"{field}\":{}1{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(
            parse_event("push", None, inside.as_bytes()).is_err(),
            "{field}"
        );
    }
    // Unbalanced: runs out of input, deep down.
    let err = parse_event("issues", None, "{\"a\":".repeat(depth).as_bytes()).unwrap_err();
    assert!(matches!(err, PayloadError::InvalidJson { .. }), "{err}");
}

#[test]
fn error_messages_say_what_is_wrong() {
    let err = parse_event("push", None, b"{\"ref\": ").unwrap_err();
    assert_eq!(
        err.to_string(),
        "body is not valid JSON: EOF while parsing a value at line 1 column 8"
    );
    let err = parse_event("push", None, b"{}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload is not a push: missing field `ref` at line 1 column 2"
    );
    let err = parse_event("push", None, b"[]").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("payload is not a push: invalid type: sequence, expected a JSON object"),
        "{err}"
    );
    // A positional array of the fields is no push either.
    let err = parse_event("push", None, br#"["refs/heads/x", "a", "b"]"#).unwrap_err();
    assert!(err.to_string().contains("expected a JSON object"), "{err}");
    let err = parse_event("push", Some("application/x-www-form-urlencoded"), b"a=1").unwrap_err();
    assert_eq!(err.to_string(), "form body has no payload field");
    let err = parse_event("push", None, b"").unwrap_err();
    assert!(matches!(err, PayloadError::InvalidJson { .. }), "{err}");
    let err = parse_event("issues", None, b"not json").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("body is not valid JSON: expected"),
        "{err}"
    );
    let ok = parse_event("issues", None, b"{\"action\":\"opened\"}").unwrap();
    assert_eq!(
        ok,
        Event::Other {
            event: "issues".to_owned()
        }
    );
}
