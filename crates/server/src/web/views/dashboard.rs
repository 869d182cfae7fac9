//! The dashboard: projects × environments, each cell the latest deployment.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Deployment, Project, ProjectId};

use super::{Viewer, age, page, pager, segment, state_badge};

/// A cell: the latest deployment of a project to an environment.
pub(crate) struct Cell {
    /// The deployment.
    pub(crate) deployment: Deployment,
    /// Its release's number.
    pub(crate) release: String,
}

/// What the dashboard shows.
pub(crate) struct Dashboard {
    /// This page of projects.
    pub(crate) projects: Vec<Project>,
    /// The columns.
    pub(crate) environments: Vec<String>,
    /// The cells that have a deployment, by project and environment.
    pub(crate) cells: HashMap<(ProjectId, String), Cell>,
    /// The next page's URL.
    pub(crate) next: Option<String>,
    /// Now, for ages.
    pub(crate) now: DateTime<Utc>,
}

/// The key that names a cell for live updates.
pub(crate) fn cell_key(project: ProjectId, environment: &str) -> String {
    format!("{}:{}", project.0, environment)
}

/// One cell's content.
pub(crate) fn cell(cell: Option<&Cell>, now: DateTime<Utc>) -> Markup {
    html! {
        @if let Some(cell) = cell {
            a.cell href={ "/ui/deployments/" (cell.deployment.id.0) } {
                span.release { (cell.release) }
                (state_badge(cell.deployment.state))
                (age(cell.deployment.finished_at.or(cell.deployment.started_at)
                    .unwrap_or(cell.deployment.queued_at), now))
            }
        } @else {
            span.none { "—" span.visually-hidden { "not deployed" } }
        }
    }
}

/// The dashboard page.
pub(crate) fn render(viewer: &Viewer<'_>, dashboard: &Dashboard) -> Markup {
    let body = html! {
        h1 { "Dashboard" }
        @if dashboard.projects.is_empty() {
            p { "No projects yet. Register one with " code { "tako project add" }
                " and point its GitHub webhook at " code { "/hooks/github" } "." }
        } @else {
            div.scroll {
                table.grid #dashboard data-live="/ui/dashboard/events" {
                    caption.visually-hidden { "The latest deployment of each project to each environment" }
                    thead { tr {
                        th scope="col" { "Project" }
                        @for environment in &dashboard.environments {
                            th scope="col" { (environment) }
                        }
                    } }
                    tbody {
                        @for project in &dashboard.projects {
                            tr {
                                th scope="row" {
                                    a href={ "/ui/projects/" (segment(&project.name)) } { (project.name) }
                                }
                                @for environment in &dashboard.environments {
                                    @let key = (project.id, environment.clone());
                                    td data-cell=(cell_key(project.id, environment)) {
                                        (cell(dashboard.cells.get(&key), dashboard.now))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(dashboard.next.clone()))
        }
    };
    page("Dashboard", Some(viewer), &body)
}
