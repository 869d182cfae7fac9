//! The router: turns each stored delivery into a release and a queued
//! deployment, or records why not.
//!
//! Runs in the background, survives restarts (deliveries are claimed from the
//! store with a lease, so one left half-done by a crash is taken again) and is
//! idempotent per delivery: the release, the deployment and the delivery's
//! outcome are written in one transaction.
//!
//! Routing (`Project`, `Mappings`) is read from the takofile at the head of the
//! repository's default branch; the process (`Steps`, `Variables`, `Version`,
//! `Manifest`) from the pushed commit (takofile.md §3). So a push to a feature
//! branch cannot route itself into Production by editing its own takofile.
//! The release itself is made by [`crate::releases`], the path releases made
//! by hand through the API take too.
//!
//! A push whose ref the last processed push (a delivery that queued
//! something) already moved to the same commit is a `Duplicate`: the same
//! push arriving twice under different delivery ids, as the missed-push
//! sweep's recovered delivery (`crate::sweep`) and the forge's late one do.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tako_core::system::short_commit as short;
use tako_git::{Mirror, Mirrors};
use tako_github::{Event, Push};
use tako_store::{
    ClaimedDelivery, DeliveryCompletion, DeliveryId, NewProject, NodeId, Project, Store, StoreError,
};
use tako_takofile::Takofile;
use tokio::sync::Notify;

use crate::octopus::Decision;
use crate::releases::{self, Origin, Process, ReleaseError};

/// How often an idle router looks for deliveries it was not woken for
/// (another node's expired claims, a lost wake-up).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How many deliveries the router claims at once: a burst is claimed, and
/// its outcomes recorded, a batch per commit rather than two commits per
/// delivery.
const CLAIM_BATCH: usize = 32;

/// While a backlog of deliveries waits (the last claim was a full batch)
/// and pushes keep arriving (one within [`INTAKE_BUSY`]), the router pauses
/// this long before each batch: accepting a push (the forge waits for
/// the answer) comes before routing it, and the router, which would
/// otherwise take the CPU and the store's writer the intake needs, still
/// routes a batch per pause and catches up when the flood ends.
const YIELD_TO_INTAKE: Duration = Duration::from_millis(100);

/// The intake counts as busy when a push arrived this recently.
const INTAKE_BUSY: Duration = Duration::from_millis(10);

/// How long a routed delivery's outcome may wait for the rest of its batch
/// before it is recorded: pushes that need a fetch each are not held back by
/// the ones behind them.
const RECORD_WITHIN: Duration = Duration::from_millis(20);

/// The outcomes routed and not yet recorded, and since when the oldest has
/// waited.
#[derive(Default)]
struct Outcomes {
    completions: Vec<(DeliveryId, DeliveryCompletion)>,
    oldest: Option<tokio::time::Instant>,
}

impl Outcomes {
    fn push(&mut self, id: DeliveryId, completion: DeliveryCompletion) {
        self.oldest.get_or_insert_with(tokio::time::Instant::now);
        self.completions.push((id, completion));
    }

    fn waited(&self, limit: Duration) -> bool {
        self.oldest.is_some_and(|oldest| oldest.elapsed() >= limit)
    }

    fn take(&mut self) -> Vec<(DeliveryId, DeliveryCompletion)> {
        self.oldest = None;
        std::mem::take(&mut self.completions)
    }
}

/// The projects a batch's repositories belong to (`None`: no project), by
/// repository URL, looked up once per batch: a burst of pushes to one
/// repository asks the store once, not twice per push.
pub type ProjectsSeen = std::collections::HashMap<String, Option<Project>>;

