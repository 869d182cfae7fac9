//! Making a release, one way for every caller: the router (a push) and the
//! API (`POST /api/v1/projects/{name}/releases`, a release made by hand, as
//! Octopus's "Create release").
//!
//! The shared path: [`read_takofile`] reads the takofile of one commit from
//! the project's mirror, [`Process::from_takofile`] parses it (it must be
//! valid and have `Steps`), and [`build`] takes the build counter, numbers
//! the release (the number asked for, else the takofile's `Version`
//! template, else the previous number incremented: takofile.md §4), freezes
//! the project's variables (sensitive ones sealed, [`FrozenVariables`]) and
//! returns the [`NewRelease`]. A number that exists is
//! [`ReleaseError::Exists`], never an overwrite.
//!
//! [`create`] is the by-hand entry around it: it fetches the mirror (in a
//! task of its own and within a time budget, so a slow first clone goes on
//! in the background and a retry finds it done), resolves the branch or
//! commit, checks the environment policies of the environments to deploy to
//! *before* anything is stored, then stores the release and queues its
//! deployments in one transaction (a failure keeps neither).

use std::sync::Arc;
use std::time::Duration;

use tako_core::release::{VersionTemplateError, release_number};
use tako_core::system::{DeploymentFacts, ManifestFacts, short_commit};
use tako_git::{GitError, Mirror, Mirrors, TAKOFILE_NAMES};
use tako_store::{Deployment, Keyring, NewRelease, Project, Release, SealError, Store, StoreError};
use tako_takofile::Takofile;

use tako_store::FrozenVariables;

