//! Approvals in the UI: a deployment's approval panel (its rule, who
//! decided what, and *Approve*/*Reject* with a note while it waits), and
//! the list of what waits for the signed-in person.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Approval, Deployment};

use super::{Viewer, age, page};

/// The approval panel of a deployment that has (or had) an approval rule.
pub(crate) fn panel(
    viewer: &Viewer<'_>,
    deployment: &Deployment,
    approvals: &[Approval],
    now: DateTime<Utc>,
) -> Markup {
    let Some(rule) = &deployment.approval else {
        return html! {};
    };
    let waiting = deployment.state == tako_store::DeploymentState::AwaitingApproval;
    html! {
        section #approval aria-labelledby="approval-title" {
            h2 #approval-title { "Approval" }
            p {
                (rule.count) " approval" @if rule.count != 1 { "s" } " by "
                (rule.roles.join(" or "))
                @if let Some(not_by) = &rule.not_by { ", not by its " (not_by) }
                @if waiting { "; cancelled " (until(rule.deadline, now)) " if nobody approves" }
            }
            @if !approvals.is_empty() {
                ul.decisions {
                    @for a in approvals {
                        li data-by=(a.by) {
                            span class={ "badge " (if a.approve { "success" } else { "failed" }) } {
                                (if a.approve { "Approved" } else { "Rejected" })
                            }
                            " by " strong { (a.by) } " (" (a.role) ") " (age(a.at, now))
                            @if !a.note.is_empty() { ": " q { (a.note) } }
                        }
                    }
                }
            }
            @if waiting { (decide_form(viewer, deployment)) }
        }
    }
}

/// *Approve* and *Reject* with a note.
fn decide_form(viewer: &Viewer<'_>, deployment: &Deployment) -> Markup {
    let id = deployment.id.0;
    html! {
        form.decide method="post" action={ "/ui/deployments/" (id) "/decide" } {
            (viewer.csrf_field())
            label for={ "note-" (id) } { "Note" }
            input id={ "note-" (id) } name="note" type="text" maxlength="2000"
                placeholder="Why (kept with the decision)";
            button type="submit" name="decision" value="approve" { "Approve" }
            button.danger type="submit" name="decision" value="reject" { "Reject" }
        }
    }
}

fn until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = deadline - now;
    if left.num_seconds() <= 0 {
        "now".to_owned()
    } else if left.num_hours() >= 48 {
        format!("in {} days", left.num_days())
    } else if left.num_minutes() >= 120 {
        format!("in {} hours", left.num_hours())
    } else if left.num_seconds() >= 120 {
        format!("in {} minutes", left.num_minutes())
    } else {
        format!("in {} seconds", left.num_seconds())
    }
}

/// One deployment waiting for the viewer.
pub(crate) struct Waiting {
    /// The deployment.
    pub(crate) deployment: Deployment,
    /// Its project's name.
    pub(crate) project: String,
    /// Its release's number.
    pub(crate) release: String,
}

/// What waits for the signed-in person's approval.
pub(crate) fn render(viewer: &Viewer<'_>, waiting: &[Waiting], now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Waiting for your approval" }
        @if waiting.is_empty() {
            p #nothing-waits { "Nothing waits for your approval." }
        } @else {
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
                    @for w in waiting {
                        @let d = &w.deployment;
                        tr data-deployment=(d.id.0) {
                            td { a href={ "/ui/deployments/" (d.id.0) } { "#" (d.id.0) } }
                            td { (w.project) }
                            td { (w.release) }
                            td { (d.environment) }
                            td { (d.created_by.as_deref().unwrap_or("—")) }
                            td { @if let Some(rule) = &d.approval { (until(rule.deadline, now)) } }
                            td { (decide_form(viewer, d)) }
                        }
                    }
                }
            }
        }
    };
    page("Approvals", Some(viewer), &body)
}