/// What the router needs.
#[derive(Clone)]
pub struct Router {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The git mirrors.
    pub mirrors: Mirrors,
    /// This node's name.
    pub node: NodeId,
    /// How long a claimed delivery is ours before another node may take it
    /// (`deployment_lease`: a dead node's deliveries are routed elsewhere
    /// within the lease and a poll).
    pub lease: Duration,
    /// Woken when deliveries are stored.
    pub deliveries_stored: Arc<Notify>,
    /// Notified when a deployment is queued.
    pub deployments_queued: Arc<Notify>,
    /// Register unknown repositories from their takofile's `Project`.
    pub auto_register_projects: bool,
    /// Seals the sensitive values frozen into a release.
    pub keyring: Arc<tako_store::Keyring>,
    /// The Octopus servers pushes may be forwarded to.
    pub forwarders: crate::octopus::Forwarders,
    /// When this node's intake last received a push: the router gives way
    /// to a flood of them ([`YIELD_TO_INTAKE`]).
    pub intake: crate::intake::IntakeActivity,
}

impl Router {
    /// Processes deliveries until the task is dropped: claims a batch,
    /// routes each, and records their outcomes together (see
    /// [`Outcomes`]).
    pub async fn run(self) {
        // Whether the last claim was a full batch: more are waiting.
        let mut backlog = false;
        loop {
            if backlog
                && self
                    .intake
                    .quiet_for()
                    .is_some_and(|quiet| quiet < INTAKE_BUSY)
            {
                tokio::time::sleep(YIELD_TO_INTAKE).await;
            }
            let claimed = match self
                .store
                .claim_pending_deliveries(&self.node, self.lease, CLAIM_BATCH)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(%error, "cannot claim deliveries");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            backlog = claimed.len() == CLAIM_BATCH;
            if claimed.is_empty() {
                // Wait for new deliveries, but look again now and then:
                // another node's expired claims become ours to take.
                let _ = tokio::time::timeout(IDLE_POLL, self.deliveries_stored.notified()).await;
                continue;
            }
            self.route_batch(claimed).await;
        }
    }

    /// Routes a claimed batch in order. A delivery that queues a release or
    /// a deployment is recorded at once (the next one's duplicate check and
    /// release numbers read it); the others (ignored, failed, duplicate)
    /// when the batch is done, or sooner when one has waited
    /// [`RECORD_WITHIN`]. Past half the lease the rest of the batch is handed
    /// back, so no claim runs out while this node still holds it. Each
    /// repository's project is looked up once per batch ([`ProjectsSeen`]).
    async fn route_batch(&self, claimed: Vec<ClaimedDelivery>) {
        let started = tokio::time::Instant::now();
        let mut outcomes = Outcomes::default();
        let mut seen = ProjectsSeen::new();
        let mut claimed = claimed.into_iter();
        while let Some(delivery) = claimed.next() {
            let id = delivery.delivery.id.clone();
            self.record_takeover(&delivery).await;
            match self.route(delivery, &mut seen).await {
                Ok(completion) => {
                    // What the next routing reads (the ref's last queued
                    // push, the releases) must be committed before it.
                    let queues = completion.queues_a_deployment();
                    outcomes.push(id, completion);
                    if queues {
                        self.record(&mut outcomes).await;
                    }
                }
                Err(error) => {
                    // Nothing is recorded for it: the delivery is taken again
                    // once the store answers.
                    tracing::warn!(delivery = %id.0, %error,
                        "the store is unavailable: the delivery will be routed again");
                    self.record(&mut outcomes).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    self.hand_back_claims("the store failed while routing them")
                        .await;
                    return;
                }
            }
            if outcomes.waited(RECORD_WITHIN) {
                self.record(&mut outcomes).await;
            }
            if !claimed.as_slice().is_empty() && started.elapsed() > self.lease / 2 {
                self.record(&mut outcomes).await;
                self.hand_back_claims("routing their batch took past half the lease")
                    .await;
                return;
            }
        }
        self.record(&mut outcomes).await;
    }

