//! The `push` event's payload, typed down to what Tako uses: the ref, the
//! commits (for release notes), the repository (to find the project and
//! fetch), and who pushed.
//!
//! Deserialization is lenient where GitHub is: fields GitHub documents as
//! optional or nullable are `Option`s or default (an absent or `null` commit
//! list is empty; an absent `repository.default_branch`, as in old payloads,
//! is `master`), and unknown fields are ignored. Only what Tako cannot do
//! without is required: `ref`, `before`, `after`, `repository` with its `id`,
//! `name`, `full_name`, `clone_url` and `html_url`, and each commit's `id`.

use serde::{Deserialize, Deserializer, Serialize};

/// The all-zero object id GitHub puts in `before` when a ref is created and
/// in `after` when it is deleted (40 digits; 64 in SHA-256 repositories,
/// which [`Push::is_creation`] and [`Push::is_deletion`] accept too).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// How many hex digits of a commit id the release notes show.
const SHORT_SHA_LEN: usize = 7;

/// A `push` event: one ref updated (created, moved or deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/feature/x` or `refs/tags/v1.0`
    /// (`ref` in the payload).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The ref's object id before the push ([`ZERO_SHA`] on creation).
    pub before: String,
    /// The ref's object id after the push ([`ZERO_SHA`] on deletion). For an
    /// annotated tag this is the tag object, not a commit: see
    /// [`Push::commit_id`].
    pub after: String,
    /// Whether the push created the ref.
    #[serde(default)]
    pub created: bool,
    /// Whether the push deleted the ref.
    #[serde(default)]
    pub deleted: bool,
    /// Whether the push was forced.
    #[serde(default)]
    pub forced: bool,
    /// For a tag or branch created from another ref, that ref (often `null`).
    #[serde(default)]
    pub base_ref: Option<String>,
    /// The URL comparing `before` with `after`.
    #[serde(default)]
    pub compare: Option<String>,
    /// The pushed commits, oldest first; empty for a deletion, and for a new
    /// tag or branch that adds no commits.
    #[serde(default, deserialize_with = "null_as_default")]
    pub commits: Vec<Commit>,
    /// Whether `commits` lists only some of the pushed commits (other
    /// forges cap the list: GitLab at 20, Bitbucket at 5, Gitea at its
    /// feed limit): the release notes are then read from the mirror. GitHub
    /// never sends it; a forge's push is normalized into this type.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The commit `after` points to (for an annotated tag, the commit the tag
    /// points to); `None` for a deletion.
    #[serde(default)]
    pub head_commit: Option<Commit>,
    /// The repository pushed to.
    pub repository: Repository,
    /// Who pushed (a git identity, not necessarily a GitHub account).
    #[serde(default)]
    pub pusher: Option<Pusher>,
    /// The GitHub account that triggered the event.
    #[serde(default)]
    pub sender: Option<Sender>,
}

/// A commit as a push payload describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The full commit id.
    pub id: String,
    /// The whole commit message.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// The author date, ISO 8601 as GitHub sends it (e.g.
    /// `2019-05-15T15:20:41-07:00`); kept as text, this crate has no clock.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The commit's page on GitHub.
    #[serde(default)]
    pub url: Option<String>,
    /// The commit's author.
    #[serde(default, deserialize_with = "null_as_default")]
    pub author: CommitAuthor,
    /// The commit's committer.
    #[serde(default)]
    pub committer: Option<CommitAuthor>,
    /// Paths added by the commit.
    #[serde(default, deserialize_with = "null_as_default")]
    pub added: Vec<String>,
    /// Paths removed by the commit.
    #[serde(default, deserialize_with = "null_as_default")]
    pub removed: Vec<String>,
    /// Paths modified by the commit.
    #[serde(default, deserialize_with = "null_as_default")]
    pub modified: Vec<String>,
}

/// A commit's author or committer (a git identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitAuthor {
    /// The git name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The git email, when GitHub sends one.
    #[serde(default)]
    pub email: Option<String>,
    /// The GitHub login, when GitHub could match the identity to an account.
    #[serde(default)]
    pub username: Option<String>,
}

/// The repository a push (or ping) is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// GitHub's numeric id: stable across renames and transfers.
    pub id: u64,
    /// The short name, e.g. `Hello-World`.
    pub name: String,
    /// `owner/name`, e.g. `Codertocat/Hello-World`.
    pub full_name: String,
    /// The HTTPS clone URL Tako fetches from.
    pub clone_url: String,
    /// The SSH clone URL.
    #[serde(default)]
    pub ssh_url: Option<String>,
    /// The repository's page.
    pub html_url: String,
    /// Whether the repository is private (fetching then needs a token).
    #[serde(default)]
    pub private: bool,
    /// The default branch (routing is read from it); `master` when an old
    /// payload does not say.
    #[serde(default = "master", deserialize_with = "null_as_master")]
    pub default_branch: String,
    /// The owning account.
    #[serde(default)]
    pub owner: Option<Owner>,
}

