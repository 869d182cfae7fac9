//! A repository to push from, its bare origin, and signed pushes to a
//! running server: what most end-to-end tests of `tako serve` start with.

use crate::TempGitRepo;
use crate::git_server::BareRepo;
use crate::github::{PushedCommit, push_payload};
use crate::http::{HttpResponse, request};

/// The "before" of a push that creates a branch.
pub const ZERO: &str = "0000000000000000000000000000000000000000";

/// A work repository pushed to a bare origin, with the takofile on `main`.
pub struct Origin {
    /// The work repository commits are made in.
    pub work: TempGitRepo,
    /// The bare origin pushed to.
    pub bare: BareRepo,
}

impl Origin {
    /// A work repository with `takofile` committed on `main`, pushed to a
    /// new bare origin.
    pub fn new(takofile: &str) -> Origin {
        let work = TempGitRepo::new();
        work.write("takofile.yml", takofile);
        work.commit("Add the takofile");
        let bare = BareRepo::new("demo");
        bare.push_from(&work, &["main"]);
        Origin { work, bare }
    }

    /// Commits on `branch` (created from the current HEAD when new), pushes,
    /// and returns the payload of that push.
    pub fn push_commit(&self, branch: &str, file: &str, content: &str, message: &str) -> Vec<u8> {
        self.push_commit_as(&self.bare.file_url(), branch, file, content, message)
    }

    /// Like [`Origin::push_commit`], with the payload naming `clone_url`.
    pub fn push_commit_as(
        &self,
        clone_url: &str,
        branch: &str,
        file: &str,
        content: &str,
        message: &str,
    ) -> Vec<u8> {
        let current = self.work.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
        if current != branch {
            let exists = self.work.git(&["branch", "--list", branch]);
            if exists.is_empty() {
                self.work.git(&["checkout", "-q", "-b", branch]);
            } else {
                self.work.git(&["checkout", "-q", branch]);
            }
        }
        let before = self.bare.git(&[
            "for-each-ref",
            "--format=%(objectname)",
            &format!("refs/heads/{branch}"),
        ]);
        let before = if before.is_empty() {
            ZERO.to_owned()
        } else {
            before
        };
        self.work.write(file, content);
        let after = self.work.commit(message);
        self.bare.push_from(&self.work, &[branch]);
        push_payload(
            clone_url,
            "main",
            &format!("refs/heads/{branch}"),
            &before,
            &after,
            &[PushedCommit {
                id: after.clone(),
                message: message.to_owned(),
            }],
        )
    }
}

/// POSTs a push `body` to the server at `address` as GitHub would:
/// `X-GitHub-Event: push`, the delivery id, and the body signed with
/// `secret` (HMAC-SHA256).
pub fn post_push(address: &str, delivery: &str, body: &[u8], secret: &str) -> HttpResponse {
    let signature = tako_github::sign(secret.as_bytes(), body);
    request(
        address,
        "POST",
        "/hooks/github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    )
    .expect("the server answers the push")
}
