//! Approvals in the UI: a deployment's approval panel (its rule, who
//! decided what, and *Approve*/*Reject* with a note while it waits); the
//! list of what waits for a person is [`super::waiting`].

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Approval, Deployment};

use super::{Viewer, age};

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
            @if waiting { (decide_form(viewer, deployment, None)) }
        }
    }
}

/// *Approve* and *Reject* with a note; `back` is where the answer leads
/// (`waiting`: the list; else the deployment's page).
pub(crate) fn decide_form(
    viewer: &Viewer<'_>,
    deployment: &Deployment,
    back: Option<&str>,
) -> Markup {
    let id = deployment.id.0;
    html! {
        form.decide method="post" action={ "/ui/deployments/" (id) "/decide" } {
            (viewer.csrf_field())
            @if let Some(back) = back { input type="hidden" name="back" value=(back); }
            label for={ "note-" (id) } { "Note" }
            input id={ "note-" (id) } name="note" type="text" maxlength="2000"
                placeholder="Why (kept with the decision)";
            button type="submit" name="decision" value="approve" { "Approve" }
            button.danger type="submit" name="decision" value="reject" { "Reject" }
        }
    }
}

pub(crate) fn until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
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
