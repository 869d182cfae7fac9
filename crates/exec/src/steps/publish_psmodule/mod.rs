//! `publish-psmodule`: what PowerShellGet's `Publish-Module` does, without
//! PowerShell.
//!
//! Parameters: `Path` (the module folder, relative to the step's working
//! directory and confined to the checkout; its name, or its parent's when it
//! is named as a version, is the module's name and `<Name>.psd1` its
//! manifest), `Feed` (a NuGet v2 feed, or a v3 `index.json`; default the
//! PowerShell Gallery), `ApiKey`, `ExcludePaths` (globs relative to the
//! module folder: a list, or comma-separated text).
//!
//! Steps: read the manifest (Author and Description are required, as
//! `Test-ModuleManifest` does); ask the feed whether that id and version are
//! there (then succeed with `Published=False`: *nothing to publish*); else
//! build the `.nupkg` ([`nuspec`], [`package`]), push it ([`feed`]) and set
//! `Published=True`. A push answered 409 (or minchoc's 400 "already been
//! uploaded") fails as *already published by someone else*: another
//! publisher won the race and the feed's package may not be this build. 401
//! and 403 fail as *the feed refused the API key*. Outputs: `Published`
//! (`True`/`False`) and `Version` (`ModuleVersion`, plus `-Prerelease`).
//!
//! The API key is masked in every line and message this step writes (it is
//! added to a copy of the deployment's masker) and travels only in the
//! `X-NuGet-ApiKey` header of the push.

pub mod feed;
pub mod nuspec;
pub mod package;

use std::path::{Path, PathBuf};

use chrono::{Datelike, Timelike};
use tako_core::log::LogLevel;
use tako_psd1::ModuleManifest;
use tako_takofile::WithValue;

use self::feed::{Clients, Feed, FeedError};
use self::nuspec::{PackageMetadata, display_version, metadata};
use super::{StepContext, StepError, StepResult};
use crate::confine::confine_in;

/// The default feed: the PowerShell Gallery's v2 API.
pub const DEFAULT_FEED: &str = "https://www.powershellgallery.com/api/v2";

/// Whether to ask the feed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistenceCheck {
    /// Ask the feed whether the version is there before building (the step).
    Ask,
    /// Push without asking (for a caller that has just asked; tests use it to
    /// reproduce the race between the question and the push).
    Skip,
}

/// Runs the step.
pub async fn step(context: &StepContext<'_, '_>) -> StepResult {
    run(context, ExistenceCheck::Ask).await
}

/// Runs the step, asking the feed first or not.
pub async fn run(context: &StepContext<'_, '_>, check: ExistenceCheck) -> StepResult {
    let api_key = context
        .text("ApiKey")?
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut masker = context.log.masker().clone();
    masker.add(&api_key);
    let say = |level: LogLevel, text: &str| context.log.tako(level, &masker.mask(text));
    let result = publish(context, check, &api_key, &say).await;
    result.map_err(|error| error.masked(|text| masker.mask(text).into_owned()))
}

/// The parameters, read and checked.
struct Request {
    module_dir: PathBuf,
    shown_path: String,
    feed: String,
    excludes: Vec<String>,
}

