//! One forwarded deployment, start to end: the calls of octopus-forward.md
//! §3 (`resources`) or §4 (`executions`) in the spec's order, each step's
//! result stored in the deployment's [`ForwardRecord`] before the next call,
//! a POST whose outcome is unknown checked before it is sent again (§7),
//! then the Octopus task followed until it ends, its state changes written
//! to the task log and its outcome mirrored into the deployment (§5).
//!
//! Every text written (log lines, the record, the deployment's error) goes
//! through a masker holding the server's key.

use std::time::Duration;

use chrono::Utc;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tako_core::Masker;
use tako_core::octopus::{
    ErrorKind, TaskOutcome, has_marker, same_name, supports_executions, task_outcome,
};
use tako_store::{Deployment, DeploymentState, LogLevel, LogLineRecord, LogStream, Store};
use tokio_util::sync::CancellationToken;

use super::client::{CallFailure, OctopusClient};
use super::{ForwardError, ForwardRecord, Forwarders, Named, ReleaseRef, TaskRef};
use crate::config::octopus::{OctopusServer, Space};

/// The most pages read from one collection.
const MAX_PAGES: usize = 1000;

/// Runs (or resumes) the forward of `deployment`; the state it ended in and
/// its error.
pub async fn run(
    store: &dyn Store,
    forwarders: &Forwarders,
    deployment: &Deployment,
    cancel: &CancellationToken,
) -> (DeploymentState, Option<String>) {
    let Some(record) = deployment
        .forward
        .as_deref()
        .and_then(ForwardRecord::from_json)
    else {
        return (
            DeploymentState::Failed,
            Some("this forwarded deployment has no readable forward record".to_owned()),
        );
    };
    let Some((server, client)) = forwarders.for_record(&record) else {
        let reason = format!(
            "the Octopus server {} is no longer in the forward allowlist ([[octopus]] in tako.toml)",
            record.server
        );
        log(store, deployment, LogLevel::Error, &reason).await;
        return (DeploymentState::Failed, Some(reason));
    };
    let mut masker = Masker::new();
    masker.add(client.key());
    let mut forward = Forward {
        store,
        deployment,
        server,
        client,
        record,
        masker,
    };
    forward.run(cancel).await
}

struct Forward<'a> {
    store: &'a dyn Store,
    deployment: &'a Deployment,
    server: &'a OctopusServer,
    client: &'a OctopusClient,
    record: ForwardRecord,
    masker: Masker,
}

/// A step's failure, already an error of §6.
type Step<T> = Result<T, ForwardError>;

