//! The agents page: every agent with its state (online, offline, pending,
//! disabled), environments, roles, version, last call and the job it runs
//! now; admins approve, disable, enable and remove agents here.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tako_store::{Agent, AgentState};

use crate::services::AgentStatus;

use super::{Viewer, age, page, segment};

/// What the agents page shows.
pub(crate) struct AgentsPage {
    /// Every agent, by name, with its current job.
    pub(crate) agents: Vec<AgentStatus>,
    /// Now, for ages and whether an agent is online.
    pub(crate) now: DateTime<Utc>,
}

fn state_of(agent: &Agent, now: DateTime<Utc>) -> &'static str {
    match agent.state {
        AgentState::Active if crate::services::agents::is_online(agent, now) => "online",
        AgentState::Active => "offline",
        other => other.as_str(),
    }
}

fn action(viewer: &Viewer<'_>, agent: &Agent, verb: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/ui/agents/" (segment(&agent.name)) "/" (verb) } {
            (viewer.csrf_field())
            button type="submit" aria-label={ (label) " agent " (agent.name) } { (label) }
        }
    }
}

/// The agents page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &AgentsPage) -> Markup {
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Dashboard" } " / Agents" }
        h1 { "Agents" }
        @if p.agents.is_empty() {
            p { "No agents yet. An admin creates an enrollment token with "
                code { "tako agent enroll-token --env ENV --role ROLE" }
                ", then runs " code { "tako agent run --server URL --enroll TOKEN" }
                " on the agent's machine." }
        } @else {
            div.scroll { table.list #agent-list {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "State" }
                    th scope="col" { "Environments" }
                    th scope="col" { "Roles" }
                    th scope="col" { "Version" }
                    th scope="col" { "Last seen" }
                    th scope="col" { "Current job" }
                    @if viewer.is_admin() { th scope="col" { span.visually-hidden { "Actions" } } }
                } }
                tbody {
                    @for status in &p.agents {
                        @let agent = &status.agent;
                        @let state = state_of(agent, p.now);
                        tr data-agent=(agent.name) {
                            td { (agent.name) }
                            td { span class={ "agent-state " (state) } { (state) } }
                            td { (agent.environments.join(", ")) }
                            td { (agent.roles.join(", ")) }
                            td { (agent.version.as_deref().unwrap_or("—")) }
                            td { @match agent.last_seen_at {
                                Some(at) => (age(at, p.now)),
                                None => "never",
                            } }
                            td.current-job { @match &status.current_job {
                                Some(job) => a href={ "/ui/deployments/" (job.deployment.0) } {
                                    "deployment #" (job.deployment.0) ": " (job.step_name)
                                },
                                None => "—",
                            } }
                            @if viewer.is_admin() {
                                td {
                                    @match agent.state {
                                        AgentState::Pending => {
                                            (action(viewer, agent, "approve", "Approve"))
                                            (action(viewer, agent, "disable", "Disable"))
                                        }
                                        AgentState::Active => (action(viewer, agent, "disable", "Disable")),
                                        AgentState::Disabled => (action(viewer, agent, "enable", "Enable")),
                                    }
                                    (action(viewer, agent, "remove", "Remove"))
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    page("Agents", Some(viewer), &body)
}
