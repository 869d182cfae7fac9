//! Fetching into a mirror from a repository on this machine (`file://`
//! URLs and absolute paths) in-process, with gitoxide.
//!
//! `git fetch` from a local repository starts six processes (git, a shell,
//! `upload-pack`, `pack-objects`, `index-pack`, and `rev-list` for the
//! connectivity check): about 13 ms for a one-commit push on this
//! project's reference machine, most of a push's way to its deployment.
//! gitoxide speaks the same protocol to the same `git-upload-pack` but
//! receives, indexes and writes the pack and the references itself: about
//! 6 ms. Repositories reached over HTTP(S) are fetched by the git program,
//! which owns credentials, proxies and TLS ([`crate::Git::remote`]).
//!
//! The result is what `git fetch --prune <url> +refs/heads/*:refs/heads/*
//! +refs/tags/*:refs/tags/*` leaves: every branch and tag forced to the
//! remote's value (one pack per fetch, as with `fetch.unpackLimit=1`), and
//! the branches and tags the remote no longer has deleted.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use gix::bstr::{BStr, ByteSlice};

use crate::{GitError, RemoteUrl};

/// The refspecs of a mirror.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Fetches `url` into `repo` (a bare mirror); `interrupt` stops it between
/// reads.
pub(crate) fn fetch(
    repo: &gix::Repository,
    url: &RemoteUrl,
    interrupt: &AtomicBool,
) -> Result<(), GitError> {
    let failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "fetch".to_owned(),
        message: error.to_string(),
    };
    let remote = repo
        .remote_at(url.as_str())
        .and_then(|remote| remote.with_refspecs(REFSPECS, gix::remote::Direction::Fetch))
        .map_err(|e| failed(&e))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let unreachable = |error: &dyn std::fmt::Display| GitError::Unreachable {
        url: url.to_string(),
        message: error.to_string(),
    };
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| unreachable(&e))?;
    let prepared = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| unreachable(&e))?;
    let outcome = prepared
        .receive(gix::progress::Discard, interrupt)
        .map_err(|e| failed(&e))?;
    let advertised: HashSet<&BStr> = outcome
        .ref_map
        .remote_refs
        .iter()
        .map(|r| r.unpack().0)
        .collect();
    prune(repo, &advertised).map_err(|e| failed(&e))
}

/// Deletes the branches and tags `advertised` (what the remote has) lacks.
fn prune(repo: &gix::Repository, advertised: &HashSet<&BStr>) -> Result<(), gix::Error> {
    let platform = repo.references()?;
    let mut gone = Vec::new();
    for iter in [platform.local_branches()?, platform.tags()?] {
        for reference in iter {
            let reference = reference?;
            if !advertised.contains(reference.name().as_bstr()) {
                gone.push(reference);
            }
        }
    }
    for reference in gone {
        tracing::debug!(name = %reference.name().as_bstr().to_str_lossy(), "pruned");
        reference.delete()?;
    }
    Ok(())
}
