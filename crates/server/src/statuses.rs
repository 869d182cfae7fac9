//! Commit statuses back to the forge: a small reporter task per deployment
//! that sends `pending` when the scheduler starts it, `pending` again
//! ("waiting for a person at step X") when it pauses, and the outcome when
//! it ends (the scheduler's, or an *Abort* or cancel of a paused
//! deployment's), one after the other, through the requests of
//! [`tako_forges::status`].
//!
//! A status that fails is retried with backoff (honouring `Retry-After` and
//! `X-RateLimit-Reset` on 403/429); each failure becomes one line of the
//! deployment's task log (never the token), and a status still retrying
//! when a newer one is due is given up for it. Nothing here changes a
//! deployment's outcome. A project without a status token reports nothing.
//! The forge is the project's setting, else its repository host's, else
//! the one whose hook route brought its newest push; a project on no known
//! forge says so once in the log.

use std::sync::Arc;

use chrono::Utc;
use tako_forges::status::{
    NextStep, Phase, RetryHeaders, StatusContent, StatusForge, StatusTarget, TargetError, next_step,
};
use tako_store::{Deployment, DeploymentId, LogLevel, LogLineRecord, LogStream, Store};
use tokio::sync::mpsc;

/// What every deployment's reporter shares.
#[derive(Clone)]
pub struct StatusReporter {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    public_url: String,
    github_api_url: Option<String>,
}

/// How sending one request ended.
enum Delivered {
    /// Recorded; the answer's JSON body.
    Done(serde_json::Value),
    /// Not recorded, not retried.
    GaveUp,
    /// A newer phase came while waiting to retry.
    Superseded(Phase),
}

/// One deployment's reporter: send it phases in order; dropping it lets the
/// task finish what is queued.
pub struct DeploymentStatuses {
    phases: mpsc::UnboundedSender<Phase>,
}

impl DeploymentStatuses {
    /// Queues `phase` (never waits).
    pub fn report(&self, phase: Phase) {
        let _ = self.phases.send(phase);
    }
}

impl StatusReporter {
    /// A reporter linking to `public_url`'s deployment pages, with GitHub's
    /// API at `github_api_url` for projects that do not set their own.
    pub fn new(
        store: Arc<dyn Store>,
        public_url: String,
        github_api_url: Option<String>,
    ) -> StatusReporter {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        StatusReporter {
            store,
            client,
            public_url: public_url.trim_end_matches('/').to_owned(),
            github_api_url,
        }
    }

    /// Starts the reporter task of `deployment`.
    pub fn start(&self, deployment: &Deployment) -> DeploymentStatuses {
        let (phases, receiver) = mpsc::unbounded_channel();
        let this = self.clone();
        let deployment = deployment.clone();
        tokio::spawn(async move { this.run(deployment, receiver).await });
        DeploymentStatuses { phases }
    }

    async fn run(self, deployment: Deployment, mut phases: mpsc::UnboundedReceiver<Phase>) {
        let project = match self.store.get_project(deployment.project).await {
            Ok(project) => project,
            Err(error) => {
                tracing::warn!(deployment = %deployment.id, %error, "no commit status: cannot read the project");
                return;
            }
        };
        let Some(setting) = project.forge_status else {
            return;
        };
        let release = match self.store.get_release(deployment.release).await {
            Ok(release) => release,
            Err(error) => {
                tracing::warn!(deployment = %deployment.id, %error, "no commit status: cannot read the release");
                return;
            }
        };
        let resolve = |forge: Option<StatusForge>| {
            StatusTarget::resolve(
                &project.repository_url,
                forge,
                setting.api_url.as_deref(),
                self.github_api_url.as_deref(),
            )
        };
        let mut resolved = resolve(setting.forge.as_deref().and_then(StatusForge::parse));
        if let Err(TargetError::UnknownForge(_)) = &resolved
            && let Some(forge) = self.forge_of_pushes(project.id).await
        {
            resolved = resolve(Some(forge));
        }
        let target = match resolved {
            Ok(target) => target,
            Err(error) => {
                self.log(
                    deployment.id,
                    &format!("Commit status not reported: {error}"),
                )
                .await;
                return;
            }
        };
        let target_url = format!("{}/ui/deployments/{}", self.public_url, deployment.id.0);
        let content = StatusContent {
            environment: &deployment.environment,
            release: &release.number,
            target_url: (!self.public_url.is_empty()).then_some(target_url.as_str()),
        };
        let token = &setting.token.0;
        let deployments = setting.deployments && target.forge == StatusForge::GitHub;
        let mut github_deployment: Option<u64> = None;
        let mut next = phases.recv().await;
        while let Some(phase) = next.take() {
            let request = target.request(token, &release.commit, &phase, &content);
            let what = format!("{} commit status", target.forge.name());
            if let Delivered::Superseded(newer) = self
                .deliver(deployment.id, &what, &request, &mut phases)
                .await
            {
                next = Some(newer);
                continue;
            }
            if deployments && github_deployment.is_none() {
                let request = target.deployment_request(token, &release.commit, &content);
                match self
                    .deliver(deployment.id, "GitHub Deployment", &request, &mut phases)
                    .await
                {
                    Delivered::Done(body) => github_deployment = body["id"].as_u64(),
                    Delivered::Superseded(newer) => {
                        next = Some(newer);
                        continue;
                    }
                    Delivered::GaveUp => {}
                }
            }
            if let Some(id) = github_deployment {
                let request = target.deployment_status_request(token, id, &phase, &content);
                if let Delivered::Superseded(newer) = self
                    .deliver(
                        deployment.id,
                        "GitHub Deployment status",
                        &request,
                        &mut phases,
                    )
                    .await
                {
                    next = Some(newer);
                    continue;
                }
            }
            next = phases.recv().await;
        }
    }

