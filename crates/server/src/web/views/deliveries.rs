//! Every received webhook and what became of it; admins can replay one.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Delivery, DeliveryOutcome, DeliveryState};

use super::{Viewer, age, page, pager, segment};

/// What the deliveries page shows.
pub(crate) struct DeliveriesPage {
    /// Only this project's, when filtered (its name).
    pub(crate) project: Option<String>,
    /// This page, newest first.
    pub(crate) deliveries: Vec<Delivery>,
    /// The next page's URL.
    pub(crate) next: Option<String>,
    /// Now, for ages.
    pub(crate) now: DateTime<Utc>,
}

/// A delivery's outcome in words, with links to what it created.
pub(crate) fn outcome(delivery: &Delivery) -> Markup {
    html! {
        @match (&delivery.state, &delivery.outcome) {
            (_, Some(DeliveryOutcome::Queued { release, deployment })) => {
                span.outcome.queued { "queued: " }
                a href={ "/ui/releases/" (release.0) } { "release" } ", "
                a href={ "/ui/deployments/" (deployment.0) } { "deployment #" (deployment.0) }
            }
            (_, Some(DeliveryOutcome::Ignored { reason })) => {
                span.outcome.ignored { "ignored: " (reason) }
            }
            (_, Some(DeliveryOutcome::Failed { reason })) => {
                span.outcome.failed { "failed: " (reason) }
            }
            (_, Some(DeliveryOutcome::Duplicate)) => {
                span.outcome.ignored { "duplicate: this push was already processed" }
            }
            (DeliveryState::Pending, None) | (_, None) => { span.outcome.pending { "pending" } }
        }
    }
}

/// The deliveries page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &DeliveriesPage) -> Markup {
    let title = match &p.project {
        Some(project) => format!("Deliveries of {project}"),
        None => "Deliveries".to_owned(),
    };
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/" { "Dashboard" }
            @if let Some(project) = &p.project {
                " / " a href={ "/ui/projects/" (segment(project)) } { (project) }
            }
            " / Deliveries"
        }
        h1 { (title) }
        @if p.deliveries.is_empty() {
            p { "No webhook deliveries yet." }
        } @else {
            div.scroll { table.list #delivery-list {
                thead { tr {
                    th scope="col" { "Received" }
                    th scope="col" { "Delivery" }
                    th scope="col" { "Event" }
                    th scope="col" { "Repository" }
                    th scope="col" { "Ref" }
                    th scope="col" { "Outcome" }
                    @if viewer.is_admin() { th scope="col" { span.visually-hidden { "Actions" } } }
                } }
                tbody {
                    @for delivery in &p.deliveries {
                        tr data-delivery=(delivery.id.0) {
                            td { (age(delivery.received_at, p.now)) }
                            td { code { (delivery.id.0) } }
                            td {
                                (delivery.event)
                                @if delivery.recovered {
                                    " " span.recovered title="Tako missed this push (it was down or unreachable) and found it on the remote" { "(recovered by sweep)" }
                                }
                            }
                            td { (delivery.repository_url.as_deref().unwrap_or("—")) }
                            td { (delivery.git_ref.as_deref().unwrap_or("—")) }
                            td { (outcome(delivery)) }
                            @if viewer.is_admin() {
                                td {
                                    @if delivery.state == DeliveryState::Done {
                                        form method="post" action={ "/ui/deliveries/" (segment(&delivery.id.0)) "/replay" } {
                                            (viewer.csrf_field())
                                            button type="submit" aria-label={ "Replay delivery " (delivery.id.0) } { "Replay" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            (pager(p.next.clone()))
        }
    };
    page(&title, Some(viewer), &body)
}
