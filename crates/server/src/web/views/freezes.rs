//! The freezes page (journey.md §5): the active and upcoming freezes (what
//! they cover, when, why, who made them, how many deployments each holds),
//! the deployments held now with the freeze holding each, and for admins
//! the forms: create a freeze (a refused field says why next to it, with
//! everything typed kept), end one, release a held deployment with a
//! reason.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};
use tako_core::freeze::FreezeWindow;
use tako_store::{Deployment, Freeze};

use crate::freezes::ActiveFreeze;
use crate::services::FreezeField;

use super::{Viewer, page, state_badge};

/// One freeze as the page lists it.
pub(crate) struct FreezeRow {
    /// The freeze.
    pub(crate) freeze: Freeze,
    /// Its project's name, when it covers one project only.
    pub(crate) project: Option<String>,
    /// When it ends, if it holds now.
    pub(crate) until: Option<DateTime<Utc>>,
    /// How many deployments it holds now.
    pub(crate) holds: usize,
}

/// One held deployment.
pub(crate) struct HeldRow {
    /// The deployment.
    pub(crate) deployment: Deployment,
    /// Its project's name.
    pub(crate) project: String,
    /// Its release's number.
    pub(crate) release: String,
    /// The freeze holding it now, if one still does.
    pub(crate) holding: Option<ActiveFreeze>,
}

/// What the create form holds: as typed, so that a refused form keeps it.
#[derive(Debug, Default)]
pub(crate) struct Typed {
    /// The environment.
    pub(crate) environment: String,
    /// The project (empty: every project).
    pub(crate) project: String,
    /// The start.
    pub(crate) from: String,
    /// The end.
    pub(crate) to: String,
    /// Days of a weekly freeze (empty: one window).
    pub(crate) every: String,
    /// Why.
    pub(crate) reason: String,
}

/// Why the last form was refused.
pub(crate) enum Refused {
    /// The create form, at a field (or as a whole).
    Create {
        /// The field at fault.
        field: Option<FreezeField>,
        /// What was wrong and what to do.
        message: String,
    },
    /// Releasing this held deployment.
    Release {
        /// The deployment's id.
        deployment: i64,
        /// What was wrong and what to do.
        message: String,
    },
}

/// What the freezes page shows.
pub(crate) struct FreezesPage {
    /// Active and upcoming freezes, oldest first.
    pub(crate) freezes: Vec<FreezeRow>,
    /// Held deployments, newest first.
    pub(crate) held: Vec<HeldRow>,
    /// Every project's name (suggestions for the form).
    pub(crate) projects: Vec<String>,
    /// The create form's values.
    pub(crate) typed: Typed,
    /// Why the last form was refused, if it was.
    pub(crate) refused: Option<Refused>,
    /// Now.
    pub(crate) now: DateTime<Utc>,
}

/// An instant as written (not a `time` element: the page's script turns
/// those into ages, and these are mostly in the future).
fn instant(at: DateTime<Utc>) -> Markup {
    html! {
        span.at title=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (at.format("%Y-%m-%d %H:%M UTC"))
        }
    }
}

/// The freeze's start and end cells.
fn window(freeze: &Freeze) -> (Markup, Markup) {
    match &freeze.window {
        FreezeWindow::Once { from, to } => (instant(*from), instant(*to)),
        FreezeWindow::Weekly(rule) => {
            let text = rule.to_text();
            let (days, span) = text.split_once(' ').unwrap_or((&text, ""));
            let (start, end) = span.split_once('-').unwrap_or((span, ""));
            (
                html! { "every " (days) " at " (start) " UTC" },
                html! { (end) " UTC" @if rule.end <= rule.start { " the next day" } },
            )
        }
    }
}

fn status(row: &FreezeRow, now: DateTime<Utc>) -> Markup {
    match (row.until, &row.freeze.window) {
        (Some(until), _) => html! {
            span.badge.held data-status="active" { "Frozen now" } " until " (instant(until))
        },
        (None, FreezeWindow::Once { from, .. }) if *from > now => html! {
            span.badge.queued data-status="upcoming" { "Upcoming" }
        },
        _ => html! { span.badge data-status="waiting" { "Not now" } },
    }
}

fn release_form(viewer: &Viewer<'_>, id: i64, error: Option<&str>) -> Markup {
    let input = format!("release-reason-{id}");
    html! {
        form.release-hold id={ "release-" (id) } method="post"
            action={ "/ui/deployments/" (id) "/release-hold" } {
            (viewer.csrf_field())
            label for=(input) { "Reason" }
            input id=(input) name="reason" type="text" maxlength="500" required
                placeholder="Why now (audited)" aria-invalid=[error.map(|_| "true")];
            button type="submit" { "Release now" }
            @if let Some(error) = error { span.field-error role="alert" { (error) } }
        }
    }
}

/// One input of the create form.
struct Input<'a> {
    name: FreezeField,
    label: &'a str,
    value: &'a str,
    placeholder: &'a str,
    hint: Option<&'a str>,
    required: bool,
}

/// An input with its label, its hint, and the error if it was refused.
fn field(p: &FreezesPage, input: &Input<'_>) -> Markup {
    let id = format!("freeze-{}", input.name.as_str());
    let error = match &p.refused {
        Some(Refused::Create {
            field: Some(field),
            message,
        }) if *field == input.name => Some(message.as_str()),
        _ => None,
    };
    let error_id = format!("{id}-error");
    let list = (input.name == FreezeField::Project).then_some("project-names");
    html! {
        label for=(id) { (input.label) }
        input id=(id) name=(input.name.as_str()) type="text" value=(input.value)
            placeholder=(input.placeholder) autocomplete="off" required[input.required]
            list=[list] aria-invalid=[error.map(|_| "true")]
            aria-describedby=[error.map(|_| error_id.as_str())];
        @if let Some(error) = error { span.field-error id=(error_id) role="alert" { (error) } }
        @if let Some(hint) = input.hint { span.hint { (hint) } }
    }
}

