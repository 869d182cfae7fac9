//! From a delivery's (already verified) body to a typed [`Event`].
//!
//! GitHub offers two content types for a webhook: `application/json` (the body
//! is the JSON payload) and `application/x-www-form-urlencoded` (the JSON is
//! the `payload` form field; the signature covers the whole form body, so
//! verify before calling [`parse_event`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use crate::push::{Push, Repository};

/// How much of an unsupported `Content-Type` an error message quotes.
const MAX_QUOTED_CONTENT_TYPE: usize = 100;

/// A webhook delivery, by its `X-GitHub-Event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `ping`: sent when a webhook is created (or on "Redeliver"); answered
    /// 200.
    Ping {
        /// A line of GitHub zen.
        zen: String,
        /// The webhook's id, when sent.
        hook_id: Option<u64>,
        /// The repository, for a repository webhook (`None` for an
        /// organization's or an app's). Boxed: it is most of a ping's size.
        repository: Option<Box<Repository>>,
    },
    /// `push`: a ref was created, moved or deleted.
    Push(Box<Push>),
    /// Any other event: acknowledged and ignored (see
    /// [`Event::ignored_reason`]).
    Other {
        /// The `X-GitHub-Event` value.
        event: String,
    },
}

impl Event {
    /// The event's name, as in `X-GitHub-Event`.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Ping { .. } => "ping",
            Self::Push(_) => "push",
            Self::Other { event } => event,
        }
    }

    /// Why the intake ignores this event (`event issues is not handled; Tako
    /// acts on push`); `None` for `push` and `ping`.
    #[must_use]
    pub fn ignored_reason(&self) -> Option<String> {
        match self {
            Self::Ping { .. } | Self::Push(_) => None,
            Self::Other { event } => {
                Some(format!("event {event} is not handled; Tako acts on push"))
            }
        }
    }
}

/// Why a body could not be read as its event's payload (the intake answers
/// 400 with this message).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The `Content-Type` is neither JSON nor a form.
    #[error(
        "unsupported content type {0:?}; GitHub sends application/json or \
         application/x-www-form-urlencoded"
    )]
    UnsupportedContentType(String),
    /// A form-encoded body without a `payload` field.
    #[error("form body has no payload field")]
    NoPayloadField,
    /// A form-encoded body with several `payload` fields (ambiguous).
    #[error("form body has more than one payload field")]
    DuplicatePayloadField,
    /// The JSON is not well formed (serde_json's message, with line and
    /// column).
    #[error("{what} is not valid JSON: {source}")]
    InvalidJson {
        /// `body`, or `form field payload`.
        what: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// Well-formed JSON that is not this event's payload (a missing field, a
    /// wrong type …; serde_json's message, with line and column).
    #[error("payload is not a {event}: {source}")]
    NotThisEvent {
        /// The event the payload was read as.
        event: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
}

/// The fields of a `ping` payload Tako keeps.
#[derive(Deserialize)]
struct PingPayload {
    #[serde(default)]
    zen: Option<String>,
    #[serde(default)]
    hook_id: Option<u64>,
    #[serde(default)]
    repository: Option<Repository>,
}

/// Reads `body` as the payload of `event` (the `X-GitHub-Event` value), given
/// its `Content-Type` (`None`: JSON).
///
/// Call only after [`verify_signature`](crate::verify_signature) succeeded on
/// the same bytes. `push` and `ping` are typed; any other event's body is only
/// checked to be a JSON object and becomes [`Event::Other`]. Never panics,
/// whatever the bytes: the typed fields have a fixed depth, serde_json skips
/// everything else without recursing, and bounds its recursion at 128 levels
/// anyway.
///
/// # Errors
///
/// [`PayloadError`] saying precisely what is wrong.
pub fn parse_event(
    event: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Event, PayloadError> {
    let (json, what) = json_of(content_type, body)?;
    let json: &[u8] = &json;
    match event {
        "push" => {
            let push: Push = from_json(json, what, "push")?;
            Ok(Event::Push(Box::new(push)))
        }
        "ping" => {
            let ping: PingPayload = from_json(json, what, "ping")?;
            Ok(Event::Ping {
                zen: ping.zen.unwrap_or_default(),
                hook_id: ping.hook_id,
                repository: ping.repository.map(Box::new),
            })
        }
        other => {
            let _: IgnoredAny = from_json(json, what, "JSON object")?;
            Ok(Event::Other {
                event: other.to_owned(),
            })
        }
    }
}

/// The JSON document of a webhook body: the body itself for
/// `application/json`, the `payload` field for
/// `application/x-www-form-urlencoded`.
///
/// # Errors
///
/// [`PayloadError`] when the form has no (or two) `payload` fields, or the
/// content type is neither.
pub fn payload_json<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Cow<'a, [u8]>, PayloadError> {
    json_of(content_type, body).map(|(json, _)| json)
}

/// The JSON bytes of the body, and what to call them in errors.
fn json_of<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<(Cow<'a, [u8]>, &'static str), PayloadError> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media_type.as_str() {
        "" | "application/json" => Ok((Cow::Borrowed(body), "body")),
        "application/x-www-form-urlencoded" => {
            Ok((Cow::Owned(form_payload(body)?), "form field payload"))
        }
        json if json.ends_with("+json") => Ok((Cow::Borrowed(body), "body")),
        _ => Err(PayloadError::UnsupportedContentType(
            content_type
                .unwrap_or_default()
                .chars()
                .take(MAX_QUOTED_CONTENT_TYPE)
                .collect(),
        )),
    }
}

