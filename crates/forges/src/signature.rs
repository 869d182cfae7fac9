//! The forges' signature schemes, all in constant time and none echoing a
//! secret or an expected MAC:
//!
//! - an HMAC-SHA256 of the raw body in hex, bare (`X-Gitea-Signature`,
//!   `X-Forgejo-Signature`) or as `sha256=<hex>` (Bitbucket's
//!   `X-Hub-Signature`, Gitea's `X-Hub-Signature-256`);
//! - GitLab's secret token, sent as is in `X-Gitlab-Token`;
//! - GitLab's signed webhooks (Standard Webhooks): `webhook-signature:
//!   v1,<base64>` over `<webhook-id>.<webhook-timestamp>.<body>`, keyed with
//!   the base64 after `whsec_` of the signing token, within
//!   [`TIMESTAMP_TOLERANCE_SECS`] of now.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a signed webhook's `webhook-timestamp` may be from now, either
/// way (Standard Webhooks' five minutes): an older signature is a replay.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// The prefix of a Standard Webhooks signing secret (GitLab's signing token).
pub const SIGNING_TOKEN_PREFIX: &str = "whsec_";

/// Why a delivery's signature was refused (the intake answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header that should carry the signature or token is absent.
    #[error("missing {header} header")]
    Missing {
        /// The header (or headers) expected.
        header: &'static str,
    },
    /// The header is not of its scheme's shape.
    #[error("malformed {header} header: {reason}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong with its shape (never its value).
        reason: &'static str,
    },
    /// Well formed, but not made with the configured secret.
    #[error("{header} does not match the body and the webhook secret")]
    Mismatch {
        /// The header checked.
        header: &'static str,
    },
    /// A signed webhook whose timestamp is too far from now.
    #[error(
        "webhook-timestamp is {seconds} seconds away from this server's clock; at most 300 are \
         allowed (a replayed delivery, or a clock to set right)"
    )]
    Stale {
        /// How far, in seconds.
        seconds: i64,
    },
    /// The configured secret cannot be used (empty, or a `whsec_` token
    /// that is not base64).
    #[error("the webhook secret {0}; refusing to verify with it")]
    UnusableSecret(&'static str),
}

/// The HMAC-SHA256 of `body` under `secret`, in lowercase hex.
#[must_use]
pub fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(secret, &[body]))
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; an empty MAC never verifies.
        Err(_) => Vec::new(),
    }
}

fn verify_mac(secret: &[u8], parts: &[&[u8]], claimed: &[u8]) -> bool {
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            for part in parts {
                mac.update(part);
            }
            mac.verify_slice(claimed).is_ok()
        }
        Err(_) => false,
    }
}

/// Checks a hex HMAC-SHA256 of `body`: bare hex when `prefix` is `None`,
/// else `<prefix><hex>` (e.g. `sha256=`).
///
/// # Errors
///
/// [`SignatureError`] naming `header`.
pub fn verify_hex(
    header: &'static str,
    prefix: Option<&'static str>,
    secret: &[u8],
    body: &[u8],
    value: Option<&str>,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::UnusableSecret("is empty"));
    }
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::Missing { header })?;
    let digits = match prefix {
        Some(prefix) => value
            .strip_prefix(prefix)
            .ok_or(SignatureError::Malformed {
                header,
                reason: "expected sha256=<64 hex digits>",
            })?,
        None => value,
    };
    if digits.len() != 64 {
        return Err(SignatureError::Malformed {
            header,
            reason: "expected 64 hex digits",
        });
    }
    let claimed = hex::decode(digits).map_err(|_| SignatureError::Malformed {
        header,
        reason: "the digest is not hexadecimal",
    })?;
    if verify_mac(secret, &[body], &claimed) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch { header })
    }
}

/// Checks GitLab's `X-Gitlab-Token` against the secret, in constant time.
///
/// # Errors
///
/// [`SignatureError`] naming the header.
pub fn verify_token(
    header: &'static str,
    secret: &[u8],
    value: Option<&str>,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::UnusableSecret("is empty"));
    }
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::Missing { header })?;
    // Compare MACs of both under a fixed key: constant time whatever the
    // lengths, and neither value is compared byte by byte.
    let key = b"tako token comparison";
    if verify_mac(key, &[value.as_bytes()], &mac(key, &[secret])) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch { header })
    }
}

/// A Standard Webhooks signature's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp` (Unix seconds).
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `v1,<base64>` entries.
    pub signature: &'a str,
}