    /// Records the outcomes routed so far in one transaction.
    async fn record(&self, outcomes: &mut Outcomes) {
        let completions = outcomes.take();
        if completions.is_empty() {
            return;
        }
        let ids: Vec<_> = completions.iter().map(|(id, _)| id.clone()).collect();
        let queued: Vec<bool> = completions
            .iter()
            // The scheduler runs each (a forward too: it hands that one to
            // the Octopus forwarder).
            .map(|(_, completion)| completion.queues_a_deployment())
            .collect();
        match self.store.complete_deliveries(completions).await {
            Ok(results) => {
                let mut any_queued = false;
                for ((id, queued), result) in ids.iter().zip(queued).zip(results) {
                    match result {
                        Ok(outcome) => {
                            tracing::info!(delivery = %id.0, ?outcome, "delivery processed");
                            any_queued |= queued;
                        }
                        Err(error) => {
                            tracing::error!(delivery = %id.0, %error, "cannot record a delivery's outcome");
                        }
                    }
                }
                if any_queued {
                    self.deployments_queued.notify_one();
                }
            }
            Err(error) => {
                // Still claimed: taken again (here or on another node) when
                // the claims run out.
                tracing::error!(deliveries = ids.len(), %error, "cannot record the deliveries' outcomes");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Hands back this node's claims on deliveries it has not routed, so they
    /// are taken again at once rather than when their leases run out; `why`
    /// goes to the log.
    async fn hand_back_claims(&self, why: &str) {
        match self.store.release_delivery_claims(&self.node).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "handed back {count} delivery claims: {why}"),
            Err(error) => {
                tracing::warn!(%error, "cannot release the deliveries' claims; they are taken again when their leases end");
            }
        }
    }

    /// A delivery whose claim another node let run out (it died or was cut
    /// off while routing it) says so in its warnings, naming both nodes.
    async fn record_takeover(&self, claimed: &ClaimedDelivery) {
        let Some(previous) = claimed
            .previous_claim
            .as_ref()
            .filter(|previous| **previous != self.node)
        else {
            return;
        };
        let id = &claimed.delivery.id;
        let note = format!(
            "node {previous} stopped renewing its claim before routing this delivery; node {} took it over",
            self.node
        );
        tracing::warn!(delivery = %id.0, %previous, "taking over a delivery whose claim ran out");
        if let Err(error) = self.store.add_delivery_warnings(id, &[note]).await {
            tracing::warn!(delivery = %id.0, %error, "cannot record the takeover in the delivery's warnings");
        }
    }

    /// Decides what one delivery becomes. `Err` is a store outage: nothing
    /// was decided, and the delivery must be routed again later.
    pub async fn route(
        &self,
        claimed: ClaimedDelivery,
        seen: &mut ProjectsSeen,
    ) -> Result<DeliveryCompletion, StoreError> {
        match self.decide(claimed, seen).await {
            Ok(completion) => Ok(completion),
            Err(RouteError::Unavailable(error)) => Err(error),
            Err(RouteError::Failed { project, reason }) => Ok(failed(project, reason)),
        }
    }

    async fn decide(
        &self,
        claimed: ClaimedDelivery,
        seen: &mut ProjectsSeen,
    ) -> Result<DeliveryCompletion, RouteError> {
        let delivery = claimed.delivery.id.clone();
        let body = match &claimed.body {
            Ok(body) => body,
            Err(unreadable) => return Ok(failed(None, unreadable.to_string())),
        };
        let push =
            match tako_github::parse_event(&claimed.delivery.event, Some("application/json"), body)
            {
                Ok(Event::Push(push)) => push,
                Ok(other) => {
                    return Ok(ignored(None, other.ignored_reason().unwrap_or_default()));
                }
                Err(error) => {
                    return Ok(failed(
                        None,
                        format!("the stored payload is not a push: {error}"),
                    ));
                }
            };
        if let Some(reason) = push.skip_reason() {
            return Ok(ignored(None, reason));
        }
        let project = match self
            .project_for(&push, seen)
            .await
            .map_err(RouteError::store(None))?
        {
            Some(project) => project,
            None if self.auto_register_projects => {
                let project = self.register(&push).await?;
                seen.insert(push.repository.clone_url.clone(), Some(project.clone()));
                project
            }
            None => {
                return Ok(ignored(
                    None,
                    format!(
                        "project not registered for repository {}",
                        push.repository.full_name
                    ),
                ));
            }
        };
        let project_id = Some(project.id);
        self.release_for(&project, &push, &delivery)
            .await
            .map_err(|error| error.of(project_id))
    }

    async fn project_for(
        &self,
        push: &Push,
        seen: &mut ProjectsSeen,
    ) -> Result<Option<Project>, StoreError> {
        for url in [&push.repository.clone_url, &push.repository.html_url] {
            if url.is_empty() {
                continue;
            }
            let project = match seen.get(url) {
                Some(known) => known.clone(),
                None => {
                    let found = self.store.find_project_by_repository(url).await?;
                    seen.insert(url.clone(), found.clone());
                    found
                }
            };
            if project.is_some() {
                return Ok(project);
            }
        }
        Ok(None)
    }

    /// Registers the pushed repository as a project named by the takofile
    /// that routes it (`auto_register_projects`).
    async fn register(&self, push: &Push) -> Result<Project, RouteError> {
        let url = &push.repository.clone_url;
        let commit = push
            .commit_id()
            .ok_or_else(|| RouteError::failed("the push names no commit"))?;
        let (mirror, default_branch) = self.fetch(url, None, push, commit).await?;
        let default_ref = format!("refs/heads/{default_branch}");
        let routing = match read_takofile(&mirror, &default_ref).await? {
            Some(found) => found,
            None if push.branch() == Some(default_branch.as_str()) => {
                read_takofile(&mirror, commit).await?.ok_or_else(|| {
                    RouteError::failed(format!(
                        "project not registered, and commit {} has no takofile",
                        short(commit)
                    ))
                })?
            }
            None => {
                return Err(RouteError::failed(format!(
                    "project not registered, and {default_branch} has no takofile"
                )));
            }
        };
        let takofile = parse(&routing.0, &routing.1)?;
        let project = self
            .store
            .create_project(NewProject {
                name: takofile.project.clone(),
                repository_url: url.clone(),
                webhook_secret: None,
                repository_token: None,
            })
            .await
            .map_err(|e| match e {
                e @ StoreError::Unavailable { .. } => RouteError::Unavailable(e),
                e => {
                    RouteError::failed(format!("cannot register project {}: {e}", takofile.project))
                }
            })?;
        tracing::info!(project = %project.name, repository = %url, "project registered from its takofile");
        Ok(project)
    }

    async fn release_for(
        &self,
        project: &Project,
        push: &Push,
        delivery: &tako_store::DeliveryId,
    ) -> Result<DeliveryCompletion, RouteError> {
        let Some(commit) = push.commit_id() else {
            return Ok(ignored(
                Some(project.id),
                "the push names no commit".to_owned(),
            ));
        };
        // The same push through another delivery (the sweep's recovered one
        // and the forge's late one, in either order): the ref's last
        // processed push already moved it here, so nothing more is made.
        if self
            .store
            .last_processed_head(project.id, &push.git_ref)
            .await?
            .as_deref()
            == Some(push.after.as_str())
        {
            return Ok(DeliveryCompletion::Duplicate {
                project: Some(project.id),
            });
        }
        let credentials = crate::repository::credentials_of(project);
        let (mirror, default_branch) = self
            .fetch(&project.repository_url, credentials.as_ref(), push, commit)
            .await?;

        // Routing from the default branch; a brand-new repository's pushed
        // takofile routes only a push to the default branch itself.
        let default_ref = format!("refs/heads/{default_branch}");
        let pushed = read_takofile(&mirror, commit).await?;
        let routing_source = match read_takofile(&mirror, &default_ref).await? {
            Some(found) => found,
            None if push.branch() == Some(default_branch.as_str()) => match &pushed {
                Some(found) => found.clone(),
                None => {
                    return Ok(ignored(
                        Some(project.id),
                        format!("no takofile on {default_branch}"),
                    ));
                }
            },
            None => {
                return Ok(ignored(
                    Some(project.id),
                    format!(
                        "no takofile on the default branch {default_branch}, which routes every push"
                    ),
                ));
            }
        };
        let routing = parse(&routing_source.0, &routing_source.1)?;
        let (environment, target) = match (push.branch(), push.tag()) {
            (Some(branch), _) => match routing.environment_for_branch(branch) {
                Some(environment) => (environment.to_owned(), format!("branch {branch}")),
                None => {
                    return Ok(ignored(
                        Some(project.id),
                        format!("no mapping for branch {branch}"),
                    ));
                }
            },
            (None, Some(tag)) => match routing.environment_for_tag(tag) {
                Some(environment) => (environment.to_owned(), format!("tag {tag}")),
                None => {
                    return Ok(ignored(
                        Some(project.id),
                        format!("no mapping for tag {tag}"),
                    ));
                }
            },
            _ => {
                return Ok(ignored(
                    Some(project.id),
                    format!("ref {} is neither a branch nor a tag", push.git_ref),
                ));
            }
        };
        tracing::debug!(project = %project.name, %environment, %target, "routed");
        // The server's environment policy beats whatever the takofile maps.
        let pushed_name = push.branch().or(push.tag());
        crate::policy::check(self.store.as_ref(), project.id, &environment, pushed_name).await?;

        // Takofukku's own mode: the default branch's `Server`, when
        // allow-listed, sends the push to Octopus (octopus-forward.md §1).
        match self.forwarders.decide(routing.server.as_deref()) {
            Decision::Forward(server) => {
                let forward = Forwarded {
                    project,
                    push,
                    delivery,
                    commit,
                    environment,
                    create_release: routing.create_release,
                    octopus_project: routing.project.clone(),
                    server,
                };
                return self.forward(forward, &mirror, pushed).await;
            }
            Decision::Ignored(warning) => {
                tracing::warn!(delivery = %delivery.0, %warning, "takofile Server ignored");
                self.store
                    .add_delivery_warnings(delivery, &[warning])
                    .await?;
            }
            Decision::Tako => {}
        }

        let process = Process::from_takofile(pushed, commit)?;
        let lifecycle = routing.lifecycle.as_ref();
        if !routing.create_release {
            // Takofukku's CreateRelease: false: deploy the newest existing
            // release to the mapped environment instead of creating one.
            let latest = self.store.latest_release(project.id).await?;
            return match latest {
                Some(release) => {
                    let succeeded =
                        crate::lifecycle::succeeded_in(self.store.as_ref(), &release).await?;
                    let admitted =
                        crate::lifecycle::gate(lifecycle, &environment, &succeeded, Utc::now())
                            .map_err(|refusal| RouteError::failed(refusal.to_string()))?;
                    // A frozen environment holds the push's deployment.
                    let hold = crate::freezes::active(
                        self.store.as_ref(),
                        project.id,
                        &admitted.environment,
                        Utc::now(),
                    )
                    .await?
                    .is_some();
                    Ok(DeliveryCompletion::Deploy {
                        project: project.id,
                        release: release.id,
                        environment: admitted.environment,
                        approval: admitted.approval,
                        created_by: push.pusher.as_ref().map(|p| p.name.clone()),
                        hold,
                    })
                }
                None => Err(RouteError::failed(format!(
                    "CreateRelease is false, and project {} has no release to deploy yet",
                    project.name
                ))),
            };
        }

        // A new release has succeeded nowhere yet.
        let admitted = crate::lifecycle::gate(lifecycle, &environment, &[], Utc::now())
            .map_err(|refusal| {
                RouteError::failed(format!(
                    "no release made: {refusal}; map the branch to the lifecycle's first phase and promote"
                ))
            })?;
        let environment = admitted.environment;
        let origin = Origin {
            commit: commit.to_owned(),
            branch: Some(push.branch().or(push.tag()).unwrap_or_default().to_owned()),
            pusher: Some(
                push.pusher
                    .as_ref()
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
            ),
            notes: notes_of(&mirror, push, commit).await,
            environment: environment.clone(),
            version: None,
        };
        let release = releases::build(
            self.store.as_ref(),
            &self.keyring,
            project,
            &mirror,
            process,
            origin,
        )
        .await?;
        // A frozen environment holds the push's deployment until the
        // freeze ends (the release is made now all the same).
        let hold =
            crate::freezes::active(self.store.as_ref(), project.id, &environment, Utc::now())
                .await?
                .is_some();
        Ok(DeliveryCompletion::Queue {
            release,
            environment,
            approval: admitted.approval,
            hold,
        })
    }
}

/// A push going to an Octopus server.
struct Forwarded<'a> {
    project: &'a Project,
    push: &'a Push,
    delivery: &'a tako_store::DeliveryId,
    commit: &'a str,
    environment: String,
    create_release: bool,
    octopus_project: String,
    server: &'a crate::config::octopus::OctopusServer,
}

