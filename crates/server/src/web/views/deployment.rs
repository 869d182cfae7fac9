//! A deployment: its steps (state, skip reasons, durations), which agent
//! ran what (its jobs: step, agent, state, start, duration, reason), its
//! task log (live through server-sent events, searchable, downloadable; an
//! agent's lines, labelled `Step@agent`, show their step and their agent
//! apart), its approval (see `approvals`), what it waits for when paused
//! (see `interventions`), the freeze holding it when held, Cancel, and
//! for a deployment forwarded to Octopus its Octopus side (server,
//! release, task, links, the error in Octopus's words).

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{
    Deployment, DeploymentState, Job, LogCursor, LogLineRecord, Project, Release, StepRecord,
};

use super::{Viewer, age, duration, page, segment, state_badge, step_badge};
use crate::octopus::ForwardRecord;
use crate::services::logs::AgentLabels;

/// What the deployment page shows.
pub(crate) struct DeploymentPage {
    /// The project.
    pub(crate) project: Project,
    /// The release deployed.
    pub(crate) release: Release,
    /// The deployment.
    pub(crate) deployment: Deployment,
    /// Its steps.
    pub(crate) steps: Vec<StepRecord>,
    /// Its jobs (its steps' runs on agents), by step then agent.
    pub(crate) jobs: Vec<Job>,
    /// The start of its log.
    pub(crate) log: Vec<LogLineRecord>,
    /// Where the page's script resumes the log.
    pub(crate) cursor: LogCursor,
    /// Its approvals and rejections.
    pub(crate) approvals: Vec<tako_store::Approval>,
    /// Its pauses and their answers.
    pub(crate) interventions: Vec<tako_store::Intervention>,
    /// The freeze holding it, when it is held.
    pub(crate) holding: Option<crate::freezes::ActiveFreeze>,
    /// Now, for ages.
    pub(crate) now: DateTime<Utc>,
}

