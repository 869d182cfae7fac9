//! Reading a mirror's objects and references in-process, with `gix`
//! (gitoxide), instead of starting `git rev-parse`, `ls-tree` and `cat-file`
//! for every read: on this project's 2-core reference machine each git
//! process costs 2–5 ms, and routing one push reads two takofiles.
//!
//! Only reads live here; everything that talks to a remote (clone, fetch,
//! push, with their credentials) and everything that writes a work tree
//! stays with the git program ([`crate::Git`]). The repository is opened
//! *isolated*: like our git commands, it reads no system or user
//! configuration and no environment.
//!
//! Functions are blocking (small reads of memory-mapped packs); callers on
//! the async runtime run them with `spawn_blocking`.

use std::collections::HashMap;
use std::path::Path;

use gix::bstr::{BString, ByteSlice};

use crate::GitError;

/// Opens the bare repository at `path`.
pub(crate) fn open(path: &Path) -> Result<gix::ThreadSafeRepository, GitError> {
    // Room for every pack a mirror may have between two maintenance runs
    // (git's limit is 50), and more: a lookup beyond the slots fails.
    let slots = gix::odb::store::init::Slots::AsNeededByDiskState {
        multiplier: 2.0,
        minimum: 512,
    };
    gix::open_opts(
        path,
        gix::open::Options::isolated().object_store_slots(slots),
    )
    .map(gix::Repository::into_sync)
    .map_err(|error| failed("open", path, &error))
}

/// The full commit id `rev` (a branch, tag, `HEAD`, a full or abbreviated
/// commit id, any `git rev-parse` expression) names, or `None` when it
/// names no commit, as `git rev-parse --verify --quiet rev^{commit}`.
pub(crate) fn resolve(repo: &gix::Repository, rev: &str) -> Result<Option<String>, GitError> {
    let spec = format!("{rev}^{{commit}}");
    match repo.rev_parse_single(spec.as_str()) {
        Ok(id) => Ok(Some(id.detach().to_string())),
        // Not found, ambiguous or malformed: git answers these with "no
        // such commit" too. Anything else (a file system or object database
        // failure) is reported.
        Err(error) if (error.is_not_found() || error.is_validation()) && !is_io(&error) => Ok(None),
        Err(error) => Err(failed("rev-parse", repo.path(), &error)),
    }
}

/// The branch `HEAD` points at (`main`), `None` when it is detached or not a
/// branch.
pub(crate) fn head_branch(repo: &gix::Repository) -> Result<Option<String>, GitError> {
    let name = repo
        .head_name()
        .map_err(|error| failed("symbolic-ref", repo.path(), &error))?;
    Ok(name.and_then(|name| {
        name.as_bstr()
            .to_str()
            .ok()
            .and_then(|name| name.strip_prefix("refs/heads/"))
            .map(str::to_owned)
    }))
}

/// A regular file (not a link, tree or submodule) found in a commit.
pub(crate) struct FoundFile {
    /// Its path, as asked.
    pub(crate) path: String,
    /// Its content.
    pub(crate) data: Vec<u8>,
}

/// The first of `names` that is a regular file in `commit`'s tree, with
/// its content; [`GitError::TooLarge`] when it has more than `limit` bytes
/// (checked before it is read). `rev` is only used in messages.
pub(crate) fn first_file(
    repo: &gix::Repository,
    commit: &str,
    rev: &str,
    names: &[&str],
    limit: u64,
) -> Result<Option<FoundFile>, GitError> {
    let read_failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "cat-file".to_owned(),
        message: format!("cannot read {rev} in {}: {error}", repo.path().display()),
    };
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| read_failed(&e))?;
    let tree = repo
        .find_commit(id)
        .and_then(|commit| commit.tree())
        .map_err(|e| read_failed(&e))?;
    for name in names {
        let Some(entry) = tree
            .lookup_entry_by_path(name)
            .map_err(|e| read_failed(&e))?
        else {
            continue;
        };
        // Symbolic links are not followed, whatever they point at.
        if !entry.mode().is_blob() {
            continue;
        }
        let size = repo
            .find_header(entry.oid())
            .map_err(|e| read_failed(&e))?
            .size();
        if size > limit {
            return Err(GitError::TooLarge {
                path: (*name).to_owned(),
                rev: rev.to_owned(),
                size,
                limit,
            });
        }
        let object = repo.find_object(entry.oid()).map_err(|e| read_failed(&e))?;
        return Ok(Some(FoundFile {
            path: (*name).to_owned(),
            data: object.detach().data,
        }));
    }
    Ok(None)
}

/// A repository's branches and tags: full name (`refs/heads/main`,
/// `refs/tags/v1`) → the object each points at (a commit, or an annotated
/// tag object).
pub(crate) type RefMap = HashMap<BString, gix::ObjectId>;

/// A repository's branches and tags.
pub(crate) struct BranchesAndTags {
    /// Those pointing at an object.
    pub(crate) direct: RefMap,
    /// How many are symbolic (not in `direct`).
    pub(crate) symbolic: usize,
}

/// The branches and tags of `repo`.
pub(crate) fn branches_and_tags(repo: &gix::Repository) -> Result<BranchesAndTags, GitError> {
    let list_failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "for-each-ref".to_owned(),
        message: format!(
            "cannot list the references of {}: {error}",
            repo.path().display()
        ),
    };
    let platform = repo.references().map_err(|e| list_failed(&e))?;
    let mut refs = BranchesAndTags {
        direct: HashMap::new(),
        symbolic: 0,
    };
    for iter in [
        platform.local_branches().map_err(|e| list_failed(&e))?,
        platform.tags().map_err(|e| list_failed(&e))?,
    ] {
        for reference in iter {
            let reference = reference.map_err(|e| list_failed(&e))?;
            match reference.try_id() {
                Some(id) => {
                    refs.direct
                        .insert(reference.name().as_bstr().to_owned(), id.detach());
                }
                None => refs.symbolic += 1,
            }
        }
    }
    Ok(refs)
}

/// Whether the error is the file system failing rather than the revision
/// being absent or malformed.
fn is_io(error: &gix::Error) -> bool {
    error.iter_errors().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() != std::io::ErrorKind::NotFound)
    })
}

fn failed(command: &str, path: &Path, error: &dyn std::fmt::Display) -> GitError {
    GitError::Failed {
        command: command.to_owned(),
        message: format!("{}: {error}", path.display()),
    }
}
