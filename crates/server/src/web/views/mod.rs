//! The web UI's HTML, written with `maud` (compile-time templates: every
//! interpolated value is escaped). Each page module turns the data its
//! handler loaded into markup; nothing here touches the store.

pub(crate) mod agents;
pub(crate) mod approvals;
pub(crate) mod dashboard;
pub(crate) mod deliveries;
pub(crate) mod deployment;
pub(crate) mod freezes;
pub(crate) mod interventions;
pub(crate) mod project;
pub(crate) mod release;
pub(crate) mod sign_in;
pub(crate) mod variables;
pub(crate) mod waiting;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use tako_store::{DeploymentState, StepRunState};

use crate::services::{Principal, Role};

/// Who is looking, for the page header and the forms.
pub(crate) struct Viewer<'a> {
    /// The signed-in token.
    pub(crate) who: &'a Principal,
    /// The CSRF token forms post.
    pub(crate) csrf: &'a str,
    /// How many things wait for them (approvals they may give, pauses
    /// they may answer): the navigation's badge.
    pub(crate) waiting: usize,
}

impl Viewer<'_> {
    /// May deploy, create releases and cancel.
    pub(crate) fn can_deploy(&self) -> bool {
        self.who.role.may_deploy()
    }

    /// May read and change variables and replay deliveries.
    pub(crate) fn is_admin(&self) -> bool {
        self.who.role == Role::Admin
    }

    /// The hidden CSRF field of a form.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// A whole page: head, header with navigation (when signed in), `body`.
pub(crate) fn page(title: &str, viewer: Option<&Viewer<'_>>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tako" }
                link rel="stylesheet" href="/ui/assets/tako.css";
                script src="/ui/assets/tako.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "Tako" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Main" {
                            a href="/ui/" { "Dashboard" }
                            a href="/ui/deliveries" { "Deliveries" }
                            a href="/ui/agents" { "Agents" }
                            a href="/ui/waiting" {
                                "Waiting"
                                @if viewer.waiting > 0 {
                                    " " span.count #waiting-count
                                        title={ (viewer.waiting) " waiting for you" } { (viewer.waiting) }
                                }
                            }
                            a href="/ui/freezes" { "Freezes" }
                        }
                        form.signout method="post" action="/ui/sign-out" {
                            (viewer.csrf_field())
                            span.who { (viewer.who.name) " (" (viewer.who.role) ")" }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// An error page.
pub(crate) fn error_page(status: u16, message: &str, viewer: Option<&Viewer<'_>>) -> Markup {
    page(
        "Error",
        viewer,
        &html! {
            h1 { "Error " (status) }
            p.error role="alert" { (message) }
            p { a href="/ui/" { "Back to the dashboard" } }
        },
    )
}

/// A deployment state as a badge: colour and text.
pub(crate) fn state_badge(state: DeploymentState) -> Markup {
    let (class, text) = match state {
        DeploymentState::AwaitingApproval => ("awaiting_approval", "Awaiting approval"),
        DeploymentState::Queued => ("queued", "Queued"),
        DeploymentState::Running => ("running", "Running"),
        DeploymentState::Paused => ("paused", "Paused: waits for a person"),
        DeploymentState::Success => ("success", "Success"),
        DeploymentState::Failed => ("failed", "Failed"),
        DeploymentState::Cancelled => ("cancelled", "Cancelled"),
        DeploymentState::Interrupted => ("interrupted", "Interrupted"),
        DeploymentState::Held => ("held", "Held (frozen)"),
    };
    html! { span class={ "badge " (class) } data-state=(class) { (text) } }
}

/// A step state as a badge.
pub(crate) fn step_badge(state: StepRunState) -> Markup {
    let text = state.as_str();
    html! { span class={ "badge " (text) } { (text) } }
}

/// A time as "3 min ago", refreshed by the page's script.
pub(crate) fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            title=(at.format("%Y-%m-%d %H:%M:%S UTC")) { (ago(now - at)) }
    }
}

/// A duration in the past, in words.
pub(crate) fn ago(delta: chrono::TimeDelta) -> String {
    let seconds = delta.num_seconds().max(0);
    match seconds {
        0..=44 => "just now".to_owned(),
        45..=5_399 => format!("{} min ago", (seconds + 30) / 60),
        5_400..=129_599 => format!("{} h ago", (seconds + 1_800) / 3_600),
        _ => format!("{} days ago", (seconds + 43_200) / 86_400),
    }
}

/// A duration as `1.2 s` or `3 min 4 s`.
pub(crate) fn duration(value: std::time::Duration) -> String {
    let ms = value.as_millis();
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", value.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1_000)
    }
}

/// The first 7 characters of a commit.
pub(crate) fn short_sha(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// The first line of a text.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// A "next page" link when there is one.
pub(crate) fn pager(next: Option<String>) -> Markup {
    html! {
        @if let Some(next) = next {
            nav.pager aria-label="Pages" {
                a href=(next) rel="next" { "Older →" }
            }
        }
    }
}

/// Markdown rendered to HTML, then sanitised: no scripts, no event
/// handlers, no `javascript:` links, no raw HTML that could escape.
pub(crate) fn markdown(text: &str) -> Markup {
    let parser = pulldown_cmark::Parser::new(text);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    PreEscaped(
        ammonia::Builder::default()
            .link_rel(Some("noopener noreferrer nofollow"))
            .clean(&html)
            .to_string(),
    )
}

/// `path?key=value` with the value percent-encoded.
pub(crate) fn with_query(path: &str, key: &str, value: &str) -> String {
    format!("{path}?{key}={}", segment(value))
}

/// A name as a path segment (or query value): percent-encoded.
pub(crate) fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}