impl Forward<'_> {
    async fn run(&mut self, cancel: &CancellationToken) -> (DeploymentState, Option<String>) {
        if self.record.task.is_none() {
            let mode = if self.server.mode.is_executions() {
                "executions"
            } else {
                "resources"
            };
            self.line(
                LogLevel::Info,
                &format!(
                    "octopus: forwarding to {} ({mode} mode): project {}, environment {}",
                    self.record.server,
                    self.record.request.project,
                    self.record.request.environment
                ),
            )
            .await;
            let created = if self.server.mode.is_executions() {
                self.executions().await
            } else {
                self.resources().await
            };
            if let Err(error) = created {
                return self.fail(error).await;
            }
        } else {
            self.line(
                LogLevel::Warning,
                "octopus: resuming: following the Octopus task again",
            )
            .await;
        }
        self.follow(cancel).await
    }

    // ----- the calls -----

    fn space(&self) -> String {
        self.record.space_id.clone().unwrap_or_default()
    }

    async fn root(&mut self) -> Step<()> {
        let root = self.client.get("/api").await.map_err(|f| {
            let kind = f.kind_or(ErrorKind::NotOctopus);
            f.into_error(kind, "F0", "GET", "/api")
        })?;
        let api_version = root["ApiVersion"].as_str().unwrap_or_default();
        if !api_version.starts_with("3.") {
            return Err(simple(
                ErrorKind::NotOctopus,
                "F0",
                "GET",
                "/api",
                format!(
                    "{} does not answer as Octopus Deploy does (no ApiVersion 3.x at /api)",
                    self.record.server
                ),
            ));
        }
        self.record.octopus_version = root["Version"].as_str().map(str::to_owned);
        let me = self.client.get("/api/users/me").await.map_err(|f| {
            let kind = f.kind_or(ErrorKind::NotFound);
            f.into_error(kind, "F1", "GET", "/api/users/me")
        })?;
        self.record.octopus_user = me["Username"].as_str().map(str::to_owned);
        if let Space::Name(name) = &self.server.space
            && self.record.space_id.is_none()
        {
            let path = format!("/api/spaces?partialName={}&skip=0&take=100", encode(name));
            let spaces = self.page_through("F2", &path).await?;
            let found = spaces
                .iter()
                .find(|s| same_name(s["Name"].as_str().unwrap_or_default(), name))
                .and_then(|s| s["Id"].as_str())
                .ok_or_else(|| {
                    simple(
                        ErrorKind::SpaceNotFound,
                        "F2",
                        "GET",
                        "/api/spaces",
                        format!("Octopus has no space named {name}"),
                    )
                })?;
            self.record.space_id = Some(found.to_owned());
        }
        self.save().await;
        Ok(())
    }

    async fn find_environment(&mut self, step: &str) -> Step<Named> {
        if let Some(found) = &self.record.environment {
            return Ok(found.clone());
        }
        let name = self.record.request.environment.clone();
        let path = format!(
            "/api/{}/environments?partialName={}&skip=0&take=100",
            self.space(),
            encode(&name)
        );
        let items = self.page_through(step, &path).await?;
        let found = named(&items, &name).ok_or_else(|| {
            simple(
                ErrorKind::EnvironmentNotFound,
                step,
                "GET",
                &path,
                format!(
                    "Octopus has no environment named {name} in {}",
                    self.space()
                ),
            )
        })?;
        self.record.environment = Some(found.clone());
        self.save().await;
        Ok(found)
    }

    async fn find_project(&mut self, step: &str) -> Step<(Named, Value)> {
        let name = self.record.request.project.clone();
        let path = format!(
            "/api/{}/projects?partialName={}&skip=0&take=100",
            self.space(),
            encode(&name)
        );
        let items = self.page_through(step, &path).await?;
        let project = items
            .into_iter()
            .find(|p| same_name(p["Name"].as_str().unwrap_or_default(), &name))
            .ok_or_else(|| {
                simple(
                    ErrorKind::ProjectNotFound,
                    step,
                    "GET",
                    &path,
                    format!("Octopus has no project named {name} in {}", self.space()),
                )
            })?;
        if project["IsDisabled"].as_bool() == Some(true) {
            return Err(simple(
                ErrorKind::ProjectDisabled,
                step,
                "GET",
                &path,
                format!("the Octopus project {name} is disabled"),
            ));
        }
        if project["IsVersionControlled"].as_bool() == Some(true) {
            return Err(simple(
                ErrorKind::ProjectVersionControlled,
                step,
                "GET",
                &path,
                format!(
                    "the Octopus project {name} is stored in git (version controlled), which forwarding does not support yet"
                ),
            ));
        }
        let found = Named {
            id: text(&project["Id"]),
            name: text(&project["Name"]),
        };
        self.record.project = Some(found.clone());
        self.save().await;
        Ok((found, project))
    }

    async fn resources(&mut self) -> Step<()> {
        self.root().await?;
        let s = self.space();
        let environment = self.find_environment("F3").await?;
        let (project, project_json) = self.find_project("F4").await?;
        if self.record.release.is_none() {
            if self.record.request.create_release {
                let path = format!("/api/{s}/projects/{}/channels?skip=0&take=100", project.id);
                let channels = self.page_through("F5", &path).await?;
                let channel = channels
                    .iter()
                    .find(|c| c["IsDefault"].as_bool() == Some(true))
                    .or_else(|| {
                        channels
                            .iter()
                            .find(|c| same_name(&text(&c["Name"]), "Default"))
                    })
                    .map(|c| text(&c["Id"]))
                    .ok_or_else(|| {
                        simple(
                            ErrorKind::ChannelNotFound,
                            "F5",
                            "GET",
                            &path,
                            format!(
                                "the Octopus project {} has no default channel",
                                project.name
                            ),
                        )
                    })?;
                self.record.channel_id = Some(channel.clone());
                self.save().await;
                let process = text(&project_json["DeploymentProcessId"]);
                let version = match self.record.request.release_posted.clone() {
                    Some(version) => version,
                    None => {
                        let (version, packages) = self.template(&process, &channel).await?;
                        self.record.request.release_posted = Some(version.clone());
                        self.record.request.release_posted_packages = Some(packages);
                        self.save().await;
                        version
                    }
                };
                // A post under way when Tako stopped: its outcome first.
                let release = if self.record.request.release_attempted {
                    match self.adopt_release(&project.id, &version).await? {
                        Some(release) => release,
                        None => self.post_release(&project.id, &channel, &version).await?,
                    }
                } else {
                    self.post_release(&project.id, &channel, &version).await?
                };
                self.set_release(release).await;
            } else {
                let release = self.newest_release("F6′", &project.id).await?;
                self.set_release(release).await;
            }
        }
        if self.record.deployment_id.is_none() {
            let release = self
                .record
                .release
                .clone()
                .map(|r| r.id)
                .unwrap_or_default();
            let path = format!("/api/{s}/deployments");
            let body = json!({
                "ReleaseId": release,
                "EnvironmentId": environment.id,
                "ProjectId": project.id,
                "SpaceId": s,
                "Comments": tako_core::octopus::delivery_marker(&self.record.request.delivery),
            });
            let adopted = if self.record.request.deployment_posted {
                self.adopt_deployment(&project.id, &environment.id, &release, true)
                    .await?
            } else {
                None
            };
            let created = match adopted {
                Some(found) => found,
                None => {
                    self.record.request.deployment_posted = true;
                    self.save().await;
                    match self.client.post(&path, &body).await {
                        Ok(created) => created,
                        Err(failure) if failure.unknown_outcome => {
                            self.lost("F9", &failure).await;
                            match self
                                .adopt_deployment(&project.id, &environment.id, &release, true)
                                .await?
                            {
                                Some(found) => found,
                                None => self.client.post(&path, &body).await.map_err(|f| {
                                    let kind = deployment_kind(&f);
                                    f.into_error(kind, "F9", "POST", &path)
                                })?,
                            }
                        }
                        Err(failure) => {
                            let kind = deployment_kind(&failure);
                            return Err(failure.into_error(kind, "F9", "POST", &path));
                        }
                    }
                }
            };
            self.set_task(text(&created["Id"]), text(&created["TaskId"]), &Value::Null)
                .await;
        }
        Ok(())
    }

    /// F6 and F7: the next version and the packages to select.
    async fn template(&mut self, process: &str, channel: &str) -> Step<(String, Value)> {
        let s = self.space();
        let path = format!(
            "/api/{s}/deploymentprocesses/{process}/template?channel={}",
            encode(channel)
        );
        let template = self.client.get(&path).await.map_err(|f| {
            let kind = f.kind_or(ErrorKind::NotFound);
            f.into_error(kind, "F6", "GET", &path)
        })?;
        let version = template["NextVersionIncrement"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if version.is_empty() {
            return Err(simple(
                ErrorKind::NoVersion,
                "F6",
                "GET",
                &path,
                "the Octopus project takes its release version from a package, so Octopus proposes none: use mode = \"executions\" for it".to_owned(),
            ));
        }
        let mut selected = Vec::new();
        for package in template["Packages"].as_array().cloned().unwrap_or_default() {
            let fixed = package["FixedVersion"].as_str().unwrap_or_default();
            let version = if fixed.is_empty() {
                let package_id = text(&package["PackageId"]);
                let path = format!(
                    "/api/{s}/feeds/{}/packages/versions?packageId={}&take=1",
                    text(&package["FeedId"]),
                    encode(&package_id)
                );
                let unavailable = |detail: String| {
                    simple(
                        ErrorKind::PackageVersionUnavailable,
                        "F7",
                        "GET",
                        &path,
                        detail,
                    )
                };
                if package["IsResolvable"].as_bool() == Some(false) {
                    return Err(unavailable(format!(
                        "the version of package {package_id} cannot be resolved from its feed"
                    )));
                }
                let versions = self.client.get(&path).await.map_err(|f| {
                    let kind = f.kind_or(ErrorKind::PackageVersionUnavailable);
                    f.into_error(kind, "F7", "GET", &path)
                })?;
                match versions["Items"][0]["Version"].as_str() {
                    Some(found) => found.to_owned(),
                    None => {
                        return Err(unavailable(format!(
                            "the feed has no version of package {package_id}"
                        )));
                    }
                }
            } else {
                fixed.to_owned()
            };
            selected.push(json!({
                "ActionName": text(&package["ActionName"]),
                "PackageReferenceName": package["PackageReferenceName"].as_str().unwrap_or_default(),
                "Version": version,
            }));
        }
        Ok((version, Value::Array(selected)))
    }

    /// F8, then (outcome unknown) the check and one more post.
    async fn post_release(
        &mut self,
        project: &str,
        channel: &str,
        version: &str,
    ) -> Step<ReleaseRef> {
        let s = self.space();
        let path = format!("/api/{s}/releases");
        let body = json!({
            "ProjectId": project,
            "ChannelId": channel,
            "Version": version,
            "ReleaseNotes": self.record.request.notes,
            "SelectedPackages": self.record.request.release_posted_packages.clone().unwrap_or(Value::Array(Vec::new())),
            "SpaceId": s,
        });
        self.record.request.release_attempted = true;
        self.save().await;
        let created = match self.client.post(&path, &body).await {
            Ok(created) => created,
            Err(failure) if failure.unknown_outcome => {
                self.lost("F8", &failure).await;
                if let Some(release) = self.adopt_release(project, version).await? {
                    return Ok(release);
                }
                self.client.post(&path, &body).await.map_err(|f| {
                    let kind = release_kind(&f);
                    f.into_error(kind, "F8", "POST", &path)
                })?
            }
            Err(failure) => {
                let kind = release_kind(&failure);
                return Err(failure.into_error(kind, "F8", "POST", &path));
            }
        };
        self.line(
            LogLevel::Info,
            &format!(
                "octopus: created release {} ({})",
                text(&created["Version"]),
                text(&created["Id"])
            ),
        )
        .await;
        Ok(ReleaseRef {
            id: text(&created["Id"]),
            version: text(&created["Version"]),
            created: true,
        })
    }

    /// §7's release check: ours (adopted), someone else's (rejected), or
    /// none (post again).
    async fn adopt_release(&mut self, project: &str, version: &str) -> Step<Option<ReleaseRef>> {
        let path = format!(
            "/api/{}/projects/{project}/releases/{}",
            self.space(),
            encode(version)
        );
        match self.client.get(&path).await {
            Ok(release) => {
                if has_marker(
                    release["ReleaseNotes"].as_str().unwrap_or_default(),
                    &self.record.request.delivery,
                ) {
                    self.line(
                        LogLevel::Warning,
                        &format!("octopus: release {version} was created by this delivery before its answer was lost: adopted"),
                    )
                    .await;
                    Ok(Some(ReleaseRef {
                        id: text(&release["Id"]),
                        version: text(&release["Version"]),
                        created: true,
                    }))
                } else {
                    Err(simple(
                        ErrorKind::ReleaseRejected,
                        "F8",
                        "GET",
                        &path,
                        format!(
                            "release {version} exists in Octopus but was not created by this delivery"
                        ),
                    ))
                }
            }
            Err(failure) if failure.status == Some(404) => Ok(None),
            Err(failure) => {
                let kind = failure.kind_or(ErrorKind::NotFound);
                Err(failure.into_error(kind, "F8", "GET", &path))
            }
        }
    }

    /// §7's deployment check: a deployment of `release` to `environment`
    /// carrying this delivery's marker (`marker`), or any deployment of it
    /// (E2 sends no comments).
    async fn adopt_deployment(
        &mut self,
        project: &str,
        environment: &str,
        release: &str,
        marker: bool,
    ) -> Step<Option<Value>> {
        let path = format!(
            "/api/{}/deployments?projects={}&environments={}&skip=0&take=30",
            self.space(),
            encode(project),
            encode(environment)
        );
        let list = self.client.get(&path).await.map_err(|f| {
            let kind = f.kind_or(ErrorKind::NotFound);
            f.into_error(kind, "F9", "GET", &path)
        })?;
        let delivery = self.record.request.delivery.clone();
        let found = list["Items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|d| {
                    text(&d["ReleaseId"]) == release
                        && (!marker
                            || has_marker(d["Comments"].as_str().unwrap_or_default(), &delivery))
                })
                .cloned()
        });
        if found.is_some() {
            self.line(
                LogLevel::Warning,
                "octopus: the deployment was created by this delivery before its answer was lost: adopted",
            )
            .await;
        }
        Ok(found)
    }

    /// F6′: the project's newest release.
    async fn newest_release(&mut self, step: &str, project: &str) -> Step<ReleaseRef> {
        let path = format!(
            "/api/{}/projects/{project}/releases?skip=0&take=1",
            self.space()
        );
        let list = self.client.get(&path).await.map_err(|f| {
            let kind = f.kind_or(ErrorKind::NotFound);
            f.into_error(kind, step, "GET", &path)
        })?;
        let newest = &list["Items"][0];
        if newest.is_null() {
            return Err(simple(
                ErrorKind::NoRelease,
                step,
                "GET",
                &path,
                format!(
                    "CreateRelease is false, and the Octopus project {} has no release to deploy",
                    self.record.request.project
                ),
            ));
        }
        Ok(ReleaseRef {
            id: text(&newest["Id"]),
            version: text(&newest["Version"]),
            created: false,
        })
    }

    async fn executions(&mut self) -> Step<()> {
        self.root().await?;
        let version = self.record.octopus_version.clone().unwrap_or_default();
        if !supports_executions(&version) {
            return Err(simple(
                ErrorKind::ExecutionsUnsupported,
                "F0",
                "GET",
                "/api",
                format!(
                    "Octopus {version} has no Executions API (2022.3.5512 or later): use mode = \"resources\""
                ),
            ));
        }
        let s = self.space();
        if self.record.release.is_none() {
            if self.record.request.create_release {
                let path = format!("/api/{s}/releases/create/v1");
                let body = json!({
                    "SpaceId": s,
                    "SpaceIdOrName": s,
                    "ProjectName": self.record.request.project,
                    "ReleaseNotes": self.record.request.notes,
                });
                let mut adopted = None;
                if self.record.request.release_attempted {
                    adopted = self.adopt_release_by_notes().await?;
                }
                let release = match adopted {
                    Some(release) => release,
                    None => {
                        self.record.request.release_attempted = true;
                        self.save().await;
                        let created = match self.client.post(&path, &body).await {
                            Ok(created) => created,
                            Err(failure) if failure.unknown_outcome => {
                                self.lost("E1", &failure).await;
                                match self.adopt_release_by_notes().await? {
                                    Some(release) => {
                                        json!({"ReleaseId": release.id, "ReleaseVersion": release.version})
                                    }
                                    None => self.client.post(&path, &body).await.map_err(|f| {
                                        let kind = executions_kind(&f, release_kind(&f));
                                        f.into_error(kind, "E1", "POST", &path)
                                    })?,
                                }
                            }
                            Err(failure) => {
                                let kind = executions_kind(&failure, release_kind(&failure));
                                return Err(failure.into_error(kind, "E1", "POST", &path));
                            }
                        };
                        ReleaseRef {
                            id: text(field(&created, "ReleaseId")),
                            version: text(field(&created, "ReleaseVersion")),
                            created: true,
                        }
                    }
                };
                self.set_release(release).await;
            } else {
                let (project, _) = self.find_project("F4").await?;
                let release = self.newest_release("F6′", &project.id).await?;
                self.set_release(release).await;
            }
        }
        let release = self.record.release.clone().unwrap_or(ReleaseRef {
            id: String::new(),
            version: String::new(),
            created: false,
        });
        let path = format!("/api/{s}/deployments/create/untenanted/v1");
        let body = json!({
            "SpaceId": s,
            "SpaceIdOrName": s,
            "ProjectName": self.record.request.project,
            "ReleaseVersion": release.version,
            "EnvironmentNames": [self.record.request.environment],
        });
        let mut adopted = None;
        if self.record.request.deployment_posted && release.created {
            adopted = self.adopt_executions_deployment(&release.id).await?;
        }
        let (deployment, task) = match adopted {
            Some(found) => found,
            None => {
                self.record.request.deployment_posted = true;
                self.save().await;
                let answer = match self.client.post(&path, &body).await {
                    Ok(answer) => answer,
                    Err(failure) if failure.unknown_outcome && release.created => {
                        self.lost("E2", &failure).await;
                        if let Some(found) = self.adopt_executions_deployment(&release.id).await? {
                            self.set_task(found.0, found.1, &Value::Null).await;
                            return Ok(());
                        }
                        self.client.post(&path, &body).await.map_err(|f| {
                            let kind = executions_kind(&f, deployment_kind(&f));
                            f.into_error(kind, "E2", "POST", &path)
                        })?
                    }
                    Err(failure) => {
                        let kind = executions_kind(&failure, deployment_kind(&failure));
                        return Err(failure.into_error(kind, "E2", "POST", &path));
                    }
                };
                let tasks = field(&answer, "DeploymentServerTasks")
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if tasks.len() != 1 {
                    return Err(simple(
                        ErrorKind::DeploymentRejected,
                        "E2",
                        "POST",
                        &path,
                        format!(
                            "Octopus answered with {} deployments instead of one",
                            tasks.len()
                        ),
                    ));
                }
                (
                    text(field(&tasks[0], "DeploymentId")),
                    text(field(&tasks[0], "ServerTaskId")),
                )
            }
        };
        self.set_task(deployment, task, &Value::Null).await;
        Ok(())
    }

    /// E1's check: the project's newest releases, one carrying our marker.
    async fn adopt_release_by_notes(&mut self) -> Step<Option<ReleaseRef>> {
        let (project, _) = self.find_project("F4").await?;
        let path = format!(
            "/api/{}/projects/{}/releases?skip=0&take=5",
            self.space(),
            project.id
        );
        let list = self.client.get(&path).await.map_err(|f| {
            let kind = f.kind_or(ErrorKind::NotFound);
            f.into_error(kind, "E1", "GET", &path)
        })?;
        let delivery = self.record.request.delivery.clone();
        let found = list["Items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|r| has_marker(r["ReleaseNotes"].as_str().unwrap_or_default(), &delivery))
                .map(|r| ReleaseRef {
                    id: text(&r["Id"]),
                    version: text(&r["Version"]),
                    created: true,
                })
        });
        if let Some(release) = &found {
            self.line(
                LogLevel::Warning,
                &format!("octopus: release {} was created by this delivery before its answer was lost: adopted", release.version),
            )
            .await;
        }
        Ok(found)
    }

    /// E2's check: a deployment of our release to the environment.
    async fn adopt_executions_deployment(
        &mut self,
        release: &str,
    ) -> Step<Option<(String, String)>> {
        let (project, _) = self.find_project("F4").await?;
        let environment = self.find_environment("F3").await?;
        Ok(self
            .adopt_deployment(&project.id, &environment.id, release, false)
            .await?
            .map(|d| (text(&d["Id"]), text(&d["TaskId"]))))
    }

    // ----- following the task -----

    async fn follow(&mut self, cancel: &CancellationToken) -> (DeploymentState, Option<String>) {
        let Some(task) = self.record.task.clone() else {
            return (
                DeploymentState::Failed,
                Some("no Octopus task to follow".to_owned()),
            );
        };
        let since = self
            .record
            .request
            .following_since
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let path = format!("/api/{}/tasks/{}", self.space(), task.id);
        let mut last = task.state.clone();
        let mut told_interruption = false;
        loop {
            if cancel.is_cancelled() {
                return self.cancelled(&task.id).await;
            }
            let answer = match self.client.get(&path).await {
                Ok(answer) => answer,
                Err(failure) => {
                    let kind = failure.kind_or(ErrorKind::NotFound);
                    return self
                        .fail(failure.into_error(kind, "F10", "GET", &path))
                        .await;
                }
            };
            let state = text(&answer["State"]);
            if let Some(web) = answer["Links"]["Web"].as_str()
                && web.starts_with('/')
                && !web.starts_with("//")
            {
                let link = format!("{}{web}", self.client.origin());
                if self.record.links.task.as_deref() != Some(link.as_str()) {
                    self.record.links.task = Some(link);
                    self.save().await;
                }
            }
            if last.as_deref() != Some(state.as_str()) {
                self.line(LogLevel::Info, &format!("octopus: {} {state}", task.id))
                    .await;
                last = Some(state.clone());
                if let Some(t) = self.record.task.as_mut() {
                    t.state = Some(state.clone());
                }
                self.save().await;
            }
            if answer["HasPendingInterruptions"].as_bool() == Some(true) && !told_interruption {
                told_interruption = true;
                self.line(
                    LogLevel::Wait,
                    "octopus: task waits for a manual intervention in Octopus",
                )
                .await;
            }
            let completed = answer["IsCompleted"].as_bool().unwrap_or(false);
            match task_outcome(&state, completed) {
                TaskOutcome::Ended(end) => {
                    let message = answer["ErrorMessage"]
                        .as_str()
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned);
                    if let Some(t) = self.record.task.as_mut() {
                        t.error_message = message.clone();
                    }
                    self.save().await;
                    let error = match end {
                        DeploymentState::Success => None,
                        DeploymentState::Cancelled => Some(format!(
                            "the Octopus task {} was cancelled in Octopus",
                            task.id
                        )),
                        _ => Some(message.clone().unwrap_or_else(|| {
                            format!("the Octopus task {} ended {state}", task.id)
                        })),
                    };
                    if let Some(message) = &message {
                        self.line(LogLevel::Error, &format!("octopus: {message}"))
                            .await;
                    }
                    return (end, error.map(|e| self.masker.mask(&e).into_owned()));
                }
                TaskOutcome::Running => {}
            }
            let waited = (Utc::now() - since).to_std().unwrap_or_default();
            if waited >= self.server.wait_timeout {
                let reason = format!(
                    "stopped following Octopus task {} after {} (last state {state})",
                    task.id,
                    humantime::format_duration(self.server.wait_timeout)
                );
                self.line(LogLevel::Error, &format!("octopus: {reason}"))
                    .await;
                return (DeploymentState::Interrupted, Some(reason));
            }
            let left = self.server.wait_timeout - waited;
            tokio::select! {
                () = cancel.cancelled() => return self.cancelled(&task.id).await,
                () = tokio::time::sleep(self.server.poll_interval.min(left)) => {}
            }
        }
    }

    async fn cancelled(&mut self, task: &str) -> (DeploymentState, Option<String>) {
        let reason = format!(
            "Cancelled (in Tako only): Tako stopped following the Octopus task {task}, which Octopus goes on running"
        );
        self.line(LogLevel::Warning, &format!("octopus: {reason}"))
            .await;
        (DeploymentState::Cancelled, Some(reason))
    }

    // ----- records, lines -----

    async fn set_release(&mut self, release: ReleaseRef) {
        self.record.links.release = Some(format!(
            "{}/app#/{}/releases/{}",
            self.client.origin(),
            self.space(),
            release.id
        ));
        self.line(
            LogLevel::Info,
            &format!("octopus: release {} ({})", release.version, release.id),
        )
        .await;
        self.record.release = Some(release);
        self.save().await;
    }

    async fn set_task(&mut self, deployment: String, task: String, web: &Value) {
        self.record.links.task = Some(match web.as_str() {
            Some(link) if link.starts_with('/') && !link.starts_with("//") => {
                format!("{}{link}", self.client.origin())
            }
            _ => format!(
                "{}/app#/{}/tasks/{task}",
                self.client.origin(),
                self.space()
            ),
        });
        self.line(
            LogLevel::Info,
            &format!("octopus: deployment {deployment}, task {task}"),
        )
        .await;
        self.record.deployment_id = Some(deployment);
        self.record.task = Some(TaskRef {
            id: task,
            state: None,
            error_message: None,
        });
        self.record.request.following_since = Some(Utc::now().to_rfc3339());
        self.save().await;
    }

    async fn lost(&mut self, step: &str, failure: &CallFailure) {
        let what = failure
            .transport
            .clone()
            .or_else(|| failure.status.map(|s| format!("HTTP {s}")))
            .unwrap_or_default();
        self.line(
            LogLevel::Warning,
            &format!("octopus: {step}'s outcome is unknown ({what}): checking what Octopus stored before posting again"),
        )
        .await;
    }

    async fn fail(&mut self, error: ForwardError) -> (DeploymentState, Option<String>) {
        let mut error = error;
        for text in [&mut error.detail, &mut error.path] {
            *text = self.masker.mask(text).into_owned();
        }
        let summary = format!("{} at {}: {}", error.kind, error.step, error.detail);
        self.line(LogLevel::Error, &format!("octopus: {summary}"))
            .await;
        self.record.error = Some(error);
        self.save().await;
        (DeploymentState::Failed, Some(summary))
    }

    async fn save(&mut self) {
        let json = self.masker.mask(&self.record.to_json()).into_owned();
        // The record is what a restart resumes from: keep trying a little.
        for attempt in 0..5u64 {
            match self
                .store
                .set_deployment_forward(self.deployment.id, &json)
                .await
            {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(deployment = %self.deployment.id, %error, "cannot store the forward's progress");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
    }

    async fn line(&self, level: LogLevel, text: &str) {
        let text = self.masker.mask(text).into_owned();
        log(self.store, self.deployment, level, &text).await;
    }

    /// Every item of a collection: `skip=0&take=100`, then `Page.Next`
    /// until it is absent or a page is empty.
    async fn page_through(&self, step: &str, first: &str) -> Step<Vec<Value>> {
        let mut items = Vec::new();
        let mut page = self.client.get(first).await;
        for _ in 0..MAX_PAGES {
            let body = page.map_err(|f| {
                let kind = f.kind_or(ErrorKind::NotFound);
                f.into_error(kind, step, "GET", first)
            })?;
            let found = body["Items"].as_array().cloned().unwrap_or_default();
            if found.is_empty() {
                break;
            }
            items.extend(found);
            match body["Links"]["Page.Next"].as_str() {
                Some(next) => page = self.client.get_link(next).await,
                None => break,
            }
        }
        Ok(items)
    }
}

async fn log(store: &dyn Store, deployment: &Deployment, level: LogLevel, text: &str) {
    let line = LogLineRecord {
        timestamp: Utc::now(),
        step: None,
        stream: LogStream::Tako,
        level,
        text: text.to_owned(),
    };
    if let Err(error) = store.append_log(deployment.id, &[line]).await {
        tracing::warn!(deployment = %deployment.id, %error, "cannot store a forward's log line");
    }
}

fn simple(kind: ErrorKind, step: &str, method: &str, path: &str, detail: String) -> ForwardError {
    ForwardError {
        kind: kind.as_str().to_owned(),
        step: step.to_owned(),
        method: method.to_owned(),
        path: path.split('?').next().unwrap_or(path).to_owned(),
        status: None,
        octopus_message: None,
        octopus_errors: Vec::new(),
        octopus_help: None,
        octopus_text: None,
        detail,
    }
}

fn named(items: &[Value], name: &str) -> Option<Named> {
    items
        .iter()
        .find(|i| same_name(i["Name"].as_str().unwrap_or_default(), name))
        .map(|i| Named {
            id: text(&i["Id"]),
            name: text(&i["Name"]),
        })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A field in Octopus's PascalCase or the camelCase some versions send.
fn field<'v>(value: &'v Value, pascal: &str) -> &'v Value {
    match &value[pascal] {
        Value::Null => {
            let mut camel = pascal.to_owned();
            if let Some(first) = camel.get_mut(0..1) {
                first.make_ascii_lowercase();
            }
            &value[camel.as_str()]
        }
        found => found,
    }
}

