//! A project's repository as the server fetches it: the credentials its
//! token gives (used by the router, releases made by hand and the
//! scheduler alike).

use tako_store::Project;

/// The credentials to fetch a project's repository with, if it has a token.
pub fn credentials_of(project: &Project) -> Option<tako_git::Credentials> {
    project
        .repository_token
        .as_ref()
        .map(|token| tako_git::Credentials::token(token.0.clone()))
}
