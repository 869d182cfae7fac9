//! Fetching into a mirror from a repository on this machine (`file://`
//! URLs and absolute paths) in-process, with gitoxide.
//!
//! `git fetch` from a local repository starts six processes (git, a shell,
//! `upload-pack`, `pack-objects`, `index-pack`, and `rev-list` for the
//! connectivity check): about 13 ms for a one-commit push on this
//! project's reference machine, most of a push's way to its deployment.
//! Two ways here, both in-process:
//!
//! - **A direct copy** (the usual one), as `git clone --local` reads a
//!   local repository's objects directly: the remote is opened as a
//!   repository, the objects its branches and tags reach that the mirror
//!   lacks are found by walking from them (stopping at what the mirror has)
//!   and written into the mirror as one pack: about 1 ms for a push.
//! - **Through `git-upload-pack`** when the copy declines (a shallow or
//!   unreadable remote, symbolic references, a push of more than 2,000
//!   objects or 64 MiB, whose pack git deltifies): gitoxide speaks the
//!   protocol to the same `git-upload-pack` as git and receives, indexes
//!   and writes the pack itself: about 6 ms.
//!
//! Repositories reached over HTTP(S) are fetched by the git program, which
//! owns credentials, proxies and TLS ([`crate::Git::remote`]).
//!
//! **Negotiation tips** (through `git-upload-pack`). To learn what to send,
//! the server is told which commits we have, walking back from our
//! references' tips, newest first.
//! With many branches, a push to a branch whose tip is older than the
//! others' recent commits made that walk offer hundreds of unrelated
//! commits over four or five round trips (2–3 ms each here; gitoxide 0.90
//! also never marks the unchanged branches as common, which git does). So,
//! like `git fetch --negotiation-tip`, the caller may name the tips to walk
//! from (for a push: the pushed branch and the default branch as the mirror
//! has them): the fetch then runs in a scratch repository beside the
//! mirror whose `objects` *is* the mirror's (a symbolic link, so the pack is
//! written straight into the mirror) and whose only references are those
//! tips. Without tips, every branch and tag of the mirror is one.
//!
//! **The result** is what `git fetch --prune <url> +refs/heads/*:refs/heads/*
//! +refs/tags/*:refs/tags/*` leaves in the mirror: one pack per fetch (as
//! with `fetch.unpackLimit=1`), every branch and tag set to the remote's
//! value in one reference transaction, and those the remote no longer has
//! deleted. A tip that is not an ancestor of what was pushed costs a larger
//! pack, never a wrong result.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::{BString, ByteSlice};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use crate::objects::{RefMap, branches_and_tags};
use crate::{GitError, RemoteUrl};

/// What the remote is asked for: its branches and tags.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Fetches `url` into the mirror `repo`, negotiating from `tips` (full
/// commit ids the mirror has) or, when there are none, from all its
/// branches and tags; `interrupt` stops it between reads.
pub(crate) fn fetch(
    repo: &gix::Repository,
    url: &RemoteUrl,
    tips: &[gix::ObjectId],
    interrupt: &AtomicBool,
) -> Result<(), GitError> {
    match copy_directly(repo, url)? {
        Copy::Done => Ok(()),
        Copy::Declined(reason) => {
            tracing::debug!(%url, reason, "fetching through git-upload-pack");
            fetch_through_upload_pack(repo, url, tips, interrupt)
        }
    }
}

/// The most objects [`copy_directly`] copies; a bigger fetch goes through
/// `git-upload-pack`, whose pack is deltified.
const DIRECT_COPY_LIMIT: usize = 2_000;
/// The most bytes (uncompressed) [`copy_directly`] holds in memory.
const DIRECT_COPY_BYTES: u64 = 64 * 1024 * 1024;

/// What [`copy_directly`] did.
enum Copy {
    /// The mirror has the remote's branches and tags.
    Done,
    /// Nothing was changed; fetch through `git-upload-pack` instead.
    Declined(&'static str),
}

/// The fast way for a repository on this machine, as `git clone --local`
/// takes it: the remote is opened as a repository, the objects its branches
/// and tags reach that the mirror lacks are found by walking from them
/// (stopping at every object the mirror has: a mirror is always complete
/// below what it has) and written into the mirror as one pack, then the
/// mirror's references are set. No process is started. Declined for a
/// remote that is not a plain complete repository (shallow, unreadable,
/// symbolic branch references) or a push of more than
/// [`DIRECT_COPY_LIMIT`] objects or [`DIRECT_COPY_BYTES`] bytes.
fn copy_directly(mirror: &gix::Repository, url: &RemoteUrl) -> Result<Copy, GitError> {
    let failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "fetch".to_owned(),
        message: format!("copying from {url}: {error}"),
    };
    let Some(path) = local_path(url) else {
        return Ok(Copy::Declined("not a local path"));
    };
    let Ok(origin) = gix::open_opts(&path, gix::open::Options::isolated()) else {
        return Ok(Copy::Declined("not a repository gitoxide opens"));
    };
    if origin.is_shallow().unwrap_or(true) {
        return Ok(Copy::Declined("the remote is shallow"));
    }
    let remote_refs = match branches_and_tags(&origin) {
        Ok(refs) if refs.symbolic == 0 => refs.direct,
        Ok(_) => return Ok(Copy::Declined("the remote has symbolic branches or tags")),
        Err(_) => return Ok(Copy::Declined("the remote's references are unreadable")),
    };
    let current = branches_and_tags(mirror)?.direct;

