//! A delivery's headers, validated: which event, which delivery (the
//! redelivery key), and what authenticates it.

use crate::signature::{self, SignatureError, Signed};
use crate::{Forge, bitbucket, gitea, gitlab};

/// The longest delivery id accepted (the forges' are UUIDs).
pub const MAX_DELIVERY_ID_LEN: usize = 100;
/// The longest event name accepted.
const MAX_EVENT_LEN: usize = 100;

/// The raw values of the headers a forge's delivery is read from, as the
/// HTTP layer found them (names as in [`Forge::header_names`]).
#[derive(Debug, Clone, Default)]
pub struct Headers<'a> {
    found: Vec<(&'static str, &'a str)>,
}

impl<'a> Headers<'a> {
    /// No headers.
    #[must_use]
    pub fn new() -> Headers<'a> {
        Headers::default()
    }

    /// Adds one header's value (the first value of a name wins).
    pub fn insert(&mut self, name: &'static str, value: &'a str) {
        if self.get(name).is_none() {
            self.found.push((name, value));
        }
    }

    /// The value of `name`, if it was sent (names compare case-insensitively).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.found
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The first of `names` that was sent and is not blank.
    pub(crate) fn first(&self, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
        names.iter().find_map(|name| {
            self.get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (*name, v))
        })
    }
}

impl<'a> FromIterator<(&'static str, &'a str)> for Headers<'a> {
    fn from_iter<I: IntoIterator<Item = (&'static str, &'a str)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.insert(name, value);
        }
        headers
    }
}

/// Why a delivery's headers were refused (the intake answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required header is absent.
    #[error("missing {header} header")]
    Missing {
        /// The header's name (or the names it may have).
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
    /// A header holds a character it may not.
    #[error(
        "header {header} has a character that is not printable ASCII at position {position} \
         ({allowed})"
    )]
    NotPrintable {
        /// The header's name.
        header: &'static str,
        /// The zero-based byte position of the first offending character.
        position: usize,
        /// What is allowed.
        allowed: &'static str,
    },
}

/// What authenticates a delivery, as sent (checked by [`Delivery::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proof {
    /// Nothing was sent.
    None,
    /// An HMAC-SHA256 of the body in hex, optionally behind a prefix.
    Hex {
        header: &'static str,
        prefix: Option<&'static str>,
        value: String,
    },
    /// GitLab's secret token.
    Token(String),
    /// GitLab's signed webhook (and, perhaps, a token beside it).
    Signed {
        id: String,
        timestamp: String,
        signature: String,
        token: Option<String>,
    },
}

/// A delivery's validated headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The forge that sent it.
    pub forge: Forge,
    /// The event (`push`, `Push Hook`, `repo:push` …).
    pub event: String,
    /// The forge's delivery id: 1 to [`MAX_DELIVERY_ID_LEN`] printable ASCII
    /// characters, no spaces.
    pub delivery_id: String,
    proof: Proof,
}