/// Checks a Standard Webhooks signature (GitLab's signing token), `now` in
/// Unix seconds.
///
/// # Errors
///
/// [`SignatureError`]: missing or malformed headers, a stale timestamp, a
/// mismatch, or a signing token that is not `whsec_<base64>`.
pub fn verify_signed(
    signing_token: &str,
    body: &[u8],
    signed: &Signed<'_>,
    now: i64,
) -> Result<(), SignatureError> {
    let key = signing_key(signing_token)?;
    let timestamp: i64 =
        signed
            .timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::Malformed {
                header: "webhook-timestamp",
                reason: "expected Unix seconds",
            })?;
    let seconds = now.saturating_sub(timestamp).saturating_abs();
    if seconds > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::Stale { seconds });
    }
    let parts: [&[u8]; 5] = [
        signed.id.as_bytes(),
        b".",
        signed.timestamp.trim().as_bytes(),
        b".",
        body,
    ];
    let mut seen_v1 = false;
    for entry in signed.signature.split_whitespace() {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        seen_v1 = true;
        if let Ok(claimed) = STANDARD.decode(encoded)
            && verify_mac(&key, &parts, &claimed)
        {
            return Ok(());
        }
    }
    if seen_v1 {
        Err(SignatureError::Mismatch {
            header: "webhook-signature",
        })
    } else {
        Err(SignatureError::Malformed {
            header: "webhook-signature",
            reason: "expected v1,<base64>",
        })
    }
}

/// The `webhook-signature` value for `body` (for tests and test deliveries).
#[must_use]
pub fn sign_signed(signing_token: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = signing_key(signing_token).unwrap_or_default();
    let timestamp = timestamp.to_string();
    let digest = mac(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(digest))
}

/// Whether a configured secret is a signing token (`whsec_…`).
#[must_use]
pub fn is_signing_token(secret: &str) -> bool {
    secret.starts_with(SIGNING_TOKEN_PREFIX)
}

fn signing_key(token: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded =
        token
            .strip_prefix(SIGNING_TOKEN_PREFIX)
            .ok_or(SignatureError::UnusableSecret(
                "is not a whsec_ signing token",
            ))?;
    match STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(SignatureError::UnusableSecret(
            "is a whsec_ signing token whose rest is not base64",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_prefixes() {
        let sig = hmac_hex(b"k", b"body");
        assert_eq!(
            verify_hex("X-Gitea-Signature", None, b"k", b"body", Some(&sig)),
            Ok(())
        );
        let prefixed = format!("sha256={sig}");
        assert_eq!(
            verify_hex(
                "X-Hub-Signature",
                Some("sha256="),
                b"k",
                b"body",
                Some(&prefixed)
            ),
            Ok(())
        );
        assert!(matches!(
            verify_hex(
                "X-Hub-Signature",
                Some("sha256="),
                b"k",
                b"body",
                Some(&sig)
            ),
            Err(SignatureError::Malformed { .. })
        ));
        assert_eq!(
            verify_hex("X-Gitea-Signature", None, b"other", b"body", Some(&sig)),
            Err(SignatureError::Mismatch {
                header: "X-Gitea-Signature"
            })
        );
        assert_eq!(
            verify_hex("X-Gitea-Signature", None, b"k", b"body", None),
            Err(SignatureError::Missing {
                header: "X-Gitea-Signature"
            })
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert_eq!(verify_token("X-Gitlab-Token", b"abc", Some("abc")), Ok(()));
        for wrong in ["ab", "abcd", "abd", ""] {
            assert!(
                verify_token("X-Gitlab-Token", b"abc", Some(wrong)).is_err(),
                "{wrong}"
            );
        }
        assert!(verify_token("X-Gitlab-Token", b"", Some("")).is_err());
    }

    #[test]
    fn signed_webhooks_check_key_time_and_body() {
        let token = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=";
        let signature = sign_signed(token, "msg_1", 1_700_000_000, b"{}");
        let signed = Signed {
            id: "msg_1",
            timestamp: "1700000000",
            signature: &signature,
        };
        assert_eq!(verify_signed(token, b"{}", &signed, 1_700_000_100), Ok(()));
        assert_eq!(
            verify_signed(token, b"{ }", &signed, 1_700_000_100),
            Err(SignatureError::Mismatch {
                header: "webhook-signature"
            })
        );
        assert_eq!(
            verify_signed(token, b"{}", &signed, 1_700_000_400),
            Err(SignatureError::Stale { seconds: 400 })
        );
        let several = format!("v1,bm9wZQ== {signature}");
        let signed = Signed {
            signature: &several,
            ..signed
        };
        assert_eq!(verify_signed(token, b"{}", &signed, 1_700_000_000), Ok(()));
        assert!(matches!(
            verify_signed("plain", b"{}", &signed, 1_700_000_000),
            Err(SignatureError::UnusableSecret(_))
        ));
    }
}
