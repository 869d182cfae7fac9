//! GitHub push payloads built from a real repository's commits, as GitHub
//! sends them (the fields Tako reads, with GitHub's shapes).

use serde_json::{Value, json};

/// One commit of a push.
#[derive(Debug, Clone)]
pub struct PushedCommit {
    /// Its full id.
    pub id: String,
    /// Its message.
    pub message: String,
}

/// A `push` payload for `git_ref` (`refs/heads/develop`) moving from `before`
/// to `after` in the repository at `clone_url`, whose default branch is
/// `default_branch`.
pub fn push_payload(
    clone_url: &str,
    default_branch: &str,
    git_ref: &str,
    before: &str,
    after: &str,
    commits: &[PushedCommit],
) -> Vec<u8> {
    let commit = |c: &PushedCommit| {
        json!({
            "id": c.id,
            "tree_id": "0000000000000000000000000000000000000000",
            "distinct": true,
            "message": c.message,
            "timestamp": "2026-01-01T00:00:00Z",
            "url": format!("https://github.com/acme/demo/commit/{}", c.id),
            "author": { "name": "Tako Tester", "email": "tester@example.com", "username": "tester" },
            "committer": { "name": "Tako Tester", "email": "tester@example.com", "username": "tester" },
            "added": [], "removed": [], "modified": []
        })
    };
    let commit_values: Vec<Value> = commits.iter().map(commit).collect();
    let head = commits.last().map(commit).unwrap_or(Value::Null);
    let payload = json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": before.chars().all(|c| c == '0'),
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": "https://github.com/acme/demo/compare",
        "commits": commit_values,
        "head_commit": head,
        "repository": {
            "id": 1,
            "node_id": "R_1",
            "name": "demo",
            "full_name": "acme/demo",
            "private": false,
            "owner": { "name": "acme", "login": "acme", "id": 2 },
            "html_url": "https://github.com/acme/demo",
            "url": "https://github.com/acme/demo",
            "clone_url": clone_url,
            "default_branch": default_branch,
            "master_branch": default_branch
        },
        "pusher": { "name": "tester", "email": "tester@example.com" },
        "sender": { "login": "tester", "id": 3 }
    });
    serde_json::to_vec(&payload).expect("a payload serialises")
}
