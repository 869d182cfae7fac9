//! Making a deployment's repository from a mirror without `git clone`:
//! what `git clone --local --no-checkout` does, done in-process (it starts
//! three processes and took 14 ms, and `git checkout` another 3).
//!
//! The repository made in `dir/.git` is complete and independent, as a
//! local clone is: the mirror's pack files and loose objects are hard-linked
//! (copied when the mirror is on another file system), never borrowed
//! through `objects/info/alternates`, so later garbage collection in the
//! mirror cannot break it; the mirror's branches become `origin/*`
//! remote-tracking branches and its tags are kept (in `packed-refs`); its
//! configuration names the real repository URL as `origin`; `HEAD` is the
//! commit, detached. [`write_work_tree`] then writes the files and the index
//! with gitoxide's checkout (attributes, filters and modes as git applies
//! them), so a checkout starts no process at all.
//!
//! The caller holds the mirror's object lock for reading while this runs:
//! maintenance (which deletes packs it has repacked) takes it for writing.
//! A fetch may run at the same time: it only adds files, and git renames a
//! pack's index into place last, so a pack seen without its index is
//! ignored by git.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use gix::bstr::ByteSlice;

use crate::GitError;
use crate::objects::RefMap;

/// What the new repository is made of.
pub(crate) struct Layout<'a> {
    /// The mirror (a bare repository).
    pub(crate) mirror: &'a Path,
    /// The work tree to make; absent or empty.
    pub(crate) dir: &'a Path,
    /// The URL `origin` points at.
    pub(crate) url: &'a str,
    /// The commit `HEAD` names (full id).
    pub(crate) commit: &'a str,
    /// The mirror's branches and tags.
    pub(crate) refs: &'a RefMap,
    /// The mirror's default branch, for `origin/HEAD`.
    pub(crate) head: Option<&'a str>,
}

/// Makes `layout.dir/.git`; the work tree itself stays empty.
pub(crate) fn make_repository(layout: &Layout<'_>) -> Result<(), GitError> {
    let dir = layout.dir;
    create_dir(dir)?;
    let not_empty = std::fs::read_dir(dir)
        .map_err(|source| io_error(format!("reading {}", dir.display()), source))?
        .next()
        .is_some();
    if not_empty {
        return Err(GitError::Io {
            context: format!("checking out into {}", dir.display()),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "the directory is not empty"),
        });
    }
    let git_dir = dir.join(".git");
    for sub in ["objects/pack", "objects/info", "refs/heads", "refs/tags"] {
        create_dir(&git_dir.join(sub))?;
    }
    link_objects(&layout.mirror.join("objects"), &git_dir.join("objects"))?;
    write(&git_dir.join("config"), &config(layout.url)?)?;
    write(&git_dir.join("packed-refs"), &packed_refs(layout.refs))?;
    if let Some(head) = layout.head.filter(|head| {
        layout
            .refs
            .contains_key(format!("refs/heads/{head}").as_bytes().as_bstr())
    }) {
        create_dir(&git_dir.join("refs/remotes/origin"))?;
        write(
            &git_dir.join("refs/remotes/origin/HEAD"),
            &format!("ref: refs/remotes/origin/{head}\n"),
        )?;
    }
    // Last: a directory with a HEAD is what git takes for a repository.
    write(&git_dir.join("HEAD"), &format!("{}\n", layout.commit))
}

/// Writes the files of `commit` (the commit `HEAD` names) into the empty
/// work tree of the repository [`make_repository`] made at `dir`, and its
/// index, in-process: what `git read-tree --reset -u` does, with git's
/// attributes (line endings, filters configured in the repository) and
/// modes (executable bits, symbolic links).
pub(crate) fn write_work_tree(dir: &Path, commit: &str) -> Result<(), GitError> {
    let failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "checkout".to_owned(),
        message: format!("{}: {error}", dir.display()),
    };
    let repo = gix::open_opts(dir, gix::open::Options::isolated()).map_err(|e| failed(&e))?;
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| failed(&e))?;
    let tree = repo
        .find_commit(id)
        .and_then(|commit| commit.tree_id())
        .map_err(|e| failed(&e))?;
    let mut index = repo.index_from_tree(&tree).map_err(|e| failed(&e))?;
    let mut options = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(|e| failed(&e))?;
    options.destination_is_initially_empty = true;
    let objects = repo.objects.clone().into_arc().map_err(|e| failed(&e))?;
    let outcome = gix::worktree::state::checkout(
        &mut index,
        dir,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        &std::sync::atomic::AtomicBool::new(false),
        options,
    )
    .map_err(|e| failed(&e))?;
    if let Some(error) = outcome.errors.first() {
        return Err(failed(&format_args!(
            "cannot write {} ({} files failed): {}",
            error.path,
            outcome.errors.len(),
            error.error
        )));
    }
    if let Some(collision) = outcome.collisions.first() {
        return Err(failed(&format_args!(
            "{} collides with another path on this file system ({} collisions)",
            collision.path,
            outcome.collisions.len()
        )));
    }
    index.write(Default::default()).map_err(|e| failed(&e))
}