/// A repository's owner. Push payloads carry both `login` and the legacy
/// `name`; other events only `login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The account's login.
    #[serde(default)]
    pub login: Option<String>,
    /// The account's name (push payloads only).
    #[serde(default)]
    pub name: Option<String>,
}

/// Who pushed: a git identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pusher {
    /// The pusher's name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The pusher's email, when known.
    #[serde(default)]
    pub email: Option<String>,
}

/// The GitHub account that triggered an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The account's login.
    #[serde(default, deserialize_with = "null_as_default")]
    pub login: String,
}

impl Push {
    /// The branch pushed: the ref after `refs/heads/`, slashes kept
    /// (`refs/heads/feature/x` → `feature/x`); `None` for tags and other refs.
    #[must_use]
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// The tag pushed: the ref after `refs/tags/` (`refs/tags/v1.0` →
    /// `v1.0`); `None` for branches and other refs.
    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    /// Whether the push deleted the ref (`deleted`, or `after` all zeros).
    /// A deletion never deploys.
    #[must_use]
    pub fn is_deletion(&self) -> bool {
        self.deleted || is_zero_sha(&self.after)
    }

    /// Whether the push created the ref (`before` all zeros, or `created`).
    #[must_use]
    pub fn is_creation(&self) -> bool {
        self.created || is_zero_sha(&self.before)
    }

    /// The commit to build and deploy: `head_commit.id` (which, for an
    /// annotated tag, is the tagged commit rather than the tag object in
    /// `after`), else `after`; `None` for a deletion.
    #[must_use]
    pub fn commit_id(&self) -> Option<&str> {
        if self.is_deletion() {
            return None;
        }
        Some(
            self.head_commit
                .as_ref()
                .map_or(self.after.as_str(), |commit| commit.id.as_str()),
        )
    }

    /// Why this push can never deploy, if it cannot: only deletions
    /// (`push deleted branch feature/x; deletions never deploy`).
    #[must_use]
    pub fn skip_reason(&self) -> Option<String> {
        if !self.is_deletion() {
            return None;
        }
        let what = match (self.branch(), self.tag()) {
            (Some(branch), _) => format!("branch {branch}"),
            (None, Some(tag)) => format!("tag {tag}"),
            (None, None) => format!("ref {}", self.git_ref),
        };
        Some(format!("push deleted {what}; deletions never deploy"))
    }