/// Why a commit could not become a release (a push's or one made by hand).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The takofile could not be read from the mirror.
    #[error("cannot read the takofile at {rev}: {source}")]
    Read {
        /// The revision it was read at.
        rev: String,
        /// Why.
        #[source]
        source: GitError,
    },
    /// The commit has no takofile.
    #[error("no takofile in commit {}", short_commit(.commit))]
    NoTakofile {
        /// The commit.
        commit: String,
    },
    /// The takofile does not validate.
    #[error("takofile invalid: {}", .diagnostics.join("; "))]
    Invalid {
        /// Every error, as `file:line:col: error: message (hint)`.
        diagnostics: Vec<String>,
    },
    /// The takofile has no process of its own.
    #[error(
        "takofile {file} at {} has no Steps, and processes stored on the server are not supported yet",
        short_commit(.commit)
    )]
    NoSteps {
        /// The takofile's name.
        file: String,
        /// The commit.
        commit: String,
    },
    /// The takofile's `Manifest` could not be read or is invalid.
    #[error("{0}")]
    Manifest(String),
    /// The takofile's `Version` template gives no number.
    #[error(transparent)]
    Version(#[from] VersionTemplateError),
    /// The number is taken in the project.
    #[error("version {number} already exists")]
    Exists {
        /// The number.
        number: String,
    },
    /// A sensitive value could not be sealed into the release.
    #[error("cannot seal the release's variables: {0}")]
    Seal(#[source] SealError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The takofile (name and text) at `rev`, the first of [`TAKOFILE_NAMES`]
/// found; `None` when there is none.
pub async fn read_takofile(
    mirror: &Mirror,
    rev: &str,
) -> Result<Option<(String, String)>, ReleaseError> {
    mirror
        .first_file(rev, TAKOFILE_NAMES)
        .await
        .map_err(|source| ReleaseError::Read {
            rev: rev.to_owned(),
            source,
        })
}

/// Parses a takofile; [`ReleaseError::Invalid`] lists every error.
pub fn parse_takofile(file_name: &str, source: &str) -> Result<Takofile, ReleaseError> {
    tako_takofile::parse(file_name, source).map_err(|diagnostics| ReleaseError::Invalid {
        diagnostics: diagnostics.errors().map(|d| d.to_string()).collect(),
    })
}

/// A commit's process: its takofile, valid and with `Steps`, as it is frozen
/// into a release.
#[derive(Debug, Clone)]
pub struct Process {
    /// The takofile's name (`takofile.yml`).
    pub file_name: String,
    /// Its text, frozen into the release.
    pub source: String,
    /// Parsed.
    pub takofile: Takofile,
}

impl Process {
    /// The process of `commit` from its takofile as [`read_takofile`] found
    /// it.
    pub fn from_takofile(
        found: Option<(String, String)>,
        commit: &str,
    ) -> Result<Process, ReleaseError> {
        let Some((file_name, source)) = found else {
            return Err(ReleaseError::NoTakofile {
                commit: commit.to_owned(),
            });
        };
        let takofile = parse_takofile(&file_name, &source)?;
        if takofile.steps.is_none() {
            return Err(ReleaseError::NoSteps {
                file: file_name,
                commit: commit.to_owned(),
            });
        }
        Ok(Process {
            file_name,
            source,
            takofile,
        })
    }
}

/// Where a release comes from, besides its process.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The full commit id.
    pub commit: String,
    /// The branch (or, for a tag push, the tag), when known.
    pub branch: Option<String>,
    /// Who pushed, when known.
    pub pusher: Option<String>,
    /// The release notes.
    pub notes: String,
    /// The environment the release goes to first (`Octopus.Environment.Name`
    /// for the `Version` template); empty when none.
    pub environment: String,
    /// The number asked for; `None` computes it.
    pub version: Option<String>,
}

/// Builds the release of `process` at `origin.commit` in `project`: the
/// build counter, the number, the frozen variables. Nothing is stored but
/// the counter's step.
pub async fn build(
    store: &dyn Store,
    keyring: &Keyring,
    project: &Project,
    mirror: &Mirror,
    process: Process,
    origin: Origin,
) -> Result<NewRelease, ReleaseError> {
    // A number asked for is checked before the counter moves.
    if let Some(number) = &origin.version {
        check_free(store, project, number).await?;
    }
    let variables = store.list_variables(project.id).await?;
    let frozen = FrozenVariables::from_store(&variables, keyring).map_err(ReleaseError::Seal)?;
    let build = store.next_build_number(project.id).await?;
    // Read (and so checked) whenever the takofile names one.
    let manifest = match &process.takofile.manifest {
        Some(path) => Some(read_manifest(mirror, &origin.commit, path).await?),
        None => None,
    };
    let number = match origin.version.clone() {
        Some(number) => number,
        None => compute_number(store, project, &process, &origin, &frozen, build, manifest).await?,
    };
    check_free(store, project, &number).await?;
    Ok(NewRelease {
        project: project.id,
        number,
        notes: origin.notes,
        commit: origin.commit,
        branch: origin.branch,
        pusher: origin.pusher,
        takofile: process.source,
        variables: frozen.to_json(),
        build_number: Some(build),
    })
}

/// What [`build`] would make of `process` at `origin.commit` now, for a
/// plan: the same number by the same rule, with the build counter's next
/// value read, not taken. Nothing is stored.
pub async fn preview(
    store: &dyn Store,
    keyring: &Keyring,
    project: &Project,
    mirror: &Mirror,
    process: &Process,
    origin: &Origin,
) -> Result<Preview, ReleaseError> {
    let variables = store.list_variables(project.id).await?;
    let frozen = FrozenVariables::from_store(&variables, keyring).map_err(ReleaseError::Seal)?;
    let build = store.peek_build_number(project.id).await?;
    let manifest = match &process.takofile.manifest {
        Some(path) => Some(read_manifest(mirror, &origin.commit, path).await?),
        None => None,
    };
    let number = match origin.version.clone() {
        Some(number) => number,
        None => {
            compute_number(
                store,
                project,
                process,
                origin,
                &frozen,
                build,
                manifest.clone(),
            )
            .await?
        }
    };
    let taken = store
        .find_release_by_number(project.id, &number)
        .await?
        .is_some();
    Ok(Preview {
        number,
        build,
        frozen,
        manifest,
        taken,
    })
}

/// A release as [`preview`] foresees it.
pub struct Preview {
    /// Its number.
    pub number: String,
    /// The build counter it would take.
    pub build: i64,
    /// The project's variables as they would be frozen.
    pub frozen: FrozenVariables,
    /// The takofile's `Manifest`, read.
    pub manifest: Option<ManifestFacts>,
    /// Whether the number is taken already (making it would fail).
    pub taken: bool,
}

/// [`ReleaseError::Exists`] when `number` is taken in `project`.
async fn check_free(
    store: &dyn Store,
    project: &Project,
    number: &str,
) -> Result<(), ReleaseError> {
    match store.find_release_by_number(project.id, number).await? {
        Some(_) => Err(ReleaseError::Exists {
            number: number.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The takofile's `Version` template rendered, else the previous number
/// incremented.
async fn compute_number(
    store: &dyn Store,
    project: &Project,
    process: &Process,
    origin: &Origin,
    frozen: &FrozenVariables,
    build: i64,
    manifest: Option<ManifestFacts>,
) -> Result<String, ReleaseError> {
    // The previous number matters only without a template.
    let latest = match process.takofile.version {
        Some(_) => None,
        None => store.latest_release(project.id).await?,
    };
    let facts = DeploymentFacts {
        project: project.name.clone(),
        environment: origin.environment.clone(),
        build: u64::try_from(build).unwrap_or_default(),
        git_repository: project.repository_url.clone(),
        git_branch: origin.branch.clone().unwrap_or_default(),
        git_commit: origin.commit.clone(),
        git_pusher: origin.pusher.clone().unwrap_or_default(),
        manifest,
        ..DeploymentFacts::default()
    };
    let mut candidates = tako_core::variables::from_takofile(&process.takofile);
    candidates.extend(frozen.public_values());
    Ok(release_number(
        process.takofile.version.as_deref(),
        latest.as_ref().map(|r| r.number.as_str()),
        &facts,
        candidates,
        &tako_exec::clock::eval_context(),
    )?)
}

async fn read_manifest(
    mirror: &Mirror,
    commit: &str,
    path: &str,
) -> Result<ManifestFacts, ReleaseError> {
    let text = mirror
        .read_file(commit, path)
        .await
        .map_err(|e| ReleaseError::Manifest(format!("cannot read the manifest {path}: {e}")))?
        .ok_or_else(|| {
            ReleaseError::Manifest(format!(
                "the manifest {path} is not in commit {}",
                short_commit(commit)
            ))
        })?;
    ManifestFacts::from_manifest(path, &text)
        .map_err(|e| ReleaseError::Manifest(format!("manifest {path} is invalid: {e}")))
}

/// A release asked for by hand.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRequest {
    /// The number; `None` computes it as a push would.
    pub version: Option<String>,
    /// Build from this branch's head (or, with `commit`, check that the
    /// commit is in its history); default: the default branch.
    pub branch: Option<String>,
    /// Build from this commit (a full or abbreviated id, at least 7 hex
    /// digits).
    pub commit: Option<String>,
    /// The notes; default: who created it and from what.
    pub notes: Option<String>,
    /// Environments to queue deployments to, in order (without repeats).
    pub deploy_to: Vec<String>,
    /// Who asks, for the default notes (`ci via the API`).
    pub created_by: String,
    /// Who asks (their token's name): the creator of its deployments.
    pub by: String,
}

/// What [`create`] made.
#[derive(Debug, Clone)]
pub struct Created {
    /// The release.
    pub release: Release,
    /// Its queued deployments, in the order asked.
    pub deployments: Vec<Deployment>,
}

/// Why a release asked for by hand was not made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The request itself is wrong (a malformed commit id or branch name).
    #[error("{0}")]
    Input(String),
    /// The commit is not in the repository.
    #[error("commit {commit} is not in the repository {repository}")]
    UnknownCommit {
        /// The commit asked for.
        commit: String,
        /// The repository's URL.
        repository: String,
    },
    /// The branch is not in the repository.
    #[error("branch {branch} is not in the repository {repository}")]
    UnknownBranch {
        /// The branch asked for.
        branch: String,
        /// The repository's URL.
        repository: String,
    },
    /// The repository has no default branch (it is empty).
    #[error(
        "the repository {repository} has no default branch (is it empty?): push a branch, or name a branch or commit"
    )]
    NoDefaultBranch {
        /// The repository's URL.
        repository: String,
    },
    /// The commit is not in the history of the branch named with it.
    #[error("commit {commit} is not on branch {branch}")]
    NotOnBranch {
        /// The commit.
        commit: String,
        /// The branch.
        branch: String,
    },
    /// The commit's takofile does not validate.
    #[error("the takofile at commit {commit} is invalid: {}", .diagnostics.join("; "))]
    InvalidTakofile {
        /// The commit (short).
        commit: String,
        /// Every error, as `file:line:col: error: message (hint)`.
        diagnostics: Vec<String>,
    },
    /// An environment to deploy to refuses the release's branch, or its
    /// policy cannot be read.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The repository could not be fetched.
    #[error("cannot fetch {repository}: {source}")]
    Fetch {
        /// The repository's URL.
        repository: String,
        /// Why.
        #[source]
        source: GitError,
    },
    /// The fetch takes longer than the request may; it goes on.
    #[error(
        "the repository {repository} is still being fetched (a first clone can take a while); retry in a minute"
    )]
    FetchPending {
        /// The repository's URL.
        repository: String,
    },
    /// The mirror could not be read.
    #[error("cannot read the mirror of {repository}: {source}")]
    Mirror {
        /// The repository's URL.
        repository: String,
        /// Why.
        #[source]
        source: GitError,
    },
    /// The project's lifecycle refuses an environment to deploy to, or
    /// cannot be read.
    #[error("{0}")]
    Lifecycle(String),
    /// The commit cannot become a release.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What [`create`] needs of the server.