    let mut stack: Vec<gix::ObjectId> = remote_refs.values().copied().collect();
    let mut seen = std::collections::HashSet::new();
    let mut objects: Vec<(gix::ObjectId, gix::object::Kind, Vec<u8>)> = Vec::new();
    let mut bytes = 0;
    while let Some(id) = stack.pop() {
        if !seen.insert(id) || mirror.has_object(id) {
            continue;
        }
        if objects.len() >= DIRECT_COPY_LIMIT {
            return Ok(Copy::Declined("more objects than a direct copy takes"));
        }
        let Ok(header) = origin.find_header(id) else {
            return Ok(Copy::Declined("the remote lacks an object it references"));
        };
        bytes += header.size();
        if bytes > DIRECT_COPY_BYTES {
            return Ok(Copy::Declined("more bytes than a direct copy takes"));
        }
        let Ok(object) = origin.find_object(id) else {
            return Ok(Copy::Declined("the remote lacks an object it references"));
        };
        let (kind, data) = (object.kind, object.detach().data);
        let walked = match kind {
            gix::object::Kind::Commit => {
                let mut commit = gix::objs::CommitRefIter::from_bytes(&data, mirror.object_hash());
                commit.tree_id().map(|tree| {
                    stack.push(tree);
                    stack.extend(commit.parent_ids());
                })
            }
            gix::object::Kind::Tree => {
                for entry in gix::objs::TreeRefIter::from_bytes(&data, mirror.object_hash()) {
                    match entry {
                        // Submodules' commits live in other repositories.
                        Ok(entry) if entry.mode.is_commit() => {}
                        Ok(entry) => stack.push(entry.oid.to_owned()),
                        Err(_) => return Ok(Copy::Declined("a tree the remote has is malformed")),
                    }
                }
                Ok(())
            }
            gix::object::Kind::Tag => {
                gix::objs::TagRefIter::from_bytes(&data, mirror.object_hash())
                    .target_id()
                    .map(|target| stack.push(target))
            }
            gix::object::Kind::Blob => Ok(()),
        };
        if walked.is_err() {
            return Ok(Copy::Declined("an object the remote has is malformed"));
        }
        objects.push((id, kind, data));
    }
    let keep = if objects.is_empty() {
        None
    } else {
        write_pack(mirror, &objects).map_err(|e| failed(&e))?
    };
    update_references(mirror, &current, &remote_refs)?;
    // The pack was kept from garbage collection until the references
    // reaching it were written (as a fetch does).
    if let Some(keep) = keep {
        std::fs::remove_file(&keep).map_err(|source| GitError::Io {
            context: format!("removing {}", keep.display()),
            source,
        })?;
    }
    Ok(Copy::Done)
}

/// The directory a `file://` URL or an absolute path names.
fn local_path(url: &RemoteUrl) -> Option<std::path::PathBuf> {
    let parsed = gix::url::parse(url.as_str().as_bytes().as_bstr()).ok()?;
    if parsed.scheme != gix::url::Scheme::File {
        return None;
    }
    gix::path::from_bstring(parsed.path).ok()
}

/// Writes `objects` (undeltified) into the mirror's pack directory as one
/// pack with its index, as a fetch would; returns the `.keep` file that
/// protects it until the references are written.
fn write_pack(
    mirror: &gix::Repository,
    objects: &[(gix::ObjectId, gix::object::Kind, Vec<u8>)],
) -> Result<Option<std::path::PathBuf>, Box<dyn std::error::Error + Send + Sync>> {
    use gix_pack as pack;
    let object_hash = mirror.object_hash();
    let mut entries = Vec::with_capacity(objects.len());
    for (id, kind, data) in objects {
        let count = pack::data::output::Count::from_data(*id, None);
        let data = gix::objs::Data {
            kind: *kind,
            object_hash,
            data,
        };
        entries.push(pack::data::output::Entry::from_data(
            &count,
            &data,
            gix::zlib::Compression::DEFAULT,
        )?);
    }
    let count = u32::try_from(entries.len())?;
    let mut bytes = pack::data::output::bytes::FromEntriesIter::new(
        std::iter::once(Ok(entries)),
        Vec::new(),
        count,
        pack::data::Version::V2,
        object_hash,
    );
    for written in bytes.by_ref() {
        written?;
    }
    let data = bytes.into_write();
    let directory = mirror.objects.store_ref().path().join("pack");
    let written = pack::Bundle::write_to_directory(
        &mut data.as_slice(),
        Some(&directory),
        &mut gix::progress::Discard,
        &AtomicBool::new(false),
        None::<gix::odb::Handle>,
        object_hash,
        pack::bundle::write::Options::default(),
    )?;
    Ok(written.keep_path)
}

