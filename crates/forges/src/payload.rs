//! From a delivery's (already verified) body to a [`ForgeEvent`], whatever
//! the forge: the forge modules read their own shapes, this module holds
//! what they share (content types, JSON errors, commit order).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::error::Category;
use tako_github::{Commit, Push};

use crate::{Forge, bitbucket, gitea, gitlab};

/// How much of an unsupported `Content-Type` an error message quotes.
const MAX_QUOTED_CONTENT_TYPE: usize = 100;

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgeEvent {
    /// A connection test (Bitbucket's `diagnostics:ping`): answered 200.
    Ping,
    /// One or more refs moved (Bitbucket can report several in one
    /// delivery; the others always one), each normalized to the router's
    /// push.
    Pushes(Vec<Push>),
    /// Acknowledged and not acted on, with the reason (another event, a
    /// deletion, a push with no ref change).
    Ignored {
        /// Why, for the answer's `reason`.
        reason: String,
    },
}

/// Why a body could not be read as its event's payload (400, with this
/// message).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// A content type the forge does not send for this hook.
    #[error("unsupported content type {found:?}; {forge} sends {expected}")]
    UnsupportedContentType {
        /// The forge.
        forge: Forge,
        /// What was sent (at most 100 characters of it).
        found: String,
        /// What the forge sends.
        expected: &'static str,
    },
    /// Gitea's form body without its one `payload` field.
    #[error("{0}")]
    Form(String),
    /// Not well-formed JSON (serde_json's message, with line and column).
    #[error("{what} is not valid JSON: {source}")]
    InvalidJson {
        /// `body`, or `form field payload`.
        what: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// Well-formed JSON that is not this event's payload.
    #[error("payload is not a {forge} {event}: {source}")]
    NotThisEvent {
        /// The forge.
        forge: Forge,
        /// The event the payload was read as.
        event: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A payload of the right shape that names something impossible.
    #[error("payload is not a {forge} {event}: {reason}")]
    Invalid {
        /// The forge.
        forge: Forge,
        /// The event.
        event: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Reads `body` (verified first) as the payload of `event` from `forge`,
/// given its `Content-Type` (`None`: JSON). Never panics, whatever the
/// bytes: typed fields have a fixed depth, and serde_json skips the rest
/// without recursing (and bounds recursion at 128 levels anyway).
///
/// # Errors
///
/// [`PayloadError`] saying precisely what is wrong.
pub fn parse_event(
    forge: Forge,
    event: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ForgeEvent, PayloadError> {
    let (json, what) = json_of(forge, content_type, body)?;
    match forge {
        Forge::Gitea => gitea::parse(event, &json, what),
        Forge::GitLab => gitlab::parse(event, &json, what),
        Forge::Bitbucket => bitbucket::parse(event, &json, what),
    }
}

/// The JSON of a body: the body itself, or for Gitea's
/// `application/x-www-form-urlencoded`, its `payload` field.
fn json_of<'a>(
    forge: Forge,
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<(Cow<'a, [u8]>, &'static str), PayloadError> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media_type.as_str() {
        "" | "application/json" => Ok((Cow::Borrowed(body), "body")),
        json if json.ends_with("+json") => Ok((Cow::Borrowed(body), "body")),
        "application/x-www-form-urlencoded" if forge == Forge::Gitea => {
            tako_github::payload_json(content_type, body)
                .map(|json| (json, "form field payload"))
                .map_err(|error| PayloadError::Form(error.to_string()))
        }
        _ => Err(PayloadError::UnsupportedContentType {
            forge,
            found: content_type
                .unwrap_or_default()
                .chars()
                .take(MAX_QUOTED_CONTENT_TYPE)
                .collect(),
            expected: match forge {
                Forge::Gitea => "application/json or application/x-www-form-urlencoded",
                Forge::GitLab | Forge::Bitbucket => "application/json",
            },
        }),
    }
}

/// Reads a JSON object as `T`, classifying serde_json's errors.
pub(crate) fn from_json<'a, T: Deserialize<'a>>(
    json: &'a [u8],
    what: &'static str,
    forge: Forge,
    event: &'static str,
) -> Result<T, PayloadError> {
    // A JSON object only: serde's derived structs would take an array too.
    if let Some(first) = json.iter().find(|b| !b.is_ascii_whitespace())
        && *first != b'{'
    {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
                Err(source) => PayloadError::InvalidJson { what, source },
                Ok(_) => PayloadError::Invalid {
                    forge,
                    event,
                    reason: "expected a JSON object".to_owned(),
                },
            },
        );
    }
    serde_json::from_slice(json).map_err(|source| match source.classify() {
        Category::Data => PayloadError::NotThisEvent {
            forge,
            event,
            source,
        },
        Category::Io | Category::Syntax | Category::Eof => {
            PayloadError::InvalidJson { what, source }
        }
    })
}

/// The commits oldest first, as [`Push::notes`] lists them: a forge that
/// lists the newest first (its first commit is the pushed head) is
/// reversed.
pub(crate) fn oldest_first(mut commits: Vec<Commit>, after: &str) -> Vec<Commit> {
    if commits.len() > 1 && commits.first().is_some_and(|c| c.id == after) {
        commits.reverse();
    }
    commits
}

/// Whether `sha` is a non-empty run of `0`s (no object).
pub(crate) fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|byte| byte == b'0')
}

/// Checks what every normalized push must have: a ref under `refs/`, and
/// object ids of hex digits.
pub(crate) fn checked(forge: Forge, event: &'static str, push: Push) -> Result<Push, PayloadError> {
    let invalid = |reason: String| PayloadError::Invalid {
        forge,
        event,
        reason,
    };
    if !push.git_ref.starts_with("refs/") {
        return Err(invalid(format!(
            "ref {:?} does not start with refs/",
            push.git_ref.chars().take(100).collect::<String>()
        )));
    }
    for (name, sha) in [("before", &push.before), ("after", &push.after)] {
        if sha.is_empty() || sha.len() > 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!("{name} is not an object id (hex digits)")));
        }
    }
    if push.repository.clone_url.trim().is_empty() {
        return Err(invalid("the repository has no clone URL".to_owned()));
    }
    Ok(push)
}

/// A push that moved no ref (both sides zero).
pub(crate) fn no_change(push: &Push) -> bool {
    is_zero(&push.before) && is_zero(&push.after)
}