impl Router {
    /// The completion of a forwarded push: a Tako release recording the
    /// commit (numbered `octopus-<build>`: Octopus picks its own version)
    /// and a deployment of kind `octopus` whose record starts with what the
    /// push asks. The pushed takofile's keys that only Tako's own process
    /// uses are ignored, each with a warning on the delivery.
    async fn forward(
        &self,
        forward: Forwarded<'_>,
        mirror: &Mirror,
        pushed: Option<(String, String)>,
    ) -> Result<DeliveryCompletion, RouteError> {
        let Forwarded {
            project,
            push,
            delivery,
            commit,
            environment,
            create_release,
            octopus_project,
            server,
        } = forward;
        let mut warnings = Vec::new();
        let mut source = String::new();
        if let Some((file_name, text)) = &pushed {
            source.clone_from(text);
            if let Ok(takofile) = releases::parse_takofile(file_name, text) {
                for (present, key) in [
                    (takofile.steps.is_some(), "Steps"),
                    (!takofile.variables.is_empty(), "Variables"),
                    (takofile.version.is_some(), "Version"),
                    (takofile.manifest.is_some(), "Manifest"),
                ] {
                    if present {
                        warnings.push(format!(
                            "{key} is ignored: this push is forwarded to Octopus, which runs its own process"
                        ));
                    }
                }
            }
        }
        if !warnings.is_empty() {
            self.store
                .add_delivery_warnings(delivery, &warnings)
                .await?;
        }
        let build = self.store.next_build_number(project.id).await?;
        let notes = notes_of(mirror, push, commit).await;
        let request = crate::octopus::ForwardRequest {
            delivery: delivery.0.clone(),
            project: octopus_project,
            environment: environment.clone(),
            create_release,
            notes: tako_core::octopus::release_notes(&notes, &delivery.0),
            release_posted: None,
            release_posted_packages: None,
            release_attempted: false,
            deployment_posted: false,
            following_since: None,
        };
        let record = crate::octopus::ForwardRecord::new(server, request);
        Ok(DeliveryCompletion::Forward {
            release: tako_store::NewRelease {
                project: project.id,
                number: format!("octopus-{build}"),
                notes,
                commit: commit.to_owned(),
                branch: push.branch().or(push.tag()).map(str::to_owned),
                pusher: push.pusher.as_ref().map(|p| p.name.clone()),
                takofile: source,
                variables: String::new(),
                build_number: Some(build),
            },
            environment,
            forward: record.to_json(),
        })
    }

