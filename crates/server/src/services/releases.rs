//! Releases made by hand (Octopus's "Create release"): the request checked,
//! then [`crate::releases::Maker`] makes it on the path a push takes, and
//! each reason it was not made becomes a [`ServiceError`] that says what to
//! do; a plan of one ([`Services::plan`], [`Services::plan_delivery`])
//! takes the same path and makes nothing. [`frozen_steps`] reads a release's frozen process back for showing.

use tako_git::GitError;
use tako_store::Release;
use tako_takofile::Step;

use super::{Principal, ServiceError, ServiceResult, Services, check_name};
use crate::plans::{DeliveryPlan, PlanRequest, Planned};
use crate::releases::{CreateError, Created, Maker, ReleaseError, ReleaseRequest};

/// The longest release notes accepted.
const MAX_NOTES_CHARS: usize = 16 * 1024;
/// The most environments one request may deploy to.
const MAX_DEPLOY_TO: usize = 20;

/// A release asked for by hand; empty strings count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewReleaseInput {
    /// The number; `None` computes it as a push would.
    pub version: Option<String>,
    /// Build from this branch's head (default: the default branch).
    pub branch: Option<String>,
    /// Build from this commit.
    pub commit: Option<String>,
    /// The notes.
    pub notes: Option<String>,
    /// Environments to queue deployments to, each checked first.
    pub deploy_to: Vec<String>,
}

/// A plan asked for; empty strings count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInput {
    /// The environment.
    pub environment: String,
    /// The branch (default: the default branch).
    pub branch: Option<String>,
    /// The commit (default: the branch's head).
    pub commit: Option<String>,
}

/// The steps of a release's frozen process (its takofile snapshot), each
/// with where it runs (`Roles`, `MaxParallelism`, `WhenNoAgents`,
/// `SkipOfflineAgents`); `None` when the snapshot has no steps or no
/// longer reads (a release frozen by another version of Tako).
pub fn frozen_steps(release: &Release) -> Option<Vec<Step>> {
    crate::releases::parse_takofile("takofile.yml", &release.takofile)
        .ok()?
        .steps
}

impl Services {
    /// What a release of a branch or commit would do in `environment` now
    /// (journey.md §4): nothing is created, nothing runs, no secret is
    /// shown (admin or deployer: it fetches the repository).
    pub async fn plan(
        &self,
        who: &Principal,
        project: &str,
        input: PlanInput,
    ) -> ServiceResult<Planned> {
        who.require_deployer("ask for plans: it needs the admin or deployer role")?;
        check_name("environment", &input.environment)?;
        let given =
            |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let project = self.project_named(project).await?;
        let request = PlanRequest {
            environment: input.environment.trim().to_owned(),
            branch: given(input.branch),
            commit: given(input.commit),
            by: who.name.clone(),
        };
        let planned = crate::plans::plan(&self.maker(), &project, request)
            .await
            .map_err(|e| create_error(e, &project.repository_url))?;
        tracing::info!(project = %project.name, environment = %planned.environment,
            commit = %planned.commit, by = %who.name, "plan made");
        Ok(planned)
    }

    /// What the push of a stored delivery would do now (admin or deployer).
    pub async fn plan_delivery(&self, who: &Principal, id: &str) -> ServiceResult<DeliveryPlan> {
        who.require_deployer("ask for plans: it needs the admin or deployer role")?;
        let delivery = self
            .store
            .get_delivery(&tako_store::DeliveryId(id.to_owned()))
            .await?;
        let Some(project) = delivery.project else {
            return Err(ServiceError::Conflict(format!(
                "delivery {id} matched no project (yet): register its repository as a project, or wait until it is processed"
            )));
        };
        let project = self.store.get_project(project).await?;
        let planned = crate::plans::plan_delivery(&self.maker(), &project, &delivery)
            .await
            .map_err(|e| create_error(e, &project.repository_url))?;
        tracing::info!(project = %project.name, delivery = %id, by = %who.name, "delivery plan made");
        Ok(planned)
    }

    fn maker(&self) -> Maker {
        Maker {
            store: self.store.clone(),
            mirrors: self.mirrors.clone(),
            keyring: self.keys.keyring.clone(),
            fetch_budget: self.fetch_budget,
        }
    }

    /// Creates a release of `project` from the head of a branch or from a
    /// commit, freezing that commit's process and the project's variables
    /// as a push would, and queues its deployments (admin or deployer).
    pub async fn create_release(
        &self,
        who: &Principal,
        project: &str,
        input: NewReleaseInput,
    ) -> ServiceResult<Created> {
        who.require_deployer("create releases: it needs the admin or deployer role")?;
        let request = request(input, &who.name)?;
        let project = self.project_named(project).await?;
        let created = self
            .maker()
            .create(&project, request)
            .await
            .map_err(|e| create_error(e, &project.repository_url))?;
        if !created.deployments.is_empty() {
            self.deployments_queued.notify_one();
        }
        tracing::info!(project = %project.name, release = %created.release.number,
            commit = %created.release.commit, deployments = created.deployments.len(),
            by = %who.name, "release created by hand");
        Ok(created)
    }
}

