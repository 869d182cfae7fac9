//! Gitea and Forgejo: the headers (`X-Gitea-*`, Forgejo's `X-Forgejo-*`),
//! the `push` payload (GitHub's shape, plus `total_commits` when the commit
//! list is capped at the instance's feed limit), and the `delete` event Gitea
//! sends for a deleted branch or tag.
//!
//! The signature is the hex HMAC-SHA256 of the body under the webhook's
//! secret: `X-Forgejo-Signature`, else `X-Gitea-Signature`, else
//! `X-Hub-Signature-256` (`sha256=<hex>`, sent by recent versions too).

use serde::Deserialize;
use tako_github::{Commit, Push, Pusher, Repository};

use crate::Forge;
use crate::payload::{self, ForgeEvent, PayloadError, from_json};

/// The event headers, Forgejo's first.
pub const EVENT_HEADERS: &[&str] = &["X-Forgejo-Event", "X-Gitea-Event"];
/// How errors name them.
pub const EVENT_HEADER_NAMES: &str = "X-Gitea-Event (or X-Forgejo-Event)";
/// The delivery id headers (a UUID per delivery).
pub const DELIVERY_HEADERS: &[&str] = &["X-Forgejo-Delivery", "X-Gitea-Delivery"];
/// How errors name them.
pub const DELIVERY_HEADER_NAMES: &str = "X-Gitea-Delivery (or X-Forgejo-Delivery)";
/// GitHub's header, which Gitea sends too.
pub const HUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The signature headers, in the order they are read.
pub const SIGNATURE_HEADERS: &[&str] = &[
    "X-Forgejo-Signature",
    "X-Gitea-Signature",
    HUB_SIGNATURE_HEADER,
];
/// How errors name them.
pub const SIGNATURE_HEADER_NAMES: &str =
    "X-Gitea-Signature (or X-Forgejo-Signature, X-Hub-Signature-256)";
/// Every header read.
pub const HEADERS: &[&str] = &[
    "X-Forgejo-Event",
    "X-Gitea-Event",
    "X-Forgejo-Delivery",
    "X-Gitea-Delivery",
    "X-Forgejo-Signature",
    "X-Gitea-Signature",
    HUB_SIGNATURE_HEADER,
];

/// A Gitea account as push payloads show it.
#[derive(Deserialize)]
struct User {
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// The `push` payload, down to what Tako uses.
#[derive(Deserialize)]
struct GiteaPush {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    compare_url: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    commits: Vec<Commit>,
    #[serde(default)]
    total_commits: Option<u64>,
    #[serde(default)]
    head_commit: Option<Commit>,
    repository: Repository,
    #[serde(default)]
    pusher: Option<User>,
}

/// The `delete` payload (a branch or tag deleted).
#[derive(Deserialize)]
struct GiteaDelete {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    ref_type: Option<String>,
}

fn null_as_empty<'de, D>(deserializer: D) -> Result<Vec<Commit>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Vec<Commit>>::deserialize(deserializer)?.unwrap_or_default())
}

pub(crate) fn parse(
    event: &str,
    json: &[u8],
    what: &'static str,
) -> Result<ForgeEvent, PayloadError> {
    match event {
        "push" => {
            let raw: GiteaPush = from_json(json, what, Forge::Gitea, "push")?;
            let listed = raw.commits.len() as u64;
            let truncated = raw.total_commits.is_some_and(|total| total > listed);
            let pusher = raw.pusher.map(|user| Pusher {
                name: user
                    .username
                    .or(user.login)
                    .or(user.full_name)
                    .unwrap_or_default(),
                email: user.email,
            });
            let push = Push {
                git_ref: raw.git_ref,
                commits: payload::oldest_first(raw.commits, &raw.after),
                before: raw.before,
                after: raw.after,
                created: false,
                deleted: false,
                forced: false,
                base_ref: None,
                compare: raw.compare_url,
                truncated,
                head_commit: raw.head_commit,
                repository: raw.repository,
                pusher,
                sender: None,
            };
            let push = payload::checked(Forge::Gitea, "push", push)?;
            if payload::no_change(&push) {
                return Ok(ForgeEvent::Ignored {
                    reason: "the push moved no ref".to_owned(),
                });
            }
            Ok(ForgeEvent::Pushes(vec![push]))
        }
        "delete" => {
            let raw: GiteaDelete = from_json(json, what, Forge::Gitea, "delete")?;
            let what = raw.ref_type.as_deref().unwrap_or("ref");
            let name: String = raw.git_ref.chars().take(200).collect();
            Ok(ForgeEvent::Ignored {
                reason: format!("deleted {what} {name}; deletions never deploy"),
            })
        }
        other => {
            let _: serde::de::IgnoredAny = from_json(json, what, Forge::Gitea, "JSON object")?;
            Ok(ForgeEvent::Ignored {
                reason: format!(
                    "event {} is not handled; Tako acts on push",
                    other.chars().take(100).collect::<String>()
                ),
            })
        }
    }
}
