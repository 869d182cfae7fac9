//! Bitbucket Cloud: `X-Event-Key: repo:push`, `X-Request-UUID` (the
//! delivery), `X-Hub-Signature: sha256=<hex>` (the HMAC-SHA256 of the body
//! under the webhook's secret), and the `repo:push` payload.
//!
//! One push may move several refs: `push.changes` has one entry per ref,
//! each with `old` (absent when created), `new` (absent when deleted), and
//! at most the 5 newest `commits`, newest first, `truncated` when there are
//! more. Each change becomes one normalized [`Push`]. The payload names no
//! clone URL and no default branch: the clone URL is the repository's page
//! with `.git`, and the default branch is left empty for the router to ask
//! the repository.

use serde::Deserialize;
use tako_github::{Commit, CommitAuthor, Owner, Push, Pusher, Repository};

use crate::Forge;
use crate::payload::{self, ForgeEvent, PayloadError, from_json};

/// The event header.
pub const EVENT_HEADER: &str = "X-Event-Key";
/// The delivery id header (the same on Bitbucket's own retries).
pub const DELIVERY_HEADER: &str = "X-Request-UUID";
/// The signature header (`sha256=<hex>`), sent when the webhook has a
/// secret.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature";
/// Every header read.
pub const HEADERS: &[&str] = &[EVENT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER];

/// The most ref changes one delivery may carry (Bitbucket sends one per
/// pushed ref; this bounds the work a body can ask for).
pub const MAX_CHANGES: usize = 100;

#[derive(Deserialize)]
struct Href {
    href: String,
}

#[derive(Deserialize)]
struct Links {
    html: Href,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    nickname: Option<String>,
}

#[derive(Deserialize)]
struct BitbucketRepository {
    full_name: String,
    #[serde(default)]
    name: Option<String>,
    links: Links,
    #[serde(default)]
    is_private: bool,
    #[serde(default)]
    owner: Option<Account>,
}

#[derive(Deserialize)]
struct Author {
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    user: Option<Account>,
}

#[derive(Deserialize)]
struct BitbucketCommit {
    hash: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    author: Option<Author>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    target: BitbucketCommit,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    old: Option<Ref>,
    #[serde(default)]
    new: Option<Ref>,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    truncated: bool,
    #[serde(default)]
    commits: Option<Vec<BitbucketCommit>>,
}

