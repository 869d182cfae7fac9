//! A project: its releases with their state per environment, its recent
//! deliveries, and its environments with their branch policies.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Delivery, Deployment, EnvironmentPolicy, Project, Release, ReleaseId};

use super::deliveries::outcome;
use super::{Viewer, age, first_line, page, pager, segment, short_sha, state_badge, with_query};

/// What the project page shows.
pub(crate) struct ProjectPage {
    /// The project.
    pub(crate) project: Project,
    /// This page of releases, newest first.
    pub(crate) releases: Vec<Release>,
    /// The latest deployment of each listed release per environment.
    pub(crate) deployments: HashMap<(ReleaseId, String), Deployment>,
    /// The environments (columns).
    pub(crate) environments: Vec<String>,
    /// The latest deployment per environment.
    pub(crate) latest: HashMap<String, Deployment>,
    /// Branch policies.
    pub(crate) policies: Vec<EnvironmentPolicy>,
    /// The most recent deliveries.
    pub(crate) deliveries: Vec<Delivery>,
    /// The next page of releases.
    pub(crate) next: Option<String>,
    /// Now, for ages.
    pub(crate) now: DateTime<Utc>,
}

/// The project page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &ProjectPage) -> Markup {
    let name = segment(&p.project.name);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Dashboard" } " / " (p.project.name) }
        h1 { (p.project.name) }
        p.meta { "Repository " code { (p.project.repository_url) } }
        p.actions {
            @if viewer.is_admin() {
                a href={ "/ui/projects/" (name) "/variables" } { "Variables" }
            }
            a href=(with_query("/ui/deliveries", "project", &p.project.name)) { "All deliveries" }
        }

        section aria-labelledby="releases" {
            h2 #releases { "Releases" }
            @if p.releases.is_empty() {
                p { "No releases yet: push to a branch the takofile maps to an environment." }
            } @else {
                div.scroll { table.list {
                    thead { tr {
                        th scope="col" { "Release" }
                        th scope="col" { "Branch" }
                        th scope="col" { "Commit" }
                        th scope="col" { "Notes" }
                        th scope="col" { "Created" }
                        @for environment in &p.environments { th scope="col" { (environment) } }
                    } }
                    tbody {
                        @for release in &p.releases {
                            tr {
                                td { a href={ "/ui/releases/" (release.id.0) } { (release.number) } }
                                td { (release.branch.as_deref().unwrap_or("—")) }
                                td { code { (short_sha(&release.commit)) } }
                                td.notes { (first_line(&release.notes)) }
                                td { (age(release.created_at, p.now)) }
                                @for environment in &p.environments {
                                    td {
                                        @if let Some(d) = p.deployments.get(&(release.id, environment.clone())) {
                                            a href={ "/ui/deployments/" (d.id.0) } { (state_badge(d.state)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
                (pager(p.next.clone()))
            }
        }

        section aria-labelledby="environments" {
            h2 #environments { "Environments" }
            @if p.environments.is_empty() {
                p { "No deployments yet." }
            } @else {
                table.list {
                    thead { tr {
                        th scope="col" { "Environment" }
                        th scope="col" { "Latest deployment" }
                        th scope="col" { "Branches allowed" }
                    } }
                    tbody {
                        @for environment in &p.environments {
                            tr {
                                th scope="row" { (environment) }
                                td {
                                    @if let Some(d) = p.latest.get(environment) {
                                        a href={ "/ui/deployments/" (d.id.0) } { "#" (d.id.0) } " "
                                        (state_badge(d.state))
                                    }
                                }
                                td {
                                    @match p.policies.iter().find(|x| x.environment.eq_ignore_ascii_case(environment)) {
                                        Some(policy) if policy.allowed_branches.is_empty() => { "none (no branch may deploy)" }
                                        Some(policy) => { code { (policy.allowed_branches.join(", ")) } }
                                        None => { "any (no policy)" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        section aria-labelledby="deliveries" {
            h2 #deliveries { "Recent deliveries" }
            @if p.deliveries.is_empty() {
                p { "No webhook deliveries yet." }
            } @else {
                table.list {
                    thead { tr {
                        th scope="col" { "Received" }
                        th scope="col" { "Event" }
                        th scope="col" { "Ref" }
                        th scope="col" { "Outcome" }
                    } }
                    tbody {
                        @for delivery in &p.deliveries {
                            tr {
                                td { (age(delivery.received_at, p.now)) }
                                td {
                                    (delivery.event)
                                    @if delivery.recovered { " (recovered by sweep)" }
                                }
                                td { (delivery.git_ref.as_deref().unwrap_or("—")) }
                                td { (outcome(delivery)) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&p.project.name, Some(viewer), &body)
}
