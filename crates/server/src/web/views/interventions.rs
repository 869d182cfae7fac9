//! Pauses in the UI: a deployment's pause panel (the step that waits, its
//! instructions or its failure, who may answer, the answers given so far)
//! and, while it is paused, the answer buttons (*Proceed*/*Abort* for a
//! manual intervention, *Retry*/*Ignore*/*Abort* for a failed step with
//! `OnFailure: ask`) with a note.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Deployment, DeploymentState, Intervention, InterventionAction, InterventionKind};

use super::{Viewer, age};

/// The pause panel of a deployment that paused at least once.
pub(crate) fn panel(
    viewer: &Viewer<'_>,
    deployment: &Deployment,
    pauses: &[Intervention],
    now: DateTime<Utc>,
) -> Markup {
    if pauses.is_empty() {
        return html! {};
    }
    let open = pauses
        .iter()
        .rev()
        .find(|pause| pause.answer.is_none())
        .filter(|_| deployment.state == DeploymentState::Paused);
    html! {
        section #intervention aria-labelledby="intervention-title" {
            h2 #intervention-title { "Waiting for a person" }
            @if let Some(pause) = open {
                p.waits {
                    @match pause.kind {
                        InterventionKind::Manual => { "Step " strong { (pause.step_name) } " waits for a person " }
                        InterventionKind::Failure => { "Step " strong { (pause.step_name) } " failed (OnFailure: ask) " }
                    }
                    (age(pause.paused_at, now)) "; answered by " (answered_by(pause))
                }
                pre.instructions { (pause.instructions) }
                @if may_answer(viewer, pause) { (answer_form(viewer, deployment, pause, None)) }
            }
            @let answered: Vec<&Intervention> = pauses.iter().filter(|p| p.answer.is_some()).collect();
            @if !answered.is_empty() {
                ul.answers {
                    @for pause in answered {
                        @if let Some(a) = &pause.answer {
                            li data-action=(a.action.as_str()) {
                                span class={ "badge " (badge(a.action)) } { (label(a.action)) }
                                " step " (pause.step_name) " by " strong { (a.by) } " (" (a.role) ") " (age(a.at, now))
                                @if !a.note.is_empty() { ": " q { (a.note) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether the viewer's role may answer `pause`: its `Roles`, else admins
/// and deployers (the service decides again on the answer).
pub(crate) fn may_answer(viewer: &Viewer<'_>, pause: &Intervention) -> bool {
    if pause.roles.is_empty() {
        viewer.can_deploy()
    } else {
        pause
            .roles
            .iter()
            .any(|role| role == viewer.who.role.as_str())
    }
}

/// Who may answer `pause`, in words.
pub(crate) fn answered_by(pause: &Intervention) -> String {
    if pause.roles.is_empty() {
        "admin or deployer".to_owned()
    } else {
        pause.roles.join(" or ")
    }
}

/// The answers the pause takes, with a note; `back` is where the answer
/// leads (`waiting`: the list; else the deployment's page).
pub(crate) fn answer_form(
    viewer: &Viewer<'_>,
    deployment: &Deployment,
    pause: &Intervention,
    back: Option<&str>,
) -> Markup {
    let id = deployment.id.0;
    html! {
        form.intervene method="post" action={ "/ui/deployments/" (id) "/intervene" } {
            (viewer.csrf_field())
            @if let Some(back) = back { input type="hidden" name="back" value=(back); }
            label for={ "answer-note-" (id) } { "Note" }
            input id={ "answer-note-" (id) } name="note" type="text" maxlength="2000"
                placeholder="Kept with the answer";
            @for action in pause.kind.actions() {
                @if *action == InterventionAction::Abort {
                    button.danger type="submit" name="action" value=(action.as_str()) { (label(*action)) }
                } @else {
                    button type="submit" name="action" value=(action.as_str()) { (label(*action)) }
                }
                " "
            }
        }
    }
}

pub(crate) fn label(action: InterventionAction) -> &'static str {
    match action {
        InterventionAction::Proceed => "Proceed",
        InterventionAction::Retry => "Retry",
        InterventionAction::Ignore => "Ignore",
        InterventionAction::Abort => "Abort",
    }
}

fn badge(action: InterventionAction) -> &'static str {
    match action {
        InterventionAction::Proceed | InterventionAction::Retry => "success",
        InterventionAction::Ignore => "skipped",
        InterventionAction::Abort => "failed",
    }
}
