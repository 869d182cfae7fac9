//! Projects: finding one by name, registering one, replacing its own
//! webhook secret (kept in step with the intake's copy), and setting how its
//! deployments are reported to its forge.

use tako_store::{ForgeStatus, NewProject, Project, RepositoryToken, StatusToken, WebhookSecret};

use super::{Principal, ServiceError, ServiceResult, Services, check_name};

/// The longest repository URL accepted.
const MAX_URL_CHARS: usize = 2048;

/// A project to register.
#[derive(Clone, PartialEq, Eq)]
pub struct NewProjectInput {
    /// Its name.
    pub name: String,
    /// Its repository URL.
    pub repository: String,
    /// Its own webhook secret; the server's applies without one.
    pub webhook_secret: Option<String>,
    /// A token to fetch a private repository.
    pub repository_token: Option<String>,
}

impl std::fmt::Debug for NewProjectInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProjectInput")
            .field("name", &self.name)
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// The project named `name` (without regard to case), or
    /// [`ServiceError::NotFound`].
    pub async fn project_named(&self, name: &str) -> ServiceResult<Project> {
        self.store
            .find_project_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("project {name} not found")))
    }

    /// Registers a project (admin only). Its repository must be a URL Tako
    /// can fetch; its own webhook secret, if any, applies to the next push.
    pub async fn register_project(
        &self,
        who: &Principal,
        input: NewProjectInput,
    ) -> ServiceResult<Project> {
        who.require_admin("register projects: it needs the admin role")?;
        check_name("project name", &input.name)?;
        let repository = input.repository.trim();
        if repository.is_empty()
            || repository.len() > MAX_URL_CHARS
            || repository.chars().any(char::is_control)
        {
            return Err(ServiceError::invalid(format!(
                "repository must be a URL of at most {MAX_URL_CHARS} characters"
            )));
        }
        // Only what Tako can fetch: http(s)://, ssh://, git@host:path, file://
        // or an absolute path (a garbage URL would only fail later, at a push).
        tako_git::RemoteUrl::parse(repository)
            .map_err(|error| ServiceError::invalid(format!("repository: {error}")))?;
        if input.webhook_secret.as_deref().is_some_and(str::is_empty) {
            return Err(ServiceError::invalid(
                "webhook_secret must not be empty: leave it out to use the server's",
            ));
        }
        let project = self
            .store
            .create_project(NewProject {
                name: input.name.trim().to_owned(),
                repository_url: repository.to_owned(),
                webhook_secret: input.webhook_secret.clone().map(WebhookSecret),
                repository_token: input.repository_token.map(RepositoryToken),
            })
            .await?;
        if input.webhook_secret.is_some() {
            self.secrets
                .set(&project.repository_url, input.webhook_secret);
        }
        tracing::info!(project = %project.name, by = %who.name, "project registered");
        Ok(project)
    }

    /// Replaces (rotates) or, with `None`, removes a project's own webhook
    /// secret (admin only); the next push is checked with it.
    pub async fn set_webhook_secret(
        &self,
        who: &Principal,
        project: &str,
        secret: Option<String>,
    ) -> ServiceResult<Project> {
        who.require_admin("change webhook secrets: it needs the admin role")?;
        if secret.as_deref().is_some_and(str::is_empty) {
            return Err(ServiceError::invalid(
                "webhook_secret must not be empty: send null to use the server's",
            ));
        }
        let project = self.project_named(project).await?;
        let updated = self
            .store
            .set_webhook_secret(project.id, secret.clone().map(WebhookSecret))
            .await?;
        self.secrets.set(&updated.repository_url, secret);
        tracing::info!(project = %updated.name, by = %who.name, "project webhook secret replaced");
        Ok(updated)
    }

    /// Sets (or, with `None`, removes) how the project's deployments are
    /// reported to its forge as commit statuses (admin only). The token is
    /// kept sealed and never shown again.
    pub async fn set_forge_status(
        &self,
        who: &Principal,
        project: &str,
        setting: Option<ForgeStatusInput>,
    ) -> ServiceResult<Project> {
        who.require_admin("change forge status tokens: it needs the admin role")?;
        let status = match setting {
            None => None,
            Some(input) => {
                let token = input.token.trim();
                // It goes into a header: printable ASCII only.
                if token.is_empty()
                    || token.len() > 1024
                    || !token.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(ServiceError::invalid(
                        "token must be 1 to 1024 printable ASCII characters without spaces",
                    ));
                }
                let forge = match input.forge.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(name) => Some(
                        tako_forges::status::StatusForge::parse(name)
                            .ok_or_else(|| {
                                ServiceError::invalid(
                                    "forge must be github, gitea, forgejo or gitlab",
                                )
                            })?
                            .name()
                            .to_owned(),
                    ),
                };
                let api_url = match input.api_url.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(url) => {
                        let url = url.trim_end_matches('/');
                        if !(url.starts_with("https://") || url.starts_with("http://"))
                            || url.len() > MAX_URL_CHARS
                            || !url.chars().all(|c| c.is_ascii_graphic())
                        {
                            return Err(ServiceError::invalid(
                                "api_url must be an http:// or https:// URL",
                            ));
                        }
                        Some(url.to_owned())
                    }
                };
                Some(ForgeStatus {
                    token: StatusToken(token.to_owned()),
                    forge,
                    api_url,
                    deployments: input.deployments,
                })
            }
        };
        let project = self.project_named(project).await?;
        let removed = status.is_none();
        let updated = self.store.set_forge_status(project.id, status).await?;
        tracing::info!(project = %updated.name, by = %who.name, removed, "forge status setting replaced");
        Ok(updated)
    }
}

/// How a project's deployments are reported to its forge.
#[derive(Clone, PartialEq, Eq)]
pub struct ForgeStatusInput {
    /// The token (write-only).
    pub token: String,
    /// `github`, `gitea`, `gitlab`.
    pub forge: Option<String>,
    /// The forge's API base URL.
    pub api_url: Option<String>,
    /// On GitHub, also a Deployment and its statuses.
    pub deployments: bool,
}

impl std::fmt::Debug for ForgeStatusInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeStatusInput")
            .field("forge", &self.forge)
            .field("api_url", &self.api_url)
            .field("deployments", &self.deployments)
            .finish_non_exhaustive()
    }
}
