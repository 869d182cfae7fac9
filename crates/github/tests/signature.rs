//! `X-Hub-Signature-256`: GitHub's documented test vector, and every way a
//! header can be wrong.

use tako_github::{SignatureError, sign, verify_signature};

/// From GitHub's "Validating webhook deliveries".
const SECRET: &[u8] = b"It's a Secret to Everybody";
const PAYLOAD: &[u8] = b"Hello, World!";
const EXPECTED: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn github_documented_vector() {
    assert_eq!(sign(SECRET, PAYLOAD), EXPECTED);
    assert_eq!(verify_signature(SECRET, PAYLOAD, Some(EXPECTED)), Ok(()));
    let upper = format!("sha256={}", EXPECTED["sha256=".len()..].to_uppercase());
    assert_eq!(verify_signature(SECRET, PAYLOAD, Some(&upper)), Ok(()));
    let padded = format!("  {EXPECTED}\t");
    assert_eq!(verify_signature(SECRET, PAYLOAD, Some(&padded)), Ok(()));
}

#[test]
fn wrong_signatures_mismatch() {
    assert_eq!(
        verify_signature(b"wrong secret", PAYLOAD, Some(EXPECTED)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(SECRET, b"Hello, World?", Some(EXPECTED)),
        Err(SignatureError::Mismatch)
    );
    let flipped = EXPECTED.replace("757107", "757108");
    assert_eq!(
        verify_signature(SECRET, PAYLOAD, Some(&flipped)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_header() {
    assert_eq!(
        verify_signature(SECRET, PAYLOAD, None),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify_signature(SECRET, PAYLOAD, Some(" ")),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        SignatureError::Missing.to_string(),
        "missing X-Hub-Signature-256 header"
    );
}

#[test]
fn malformed_headers() {
    let digits = &EXPECTED["sha256=".len()..];
    for header in [
        digits.to_owned(),
        format!("sha1={digits}"),
        format!("SHA256={digits}"),
        format!("sha256={}", &digits[..63]),
        format!("sha256={digits}0"),
        format!("sha256={}zz", &digits[..62]),
        format!("sha256={}é", &digits[..62]),
        "sha256=".to_owned(),
        "sha256 = x".to_owned(),
    ] {
        let err = verify_signature(SECRET, PAYLOAD, Some(&header)).unwrap_err();
        assert!(
            matches!(err, SignatureError::Malformed { .. }),
            "{header}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("malformed X-Hub-Signature-256 header: ")
        );
    }
}

#[test]
fn errors_never_reveal_the_secret_or_the_expected_mac() {
    let expected_digits = &EXPECTED["sha256=".len()..];
    let secret_text = String::from_utf8_lossy(SECRET);
    for header in [
        None,
        Some("sha256=00"),
        Some("sha1=abc"),
        Some(&"sha256=".repeat(2)[..]),
    ] {
        let err = verify_signature(SECRET, PAYLOAD, header).unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(expected_digits), "{text}");
            assert!(!text.contains(&*secret_text), "{text}");
        }
    }
    let wrong = sign(b"other", PAYLOAD);
    let err = verify_signature(SECRET, PAYLOAD, Some(&wrong)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature does not match the body and the webhook secret"
    );
    assert!(!format!("{err:?}").contains(expected_digits));
}

#[test]
fn an_empty_secret_verifies_nothing() {
    let header = sign(b"", PAYLOAD);
    assert_eq!(
        verify_signature(b"", PAYLOAD, Some(&header)),
        Err(SignatureError::EmptySecret)
    );
}

#[test]
fn form_bodies_are_signed_as_sent() {
    let form = b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%2C%22hook_id%22%3A1%7D";
    let header = sign(SECRET, form);
    assert_eq!(verify_signature(SECRET, form, Some(&header)), Ok(()));
    let json = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    assert_eq!(
        verify_signature(SECRET, json, Some(&header)),
        Err(SignatureError::Mismatch)
    );
    let event = tako_github::parse_event("ping", Some("application/x-www-form-urlencoded"), form);
    assert!(
        matches!(event, Ok(tako_github::Event::Ping { ref zen, hook_id: Some(1), repository: None }) if zen == "Keep it logically awesome.")
    );
}
