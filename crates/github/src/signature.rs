//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw request body, keyed with the
//! webhook secret, sent as `sha256=<64 hex digits>`.
//!
//! The comparison is constant-time (`hmac`'s `verify_slice`, built on
//! `subtle`). Errors never carry the secret or the expected MAC.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header value's prefix naming the algorithm.
const PREFIX: &str = "sha256=";

/// Why a delivery's signature was refused (the intake answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header: {reason}")]
    Malformed {
        /// What is wrong with the header's shape (never its value).
        reason: &'static str,
    },
    /// The header is well formed but is not the body's HMAC under the secret.
    #[error("signature does not match the body and the webhook secret")]
    Mismatch,
    /// The configured secret is empty: anyone could sign with it, so nothing
    /// is accepted.
    #[error("the webhook secret is empty; refusing to verify with it")]
    EmptySecret,
}

/// Checks `header` (the `X-Hub-Signature-256` value, if any) against the
/// HMAC-SHA256 of `body` keyed with `secret`, in constant time.
///
/// `body` must be the raw bytes as received (for a form-encoded delivery, the
/// whole form body), before any parsing. Surrounding whitespace in the header
/// is ignored; hex digits may be upper or lower case.
///
/// # Errors
///
/// [`SignatureError::Missing`], [`SignatureError::Malformed`],
/// [`SignatureError::Mismatch`], or [`SignatureError::EmptySecret`] when
/// `secret` is empty.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    let header = header.ok_or(SignatureError::Missing)?.trim();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let Some(digits) = header.strip_prefix(PREFIX) else {
        let reason = if header.starts_with("sha1=") {
            "it is a sha1 signature; expected sha256=<64 hex digits>"
        } else {
            "expected sha256=<64 hex digits>"
        };
        return Err(SignatureError::Malformed { reason });
    };
    if digits.len() != 64 {
        return Err(SignatureError::Malformed {
            reason: "expected 64 hex digits after sha256=",
        });
    }
    let claimed = hex::decode(digits).map_err(|_| SignatureError::Malformed {
        reason: "the digest after sha256= is not hexadecimal",
    })?;
    let mut mac = keyed(secret).ok_or(SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&claimed)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` under
/// `secret`: `sha256=` and 64 lowercase hex digits. For tests, benchmarks and
/// for sending test deliveries.
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    match keyed(secret) {
        Some(mut mac) => {
            mac.update(body);
            format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
        }
        // Unreachable in practice (see `keyed`); an empty digest never verifies.
        None => PREFIX.to_owned(),
    }
}

/// HMAC takes keys of any length (longer ones are hashed first), so this is
/// always `Some`; the `Option` only avoids an `unwrap` on the `Result` of
/// `new_from_slice`. Both callers fail closed on `None`.
fn keyed(secret: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(secret).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_round_trip() {
        let header = sign(b"s3cret", b"{}");
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert_eq!(verify_signature(b"s3cret", b"{}", Some(&header)), Ok(()));
        assert_eq!(
            verify_signature(b"other", b"{}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn long_keys_work() {
        let secret = vec![7u8; 1000];
        let header = sign(&secret, b"body");
        assert_eq!(verify_signature(&secret, b"body", Some(&header)), Ok(()));
    }
}