#[derive(Clone)]
pub struct Maker {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The git mirrors.
    pub mirrors: Mirrors,
    /// Seals the sensitive values frozen into a release.
    pub keyring: Arc<Keyring>,
    /// How long to wait for the mirror's fetch before answering
    /// [`CreateError::FetchPending`].
    pub fetch_budget: Duration,
}

impl Maker {
    /// Makes a release of `project` by hand and queues its deployments.
    pub async fn create(
        &self,
        project: &Project,
        request: ReleaseRequest,
    ) -> Result<Created, CreateError> {
        let (mirror, commit, branch) = self
            .locate(project, request.branch, request.commit.as_deref())
            .await?;
        let process = Process::from_takofile(read_takofile(&mirror, &commit).await?, &commit)
            .map_err(|error| match error {
                ReleaseError::Invalid { diagnostics } => CreateError::InvalidTakofile {
                    commit: short_commit(&commit).to_owned(),
                    diagnostics,
                },
                other => other.into(),
            })?;

        // Every environment must accept the release before anything is kept.
        let mut deploy_to: Vec<String> = Vec::with_capacity(request.deploy_to.len());
        for environment in request.deploy_to {
            if !deploy_to
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&environment))
            {
                deploy_to.push(environment);
            }
        }
        for environment in &deploy_to {
            crate::policy::check(
                self.store.as_ref(),
                project.id,
                environment,
                branch.as_deref(),
            )
            .await?;
        }
        // The lifecycle of the default branch: a new release has succeeded
        // nowhere, so only phases without Requires take it at once.
        let lifecycle = if deploy_to.is_empty() {
            None
        } else {
            crate::lifecycle::from_mirror(&mirror)
                .await
                .map_err(|e| CreateError::Lifecycle(e.to_string()))?
        };
        let now = chrono::Utc::now();
        let mut targets = Vec::with_capacity(deploy_to.len());
        for environment in &deploy_to {
            let admitted = crate::lifecycle::gate(lifecycle.as_ref(), environment, &[], now)
                .map_err(|refusal| CreateError::Lifecycle(refusal.to_string()))?;
            // A frozen environment refuses a deployment made by hand.
            if let Some(active) =
                crate::freezes::active(self.store.as_ref(), project.id, &admitted.environment, now)
                    .await?
            {
                return Err(CreateError::Lifecycle(format!(
                    "{} is frozen: {}; nothing was created: deploy after it ends, or create the release without --deploy-to and deploy it with --override-freeze (admins)",
                    admitted.environment,
                    active.describe()
                )));
            }
            targets.push(tako_store::DeploymentTarget {
                environment: admitted.environment,
                approval: admitted.approval,
                created_by: Some(request.by.clone()),
            });
        }

        let from = match &branch {
            Some(branch) => format!("branch {branch} at {}", short_commit(&commit)),
            None => format!("commit {}", short_commit(&commit)),
        };
        let notes = request
            .notes
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("Created by {} from {from}", request.created_by));
        let origin = Origin {
            commit,
            branch,
            pusher: None,
            notes,
            environment: deploy_to.first().cloned().unwrap_or_default(),
            version: request.version,
        };
        let new = build(
            self.store.as_ref(),
            &self.keyring,
            project,
            &mirror,
            process,
            origin,
        )
        .await?;
        let number = new.number.clone();
        // The release and its deployments in one transaction: a failure
        // keeps neither.
        let (release, deployments) = match self
            .store
            .create_release_with_deployments(new, &targets)
            .await
        {
            Ok(created) => created,
            // Another release took the number meanwhile.
            Err(StoreError::Conflict { .. }) => {
                return Err(ReleaseError::Exists { number }.into());
            }
            Err(other) => return Err(other.into()),
        };
        Ok(Created {
            release,
            deployments,
        })
    }

    /// The mirror, brought up to date, and the commit and branch a release
    /// of `branch` and/or `commit` would be made from (default: the default
    /// branch's head); the branch is the one environment policies match.
    pub async fn locate(
        &self,
        project: &Project,
        branch: Option<String>,
        commit: Option<&str>,
    ) -> Result<(Mirror, String, Option<String>), CreateError> {
        let repository = project.repository_url.clone();
        let commit_asked = commit.map(check_commit).transpose()?;
        if let Some(branch) = &branch {
            check_branch(branch)?;
        }
        // Branches are always brought up to date (a branch head, or whether
        // a commit is in a branch's history, must not come from a stale
        // mirror); a full commit id still missing afterwards is asked for by
        // id, as for a push (a commit on no branch).
        let deadline = tokio::time::Instant::now() + self.fetch_budget;
        let mut mirror = self.fetch(project, None, deadline).await?;
        if let Some(full) = commit_asked
            .as_deref()
            .filter(|c| c.len() == 40 || c.len() == 64)
            && mirror.resolve(full).await.ok().flatten().is_none()
        {
            mirror = self.fetch(project, Some(full), deadline).await?;
        }
        let git = |source| CreateError::Mirror {
            repository: repository.clone(),
            source,
        };

        // The commit, and the branch it is recorded with (environment
        // policies match that branch).
        let (commit, branch) = match (commit_asked, branch) {
            (Some(asked), branch) => {
                let commit = mirror
                    .resolve(&asked)
                    .await
                    .ok()
                    .flatten()
                    .filter(|id| id.starts_with(&asked))
                    .ok_or_else(|| CreateError::UnknownCommit {
                        commit: asked.clone(),
                        repository: repository.clone(),
                    })?;
                let branch = match branch {
                    Some(branch) => {
                        branch_head(&mirror, &branch, &repository).await?;
                        if !mirror
                            .contains(&branch_ref(&branch), &commit)
                            .await
                            .map_err(git)?
                        {
                            return Err(CreateError::NotOnBranch {
                                commit: asked,
                                branch,
                            });
                        }
                        Some(branch)
                    }
                    // A commit of the default branch's history is recorded
                    // with it; any other with no branch.
                    None => match mirror.default_branch().await.map_err(git)? {
                        Some(default)
                            if mirror
                                .contains(&branch_ref(&default), &commit)
                                .await
                                .map_err(git)? =>
                        {
                            Some(default)
                        }
                        _ => None,
                    },
                };
                (commit, branch)
            }
            (None, Some(branch)) => (
                branch_head(&mirror, &branch, &repository).await?,
                Some(branch),
            ),
            (None, None) => {
                let default = mirror.default_branch().await.map_err(git)?.ok_or_else(|| {
                    CreateError::NoDefaultBranch {
                        repository: repository.clone(),
                    }
                })?;
                let head = mirror
                    .resolve(&branch_ref(&default))
                    .await
                    .map_err(git)?
                    .ok_or_else(|| CreateError::NoDefaultBranch {
                        repository: repository.clone(),
                    })?;
                (head, Some(default))
            }
        };

        Ok((mirror, commit, branch))
    }

    /// Fetches the project's mirror (with `want`, a full commit id, that
    /// commit too) in a task of its own: when it is not done by `deadline`,
    /// it goes on while the caller gets [`CreateError::FetchPending`].
    async fn fetch(
        &self,
        project: &Project,
        want: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<Mirror, CreateError> {
        let repository = project.repository_url.clone();
        let mirrors = self.mirrors.clone();
        let credentials = crate::repository::credentials_of(project);
        let want = want.map(str::to_owned);
        let url = repository.clone();
        let task = tokio::spawn(async move {
            mirrors
                .fetch(&url, credentials.as_ref(), want.as_deref())
                .await
        });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(Ok(mirror))) => Ok(mirror),
            Ok(Ok(Err(GitError::UnknownRevision { rev, .. }))) => Err(CreateError::UnknownCommit {
                commit: rev,
                repository,
            }),
            Ok(Ok(Err(source))) => Err(CreateError::Fetch { repository, source }),
            Ok(Err(join)) => Err(CreateError::Fetch {
                repository,
                source: GitError::Io {
                    context: "the fetch task ended abnormally".to_owned(),
                    source: std::io::Error::other(join.to_string()),
                },
            }),
            Err(_) => {
                tracing::warn!(repository = %repository, "fetch still running after the request's budget; it goes on");
                Err(CreateError::FetchPending { repository })
            }
        }
    }
}

fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// The head of `branch`, or [`CreateError::UnknownBranch`].
async fn branch_head(
    mirror: &Mirror,
    branch: &str,
    repository: &str,
) -> Result<String, CreateError> {
    mirror
        .resolve(&branch_ref(branch))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| CreateError::UnknownBranch {
            branch: branch.to_owned(),
            repository: repository.to_owned(),
        })
}

/// A commit id as asked for: 7 to 64 hex digits, lowercased.
fn check_commit(commit: &str) -> Result<String, CreateError> {
    let commit = commit.trim();
    if (7..=64).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(commit.to_ascii_lowercase())
    } else {
        Err(CreateError::Input(format!(
            "commit {commit:?} is not a commit id: give at least 7 hexadecimal digits"
        )))
    }
}

/// A branch name as git could have it (`main`, `release/1.2`).
fn check_branch(branch: &str) -> Result<(), CreateError> {
    let bad = branch.is_empty()
        || branch.len() > 255
        || branch.starts_with('-')
        || branch.starts_with('/')
        || branch.ends_with('/')
        || branch.contains("..")
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err(CreateError::Input(format!(
            "branch {branch:?} is not a valid branch name"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn commit_ids_and_branch_names_are_checked() {
        assert_eq!(check_commit(" ABCDEF1 ").unwrap(), "abcdef1");
        assert!(check_commit("abc12").is_err());
        assert!(check_commit("main").is_err());
        assert!(check_commit(&"a".repeat(65)).is_err());
        for good in ["main", "release/1.2", "feature/x-y_z"] {
            assert!(check_branch(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "a..b", "x:y", "/x", "x/", "a\nb", "a*"] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_takofile_without_steps_or_with_errors_is_no_process() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            Process::from_takofile(None, commit)
                .unwrap_err()
                .to_string(),
            "no takofile in commit 0123456"
        );
        let no_steps = Process::from_takofile(
            Some(("takofile.yml".to_owned(), "Project: Demo\n".to_owned())),
            commit,
        )
        .unwrap_err();
        assert!(
            matches!(no_steps, ReleaseError::NoSteps { .. }),
            "{no_steps}"
        );
        let invalid = Process::from_takofile(
            Some((
                "takofile.yml".to_owned(),
                "Project: Demo\nStepz: []\n".to_owned(),
            )),
            commit,
        )
        .unwrap_err();
        let ReleaseError::Invalid { diagnostics } = &invalid else {
            panic!("{invalid}");
        };
        assert!(
            diagnostics[0].starts_with("takofile.yml:2:1: error:"),
            "{diagnostics:?}"
        );
    }
}
