//! A release: its notes, commit, frozen process (its steps, their retries, where each
//! runs: the server, or agents by `Roles` with `MaxParallelism`,
//! `WhenNoAgents` and `SkipOfflineAgents`; then the takofile as frozen),
//! deployments per environment, and the *Deploy to…* form.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Deployment, Project, Release};
use tako_takofile::{Step, WhenNoAgents};

use super::{Viewer, age, markdown, page, segment, state_badge};

/// What the release page shows.
pub(crate) struct ReleasePage {
    /// The project.
    pub(crate) project: Project,
    /// The release.
    pub(crate) release: Release,
    /// The steps of its frozen process, when its takofile reads.
    pub(crate) steps: Option<Vec<Step>>,
    /// Its latest deployment per environment.
    pub(crate) deployments: Vec<Deployment>,
    /// Environments to offer in the deploy form (with a lifecycle: only
    /// those the release may enter, in its order).
    pub(crate) environments: Vec<String>,
    /// With a lifecycle: its phases in order, each with why the release
    /// may not enter it now, or what it waits for there (`None`: it may,
    /// at once).
    pub(crate) phases: Option<Vec<(String, Option<String>)>>,
    /// Why the last deploy was refused, if it was.
    pub(crate) error: Option<String>,
    /// Now, for ages.
    pub(crate) now: DateTime<Utc>,
}

/// The release page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &ReleasePage) -> Markup {
    let release = &p.release;
    let title = format!("{} {}", p.project.name, release.number);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/" { "Dashboard" } " / "
            a href={ "/ui/projects/" (segment(&p.project.name)) } { (p.project.name) }
            " / " (release.number)
        }
        h1 { "Release " (release.number) }
        dl.facts {
            dt { "Commit" } dd { code { (release.commit) } }
            dt { "Branch" } dd { (release.branch.as_deref().unwrap_or("—")) }
            dt { "Pushed by" } dd { (release.pusher.as_deref().unwrap_or("—")) }
            dt { "Created" } dd { (age(release.created_at, p.now)) }
        }
        section aria-labelledby="notes" {
            h2 #notes { "Notes" }
            div.notes { (markdown(&release.notes)) }
        }
        section aria-labelledby="deployments" {
            h2 #deployments { "Deployments" }
            @if p.deployments.is_empty() {
                p { "Not deployed yet." }
            } @else {
                table.list {
                    thead { tr {
                        th scope="col" { "Environment" }
                        th scope="col" { "Deployment" }
                        th scope="col" { "State" }
                        th scope="col" { "Queued" }
                    } }
                    tbody {
                        @for d in &p.deployments {
                            tr {
                                th scope="row" { (d.environment) }
                                td { a href={ "/ui/deployments/" (d.id.0) } { "#" (d.id.0) } }
                                td { (state_badge(d.state)) }
                                td { (age(d.queued_at, p.now)) }
                            }
                        }
                    }
                }
            }
            @if let Some(error) = &p.error {
                p.error role="alert" { (error) }
            }
            @if let Some(phases) = &p.phases {
                h3 { "Lifecycle" }
                ol.lifecycle #lifecycle {
                    @for (environment, note) in phases {
                        li data-environment=(environment) {
                            strong { (environment) }
                            @if let Some(note) = note { " — " span.muted { (note) } }
                        }
                    }
                }
            }
            @if viewer.can_deploy() && p.phases.is_some() {
                @if p.environments.is_empty() {
                    p.muted #no-deploy { "This release may enter no environment of its lifecycle now." }
                } @else {
                    form.deploy method="post" action={ "/ui/releases/" (release.id.0) "/deploy" } {
                        (viewer.csrf_field())
                        label for="environment" { "Deploy to…" }
                        select #environment name="environment" required {
                            @for environment in &p.environments { option value=(environment) { (environment) } }
                        }
                        button type="submit" { "Deploy" }
                    }
                }
            } @else if viewer.can_deploy() {
                form.deploy method="post" action={ "/ui/releases/" (release.id.0) "/deploy" } {
                    (viewer.csrf_field())
                    label for="environment" { "Deploy to…" }
                    input #environment name="environment" list="environments" required
                        autocomplete="off" placeholder="Environment";
                    datalist #environments {
                        @for environment in &p.environments { option value=(environment) {} }
                    }
                    button type="submit" { "Deploy" }
                }
            }
        }
        section aria-labelledby="process" {
            h2 #process { "Process (frozen takofile)" }
            @if let Some(steps) = &p.steps { (process_steps(steps)) }
            pre.code { (release.takofile) }
        }
    };
    page(&title, Some(viewer), &body)
}

/// The frozen process's steps and where each runs.
fn process_steps(steps: &[Step]) -> Markup {
    html! {
        table.list #process-steps {
            thead { tr {
                th scope="col" { "#" }
                th scope="col" { "Step" }
                th scope="col" { "Runs on" }
                th scope="col" { "Retries" }
                th scope="col" { "MaxParallelism" }
                th scope="col" { "WhenNoAgents" }
                th scope="col" { "SkipOfflineAgents" }
            } }
            tbody {
                @for (index, step) in steps.iter().enumerate() {
                    tr data-step=(step.name) {
                        td { (index + 1) }
                        td { (step.name) }
                        td.retries { @if step.retry.retries == 0 { "—" } @else {
                            (step.retry.retries) " (" (step.retry.delay_text) " apart)"
                        } }
                        @match &step.targets {
                            None => {
                                td.runs-on { "the server" }
                                td { "—" } td { "—" } td { "—" }
                            }
                            Some(targets) => {
                                td.runs-on {
                                    "agents with role" @if targets.roles.len() > 1 { "s" } " "
                                    @for (i, role) in targets.roles.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        code.role { (role) }
                                    }
                                }
                                td.max-parallelism { @match targets.max_parallelism {
                                    Some(n) => { (n) " at a time" }
                                    None => { "all at once" }
                                } }
                                td.when-no-agents { @match targets.when_no_agents {
                                    WhenNoAgents::Fail => { "fail" }
                                    WhenNoAgents::Skip => { "skip" }
                                } }
                                td.skip-offline { @if targets.skip_offline_agents {
                                    "yes: offline agents are left out"
                                } @else {
                                    "no: offline agents are waited for"
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}