/// `.git/config`: a non-bare repository whose `origin` is `url`.
fn config(url: &str) -> Result<String, GitError> {
    if url.chars().any(char::is_control) {
        return Err(GitError::InvalidUrl {
            url: url.to_owned(),
            reason: "it contains control characters",
        });
    }
    let quoted = url.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\
         \tlogallrefupdates = true\n[remote \"origin\"]\n\turl = \"{quoted}\"\n\
         \tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    ))
}

/// `packed-refs`: branches as `refs/remotes/origin/*`, tags as they are,
/// sorted (peeled values are left to git to find).
fn packed_refs(refs: &RefMap) -> String {
    let mut lines: Vec<(String, String)> = refs
        .iter()
        .filter_map(|(name, id)| {
            let name = name.to_str().ok()?;
            let name = if let Some(branch) = name.strip_prefix("refs/heads/") {
                format!("refs/remotes/origin/{branch}")
            } else if name.starts_with("refs/tags/") {
                name.to_owned()
            } else {
                return None;
            };
            Some((name, id.to_string()))
        })
        .collect();
    lines.sort();
    let mut text = String::from("# pack-refs with: sorted \n");
    for (name, id) in lines {
        let _ = writeln!(text, "{id} {name}");
    }
    text
}

/// Hard-links (or copies) the mirror's packs and loose objects.
fn link_objects(from: &Path, to: &Path) -> Result<(), GitError> {
    let entries = std::fs::read_dir(from)
        .map_err(|source| io_error(format!("reading {}", from.display()), source))?;
    for entry in entries {
        let entry =
            entry.map_err(|source| io_error(format!("reading {}", from.display()), source))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let loose = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if name != "pack" && !loose {
            // `info` (alternates, commit graphs) is not carried over.
            continue;
        }
        let target = to.join(name);
        create_dir(&target)?;
        link_files(&entry.path(), &target)?;
    }
    Ok(())
}

fn link_files(from: &Path, to: &Path) -> Result<(), GitError> {
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(io_error(format!("reading {}", from.display()), source)),
    };
    for entry in entries {
        let entry =
            entry.map_err(|source| io_error(format!("reading {}", from.display()), source))?;
        let name = entry.file_name();
        // Files being written by a concurrent fetch.
        if name
            .to_str()
            .is_none_or(|n| n.starts_with("tmp_") || n.ends_with(".lock"))
        {
            continue;
        }
        let source = entry.path();
        let target = to.join(&name);
        match std::fs::hard_link(&source, &target) {
            Ok(()) => {}
            // Gone since it was listed (a fetch's temporary file).
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            // Another file system, or links not allowed: copy.
            Err(_) => match std::fs::copy(&source, &target) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source_error) => {
                    return Err(io_error(
                        format!("copying {} to {}", source.display(), target.display()),
                        source_error,
                    ));
                }
            },
        }
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), GitError> {
    std::fs::create_dir_all(path)
        .map_err(|source| io_error(format!("creating {}", path.display()), source))
}

fn write(path: &Path, text: &str) -> Result<(), GitError> {
    std::fs::write(path, text)
        .map_err(|source| io_error(format!("writing {}", path.display()), source))
}

fn io_error(context: String, source: io::Error) -> GitError {
    GitError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_quoted_for_git_config() {
        let text = config(r#"file:///tmp/a "b"\c"#).unwrap();
        assert!(text.contains(r#"url = "file:///tmp/a \"b\"\\c""#), "{text}");
        assert!(config("https://x/\nfetch = evil").is_err());
    }

    #[test]
    fn branches_become_remote_tracking_and_tags_stay() {
        let id = |c: &str| gix::ObjectId::from_hex(c.repeat(40).as_bytes()).unwrap();
        let refs: RefMap = [
            ("refs/tags/v1", id("b")),
            ("refs/heads/main", id("a")),
            ("refs/tako/commits/x", id("c")),
        ]
        .into_iter()
        .map(|(name, id)| (name.into(), id))
        .collect();
        assert_eq!(
            packed_refs(&refs),
            format!(
                "# pack-refs with: sorted \n{} refs/remotes/origin/main\n{} refs/tags/v1\n",
                "a".repeat(40),
                "b".repeat(40)
            )
        );
    }
}
