//! `/ui/waiting`, what waits for a person: the deployments awaiting an
//! approval the signed-in person may give (with *Approve*/*Reject*), and
//! every paused deployment (project, environment, release, the step, its
//! instructions as recorded, masked, who may answer, since when) with the
//! answers the deployment page offers (*Proceed*/*Abort*, or
//! *Retry*/*Ignore*/*Abort* for a failed step) for those whose role may
//! answer it. Each answer comes back to this list.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Deployment, InterventionKind};

use super::approvals::{decide_form, until};
use super::interventions::{answer_form, answered_by};
use super::{Viewer, age, page};
use crate::services::OpenIntervention;

/// One deployment awaiting the viewer's approval.
pub(crate) struct Waiting {
    /// The deployment.
    pub(crate) deployment: Deployment,
    /// Its project's name.
    pub(crate) project: String,
    /// Its release's number.
    pub(crate) release: String,
}

/// What answers come back to.
const BACK: Option<&str> = Some("waiting");

/// The page.
pub(crate) fn render(
    viewer: &Viewer<'_>,
    approvals: &[Waiting],
    pauses: &[OpenIntervention],
    now: DateTime<Utc>,
) -> Markup {
    let body = html! {
        h1 { "Waiting for a person" }
        section #waiting-approvals aria-labelledby="approvals-title" {
            h2 #approvals-title { "Waiting for your approval" }
            @if approvals.is_empty() {
                p #nothing-waits { "Nothing waits for your approval." }
            } @else {
                (approvals_table(viewer, approvals, now))
            }
        }
        section #waiting-pauses aria-labelledby="pauses-title" {
            h2 #pauses-title { "Paused deployments" }
            @if pauses.is_empty() {
                p #nothing-paused { "No deployment is paused." }
            } @else {
                (pauses_table(viewer, pauses, now))
            }
        }
    };
    page("Waiting", Some(viewer), &body)
}

fn approvals_table(viewer: &Viewer<'_>, approvals: &[Waiting], now: DateTime<Utc>) -> Markup {
    html! {
        table.list #approvals {
            thead { tr {
                th scope="col" { "Deployment" }
                th scope="col" { "Project" }
                th scope="col" { "Release" }
                th scope="col" { "Environment" }
                th scope="col" { "Created by" }
                th scope="col" { "Cancelled" }
                th scope="col" { "Decide" }
            } }
            tbody {
                @for w in approvals {
                    @let d = &w.deployment;
                    tr data-deployment=(d.id.0) {
                        td { a href={ "/ui/deployments/" (d.id.0) } { "#" (d.id.0) } }
                        td { (w.project) }
                        td { (w.release) }
                        td { (d.environment) }
                        td { (d.created_by.as_deref().unwrap_or("—")) }
                        td { @if let Some(rule) = &d.approval { (until(rule.deadline, now)) } }
                        td { (decide_form(viewer, d, BACK)) }
                    }
                }
            }
        }
    }
}

fn pauses_table(viewer: &Viewer<'_>, pauses: &[OpenIntervention], now: DateTime<Utc>) -> Markup {
    html! {
        table.list #pauses {
            thead { tr {
                th scope="col" { "Deployment" }
                th scope="col" { "Project" }
                th scope="col" { "Environment" }
                th scope="col" { "Release" }
                th scope="col" { "Step" }
                th scope="col" { "Instructions" }
                th scope="col" { "Answered by" }
                th scope="col" { "Since" }
                th scope="col" { "Answer" }
            } }
            tbody {
                @for o in pauses {
                    @let d = &o.deployment;
                    tr data-deployment=(d.id.0) data-kind=(o.pause.kind.as_str()) {
                        td { a href={ "/ui/deployments/" (d.id.0) } { "#" (d.id.0) } }
                        td { (o.project) }
                        td { (d.environment) }
                        td { (o.release) }
                        td.step {
                            (o.pause.step_name)
                            @if o.pause.kind == InterventionKind::Failure { " " span.badge.failed { "failed" } }
                        }
                        td { pre.instructions { (o.pause.instructions) } }
                        td.roles { (answered_by(&o.pause)) }
                        td { (age(o.pause.paused_at, now)) }
                        td {
                            @if o.may_answer {
                                (answer_form(viewer, d, &o.pause, BACK))
                            } @else {
                                span.muted { "not your role" }
                            }
                        }
                    }
                }
            }
        }
    }
}