    /// Fetches the pushed commit into the mirror; returns the mirror and
    /// the default branch: the push's, or, when the forge's payload does not
    /// name it (Bitbucket), the repository's own `HEAD`.
    async fn fetch(
        &self,
        url: &str,
        credentials: Option<&tako_git::Credentials>,
        push: &Push,
        commit: &str,
    ) -> Result<(Mirror, String), RouteError> {
        let named = push.repository.default_branch.as_str();
        let fetched = if named.is_empty() {
            self.mirrors.fetch(url, credentials, Some(commit)).await
        } else {
            self.mirrors
                .fetch_push(url, credentials, commit, push.branch(), named)
                .await
        };
        let mirror = fetched.map_err(|e| RouteError::failed(format!("cannot fetch {url}: {e}")))?;
        let default_branch = if named.is_empty() {
            mirror
                .default_branch()
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "master".to_owned())
        } else {
            named.to_owned()
        };
        Ok((mirror, default_branch))
    }
}

/// The most commits the release notes of a truncated push list.
const MAX_NOTES_COMMITS: usize = 200;

/// The release notes of a push: its own list, or, when the forge listed
/// only some of the commits (GitLab's 20, Bitbucket's 5, Gitea's feed
/// limit, or none for a tag), the commits between `before` and the pushed
/// commit read from the mirror (for a new ref, the pushed commit alone).
/// When the mirror cannot say (the old commit is gone after a force push),
/// the payload's list is kept.
async fn notes_of(mirror: &Mirror, push: &Push, commit: &str) -> String {
    if !push.truncated {
        return push.notes();
    }
    let from = Some(push.before.as_str()).filter(|b| !b.bytes().all(|c| c == b'0'));
    let max = if from.is_some() { MAX_NOTES_COMMITS } else { 1 };
    let (entries, count) = match mirror.log(from, commit, max).await {
        Ok(found) => found,
        Err(error) => {
            tracing::info!(%error, "release notes from the push's own commit list");
            return push.notes();
        }
    };
    let mut lines = Vec::with_capacity(entries.len() + 1);
    if from.is_some() && count > entries.len() {
        lines.push(format!("- … and {} earlier commits", count - entries.len()));
    }
    lines.extend(entries.into_iter().map(|entry| {
        tako_github::Commit {
            id: entry.id,
            message: entry.message,
            timestamp: None,
            url: None,
            author: tako_github::CommitAuthor {
                name: entry.author,
                email: None,
                username: None,
            },
            committer: None,
            added: Vec::new(),
            removed: Vec::new(),
            modified: Vec::new(),
        }
        .note_line()
    }));
    lines.join("\n")
}

