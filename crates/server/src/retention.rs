//! Retention (journey §6): the history Tako keeps is trimmed in the
//! background, every `retention_interval`, and on demand (`tako admin
//! retention run [--dry-run]`): old releases beyond the newest N per project
//! and environment, task logs, routed deliveries and audit entries past
//! their age, and finished deployments' working directories.
//!
//! The server's settings apply to every project; a project's takofile on
//! its default branch may override them (`Retention:`; read from the mirror
//! as last fetched, as the lifecycle is for display). A project whose
//! default-branch takofile is invalid or unreadable is skipped (logged and
//! named in the report) rather than trimmed by rules it did not ask for.
//!
//! The store removes at most a batch per call in one short transaction
//! ([`Store::prune`]), so the intake's writes wait behind at most one
//! batch; the pass pauses between batches. A batch's size follows how long
//! the last one took ([`BatchSize`]): about a millisecond each, whatever the
//! history's shape or the machine, since a push that arrives during one
//! waits for it. And the pass yields to the intake: while pushes arrive
//! (one within the last [`INTAKE_QUIET`]), it waits for a quiet moment, up
//! to [`YIELD_AT_MOST`] per batch, so it goes on, slowly, under a steady
//! stream of pushes too. What is never removed is the store's rule ([`Prune`]).
//! Then the freed pages go back to the file system in small steps
//! ([`Store::reclaim_space`]), sized the same way. Each pass logs what it
//! removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tako_git::Mirrors;
use tako_store::{
    DeploymentFilter, DeploymentId, DeploymentState, PageRequest, Project, ProjectId, Prune, Store,
    StoreError,
};
use tako_takofile::{KeepFor, KeepReleases, Retention as ProjectRetention};
use tokio::sync::Mutex;

use crate::intake::IntakeActivity;

/// At most this many releases removed per store call (each takes its
/// deployments, steps and logs with it).
const RELEASE_BATCH: u32 = 20;
/// At most this many task logs, deliveries or audit entries per store call.
const BATCH: u32 = 200;
/// At most this many free pages given back per store call (4 KiB each).
const RECLAIM_PAGES: u32 = 256;
/// The pause between two batches, so other writes go first.
const PAUSE: Duration = Duration::from_millis(5);
/// How long one batch should take: a push arriving meanwhile waits for it.
const BATCH_TIME: Duration = Duration::from_millis(1);
/// The intake is quiet when no push arrived for this long.
const INTAKE_QUIET: Duration = Duration::from_millis(50);
/// The longest a batch waits for the intake to be quiet.
const YIELD_AT_MOST: Duration = Duration::from_secs(1);
/// How often a waiting batch looks again.
const YIELD_STEP: Duration = Duration::from_millis(10);

/// The size of the next batch, steered by how long the last one took:
/// halved when it took over twice [`BATCH_TIME`], one more when it took
/// under half of it (between 1 and the kind's maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchSize {
    now: u32,
    max: u32,
}

impl BatchSize {
    /// Starts small (a quarter of `max`): the first batches find the size.
    fn new(max: u32) -> Self {
        let max = max.max(1);
        BatchSize {
            now: (max / 4).max(1),
            max,
        }
    }

    /// The size for the batch after one of the current size that took
    /// `took`.
    fn after(&mut self, took: Duration) -> u32 {
        if took > BATCH_TIME * 2 {
            self.now = (self.now / 2).max(1);
        } else if took < BATCH_TIME / 2 {
            self.now = (self.now + self.now / 4 + 1).min(self.max);
        }
        self.now
    }
}

/// The server's retention settings (`retention_*`, `workdir_retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// The newest releases kept per project and environment.
    pub releases: KeepReleases,
    /// How long a finished deployment's task log is kept.
    pub task_logs: KeepFor,
    /// How long a routed delivery is kept.
    pub deliveries: KeepFor,
    /// How long an audit entry is kept (server-wide only).
    pub audit_log: KeepFor,
    /// How long a finished deployment's working directory is kept.
    pub working_directories: KeepFor,
    /// How often a pass runs in the background; zero: never.
    pub interval: Duration,
}

impl RetentionSettings {
    /// The settings of a server.
    pub fn from_config(config: &crate::config::ServerConfig) -> Self {
        RetentionSettings {
            releases: config.retention_releases,
            task_logs: config.retention_task_logs,
            deliveries: config.retention_deliveries,
            audit_log: config.retention_audit_log,
            working_directories: KeepFor::For(config.workdir_retention),
            interval: config.retention_interval,
        }
    }
}

