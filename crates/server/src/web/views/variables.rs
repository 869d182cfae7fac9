//! A project's variables: scoped values in a table, sensitive ones shown as
//! `********` and only ever replaced, never revealed.

use maud::{Markup, html};
use tako_store::{Project, Variable};

use super::{Viewer, page, segment};

/// What a sensitive value looks like.
pub(crate) const MASK: &str = "********";

/// What the variables page shows.
pub(crate) struct VariablesPage {
    /// The project.
    pub(crate) project: Project,
    /// Its variables, by name then scope.
    pub(crate) variables: Vec<Variable>,
    /// Why the last change was refused, if it was.
    pub(crate) error: Option<String>,
}

/// The variables page.
pub(crate) fn render(viewer: &Viewer<'_>, p: &VariablesPage) -> Markup {
    let name = segment(&p.project.name);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/" { "Dashboard" } " / "
            a href={ "/ui/projects/" (name) } { (p.project.name) } " / Variables"
        }
        h1 { "Variables of " (p.project.name) }
        @if p.variables.is_empty() {
            p { "No project variables. Takofile variables and system variables still apply." }
        } @else {
            table.list #variables {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Value" }
                    th scope="col" { "Scope" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for variable in &p.variables {
                        tr {
                            th scope="row" { code { (variable.name) } }
                            td {
                                @if variable.sensitive {
                                    span.sensitive title="Sensitive: never shown" { (MASK) }
                                } @else {
                                    code { (variable.value) }
                                }
                            }
                            td {
                                @if variable.environments.is_empty() { "all environments" }
                                @else { (variable.environments.join(", ")) }
                            }
                            td {
                                form method="post" action={ "/ui/projects/" (name) "/variables/" (variable.id.0) "/delete" } {
                                    (viewer.csrf_field())
                                    button type="submit" aria-label={ "Delete " (variable.name) } { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(error) = &p.error { p.error role="alert" { (error) } }
        h2 { "Set or replace a variable" }
        form.stack method="post" action={ "/ui/projects/" (name) "/variables" } {
            (viewer.csrf_field())
            label for="var-name" { "Name" }
            input #var-name name="name" required autocomplete="off";
            label for="var-value" { "Value" }
            input #var-value name="value" type="password" autocomplete="new-password";
            label for="var-envs" { "Environments (comma-separated; empty for all)" }
            input #var-envs name="environments" autocomplete="off";
            label.check {
                input name="sensitive" type="checkbox" value="true";
                " Sensitive (stored encrypted, masked in logs, never shown again)"
            }
            button type="submit" { "Save" }
        }
    };
    page(
        &format!("Variables of {}", p.project.name),
        Some(viewer),
        &body,
    )
}