impl Delivery {
    /// Validates the headers of a delivery from `forge`.
    ///
    /// # Errors
    ///
    /// [`HeaderError`] naming the header and what is wrong with it; the
    /// offending value is not echoed.
    pub fn parse(forge: Forge, headers: &Headers<'_>) -> Result<Delivery, HeaderError> {
        let (event, delivery, proof) = match forge {
            Forge::Gitea => {
                let event = required(headers, gitea::EVENT_HEADERS, gitea::EVENT_HEADER_NAMES)?;
                let delivery = required(
                    headers,
                    gitea::DELIVERY_HEADERS,
                    gitea::DELIVERY_HEADER_NAMES,
                )?;
                let proof = match headers.first(gitea::SIGNATURE_HEADERS) {
                    Some((header, value)) => Proof::Hex {
                        header,
                        prefix: (header == gitea::HUB_SIGNATURE_HEADER).then_some("sha256="),
                        value: value.trim().to_owned(),
                    },
                    None => Proof::None,
                };
                (event, delivery, proof)
            }
            Forge::GitLab => {
                let event = required(headers, &[gitlab::EVENT_HEADER], gitlab::EVENT_HEADER)?;
                let delivery = required(
                    headers,
                    gitlab::DELIVERY_HEADERS,
                    gitlab::DELIVERY_HEADER_NAMES,
                )?;
                let token = headers
                    .get(gitlab::TOKEN_HEADER)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned);
                let proof = match headers.first(&[gitlab::SIGNATURE_HEADER]) {
                    Some((_, signature)) => Proof::Signed {
                        id: headers
                            .get(gitlab::SIGNED_ID_HEADER)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                        timestamp: headers
                            .get(gitlab::SIGNED_TIMESTAMP_HEADER)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                        signature: signature.trim().to_owned(),
                        token,
                    },
                    None => token.map_or(Proof::None, Proof::Token),
                };
                (event, delivery, proof)
            }
            Forge::Bitbucket => {
                let event = required(headers, &[bitbucket::EVENT_HEADER], bitbucket::EVENT_HEADER)?;
                let delivery = required(
                    headers,
                    &[bitbucket::DELIVERY_HEADER],
                    bitbucket::DELIVERY_HEADER,
                )?;
                let proof = match headers.first(&[bitbucket::SIGNATURE_HEADER]) {
                    Some((header, value)) => Proof::Hex {
                        header,
                        prefix: Some("sha256="),
                        value: value.trim().to_owned(),
                    },
                    None => Proof::None,
                };
                (event, delivery, proof)
            }
        };
        let (event_header, event) = event;
        let (delivery_header, delivery) = delivery;
        let event = check(event_header, event, MAX_EVENT_LEN, true)?;
        let delivery_id = check(delivery_header, delivery, MAX_DELIVERY_ID_LEN, false)?;
        Ok(Delivery {
            forge,
            event: event.to_owned(),
            delivery_id: delivery_id.to_owned(),
            proof,
        })
    }

    /// The id the delivery is stored under: the forge's slug and its id
    /// (`gitlab-<uuid>`), and for the further ref changes of one Bitbucket
    /// push, `-<n>` (the first change keeps the plain id). A redelivery
    /// gets the same ids, so it is stored once.
    #[must_use]
    pub fn stored_id(&self, change: usize) -> String {
        match change {
            0 => format!("{}-{}", self.forge.slug(), self.delivery_id),
            n => format!("{}-{}-{n}", self.forge.slug(), self.delivery_id),
        }
    }

    /// Whether anything that could authenticate the delivery was sent.
    #[must_use]
    pub fn is_signed(&self) -> bool {
        self.proof != Proof::None
    }

    /// Checks the delivery against `secret` (the project's or the server's
    /// webhook secret), over the raw `body`, `now` in Unix seconds (for
    /// GitLab's signed webhooks).
    ///
    /// For GitLab, a secret of the form `whsec_<base64>` is a signing token:
    /// the delivery must then carry a valid `webhook-signature`; any other
    /// secret is compared with `X-Gitlab-Token`.
    ///
    /// # Errors
    ///
    /// [`SignatureError`]; never carries the secret.
    pub fn verify(&self, secret: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        match self.forge {
            Forge::Gitea => match &self.proof {
                Proof::Hex {
                    header,
                    prefix,
                    value,
                } => signature::verify_hex(header, *prefix, secret.as_bytes(), body, Some(value)),
                _ => Err(SignatureError::Missing {
                    header: gitea::SIGNATURE_HEADER_NAMES,
                }),
            },
            Forge::Bitbucket => match &self.proof {
                Proof::Hex {
                    header,
                    prefix,
                    value,
                } => signature::verify_hex(header, *prefix, secret.as_bytes(), body, Some(value)),
                _ => Err(SignatureError::Missing {
                    header: bitbucket::SIGNATURE_HEADER,
                }),
            },
            Forge::GitLab if signature::is_signing_token(secret) => match &self.proof {
                Proof::Signed {
                    id,
                    timestamp,
                    signature,
                    ..
                } => {
                    if id.is_empty() {
                        return Err(SignatureError::Missing {
                            header: gitlab::SIGNED_ID_HEADER,
                        });
                    }
                    if timestamp.is_empty() {
                        return Err(SignatureError::Missing {
                            header: gitlab::SIGNED_TIMESTAMP_HEADER,
                        });
                    }
                    let signed = Signed {
                        id,
                        timestamp,
                        signature,
                    };
                    signature::verify_signed(secret, body, &signed, now)
                }
                _ => Err(SignatureError::Missing {
                    header: gitlab::SIGNATURE_HEADER,
                }),
            },
            Forge::GitLab => {
                let token = match &self.proof {
                    Proof::Token(token) => Some(token.as_str()),
                    Proof::Signed { token, .. } => token.as_deref(),
                    _ => None,
                };
                signature::verify_token(gitlab::TOKEN_HEADER, secret.as_bytes(), token)
            }
        }
    }
}