fn ignored(project: Option<tako_store::ProjectId>, reason: String) -> DeliveryCompletion {
    DeliveryCompletion::Ignored { project, reason }
}

fn failed(project: Option<tako_store::ProjectId>, reason: String) -> DeliveryCompletion {
    DeliveryCompletion::Failed { project, reason }
}

async fn read_takofile(mirror: &Mirror, rev: &str) -> Result<Option<(String, String)>, RouteError> {
    Ok(releases::read_takofile(mirror, rev).await?)
}

fn parse(file_name: &str, source: &str) -> Result<Takofile, RouteError> {
    Ok(releases::parse_takofile(file_name, source)?)
}

/// Why a delivery did not become a release.
#[derive(Debug)]
enum RouteError {
    /// Recorded as the delivery's outcome, for people.
    Failed {
        /// The project, when known.
        project: Option<tako_store::ProjectId>,
        /// Why, as the deliveries page shows it.
        reason: String,
    },
    /// The store could not be read or written: nothing is recorded, and
    /// the delivery is routed again (a driver's text never becomes an
    /// outcome).
    Unavailable(StoreError),
}

impl RouteError {
    fn failed(reason: impl Into<String>) -> RouteError {
        RouteError::Failed {
            project: None,
            reason: reason.into(),
        }
    }

    /// A store error met while routing for `project`.
    fn store(project: Option<tako_store::ProjectId>) -> impl Fn(StoreError) -> RouteError {
        move |error| RouteError::from(error).of(project)
    }

    /// The same error, recorded against `project`.
    fn of(self, project: Option<tako_store::ProjectId>) -> RouteError {
        match self {
            RouteError::Failed { reason, .. } => RouteError::Failed { project, reason },
            other => other,
        }
    }
}

impl From<StoreError> for RouteError {
    fn from(error: StoreError) -> Self {
        match error {
            error @ StoreError::Unavailable { .. } => RouteError::Unavailable(error),
            other => RouteError::failed(format!("store: {other}")),
        }
    }
}

impl From<crate::policy::PolicyError> for RouteError {
    fn from(error: crate::policy::PolicyError) -> Self {
        match error {
            crate::policy::PolicyError::Store(error) => RouteError::from(error),
            refused => RouteError::failed(refused.to_string()),
        }
    }
}

impl From<ReleaseError> for RouteError {
    fn from(error: ReleaseError) -> Self {
        match error {
            ReleaseError::Store(error) => RouteError::from(error),
            other => RouteError::failed(other.to_string()),
        }
    }
}
