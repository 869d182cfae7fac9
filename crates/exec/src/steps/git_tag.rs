//! `git-tag`: tags the release's commit and pushes the tag.
//!
//! Parameters:
//!
//! - `Tag`: the tag's name (default `v<release number>`, i.e.
//!   `v#{Tako.Release.Number}`);
//! - `Message`: when set (not empty), the tag is annotated with it (tagger:
//!   the checkout's configured `user.name`/`user.email`, else
//!   `Tako <tako@localhost>`); otherwise it is lightweight;
//! - `Remote`: where to push (default: the project's repository);
//! - `Token`: an HTTPS token with push rights, typically a sensitive
//!   variable (never on a command line, in `.git/config` or in the log; see
//!   [`super::git_checkout`]);
//! - `Force`: move a tag that points elsewhere (default false).
//!
//! The tag is made in the deployment's checkout (a git repository whose
//! `origin` is the project's URL) on the release's commit (fetched from
//! `Remote` first if the checkout lacks it) and pushed as `refs/tags/<Tag>`.
//!
//! **Idempotent.** What the remote has decides: a tag of that name already
//! pointing at the release's commit (lightweight or annotated, whatever its
//! message) is success without a push; pointing at another commit is a
//! failure naming both commits, unless `Force`, which force-pushes. A push
//! that loses a race with an identical tag is success too. Output: `Tag`.

use tako_core::log::LogLevel;
use tako_core::system::short_commit;
use tako_git::{Git, RemoteUrl};

use super::git_checkout::{Secrets, cancellable, explain, repository};
use super::{StepContext, StepError, StepResult};

/// Runs the step.
pub async fn step(context: &StepContext<'_, '_>) -> StepResult {
    let secrets = Secrets::new(context)?;
    run(context, &secrets)
        .await
        .map_err(|error| error.masked(|text| secrets.mask(text)))
}

async fn run(context: &StepContext<'_, '_>, secrets: &Secrets<'_>) -> StepResult {
    let tag = match context.text("Tag")?.map(str::trim) {
        Some(tag) if !tag.is_empty() => tag.to_owned(),
        _ if context.facts.release_number.is_empty() => {
            return Err(StepError::Parameter(
                "parameter Tag is required: the release has no number".to_owned(),
            ));
        }
        _ => format!("v{}", context.facts.release_number),
    };
    let message = context.text("Message")?.filter(|m| !m.trim().is_empty());
    let force = context.flag("Force", false)?;
    let remote = repository(context, "Remote")?;
    let url = RemoteUrl::parse(&remote).map_err(|e| e.to_string())?;
    let commit = context.facts.git_commit.trim();
    if commit.is_empty() {
        return Err(StepError::Failed(
            "the release has no commit to tag".to_owned(),
        ));
    }
    let credentials = secrets.credentials.as_ref();
    let git = Git::new();
    let tree = git.open_work_tree(context.root).ok_or_else(|| {
        "the deployment's checkout is not a git repository; cannot tag".to_owned()
    })?;
    let short = short_commit(commit);
    let work = async {
        let existing = git
            .remote_tag(context.root, &url, credentials, &tag)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the tags of {url}: {}",
                    explain(&e, &url, &tag, credentials.is_some())
                )
            })?;
        match &existing {
            Some(found) if found.commit == commit => {
                return Ok(format!("Tag {tag} already points at {short} on {url}"));
            }
            Some(found) if !force => {
                return Err(format!(
                    "tag {tag} already points at {} on {url}, not at the release's commit {short}; set Force: true to move it",
                    short_commit(&found.commit)
                ));
            }
            _ => {}
        }
        if tree
            .resolve(commit)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            tree.fetch_ref(&url, credentials, commit)
                .await
                .map_err(|e| format!("cannot fetch the release's commit {short}: {e}"))?;
        }
        // The checkout's own tags came from a mirror: the remote is the truth.
        tree.tag(&tag, commit, message, true)
            .await
            .map_err(|e| format!("cannot create tag {tag}: {e}"))?;
        let moved = existing.is_some();
        if let Err(error) = tree.push_tag(&url, credentials, &tag, force).await {
            // Someone else may have pushed the same tag meanwhile.
            let now = git
                .remote_tag(context.root, &url, credentials, &tag)
                .await
                .ok()
                .flatten();
            return match now {
                Some(found) if found.commit == commit => {
                    Ok(format!("Tag {tag} already points at {short} on {url}"))
                }
                Some(found) => Err(format!(
                    "tag {tag} already points at {} on {url}, not at the release's commit {short}; set Force: true to move it",
                    short_commit(&found.commit)
                )),
                None => Err(format!(
                    "cannot push tag {tag} to {url}: {}",
                    explain(&error, &url, &tag, credentials.is_some())
                )),
            };
        }
        Ok(format!(
            "{} {} tag {tag} at {short} to {url}",
            if moved { "Moved" } else { "Pushed" },
            if message.is_some() {
                "annotated"
            } else {
                "lightweight"
            },
        ))
    };
    let summary = cancellable(context.cancel, work).await?;
    context.log.tako(LogLevel::Info, &secrets.mask(&summary));
    Ok(vec![("Tag".to_owned(), tag)])
}