fn from_json<'a, T: Deserialize<'a>>(
    json: &'a [u8],
    what: &'static str,
    event: &'static str,
) -> Result<T, PayloadError> {
    serde_json::from_slice(json)
        .map(|Object(value)| value)
        .map_err(|source| match source.classify() {
            Category::Data => PayloadError::NotThisEvent { event, source },
            Category::Io | Category::Syntax | Category::Eof => {
                PayloadError::InvalidJson { what, source }
            }
        })
}

/// A `T` read only from a JSON object: serde's derived structs also accept
/// an array of the fields in order, which no GitHub payload is.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// The decoded `payload` field of an `application/x-www-form-urlencoded`
/// body (`+` is a space, `%XX` a byte; a malformed `%` escape stays as is).
/// The bytes are not required to be UTF-8 here: the JSON parser checks.
fn form_payload(body: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut payload = None;
    for pair in body.split(|&byte| byte == b'&') {
        let mut parts = pair.splitn(2, |&byte| byte == b'=');
        let key = parts.next().unwrap_or_default();
        if form_decode(key) != b"payload" {
            continue;
        }
        if payload.is_some() {
            return Err(PayloadError::DuplicatePayloadField);
        }
        payload = Some(form_decode(parts.next().unwrap_or_default()));
    }
    payload.ok_or(PayloadError::NoPayloadField)
}

fn form_decode(bytes: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_and_percent() {
        assert_eq!(
            form_payload(b"a=1&payload=%7B%22k%22%3A+%22a+b%25%22%7D&b").unwrap(),
            br#"{"k": "a b%"}"#
        );
        assert_eq!(form_payload(b"pay%6Coad=x").unwrap(), b"x");
        assert_eq!(form_payload(b"payload").unwrap(), b"");
        assert!(matches!(
            form_payload(b"payload=1&payload=2"),
            Err(PayloadError::DuplicatePayloadField)
        ));
        assert!(matches!(
            form_payload(b""),
            Err(PayloadError::NoPayloadField)
        ));
    }

    #[test]
    fn content_types() {
        for content_type in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/vnd.github+json"),
        ] {
            assert!(matches!(
                parse_event("issues", content_type, b"{}"),
                Ok(Event::Other { .. })
            ));
        }
        let err = parse_event("push", Some("text/plain"), b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported content type \"text/plain\"; GitHub sends application/json or \
             application/x-www-form-urlencoded"
        );
    }

    #[test]
    fn other_events_have_a_reason() {
        let event = parse_event("issues", None, br#"{"action": "opened"}"#).unwrap();
        assert_eq!(event.name(), "issues");
        assert_eq!(
            event.ignored_reason().as_deref(),
            Some("event issues is not handled; Tako acts on push")
        );
    }
}