fn create_form(viewer: &Viewer<'_>, p: &FreezesPage) -> Markup {
    let t = &p.typed;
    let inputs = [
        Input {
            name: FreezeField::Environment,
            label: "Environment",
            value: &t.environment,
            placeholder: "Production",
            hint: None,
            required: true,
        },
        Input {
            name: FreezeField::Project,
            label: "Project (empty: every project)",
            value: &t.project,
            placeholder: "",
            hint: None,
            required: false,
        },
        Input {
            name: FreezeField::From,
            label: "From",
            value: &t.from,
            placeholder: "2026-11-27T00:00:00Z",
            hint: Some("An instant (RFC 3339), or a time of day HH:MM in UTC for a weekly freeze."),
            required: true,
        },
        Input {
            name: FreezeField::To,
            label: "To",
            value: &t.to,
            placeholder: "2026-11-30T00:00:00Z",
            hint: Some(
                "An instant, or HH:MM (24:00 ends the day; at or before From: the next day).",
            ),
            required: true,
        },
        Input {
            name: FreezeField::Every,
            label: "Every (days of a weekly freeze; empty: once)",
            value: &t.every,
            placeholder: "sat,sun",
            hint: None,
            required: false,
        },
        Input {
            name: FreezeField::Reason,
            label: "Reason",
            value: &t.reason,
            placeholder: "Black Friday",
            hint: None,
            required: true,
        },
    ];
    html! {
        h2 #create-title { "Create a freeze" }
        @if let Some(Refused::Create { field: None, message }) = &p.refused {
            p.error role="alert" { (message) }
        }
        form.stack #create-freeze method="post" action="/ui/freezes" aria-labelledby="create-title" {
            (viewer.csrf_field())
            @for input in &inputs { (field(p, input)) }
            datalist #project-names { @for name in &p.projects { option value=(name) {} } }
            button type="submit" { "Create freeze" }
        }
    }
}

/// The freezes page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &FreezesPage) -> Markup {
    let admin = viewer.is_admin();
    let release_error = |id: i64| match &p.refused {
        Some(Refused::Release {
            deployment,
            message,
        }) if *deployment == id => Some(message.as_str()),
        _ => None,
    };
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Dashboard" } " / Freezes" }
        h1 { "Freezes" }
        p.hint {
            "While a freeze holds, deployments by hand into its environment are refused; "
            "those a push or AutoDeploy makes are held until it ends."
            @if !admin { " Only admins create, end and override freezes." }
        }
        @if p.freezes.is_empty() {
            p #no-freezes { "No freeze is active or upcoming." }
        } @else {
            div.scroll { table.list #freezes {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { "Environment" }
                    th scope="col" { "Projects" }
                    th scope="col" { "Start" }
                    th scope="col" { "End" }
                    th scope="col" { "Status" }
                    th scope="col" { "Reason" }
                    th scope="col" { "Created by" }
                    th scope="col" { "Holds" }
                    @if admin { th scope="col" { span.visually-hidden { "Actions" } } }
                } }
                tbody {
                    @for row in &p.freezes {
                        @let f = &row.freeze;
                        @let (start, end) = window(f);
                        tr id={ "freeze-" (f.id) } data-freeze=(f.id) {
                            td { (f.id) }
                            td.environment { (f.environment) }
                            td.projects { @match &row.project { Some(name) => (name), None => "every project" } }
                            td { (start) }
                            td { (end) }
                            td.status { (status(row, p.now)) }
                            td.reason { (f.reason) }
                            td.created-by { (f.created_by) }
                            td.holds { (row.holds) }
                            @if admin {
                                td {
                                    form.inline method="post" action={ "/ui/freezes/" (f.id) "/delete" } {
                                        (viewer.csrf_field())
                                        button.danger.end type="submit" aria-label={ "End freeze " (f.id) } {
                                            @if row.until.is_some() { "End freeze" } @else { "Delete freeze" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        h2 #held-title { "Held deployments" }
        @if let Some(Refused::Release { deployment, message }) = &p.refused {
            @if !p.held.iter().any(|h| h.deployment.id.0 == *deployment) {
                p.error role="alert" { "Deployment #" (deployment) ": " (message) }
            }
        }
        @if p.held.is_empty() {
            p #nothing-held { "No deployment is held." }
        } @else {
            div.scroll { table.list #held aria-labelledby="held-title" {
                thead { tr {
                    th scope="col" { "Deployment" }
                    th scope="col" { "Project" }
                    th scope="col" { "Release" }
                    th scope="col" { "Environment" }
                    th scope="col" { "State" }
                    th scope="col" { "Held by" }
                    @if admin { th scope="col" { "Release early" } }
                } }
                tbody {
                    @for h in &p.held {
                        @let d = &h.deployment;
                        tr data-deployment=(d.id.0) {
                            td { a href={ "/ui/deployments/" (d.id.0) } { "#" (d.id.0) } }
                            td { (h.project) }
                            td { (h.release) }
                            td { (d.environment) }
                            td { (state_badge(d.state)) }
                            td.held-by {
                                @match &h.holding {
                                    Some(active) => {
                                        a href={ "#freeze-" (active.freeze.id) } { "freeze " (active.freeze.id) }
                                        " until " (instant(active.until))
                                    }
                                    None => "no freeze now: released within seconds",
                                }
                            }
                            @if admin { td { (release_form(viewer, d.id.0, release_error(d.id.0))) } }
                        }
                    }
                }
            } }
        }
        @if admin { (create_form(viewer, p)) }
    };
    page("Freezes", Some(viewer), &body)
}