fn required<'a>(
    headers: &Headers<'a>,
    names: &[&'static str],
    described: &'static str,
) -> Result<(&'static str, &'a str), HeaderError> {
    headers
        .first(names)
        .ok_or(HeaderError::Missing { header: described })
}

fn check<'a>(
    header: &'static str,
    value: &'a str,
    max: usize,
    spaces: bool,
) -> Result<&'a str, HeaderError> {
    let value = value.trim();
    if value.len() > max {
        return Err(HeaderError::TooLong {
            header,
            len: value.len(),
            max,
        });
    }
    let bad = |byte: &u8| {
        if spaces {
            !(byte.is_ascii_graphic() || *byte == b' ')
        } else {
            !byte.is_ascii_graphic()
        }
    };
    if let Some(position) = value.bytes().position(|byte| bad(&byte)) {
        return Err(HeaderError::NotPrintable {
            header,
            position,
            allowed: if spaces {
                "only ` ` to `~` are allowed"
            } else {
                "only `!` to `~` are allowed"
            },
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitea_prefers_forgejo_headers_and_reads_the_hub_signature_last() {
        let headers: Headers<'_> = [
            ("X-Gitea-Event", "push"),
            ("X-Forgejo-Event", "push"),
            ("X-Gitea-Delivery", "d-1"),
            ("X-Hub-Signature-256", "sha256=00"),
        ]
        .into_iter()
        .collect();
        let delivery = Delivery::parse(Forge::Gitea, &headers).unwrap();
        assert_eq!(delivery.event, "push");
        assert_eq!(delivery.stored_id(0), "gitea-d-1");
        assert_eq!(
            delivery.proof,
            Proof::Hex {
                header: "X-Hub-Signature-256",
                prefix: Some("sha256="),
                value: "sha256=00".to_owned()
            }
        );
    }

    #[test]
    fn gitlab_events_have_spaces_delivery_ids_do_not() {
        let headers: Headers<'_> = [("X-Gitlab-Event", "Push Hook"), ("Idempotency-Key", "a b")]
            .into_iter()
            .collect();
        let err = Delivery::parse(Forge::GitLab, &headers).unwrap_err();
        assert!(matches!(
            err,
            HeaderError::NotPrintable {
                header: "Idempotency-Key",
                position: 1,
                ..
            }
        ));
        let headers: Headers<'_> = [("X-Gitlab-Event", "Push Hook")].into_iter().collect();
        assert_eq!(
            Delivery::parse(Forge::GitLab, &headers)
                .unwrap_err()
                .to_string(),
            "missing Idempotency-Key (or X-Gitlab-Event-UUID) header"
        );
    }

    #[test]
    fn bitbucket_ids_of_further_changes_are_numbered() {
        let headers: Headers<'_> = [("X-Event-Key", "repo:push"), ("X-Request-UUID", "{abc}")]
            .into_iter()
            .collect();
        let delivery = Delivery::parse(Forge::Bitbucket, &headers).unwrap();
        assert_eq!(delivery.stored_id(0), "bitbucket-{abc}");
        assert_eq!(delivery.stored_id(2), "bitbucket-{abc}-2");
        assert!(!delivery.is_signed());
        assert_eq!(
            delivery.verify("s", b"{}", 0).unwrap_err().to_string(),
            "missing X-Hub-Signature header"
        );
    }
}