#[derive(Deserialize)]
struct PushBody {
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct RepoPush {
    push: PushBody,
    repository: BitbucketRepository,
    #[serde(default)]
    actor: Option<Account>,
}

impl BitbucketCommit {
    fn into_commit(self) -> Commit {
        let (name, email) = match &self.author {
            Some(Author { raw: Some(raw), .. }) => split_raw(raw),
            _ => (String::new(), None),
        };
        let display = self
            .author
            .and_then(|a| a.user)
            .and_then(|u| u.display_name.or(u.nickname));
        Commit {
            id: self.hash,
            message: self.message.unwrap_or_default(),
            timestamp: self.date,
            url: self.links.map(|l| l.html.href),
            author: CommitAuthor {
                name: if name.is_empty() {
                    display.clone().unwrap_or_default()
                } else {
                    name
                },
                email,
                username: display,
            },
            committer: None,
            added: Vec::new(),
            removed: Vec::new(),
            modified: Vec::new(),
        }
    }
}

/// `Name <email>` → the name and the email.
fn split_raw(raw: &str) -> (String, Option<String>) {
    match raw.rfind('<') {
        Some(open) if raw.ends_with('>') => (
            raw[..open].trim().to_owned(),
            Some(raw[open + 1..raw.len() - 1].trim().to_owned()),
        ),
        _ => (raw.trim().to_owned(), None),
    }
}

fn full_ref(kind: &str, name: &str) -> Result<String, String> {
    match kind {
        "branch" | "named_branch" => Ok(format!("refs/heads/{name}")),
        "tag" => Ok(format!("refs/tags/{name}")),
        other => Err(format!(
            "ref type {:?} is neither branch nor tag",
            other.chars().take(50).collect::<String>()
        )),
    }
}

pub(crate) fn parse(
    event: &str,
    json: &[u8],
    what: &'static str,
) -> Result<ForgeEvent, PayloadError> {
    match event {
        "repo:push" => {}
        "diagnostics:ping" => {
            let _: serde::de::IgnoredAny = from_json(json, what, Forge::Bitbucket, "JSON object")?;
            return Ok(ForgeEvent::Ping);
        }
        other => {
            let _: serde::de::IgnoredAny = from_json(json, what, Forge::Bitbucket, "JSON object")?;
            return Ok(ForgeEvent::Ignored {
                reason: format!(
                    "event {} is not handled; Tako acts on repo:push",
                    other.chars().take(100).collect::<String>()
                ),
            });
        }
    }
    let raw: RepoPush = from_json(json, what, Forge::Bitbucket, "repo:push")?;
    let invalid = |reason: String| PayloadError::Invalid {
        forge: Forge::Bitbucket,
        event: "repo:push",
        reason,
    };
    if raw.push.changes.len() > MAX_CHANGES {
        return Err(invalid(format!(
            "{} ref changes in one push; at most {MAX_CHANGES} are accepted",
            raw.push.changes.len()
        )));
    }
    let page = raw
        .repository
        .links
        .html
        .href
        .trim_end_matches('/')
        .to_owned();
    let clone_url = if page.ends_with(".git") {
        page.clone()
    } else {
        format!("{page}.git")
    };
    let repository = Repository {
        id: 0,
        name: raw
            .repository
            .name
            .clone()
            .unwrap_or_else(|| raw.repository.full_name.clone()),
        full_name: raw.repository.full_name.clone(),
        clone_url,
        ssh_url: None,
        html_url: page,
        private: raw.repository.is_private,
        // Not in the payload: the router asks the repository.
        default_branch: String::new(),
        owner: raw.repository.owner.map(|owner| Owner {
            login: owner.nickname,
            name: owner.display_name,
        }),
    };
    let pusher = raw.actor.map(|actor| Pusher {
        name: actor.display_name.or(actor.nickname).unwrap_or_default(),
        email: None,
    });
    let mut pushes = Vec::with_capacity(raw.push.changes.len());
    for change in raw.push.changes {
        let named = change
            .new
            .as_ref()
            .or(change.old.as_ref())
            .ok_or_else(|| invalid("a change has neither old nor new".to_owned()))?;
        let git_ref = full_ref(&named.kind, &named.name).map_err(invalid)?;
        let before = change.old.as_ref().map_or_else(
            || tako_github::ZERO_SHA.to_owned(),
            |r| r.target.hash.clone(),
        );
        let after = change.new.as_ref().map_or_else(
            || tako_github::ZERO_SHA.to_owned(),
            |r| r.target.hash.clone(),
        );
        let commits: Vec<Commit> = change
            .commits
            .unwrap_or_default()
            .into_iter()
            .map(BitbucketCommit::into_commit)
            .collect();
        let commits = payload::oldest_first(commits, &after);
        let deleted = change.new.is_none();
        let head_commit = change.new.map(|r| r.target.into_commit());
        let push = Push {
            git_ref,
            before,
            after,
            created: change.old.is_none(),
            deleted,
            forced: change.forced,
            base_ref: None,
            compare: None,
            truncated: !deleted && change.truncated,
            commits,
            head_commit,
            repository: repository.clone(),
            pusher: pusher.clone(),
            sender: None,
        };
        pushes.push(payload::checked(Forge::Bitbucket, "repo:push", push)?);
    }
    if pushes.is_empty() {
        return Ok(ForgeEvent::Ignored {
            reason: "the push lists no ref changes".to_owned(),
        });
    }
    Ok(ForgeEvent::Pushes(pushes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_authors_split() {
        assert_eq!(
            split_raw("Ada Lovelace <ada@example.org>"),
            (
                "Ada Lovelace".to_owned(),
                Some("ada@example.org".to_owned())
            )
        );
        assert_eq!(split_raw("ada"), ("ada".to_owned(), None));
    }
}
