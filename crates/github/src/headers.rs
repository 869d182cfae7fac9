//! The delivery headers GitHub sends with every webhook: which event, which
//! delivery (the redelivery/duplicate key), and the signature.

/// The header naming the event (`push`, `ping`, `issues`, …).
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header carrying the delivery's unique id (a GUID); GitHub's
/// "redeliver" sends the same id again.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";
/// The header carrying `sha256=<hex>`, the HMAC-SHA256 of the raw body.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The longest delivery id accepted (GitHub's are 36-character GUIDs).
pub const MAX_DELIVERY_ID_LEN: usize = 100;
/// The longest event name accepted (GitHub's are short snake_case words).
const MAX_EVENT_LEN: usize = 100;

/// A delivery's validated headers.
///
/// The signature is kept as sent (not checked here): pass it to
/// [`verify_signature`](crate::verify_signature) with the raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHeaders {
    /// `X-GitHub-Event`, e.g. `push`.
    pub event: String,
    /// `X-GitHub-Delivery`: 1 to [`MAX_DELIVERY_ID_LEN`] printable ASCII
    /// characters, no spaces.
    pub delivery_id: String,
    /// `X-Hub-Signature-256`, if sent.
    pub signature: Option<String>,
}

/// Why a delivery's headers were refused (the intake answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required header is absent.
    #[error("missing {header} header")]
    Missing {
        /// The header's name.
        header: &'static str,
    },
    /// A header is present but empty (or only whitespace).
    #[error("empty {header} header")]
    Empty {
        /// The header's name.
        header: &'static str,
    },
    /// A header is longer than allowed.
    #[error("header {header} is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// The header's name.
        header: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A header holds a character outside printable ASCII (or a space).
    #[error(
        "header {header} has a character that is not printable ASCII at position {position} \
         (only `!` to `~` are allowed)"
    )]
    NotPrintable {
        /// The header's name.
        header: &'static str,
        /// The zero-based byte position of the first offending character.
        position: usize,
    },
}

impl DeliveryHeaders {
    /// Validates the raw header values (`None` when a header is absent).
    ///
    /// Event and delivery id are trimmed, must be non-empty, at most 100
    /// characters, and printable ASCII without spaces (so they are safe to
    /// store, log and echo). The signature is only trimmed; an empty one
    /// counts as absent.
    ///
    /// # Errors
    ///
    /// [`HeaderError`] naming the header and what is wrong with it; the
    /// offending value is not echoed.
    pub fn parse(
        event: Option<&str>,
        delivery_id: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Self, HeaderError> {
        let event = check(EVENT_HEADER, event, MAX_EVENT_LEN)?;
        let delivery_id = check(DELIVERY_HEADER, delivery_id, MAX_DELIVERY_ID_LEN)?;
        let signature = signature
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned);
        Ok(Self {
            event: event.to_owned(),
            delivery_id: delivery_id.to_owned(),
            signature,
        })
    }
}

fn check<'a>(
    header: &'static str,
    value: Option<&'a str>,
    max: usize,
) -> Result<&'a str, HeaderError> {
    let value = value.ok_or(HeaderError::Missing { header })?.trim();
    if value.is_empty() {
        return Err(HeaderError::Empty { header });
    }
    if value.len() > max {
        return Err(HeaderError::TooLong {
            header,
            len: value.len(),
            max,
        });
    }
    if let Some(position) = value.bytes().position(|byte| !byte.is_ascii_graphic()) {
        return Err(HeaderError::NotPrintable { header, position });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_github_headers() {
        let headers = DeliveryHeaders::parse(
            Some("push"),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            Some(" sha256=abc "),
        )
        .unwrap();
        assert_eq!(headers.event, "push");
        assert_eq!(headers.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(headers.signature.as_deref(), Some("sha256=abc"));
    }

    #[test]
    fn empty_signature_is_absent() {
        let headers = DeliveryHeaders::parse(Some("ping"), Some("1"), Some("  ")).unwrap();
        assert_eq!(headers.signature, None);
    }

    #[test]
    fn refuses_bad_delivery_ids() {
        let err = DeliveryHeaders::parse(Some("push"), None, None).unwrap_err();
        assert_eq!(err.to_string(), "missing X-GitHub-Delivery header");
        let err = DeliveryHeaders::parse(Some("push"), Some(" "), None).unwrap_err();
        assert_eq!(err.to_string(), "empty X-GitHub-Delivery header");
        let long = "a".repeat(101);
        let err = DeliveryHeaders::parse(Some("push"), Some(&long), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header X-GitHub-Delivery is 101 characters long; at most 100 are allowed"
        );
        assert!(DeliveryHeaders::parse(Some("push"), Some(&long[..100]), None).is_ok());
        let err = DeliveryHeaders::parse(Some("push"), Some("ab\ncd"), None).unwrap_err();
        assert_eq!(
            err,
            HeaderError::NotPrintable {
                header: DELIVERY_HEADER,
                position: 2
            }
        );
        let err = DeliveryHeaders::parse(Some("push"), Some("a b"), None).unwrap_err();
        assert!(matches!(err, HeaderError::NotPrintable { position: 1, .. }));
        let err = DeliveryHeaders::parse(Some("push"), Some("idé"), None).unwrap_err();
        assert!(matches!(err, HeaderError::NotPrintable { position: 2, .. }));
    }

    #[test]
    fn refuses_a_missing_event() {
        let err = DeliveryHeaders::parse(None, Some("1"), None).unwrap_err();
        assert_eq!(err.to_string(), "missing X-GitHub-Event header");
    }
}