/// What one pass removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Nothing was removed: these are counts of what would be.
    pub dry_run: bool,
    /// Releases (with their deployments).
    pub releases: u64,
    /// Task logs.
    pub task_logs: u64,
    /// Deliveries.
    pub deliveries: u64,
    /// Audit entries.
    pub audit_entries: u64,
    /// Working directories.
    pub working_directories: u64,
    /// Database pages given back to the file system.
    pub pages_freed: u64,
    /// Projects left alone, with why.
    pub skipped: Vec<String>,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The store failed; what was removed before stays removed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The retention worker, shared by the background loop and the API.
#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    mirrors: Mirrors,
    work_root: PathBuf,
    settings: RetentionSettings,
    /// When this node last received a push (the pass yields to it).
    intake: IntakeActivity,
    /// One pass at a time (the background's and an admin's).
    running: Arc<Mutex<()>>,
    /// Each project's working-directory rule, from the last pass (the
    /// working directories are swept more often than the rest).
    workdir_rules: Arc<std::sync::Mutex<Vec<(ProjectId, KeepFor)>>>,
}

impl Retention {
    /// A worker over `store`, reading projects' takofiles from `mirrors` and
    /// working directories under `work_root`, yielding to the pushes
    /// `intake` records.
    pub fn new(
        store: Arc<dyn Store>,
        mirrors: Mirrors,
        work_root: PathBuf,
        settings: RetentionSettings,
        intake: IntakeActivity,
    ) -> Self {
        Retention {
            store,
            mirrors,
            work_root,
            settings,
            intake,
            running: Arc::new(Mutex::new(())),
            workdir_rules: Arc::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> RetentionSettings {
        self.settings
    }

    /// Runs a pass at start and every `interval` until the task is
    /// dropped, and between passes sweeps the working directories every
    /// half `workdir_retention` (at least every second), as the old
    /// per-deployment timer removed them; nothing when the interval is zero.
    pub async fn run(self) {
        if self.settings.interval.is_zero() {
            return;
        }
        let tick =
            self.settings
                .working_directories
                .duration()
                .map_or(self.settings.interval, |keep| {
                    (keep / 2)
                        .max(Duration::from_secs(1))
                        .min(self.settings.interval)
                });
        let mut every = tokio::time::interval(tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_pass: Option<std::time::Instant> = None;
        loop {
            every.tick().await;
            if last_pass.is_none_or(|at| at.elapsed() >= self.settings.interval) {
                last_pass = Some(std::time::Instant::now());
                if let Err(error) = self.pass(false).await {
                    tracing::warn!(%error, "retention stopped; the next pass goes on");
                }
                continue;
            }
            let rules = self
                .workdir_rules
                .lock()
                .map(|rules| rules.clone())
                .unwrap_or_default();
            let _one = self.running.lock().await;
            match self.working_directories(&rules, false).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed old working directories"),
                Err(error) => tracing::warn!(%error, "cannot sweep the working directories"),
            }
        }
    }

    /// One pass now: removes what the rules say (or counts it, with
    /// `dry_run`), logs and returns the counts.
    pub async fn pass(&self, dry_run: bool) -> Result<RetentionReport, RetentionError> {
        let _one = self.running.lock().await;
        let started = std::time::Instant::now();
        let mut report = RetentionReport {
            dry_run,
            ..RetentionReport::default()
        };
        let now = Utc::now();
        let before = |keep: KeepFor| {
            keep.duration()
                .and_then(|age| chrono::TimeDelta::from_std(age).ok())
                .map(|age| now - age)
        };
        let mut workdir_rules: Vec<(ProjectId, KeepFor)> = Vec::new();
        for project in self.store.list_projects().await? {
            let rules = match self.project_rules(&project).await {
                Ok(rules) => rules,
                Err(why) => {
                    tracing::warn!(project = %project.name, reason = %why,
                        "retention leaves this project alone");
                    report.skipped.push(format!("{}: {why}", project.name));
                    workdir_rules.push((project.id, KeepFor::Forever));
                    continue;
                }
            };
            workdir_rules.push((
                project.id,
                rules
                    .working_directories
                    .unwrap_or(self.settings.working_directories),
            ));
            if let KeepReleases::Newest(keep) = rules.releases.unwrap_or(self.settings.releases) {
                report.releases += self
                    .drain(
                        Prune::Releases {
                            project: project.id,
                            keep,
                        },
                        RELEASE_BATCH,
                        dry_run,
                    )
                    .await?;
            }
            if let Some(finished_before) =
                before(rules.task_logs.unwrap_or(self.settings.task_logs))
            {
                report.task_logs += self
                    .drain(
                        Prune::TaskLogs {
                            project: project.id,
                            finished_before,
                        },
                        BATCH,
                        dry_run,
                    )
                    .await?;
            }
            if let Some(received_before) =
                before(rules.deliveries.unwrap_or(self.settings.deliveries))
            {
                report.deliveries += self
                    .drain(
                        Prune::Deliveries {
                            project: Some(project.id),
                            received_before,
                        },
                        BATCH,
                        dry_run,
                    )
                    .await?;
            }
        }
        if let Some(received_before) = before(self.settings.deliveries) {
            report.deliveries += self
                .drain(
                    Prune::Deliveries {
                        project: None,
                        received_before,
                    },
                    BATCH,
                    dry_run,
                )
                .await?;
        }
        if let Some(before) = before(self.settings.audit_log) {
            report.audit_entries += self
                .drain(Prune::AuditLog { before }, BATCH, dry_run)
                .await?;
        }
        report.working_directories = self.working_directories(&workdir_rules, dry_run).await?;
        if let Ok(mut kept) = self.workdir_rules.lock() {
            *kept = workdir_rules;
        }
        if !dry_run {
            let mut size = BatchSize::new(RECLAIM_PAGES);
            loop {
                let pages = size.now;
                let started = std::time::Instant::now();
                let freed = self.store.reclaim_space(pages).await?;
                report.pages_freed += freed;
                if freed < u64::from(pages) {
                    break;
                }
                size.after(started.elapsed());
                tokio::time::sleep(PAUSE).await;
            }
        }
        tracing::info!(
            dry_run,
            releases = report.releases,
            task_logs = report.task_logs,
            deliveries = report.deliveries,
            audit_entries = report.audit_entries,
            working_directories = report.working_directories,
            pages_freed = report.pages_freed,
            skipped = report.skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "retention pass done"
        );
        Ok(report)
    }

    /// Waits until no push has arrived for [`INTAKE_QUIET`], at most
    /// [`YIELD_AT_MOST`].
    async fn yield_to_intake(&self) {
        let started = std::time::Instant::now();
        while self
            .intake
            .quiet_for()
            .is_some_and(|quiet| quiet < INTAKE_QUIET)
            && started.elapsed() < YIELD_AT_MOST
        {
            tokio::time::sleep(YIELD_STEP).await;
        }
    }

    /// Removes everything `what` selects, a batch at a time (or counts it).
    async fn drain(&self, what: Prune, batch: u32, dry_run: bool) -> Result<u64, StoreError> {
        if dry_run {
            return self.store.prune(what, batch, true).await;
        }
        let mut size = BatchSize::new(batch);
        let mut removed = 0;
        loop {
            let limit = size.now;
            self.yield_to_intake().await;
            let started = std::time::Instant::now();
            let now = self.store.prune(what.clone(), limit, false).await?;
            removed += now;
            if now < u64::from(limit) {
                return Ok(removed);
            }
            size.after(started.elapsed());
            tokio::time::sleep(PAUSE).await;
        }
    }

    /// The project's own `Retention:` from its default branch's takofile;
    /// none (the server's) without a mirror or a takofile there.
    async fn project_rules(&self, project: &Project) -> Result<ProjectRetention, String> {
        let mirror = match self.mirrors.open(&project.repository_url) {
            Ok(Some(mirror)) => mirror,
            Ok(None) => return Ok(ProjectRetention::default()),
            Err(error) => return Err(format!("cannot open its mirror: {error}")),
        };
        let branch = match mirror.default_branch().await {
            Ok(Some(branch)) => branch,
            Ok(None) => return Ok(ProjectRetention::default()),
            Err(error) => return Err(format!("cannot read its default branch: {error}")),
        };
        let found = crate::releases::read_takofile(&mirror, &format!("refs/heads/{branch}"))
            .await
            .map_err(|error| format!("cannot read its takofile: {error}"))?;
        let Some((file_name, source)) = found else {
            return Ok(ProjectRetention::default());
        };
        crate::releases::parse_takofile(&file_name, &source)
            .map(|takofile| takofile.retention)
            .map_err(|error| format!("the takofile on {branch} is invalid: {error}"))
    }

    /// Removes (or counts) the working directories of ended deployments
    /// older than their project's rule; never one a queued or waiting retry
    /// will reuse. A directory of a deployment no longer stored goes by the
    /// server's rule.
    async fn working_directories(
        &self,
        rules: &[(ProjectId, KeepFor)],
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let root = self.work_root.clone();
        let Ok(found) = tokio::task::spawn_blocking(move || directories(&root)).await else {
            return Ok(0);
        };
        if found.is_empty() {
            return Ok(0);
        }
        let reused = self.reused_by_retries().await?;
        let mut removed = 0;
        for (id, path, age) in found {
            if reused.contains(&id) {
                continue;
            }
            let keep = match self.store.get_deployment(id).await {
                Ok(deployment) if !ended(deployment.state) => continue,
                Ok(deployment) => rules
                    .iter()
                    .find(|(project, _)| *project == deployment.project)
                    .map_or(self.settings.working_directories, |(_, keep)| *keep),
                Err(StoreError::NotFound { .. }) => self.settings.working_directories,
                Err(other) => return Err(other),
            };
            if keep.duration().is_none_or(|limit| age <= limit) {
                continue;
            }
            if dry_run {
                removed += 1;
                continue;
            }
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => removed += 1,
                Err(error) => tracing::warn!(path = %path.display(), %error,
                    "cannot remove a working directory"),
            }
        }
        Ok(removed)
    }

    /// The deployments whose directory a retry that has not started yet
    /// will take over.
    async fn reused_by_retries(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let mut reused = Vec::new();
        for state in [DeploymentState::Queued, DeploymentState::AwaitingApproval] {
            let mut page = PageRequest {
                limit: 200,
                after: None,
            };
            loop {
                let found = self
                    .store
                    .list_deployments(
                        &DeploymentFilter {
                            project: None,
                            environment: None,
                            state: Some(state),
                        },
                        page,
                    )
                    .await?;
                reused.extend(
                    found
                        .items
                        .iter()
                        .filter_map(|d| d.retry_of.map(|r| r.deployment)),
                );
                match found.next {
                    Some(next) => page.after = Some(next),
                    None => break,
                }
            }
        }
        Ok(reused)
    }
}

/// Whether a deployment in `state` uses nothing any more (its directory
/// may go).
fn ended(state: DeploymentState) -> bool {
    matches!(
        state,
        DeploymentState::Success
            | DeploymentState::Failed
            | DeploymentState::Cancelled
            | DeploymentState::Interrupted
    )
}

/// The deployments' directories under `root` (named by their id) with how
/// long ago each was last changed.
fn directories(root: &Path) -> Vec<(DeploymentId, PathBuf, Duration)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let id = entry.file_name().to_str()?.parse::<i64>().ok()?;
            let metadata = entry.metadata().ok().filter(std::fs::Metadata::is_dir)?;
            let age = SystemTime::now()
                .duration_since(metadata.modified().ok()?)
                .unwrap_or_default();
            Some((DeploymentId(id), entry.path(), age))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_size_shrinks_when_batches_are_slow_and_grows_when_fast() {
        let mut size = BatchSize::new(20);
        assert_eq!(size.now, 5);
        assert_eq!(size.after(Duration::from_millis(9)), 2);
        assert_eq!(size.after(Duration::from_millis(9)), 1);
        // Never below one: the pass always moves on.
        assert_eq!(size.after(Duration::from_millis(90)), 1);
        // Within the band it stays.
        assert_eq!(size.after(Duration::from_micros(1500)), 1);
        let mut grown = 1;
        for _ in 0..50 {
            grown = size.after(Duration::from_micros(100));
        }
        // Never above the kind's maximum.
        assert_eq!(grown, 20);
    }