/// The steps table and the agents' jobs (also served alone, for live
/// updates).
pub(crate) fn steps(
    deployment: &Deployment,
    steps: &[StepRecord],
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Markup {
    html! {
        div #steps data-state=(deployment.state.as_str()) {
            p.state { "State: " (state_badge(deployment.state))
                @if deployment.cancel_requested && !deployment.state.is_final() { " (cancel requested)" }
            }
            @if let Some(error) = &deployment.error { p.error role="alert" { (error) } }
            @if steps.is_empty() {
                p { "No steps have run yet." }
            } @else {
                table.list {
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { "Step" }
                        th scope="col" { "State" }
                        th scope="col" { "Duration" }
                        th scope="col" { "Reason" }
                    } }
                    tbody {
                        @for step in steps {
                            tr {
                                td { (step.index + 1) }
                                td { (step.name) }
                                td { (step_badge(step.state)) }
                                td { (step.duration.map(duration).unwrap_or_default()) }
                                td { (step.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            @if !jobs.is_empty() {
                h3 #jobs-title { "Agents" }
                table.list #jobs aria-labelledby="jobs-title" {
                    thead { tr {
                        th scope="col" { "Step" }
                        th scope="col" { "Agent" }
                        th scope="col" { "State" }
                        th scope="col" { "Started" }
                        th scope="col" { "Duration" }
                        th scope="col" { "Reason" }
                    } }
                    tbody {
                        @for job in jobs {
                            tr data-job=(job.id.0) data-step=(job.step_name) data-agent=(job.agent_name) {
                                td { (job.step_name) }
                                td.agent { (job.agent_name) }
                                td { span class={ "badge " (job.state.as_str()) } { (job.state.as_str()) } }
                                td { @if let Some(started) = job.started_at { (age(started, now)) } @else { "—" } }
                                td { (job.duration_ms.map(|ms| duration(std::time::Duration::from_millis(ms))).unwrap_or_default()) }
                                td { (job.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One log line; an agent's label is shown as its step and its agent.
pub(crate) fn log_line(line: &LogLineRecord, agents: &AgentLabels) -> Markup {
    html! {
        div class={ "line " (line.stream.as_str()) " level-" (line.level.as_str()) } {
            span.ts { (line.timestamp.format("%H:%M:%S%.3f")) }
            @match line.step.as_deref() {
                Some(label) => {
                    @if let Some((step, agent)) = agents.split(label) {
                        span.step data-step=(step) data-agent=(agent) {
                            (step) span.agent { "@" (agent) }
                        }
                    } @else {
                        span.step data-step=(label) { (label) }
                    }
                }
                None => { span.step { "-" } }
            }
            span.text { (line.text) }
        }
    }
}

/// A forwarded deployment's Octopus side: the server, the release and the
/// task Tako follows, with links into Octopus, and why it failed.
fn octopus(forward: &ForwardRecord) -> Markup {
    html! {
        section #octopus aria-labelledby="octopus-title" {
            h2 #octopus-title { "Forwarded to Octopus" }
            dl.facts {
                dt { "Server" } dd { (forward.server) " (" (forward.mode) " mode)" }
                @if let Some(space) = &forward.space_id { dt { "Space" } dd { (space) } }
                @if let Some(project) = &forward.project { dt { "Project" } dd { (project.name) " (" (project.id) ")" } }
                @if let Some(environment) = &forward.environment { dt { "Environment" } dd { (environment.name) " (" (environment.id) ")" } }
                @if let Some(release) = &forward.release {
                    dt { "Release" }
                    dd {
                        @match &forward.links.release {
                            Some(link) => { a.octopus-release href=(link) rel="noopener" { (release.version) } }
                            None => { (release.version) }
                        }
                        " (" (release.id) @if !release.created { ", existing" } ")"
                    }
                }
                @if let Some(deployment) = &forward.deployment_id { dt { "Deployment" } dd { (deployment) } }
                @if let Some(task) = &forward.task {
                    dt { "Task" }
                    dd {
                        @match &forward.links.task {
                            Some(link) => { a.octopus-task href=(link) rel="noopener" { (task.id) } }
                            None => { (task.id) }
                        }
                        @if let Some(state) = &task.state { " " span.badge { (state) } }
                    }
                }
            }
            @if let Some(error) = &forward.error {
                p.error role="alert" {
                    (error.kind) " at " (error.step) " (" (error.method) " " (error.path)
                    @if let Some(status) = error.status { ", HTTP " (status) }
                    ")"
                    @if let Some(message) = &error.octopus_message { ": " (message) }
                }
                @if !error.octopus_errors.is_empty() {
                    ul.errors { @for e in &error.octopus_errors { li { (e) } } }
                }
            }
        }
    }
}

/// What holds a held deployment, linked to the freezes page (where an
/// admin may release it early).
fn held_by(holding: Option<&crate::freezes::ActiveFreeze>) -> Markup {
    html! {
        p.held-by {
            @match holding {
                Some(active) => {
                    "Held by "
                    a href={ "/ui/freezes#freeze-" (active.freeze.id) } { "freeze " (active.freeze.id) }
                    " (" (active.freeze.reason) ") on " (active.freeze.environment) " until "
                    (active.until.format("%Y-%m-%d %H:%M UTC"))
                    ": it runs when the freeze ends."
                }
                None => {
                    "Held, but no freeze holds it any more: it is released within seconds. See "
                    a href="/ui/freezes" { "Freezes" } "."
                }
            }
        }
    }
}

/// The deployment page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &DeploymentPage) -> Markup {
    let d = &p.deployment;
    let title = format!("Deployment #{} of {}", d.id.0, p.project.name);
    let agents = AgentLabels::of(&p.jobs);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/" { "Dashboard" } " / "
            a href={ "/ui/projects/" (segment(&p.project.name)) } { (p.project.name) } " / "
            a href={ "/ui/releases/" (p.release.id.0) } { (p.release.number) } " / "
            "#" (d.id.0)
        }
        h1 { "Deployment #" (d.id.0) ": " (p.release.number) " to " (d.environment) }
        dl.facts {
            dt { "Queued" } dd { (age(d.queued_at, p.now)) }
            @if let Some(started) = d.started_at { dt { "Started" } dd { (age(started, p.now)) } }
            @if let Some(finished) = d.finished_at { dt { "Finished" } dd { (age(finished, p.now)) } }
        }
        @if viewer.can_deploy() && !d.state.is_final() {
            form.cancel method="post" action={ "/ui/deployments/" (d.id.0) "/cancel" } {
                (viewer.csrf_field())
                button.danger type="submit" { "Cancel deployment" }
            }
        }
        @if viewer.can_deploy()
            && d.kind == tako_store::DeploymentKind::Tako
            && matches!(d.state, DeploymentState::Failed | DeploymentState::Cancelled)
        {
            form.retry method="post" action={ "/ui/deployments/" (d.id.0) "/retry" } {
                (viewer.csrf_field())
                button type="submit" name="from" value="start" { "Retry" }
                " "
                button type="submit" name="from" value="failed-step" { "Retry from the failed step" }
            }
        }
        @if let Some(retry) = d.retry_of {
            p.retry-of { "Retries "
                a href={ "/ui/deployments/" (retry.deployment.0) } { "deployment #" (retry.deployment.0) }
                @if retry.from_failed_step { " from its failed step" }
            }
        }
        @if d.state == DeploymentState::Held { (held_by(p.holding.as_ref())) }
        (super::approvals::panel(viewer, d, &p.approvals, p.now))
        (super::interventions::panel(viewer, d, &p.interventions, p.now))
        @if let Some(forward) = d.forward.as_deref().and_then(ForwardRecord::from_json) {
            (octopus(&forward))
        }
        section aria-labelledby="steps-title" {
            h2 #steps-title { "Steps" }
            div data-steps={ "/ui/deployments/" (d.id.0) "/steps" } { (steps(d, &p.steps, &p.jobs, p.now)) }
        }
        section aria-labelledby="log-title" {
            h2 #log-title { "Task log" }
            div.logbar {
                label for="log-search" { "Search the log" }
                input #log-search type="search" placeholder="Filter lines";
                button #log-follow type="button" aria-pressed="true" { "Following" }
                a href={ "/ui/deployments/" (d.id.0) "/log.txt" } download { "Download as text" }
            }
            div #log.log role="log" aria-live="off" tabindex="0"
                data-events={ "/ui/deployments/" (d.id.0) "/log/events" }
                data-cursor=(p.cursor.0) data-final=(d.state.is_final()) {
                @for line in &p.log { (log_line(line, &agents)) }
            }
            p.legend { span.line.stdout { "output" } " " span.line.stderr { "stderr" } " " span.line.tako { "Tako" } }
        }
    };
    page(&title, Some(viewer), &body)
}