/// The request, checked: names as names, empty strings as absent.
fn request(input: NewReleaseInput, created_by: &str) -> ServiceResult<ReleaseRequest> {
    let given =
        |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let version = given(input.version);
    if let Some(version) = &version {
        check_name("version", version)?;
        if version.chars().any(char::is_whitespace) {
            return Err(ServiceError::invalid("version must not contain spaces"));
        }
    }
    if input
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
    {
        return Err(ServiceError::invalid(format!(
            "notes are longer than {MAX_NOTES_CHARS} characters"
        )));
    }
    if input.deploy_to.len() > MAX_DEPLOY_TO {
        return Err(ServiceError::invalid(format!(
            "deploy_to names more than {MAX_DEPLOY_TO} environments"
        )));
    }
    let mut deploy_to = Vec::with_capacity(input.deploy_to.len());
    for environment in input.deploy_to {
        check_name("environment", &environment)?;
        deploy_to.push(environment.trim().to_owned());
    }
    Ok(ReleaseRequest {
        version,
        branch: given(input.branch),
        commit: given(input.commit),
        notes: input.notes,
        deploy_to,
        created_by: format!("{created_by} via the API"),
        by: created_by.to_owned(),
    })
}

/// What to tell the caller for each reason a release was not made.
fn create_error(error: CreateError, repository: &str) -> ServiceError {
    match error {
        error @ (CreateError::Input(_)
        | CreateError::UnknownCommit { .. }
        | CreateError::UnknownBranch { .. }
        | CreateError::NoDefaultBranch { .. }
        | CreateError::NotOnBranch { .. }) => ServiceError::invalid(error.to_string()),
        CreateError::Policy(error) => ServiceError::from(error),
        CreateError::Lifecycle(message) => ServiceError::Conflict(message),
        CreateError::InvalidTakofile {
            commit,
            diagnostics,
        } => ServiceError::Invalid {
            message: format!("the takofile at commit {commit} is invalid"),
            detail: Some(diagnostics.join("\n")),
        },
        CreateError::FetchPending { .. } => ServiceError::Upstream {
            retry: true,
            message: error.to_string(),
        },
        CreateError::Fetch { source, .. } => fetch_error(&source, repository),
        CreateError::Release(error) => release_error(error),
        CreateError::Mirror { .. } => ServiceError::internal(error),
        CreateError::Store(error) => ServiceError::from(error),
    }
}

/// A failed fetch: what the remote said when it is about the remote, else
/// a pointer to the server's log (never internals).
fn fetch_error(source: &GitError, repository: &str) -> ServiceError {
    tracing::warn!(repository, error = %source, "fetch for a release failed");
    let upstream = |retry, message| ServiceError::Upstream { retry, message };
    match source {
        GitError::AuthenticationFailed { .. } => upstream(
            false,
            format!(
                "cannot fetch {repository}: {source}; check the project's repository token, then retry"
            ),
        ),
        GitError::Unreachable { .. } => upstream(
            false,
            format!(
                "cannot fetch {repository}: {source}; check that the repository exists and the server can reach it, then retry"
            ),
        ),
        GitError::InvalidUrl { .. } => ServiceError::invalid(format!(
            "the project's repository URL cannot be fetched ({source}); correct the project's repository"
        )),
        GitError::Timeout { .. } => upstream(
            true,
            format!("fetching {repository} timed out; retry later"),
        ),
        _ => upstream(
            false,
            format!(
                "cannot fetch {repository}; the server's log says why (check the repository URL, then retry)"
            ),
        ),
    }
}

fn release_error(error: ReleaseError) -> ServiceError {
    match error {
        ReleaseError::Exists { number } => ServiceError::Conflict(format!(
            "release {number} already exists in this project: choose another version, or leave it out for the next number"
        )),
        error @ (ReleaseError::Invalid { .. }
        | ReleaseError::NoTakofile { .. }
        | ReleaseError::NoSteps { .. }
        | ReleaseError::Manifest(_)
        | ReleaseError::Version(_)) => ServiceError::invalid(error.to_string()),
        ReleaseError::Read {
            source: source @ (GitError::NotText { .. } | GitError::TooLarge { .. }),
            ..
        } => ServiceError::invalid(format!("the takofile cannot be read: {source}")),
        ReleaseError::Store(error) => ServiceError::from(error),
        error @ (ReleaseError::Read { .. } | ReleaseError::Seal(_)) => {
            ServiceError::internal(error)
        }
    }
}
