//! GitLab: `X-Gitlab-Event` (`Push Hook`, `Tag Push Hook`), the delivery id
//! (`Idempotency-Key`, the same on every retry and on "Resend Request";
//! before GitLab 17.4 `X-Gitlab-Event-UUID`), and its two ways to
//! authenticate: the secret token in `X-Gitlab-Token`, or a signing token
//! (`whsec_…`) whose HMAC arrives in `webhook-signature` (Standard
//! Webhooks, see [`crate::signature`]).
//!
//! A push lists at most the newest 20 commits, oldest first, and says how
//! many there were in `total_commits_count`; a push with more is
//! [`Push::truncated`], and the router completes its notes from the mirror.
//! A tag push lists no commits: its commit is `checkout_sha` (`after` may be
//! the annotated tag's object).

use serde::Deserialize;
use tako_github::{Commit, CommitAuthor, Owner, Push, Pusher, Repository};

use crate::Forge;
use crate::payload::{self, ForgeEvent, PayloadError, from_json};

/// The event header.
pub const EVENT_HEADER: &str = "X-Gitlab-Event";
/// The delivery id headers, the one kept across retries first.
pub const DELIVERY_HEADERS: &[&str] = &["Idempotency-Key", "X-Gitlab-Event-UUID"];
/// How errors name them.
pub const DELIVERY_HEADER_NAMES: &str = "Idempotency-Key (or X-Gitlab-Event-UUID)";
/// The secret token header.
pub const TOKEN_HEADER: &str = "X-Gitlab-Token";
/// A signed webhook's signature.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// A signed webhook's id (the `Idempotency-Key`).
pub const SIGNED_ID_HEADER: &str = "webhook-id";
/// A signed webhook's time (Unix seconds).
pub const SIGNED_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Every header read.
pub const HEADERS: &[&str] = &[
    EVENT_HEADER,
    "Idempotency-Key",
    "X-Gitlab-Event-UUID",
    TOKEN_HEADER,
    SIGNATURE_HEADER,
    SIGNED_ID_HEADER,
    SIGNED_TIMESTAMP_HEADER,
];

/// GitLab's `visibility_level` of a public project.
const PUBLIC: u64 = 20;

#[derive(Deserialize)]
struct Project {
    id: u64,
    name: String,
    path_with_namespace: String,
    git_http_url: String,
    #[serde(default)]
    git_ssh_url: Option<String>,
    web_url: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    visibility_level: Option<u64>,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    user_username: Option<String>,
    #[serde(default)]
    user_email: Option<String>,
    project: Project,
    #[serde(default, deserialize_with = "null_as_empty")]
    commits: Vec<Commit>,
    #[serde(default)]
    total_commits_count: Option<u64>,
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
    let event_name = match event {
        "Push Hook" => "push",
        "Tag Push Hook" => "tag push",
        other => {
            let _: serde::de::IgnoredAny = from_json(json, what, Forge::GitLab, "JSON object")?;
            return Ok(ForgeEvent::Ignored {
                reason: format!(
                    "event {} is not handled; Tako acts on Push Hook and Tag Push Hook",
                    other.chars().take(100).collect::<String>()
                ),
            });
        }
    };
    let raw: GitLabPush = from_json(json, what, Forge::GitLab, event_name)?;
    let project = raw.project;
    let listed = raw.commits.len() as u64;
    let deleted = payload::is_zero(&raw.after);
    let checkout = raw
        .checkout_sha
        .filter(|sha| !sha.is_empty() && !payload::is_zero(sha));
    let commits = payload::oldest_first(raw.commits, &raw.after);
    let head_commit = match (&checkout, deleted) {
        (Some(sha), false) => Some(
            commits
                .iter()
                .find(|c| &c.id == sha)
                .cloned()
                .unwrap_or_else(|| Commit {
                    id: sha.clone(),
                    message: String::new(),
                    timestamp: None,
                    url: None,
                    author: CommitAuthor::default(),
                    committer: None,
                    added: Vec::new(),
                    removed: Vec::new(),
                    modified: Vec::new(),
                }),
        ),
        _ => None,
    };
    // More commits than listed, or (a tag, a branch on an existing commit)
    // none listed at all: the notes come from the mirror.
    let truncated = !deleted
        && (raw.total_commits_count.is_some_and(|total| total > listed) || commits.is_empty());
    let push = Push {
        git_ref: raw.git_ref,
        before: raw.before,
        after: raw.after,
        created: false,
        deleted,
        forced: false,
        base_ref: None,
        compare: None,
        commits,
        truncated,
        head_commit,
        repository: Repository {
            id: project.id,
            name: project.name,
            full_name: project.path_with_namespace,
            clone_url: project.git_http_url,
            ssh_url: project.git_ssh_url,
            html_url: project.web_url,
            private: project.visibility_level.is_some_and(|level| level < PUBLIC),
            default_branch: project
                .default_branch
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| tako_git_default().to_owned()),
            owner: project.namespace.map(|name| Owner {
                login: None,
                name: Some(name),
            }),
        },
        pusher: Some(Pusher {
            name: raw.user_username.or(raw.user_name).unwrap_or_default(),
            email: raw.user_email,
        }),
        sender: None,
    };
    let push = payload::checked(Forge::GitLab, "push", push)?;
    if payload::no_change(&push) {
        return Ok(ForgeEvent::Ignored {
            reason: "the push moved no ref".to_owned(),
        });
    }
    Ok(ForgeEvent::Pushes(vec![push]))
}

/// An old payload without `project.default_branch`: `master`, as for GitHub.
fn tako_git_default() -> &'static str {
    "master"
}