/// Fetches through `git-upload-pack`, negotiating from `tips`.
fn fetch_through_upload_pack(
    repo: &gix::Repository,
    url: &RemoteUrl,
    tips: &[gix::ObjectId],
    interrupt: &AtomicBool,
) -> Result<(), GitError> {
    let failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "fetch".to_owned(),
        message: error.to_string(),
    };
    let current = branches_and_tags(repo)?.direct;
    let tips: Vec<gix::ObjectId> = if tips.is_empty() {
        current.values().copied().collect()
    } else {
        tips.to_vec()
    };
    let scratch = scratch_repository(repo, &tips)?;
    let scratch_repo = crate::objects::open(scratch.path())?.to_thread_local();

    let remote = scratch_repo
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

    let mut remote_refs = RefMap::new();
    for advertised in &outcome.ref_map.remote_refs {
        let (name, target, _) = advertised.unpack();
        if let Some(target) = target
            && (name.starts_with(b"refs/heads/") || name.starts_with(b"refs/tags/"))
        {
            remote_refs.insert(name.to_owned(), target.to_owned());
        }
    }
    update_references(repo, &current, &remote_refs)
}

/// A bare repository beside the mirror whose `objects` is the mirror's and
/// whose references are `tips`; removed when dropped.
fn scratch_repository(
    repo: &gix::Repository,
    tips: &[gix::ObjectId],
) -> Result<tempfile::TempDir, GitError> {
    let mirror = repo.path();
    let io = |context: String| move |source: std::io::Error| GitError::Io { context, source };
    let parent = mirror.parent().unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(io(format!(
            "creating a scratch repository in {}",
            parent.display()
        )))?;
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("refs/heads"))
        .and_then(|()| std::fs::create_dir_all(dir.join("refs/tags")))
        .map_err(io(format!("creating {}", dir.display())))?;
    let objects = std::fs::canonicalize(mirror.join("objects"))
        .map_err(io(format!("finding {}", mirror.join("objects").display())))?;
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(&objects, dir.join("objects"));
    // Needs the right to create symbolic links (Developer Mode or an
    // administrator); untested here.
    #[cfg(windows)]
    let linked = std::os::windows::fs::symlink_dir(&objects, dir.join("objects"));
    linked.map_err(io(format!(
        "linking {} to the mirror's objects",
        dir.display()
    )))?;
    let mut packed = String::new();
    for (index, tip) in tips.iter().enumerate() {
        let _ = writeln!(packed, "{tip} refs/negotiation/tip-{index:06}");
    }
    let files = [
        (
            "config",
            "[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
        ),
        ("packed-refs", packed.as_str()),
        ("HEAD", "ref: refs/heads/main\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).map_err(io(format!("writing {}", dir.display())))?;
    }
    Ok(scratch)
}

/// Sets every branch and tag of the mirror to `remote`'s value and deletes
/// those `remote` lacks, in one transaction.
fn update_references(
    repo: &gix::Repository,
    current: &RefMap,
    remote: &RefMap,
) -> Result<(), GitError> {
    let failed = |error: &dyn std::fmt::Display| GitError::Failed {
        command: "fetch".to_owned(),
        message: format!("cannot update the mirror's references: {error}"),
    };
    let full_name = |name: &BString| -> Result<gix::refs::FullName, GitError> {
        name.as_bstr().try_into().map_err(|e| failed(&e))
    };
    let mut edits = Vec::new();
    for (name, id) in remote {
        if current.get(name) == Some(id) {
            continue;
        }
        edits.push(RefEdit::new(
            full_name(name)?,
            Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "fetch".into(),
                },
                expected: PreviousValue::Any,
                new: gix::refs::Target::Object(*id),
            },
        ));
    }
    for name in current.keys().filter(|name| !remote.contains_key(*name)) {
        tracing::debug!(name = %name.to_str_lossy(), "pruned");
        edits.push(RefEdit::new(
            full_name(name)?,
            Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
        ));
    }
    if !edits.is_empty() {
        repo.edit_references(edits).map_err(|e| failed(&e))?;
    }
    Ok(())
}