/// What a query value or path segment escapes: all but RFC 3986's
/// unreserved characters.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, ESCAPED).to_string()
}

fn release_kind(failure: &CallFailure) -> ErrorKind {
    match failure.status {
        Some(400 | 409) => ErrorKind::ReleaseRejected,
        Some(404) => ErrorKind::NotFound,
        _ => failure.kind_or(ErrorKind::ReleaseRejected),
    }
}

fn deployment_kind(failure: &CallFailure) -> ErrorKind {
    match failure.status {
        Some(400 | 409) => ErrorKind::DeploymentRejected,
        Some(404) => ErrorKind::NotFound,
        _ => failure.kind_or(ErrorKind::DeploymentRejected),
    }
}

/// A 404 on E1 or E2 means an Octopus without the Executions API.
fn executions_kind(failure: &CallFailure, otherwise: ErrorKind) -> ErrorKind {
    if failure.status == Some(404) {
        ErrorKind::ExecutionsUnsupported
    } else {
        otherwise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_fields_are_understood() {
        let answer = json!({"deploymentServerTasks": [{"deploymentId": "Deployments-1", "serverTaskId": "ServerTasks-2"}]});
        let tasks = field(&answer, "DeploymentServerTasks");
        assert_eq!(text(field(&tasks[0], "ServerTaskId")), "ServerTasks-2");
        let pascal = json!({"ReleaseId": "Releases-1"});
        assert_eq!(text(field(&pascal, "ReleaseId")), "Releases-1");
        assert_eq!(encode("Pre Production"), "Pre%20Production");
    }
}