    fn worker(intake: IntakeActivity) -> Retention {
        let root = std::env::temp_dir().join("tako-retention-unit");
        Retention::new(
            Arc::new(tako_store::SqliteStore::in_memory().expect("an in-memory store")),
            Mirrors::new(root.join("mirrors")),
            root.join("work"),
            RetentionSettings::from_config(&crate::config::ServerConfig::default()),
            intake,
        )
    }

    #[tokio::test]
    async fn a_batch_waits_for_a_quiet_intake_but_not_forever() {
        let intake = IntakeActivity::default();
        let retention = worker(intake.clone());
        // No push yet: no wait.
        let started = std::time::Instant::now();
        retention.yield_to_intake().await;
        assert!(started.elapsed() < INTAKE_QUIET, "{:?}", started.elapsed());

        // A push just now: it waits until the intake has been quiet a while.
        intake.record();
        let started = std::time::Instant::now();
        retention.yield_to_intake().await;
        let waited = started.elapsed();
        assert!(waited >= INTAKE_QUIET - YIELD_STEP, "{waited:?}");
        assert!(waited < YIELD_AT_MOST, "{waited:?}");

        // A steady stream of pushes: it goes on after YIELD_AT_MOST.
        let streaming = tokio::spawn({
            let intake = intake.clone();
            async move {
                loop {
                    intake.record();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        intake.record();
        let started = std::time::Instant::now();
        retention.yield_to_intake().await;
        let waited = started.elapsed();
        streaming.abort();
        assert!(waited >= YIELD_AT_MOST, "{waited:?}");
        assert!(waited < YIELD_AT_MOST * 3, "{waited:?}");
    }

    #[test]
    fn a_batch_size_starts_at_a_quarter_and_at_least_one() {
        assert_eq!(BatchSize::new(200).now, 50);
        assert_eq!(BatchSize::new(2).now, 1);
        assert_eq!(BatchSize::new(0).now, 1);
        assert_eq!(BatchSize::new(0).max, 1);
    }
}