    /// Release notes for this push: one line per commit, oldest first (the
    /// order GitHub lists them, so the newest is last), joined with `\n`,
    /// without a trailing newline:
    ///
    /// ```text
    /// - <subject> (<short sha>, <author>)
    /// ```
    ///
    /// - *subject*: the first non-blank line of the message, trimmed; the body
    ///   (details, `Signed-off-by:` and `Co-authored-by:` trailers) is left
    ///   out so the notes read as a change list. `(no message)` if blank.
    /// - *short sha*: the first 7 characters of the commit id.
    /// - *author*: the git author name, else the GitHub username, else
    ///   `unknown`.
    ///
    /// A push that adds no commits (a new tag or branch on an existing
    /// commit) lists its `head_commit` alone; a deletion has no notes (empty
    /// string).
    #[must_use]
    pub fn notes(&self) -> String {
        if self.is_deletion() {
            return String::new();
        }
        let commits: &[Commit] = match (&self.commits[..], &self.head_commit) {
            ([], Some(head)) => std::slice::from_ref(head),
            (commits, _) => commits,
        };
        commits
            .iter()
            .map(Commit::note_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Commit {
    /// The first non-blank line of the message, trimmed (empty if none).
    #[must_use]
    pub fn subject(&self) -> &str {
        self.message
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("")
    }

    /// The first 7 characters of the id (all of it if shorter).
    #[must_use]
    pub fn short_id(&self) -> &str {
        self.id
            .char_indices()
            .nth(SHORT_SHA_LEN)
            .map_or(self.id.as_str(), |(end, _)| &self.id[..end])
    }

    /// This commit's line in [`Push::notes`].
    #[must_use]
    pub fn note_line(&self) -> String {
        let subject = match self.subject() {
            "" => "(no message)",
            subject => subject,
        };
        let name = self.author.name.trim();
        let author = if !name.is_empty() {
            name
        } else {
            self.author
                .username
                .as_deref()
                .map(str::trim)
                .filter(|username| !username.is_empty())
                .unwrap_or("unknown")
        };
        format!("- {subject} ({}, {author})", self.short_id())
    }
}

/// Whether `sha` is a non-empty run of `0`s (GitHub's "no object").
fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|byte| byte == b'0')
}

fn master() -> String {
    "master".to_owned()
}

/// `null` (like an absent field) becomes the type's default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `null` (like an absent field) becomes `master`.
fn null_as_master<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_else(master))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push(value: serde_json::Value) -> Push {
        serde_json::from_value(value).unwrap()
    }

    fn minimal(git_ref: &str) -> serde_json::Value {
        json!({
            "ref": git_ref,
            "before": "a".repeat(40),
            "after": "b".repeat(40),
            "repository": {
                "id": 1,
                "name": "r",
                "full_name": "o/r",
                "clone_url": "https://github.com/o/r.git",
                "html_url": "https://github.com/o/r"
            }
        })
    }

    #[test]
    fn branch_keeps_slashes() {
        let push = push(minimal("refs/heads/feature/x"));
        assert_eq!(push.branch(), Some("feature/x"));
        assert_eq!(push.tag(), None);
        assert!(!push.is_creation());
        assert!(!push.is_deletion());
        assert_eq!(push.repository.default_branch, "master");
        assert_eq!(push.notes(), "");
        assert_eq!(push.commit_id(), Some("b".repeat(40).as_str()));
    }

    #[test]
    fn other_refs_are_neither_branch_nor_tag() {
        let push = push(minimal("refs/notes/commits"));
        assert_eq!(push.branch(), None);
        assert_eq!(push.tag(), None);
    }

    #[test]
    fn nulls_are_tolerated() {
        let mut value = minimal("refs/tags/v1.0");
        value["commits"] = json!(null);
        value["head_commit"] = json!(null);
        value["pusher"] = json!({"name": "me", "email": null});
        value["repository"]["default_branch"] = json!(null);
        let push = push(value);
        assert_eq!(push.tag(), Some("v1.0"));
        assert!(push.commits.is_empty());
        assert_eq!(push.repository.default_branch, "master");
        assert_eq!(push.pusher.unwrap().email, None);
    }

    #[test]
    fn zero_shas_of_any_length_mean_creation_and_deletion() {
        let mut value = minimal("refs/heads/main");
        value["before"] = json!("0".repeat(64));
        let created = push(value);
        assert!(created.is_creation());
        let mut value = minimal("refs/heads/gone");
        value["after"] = json!(ZERO_SHA);
        let deleted = push(value);
        assert!(deleted.is_deletion());
        assert_eq!(deleted.commit_id(), None);
        assert_eq!(
            deleted.skip_reason().as_deref(),
            Some("push deleted branch gone; deletions never deploy")
        );
    }

    #[test]
    fn notes_list_subjects_oldest_first() {
        let mut value = minimal("refs/heads/main");
        value["commits"] = json!([
            {
                "id": "1111111aaaa",
                "message": "Fix the parser\n\nLonger explanation.\n\nSigned-off-by: A <a@x>",
                "author": {"name": "Ada", "email": "a@x", "username": "ada"}
            },
            {
                "id": "2222222bbbb",
                "message": "\n  Second change  \r\nmore",
                "author": {"name": "", "username": "bob"}
            },
            {"id": "333", "message": "   ", "author": {"name": " "}}
        ]);
        assert_eq!(
            push(value).notes(),
            "- Fix the parser (1111111, Ada)\n\
             - Second change (2222222, bob)\n\
             - (no message) (333, unknown)"
        );
    }

    #[test]
    fn notes_of_a_push_without_new_commits_show_the_head_commit() {
        let mut value = minimal("refs/tags/v2");
        value["head_commit"] = json!({
            "id": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "message": "Adding a .gitignore file",
            "author": {"name": "Codertocat"}
        });
        let push = push(value);
        assert_eq!(
            push.notes(),
            "- Adding a .gitignore file (6113728, Codertocat)"
        );
        assert_eq!(
            push.commit_id(),
            Some("6113728f27ae82c7b1a177c8d03f9e96e0adf246")
        );
    }

    #[test]
    fn short_id_is_char_safe() {
        let commit: Commit = serde_json::from_value(json!({"id": "ééééééééé"})).unwrap();
        assert_eq!(commit.short_id(), "ééééééé");
    }
}