fn request(context: &StepContext<'_, '_>, api_key: &str) -> Result<Request, StepError> {
    let path = context.required("Path")?.trim();
    let feed = context
        .text("Feed")?
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .unwrap_or(DEFAULT_FEED)
        .to_owned();
    if api_key.is_empty() {
        return Err(StepError::Parameter(
            "parameter ApiKey is required (the feed's API key)".to_owned(),
        ));
    }
    let excludes = match context
        .parameters
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("ExcludePaths"))
        .map(|(_, value)| value)
    {
        None => Vec::new(),
        Some(WithValue::Text(text)) => text
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(WithValue::List(items)) => items
            .iter()
            .map(|item| {
                item.as_text().map(|t| t.trim().to_owned()).ok_or_else(|| {
                    StepError::Parameter(
                        "parameter ExcludePaths must be a list of globs".to_owned(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect(),
        Some(WithValue::Map(_)) => {
            return Err(StepError::Parameter(
                "parameter ExcludePaths must be a list of globs or comma-separated text".to_owned(),
            ));
        }
    };
    let real_dir = confine_in(context.root, context.working_dir, path)
        .map_err(|e| StepError::path("Path", path, e))?;
    std::fs::metadata(&real_dir)
        .map_err(|e| format!("Path {path:?}: cannot open the module folder: {e}"))?;
    if !real_dir.is_dir() {
        return Err(StepError::Failed(format!("Path {path:?} is not a folder")));
    }
    Ok(Request {
        module_dir: real_dir,
        shown_path: path.trim_end_matches('/').to_owned(),
        feed,
        excludes,
    })
}

/// The module's name: its folder's, or the parent's when the folder is
/// named as a version (`MyModule/1.2.0`).
fn module_name(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let is_version = name.split('.').count() >= 2
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_version {
        dir.parent()?.file_name()?.to_str().map(str::to_owned)
    } else {
        Some(name.to_owned())
    }
}

async fn cancellable<T>(
    context: &StepContext<'_, '_>,
    future: impl Future<Output = Result<T, FeedError>>,
) -> Result<T, StepError> {
    tokio::select! {
        () = context.cancel.cancelled() => Err(StepError::Cancelled),
        result = future => result.map_err(|e| StepError::Failed(e.to_string())),
    }
}

async fn publish(
    context: &StepContext<'_, '_>,
    check: ExistenceCheck,
    api_key: &str,
    say: &(dyn Fn(LogLevel, &str) + Sync),
) -> StepResult {
    let request = request(context, api_key)?;
    let name = module_name(&request.module_dir).ok_or_else(|| {
        format!(
            "Path {:?} does not name a module folder",
            request.shown_path
        )
    })?;
    let manifest_file = format!("{name}.psd1");
    let manifest_shown = format!("{}/{manifest_file}", request.shown_path);
    let manifest_path = find_manifest(&request.module_dir, &manifest_file).ok_or_else(|| {
        format!("no module manifest {manifest_shown}: the folder's name must be the module's name")
    })?;
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read the module manifest {manifest_shown}: {e}"))?;
    let manifest = ModuleManifest::from_text(&text)
        .map_err(|e| format!("module manifest {manifest_shown}: {e}"))?;
    let version = display_version(&manifest);

    let excludes = package::excludes(&request.excludes).map_err(|e| e.to_string())?;
    let files = package::collect(&request.module_dir, context.root, &excludes)
        .map_err(|e| format!("module folder {}: {e}", request.shown_path))?;
    let discovered = package::discover(&files);
    let meta =
        metadata(&name, &manifest, &manifest_shown, &discovered).map_err(|e| e.to_string())?;

    let clients = Clients::new().map_err(|e| e.to_string())?;
    let feed = cancellable(context, Feed::discover(&clients, &request.feed)).await?;
    if check == ExistenceCheck::Ask {
        say(
            LogLevel::Info,
            &format!("Asking {} whether {name} {version} is there", request.feed),
        );
        let exists = cancellable(context, feed.exists(&clients, &meta.id, &meta.version))
            .await
            .map_err(|e| format!("cannot ask the feed whether {name} {version} exists: {e}"))?;
        if exists {
            say(
                LogLevel::Highlight,
                &format!("{name} {version} is already on the feed: nothing to publish"),
            );
            return Ok(outputs(false, &version));
        }
    }

    let nupkg = build(&meta, &files)?;
    say(
        LogLevel::Info,
        &format!(
            "Built {} ({} module files, {} bytes); pushing to {}",
            package::file_name(&meta),
            files.len(),
            nupkg.len(),
            feed.push_url()
        ),
    );
    let pushed = tokio::select! {
        () = context.cancel.cancelled() => return Err(StepError::Cancelled),
        result = feed.push(&clients, api_key, &nupkg) => result,
    };
    match pushed {
        Ok(_) => {}
        Err(error @ FeedError::Duplicate { .. }) => {
            return Err(StepError::Failed(format!(
                "{name} {version} was already published by someone else (it appeared on the feed after this step looked): {error}"
            )));
        }
        Err(error) => {
            return Err(StepError::Failed(format!(
                "cannot publish {name} {version}: {error}"
            )));
        }
    }
    say(
        LogLevel::Highlight,
        &format!("Published {name} {version} to {}", request.feed),
    );
    Ok(outputs(true, &version))
}

fn outputs(published: bool, version: &str) -> Vec<(String, String)> {
    vec![
        (
            "Published".to_owned(),
            if published { "True" } else { "False" }.to_owned(),
        ),
        ("Version".to_owned(), version.to_owned()),
    ]
}

/// `<dir>/<file>`, or a file of the same name in another letter case.
fn find_manifest(dir: &Path, file: &str) -> Option<PathBuf> {
    let exact = dir.join(file);
    if exact.is_file() {
        return Some(exact);
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(file))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
}

fn build(meta: &PackageMetadata, files: &[package::PackageFile]) -> Result<Vec<u8>, String> {
    let now = chrono::Local::now();
    let time = zip::DateTime::from_date_and_time(
        u16::try_from(now.year()).unwrap_or(1980),
        u8::try_from(now.month()).unwrap_or(1),
        u8::try_from(now.day()).unwrap_or(1),
        u8::try_from(now.hour()).unwrap_or(0),
        u8::try_from(now.minute()).unwrap_or(0),
        u8::try_from(now.second()).unwrap_or(0),
    )
    .unwrap_or_default();
    package::build(meta, files, &feed::random_hex(), time).map_err(|e| e.to_string())
}