    /// Sends `request` until it is recorded, retrying as its answers allow;
    /// each failure is a line on the deployment's log. A newer phase queued
    /// while waiting to retry supersedes it.
    async fn deliver(
        &self,
        deployment: DeploymentId,
        what: &str,
        request: &tako_forges::status::StatusRequest,
        phases: &mut mpsc::UnboundedReceiver<Phase>,
    ) -> Delivered {
        let state = state_of(request);
        let what = if state.is_empty() {
            what.to_owned()
        } else {
            format!("{what} {state:?}")
        };
        let mut attempt = 1;
        loop {
            let (status, step, body) = self.send(request, attempt).await;
            match step {
                NextStep::Done => return Delivered::Done(body),
                NextStep::GiveUp => {
                    self.log(
                        deployment,
                        &format!(
                            "Commit status: the {what} was not recorded ({status}); giving up"
                        ),
                    )
                    .await;
                    return Delivered::GaveUp;
                }
                NextStep::RetryAfter(delay) => {
                    self.log(
                        deployment,
                        &format!(
                            "Commit status: the {what} was not recorded ({status}); retrying in {}s",
                            delay.as_secs().max(1)
                        ),
                    )
                    .await;
                    tokio::time::sleep(delay).await;
                    if let Ok(newer) = phases.try_recv() {
                        return Delivered::Superseded(newer);
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// The forge whose hook route brought the project's newest push (the
    /// stored delivery id's prefix: `gitea-`, `gitlab-`; none for Bitbucket
    /// or a push recovered by the sweep; GitHub's ids have none).
    async fn forge_of_pushes(&self, project: tako_store::ProjectId) -> Option<StatusForge> {
        let page = self
            .store
            .list_deliveries(Some(project), tako_store::PageRequest::first(20))
            .await
            .ok()?;
        page.items
            .iter()
            .filter(|d| d.event == "push" && !d.recovered)
            .find_map(|d| {
                let id = d.id.0.as_str();
                if id.starts_with("bitbucket-") || id.starts_with("sweep-") {
                    None
                } else if id.starts_with("gitea-") {
                    Some(Some(StatusForge::Gitea))
                } else if id.starts_with("gitlab-") {
                    Some(Some(StatusForge::GitLab))
                } else {
                    Some(Some(StatusForge::GitHub))
                }
            })
            .flatten()
    }

    /// Sends one attempt: what happened (for the log) and what to do next.
    async fn send(
        &self,
        request: &tako_forges::status::StatusRequest,
        attempt: u32,
    ) -> (String, NextStep, serde_json::Value) {
        let mut builder = self.client.post(&request.url).json(&request.body);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let now = Utc::now().timestamp();
        match builder.send().await {
            Ok(answer) => {
                let header = |name: &str| {
                    answer
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let (after, remaining, reset) = (
                    header("retry-after"),
                    header("x-ratelimit-remaining"),
                    header("x-ratelimit-reset"),
                );
                let status = answer.status();
                let step = next_step(
                    Some(status.as_u16()),
                    RetryHeaders {
                        retry_after: after.as_deref(),
                        ratelimit_remaining: remaining.as_deref(),
                        ratelimit_reset: reset.as_deref(),
                    },
                    attempt,
                    now,
                );
                let body = if step == NextStep::Done {
                    answer.json().await.unwrap_or_default()
                } else {
                    serde_json::Value::Null
                };
                (format!("HTTP {status}"), step, body)
            }
            Err(error) => {
                // reqwest's message names the URL, never the headers.
                if error.is_builder() {
                    // The URL or a header cannot be sent: retrying won't help.
                    return (
                        "the request cannot be built".to_owned(),
                        NextStep::GiveUp,
                        serde_json::Value::Null,
                    );
                }
                let reason = if error.is_timeout() {
                    "timed out".to_owned()
                } else if error.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    "request failed".to_owned()
                };
                (
                    reason,
                    next_step(None, RetryHeaders::default(), attempt, now),
                    serde_json::Value::Null,
                )
            }
        }
    }

    async fn log(&self, deployment: DeploymentId, text: &str) {
        tracing::warn!(%deployment, "{text}");
        let line = LogLineRecord {
            timestamp: Utc::now(),
            step: None,
            stream: LogStream::Tako,
            level: LogLevel::Warning,
            text: text.to_owned(),
        };
        if let Err(error) = self.store.append_log(deployment, &[line]).await {
            tracing::error!(%deployment, %error, "cannot log a commit status failure");
        }
    }
}

fn state_of(request: &tako_forges::status::StatusRequest) -> String {
    request.body["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
