//! The sign-in page: an API token in, a session cookie out.

use maud::{Markup, html};

use super::page;

/// The sign-in form; `next` is where to go after.
pub(crate) fn render(next: &str, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in to Tako" }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.stack.signin method="post" action="/ui/sign-in" {
            input type="hidden" name="next" value=(next);
            label for="token" { "API token" }
            input #token name="token" type="password" required autocomplete="current-password"
                autofocus;
            p.hint { "Create one with " code { "tako token create --name me --role viewer" }
                ", or use the admin token printed on the server's first start." }
            button type="submit" { "Sign in" }
        }
    };
    page("Sign in", None, &body)
}
