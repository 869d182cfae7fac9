//! System variables: what Tako tells every step about its deployment.
//!
//! Each variable exists as `Tako.X` and as its Octopus alias `Octopus.X`, so
//! Octopus step templates and habits work unchanged.

/// Facts about one deployment, from which the system variables are built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// The project's name.
    pub project: String,
    /// The environment deployed to.
    pub environment: String,
    /// The release number (`1.4.0`).
    pub release_number: String,
    /// The release notes (Markdown).
    pub release_notes: String,
    /// The release's id (`releases-12`).
    pub release_id: String,
    /// The deployment's id (`deployments-34`).
    pub deployment_id: String,
    /// The per-project build counter.
    pub build: u64,
    /// The repository's URL or path.
    pub git_repository: String,
    /// The branch (or tag) the release was built from.
    pub git_branch: String,
    /// The full commit id.
    pub git_commit: String,
    /// Who pushed.
    pub git_pusher: String,
    /// The server's public base URL, if known (`https://tako.example.com`).
    pub web_base_url: String,
    /// Fields of the takofile's `Manifest:`, if any.
    pub manifest: Option<ManifestFacts>,
}

/// The module manifest fields exposed as `Tako.Manifest.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestFacts {
    /// `ModuleVersion` (plus the prerelease label when present).
    pub version: String,
    /// The module's name (the manifest file's base name).
    pub name: String,
    /// `Author`.
    pub author: String,
    /// `Description`.
    pub description: String,
}

impl ManifestFacts {
    /// The facts of a module manifest (`.psd1`) at `path` with this text:
    /// the version includes the prerelease label, the name is the file's
    /// base name.
    pub fn from_manifest(
        path: &str,
        text: &str,
    ) -> Result<ManifestFacts, tako_psd1::ManifestError> {
        let manifest = tako_psd1::ModuleManifest::from_text(text)?;
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let name = file_name
            .rsplit_once('.')
            .map_or(file_name, |(stem, _)| stem)
            .to_owned();
        Ok(ManifestFacts {
            version: manifest.full_version(),
            name,
            author: manifest.author.clone().unwrap_or_default(),
            description: manifest.description.clone().unwrap_or_default(),
        })
    }
}

/// The first seven characters of a commit id.
pub fn short_commit(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// Pushes `Tako.<suffix>` and `Octopus.<suffix>`.
pub fn push_aliased(out: &mut Vec<(String, String)>, suffix: &str, value: impl Into<String>) {
    let value = value.into();
    out.push((format!("Tako.{suffix}"), value.clone()));
    out.push((format!("Octopus.{suffix}"), value));
}

/// The server's links for one deployment (`Tako.Web.*`): the base URL
/// without a trailing slash, and the paths of the project, release and
/// deployment pages relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLinks {
    /// `Tako.Web.BaseUrl` (`https://tako.example.com`, or empty if unknown).
    pub base: String,
    /// `Tako.Web.ProjectLink` (`/projects/<name>`).
    pub project: String,
    /// `Tako.Web.ReleaseLink` (`/releases/<id>`).
    pub release: String,
    /// `Tako.Web.DeploymentLink` (`/deployments/<id>`).
    pub deployment: String,
}

impl WebLinks {
    /// `path` made absolute with the base URL, or `None` when the base URL
    /// is unknown (a relative link is of no use outside the server).
    pub fn absolute(&self, path: &str) -> Option<String> {
        (!self.base.is_empty()).then(|| format!("{}{path}", self.base))
    }
}

/// The links of a deployment's pages, as the `Tako.Web.*` variables hold them.
pub fn web_links(facts: &DeploymentFacts) -> WebLinks {
    WebLinks {
        base: facts.web_base_url.trim_end_matches('/').to_owned(),
        project: format!("/projects/{}", facts.project),
        release: format!("/releases/{}", facts.release_id),
        deployment: format!("/deployments/{}", facts.deployment_id),
    }
}

/// The deployment-wide system variables.
pub fn system_variables(facts: &DeploymentFacts) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(64);
    let WebLinks {
        base,
        project: project_link,
        release: release_link,
        deployment: deployment_link,
    } = web_links(facts);
    push_aliased(&mut out, "Project.Name", &facts.project);
    push_aliased(&mut out, "Environment.Name", &facts.environment);
    push_aliased(&mut out, "Release.Number", &facts.release_number);
    push_aliased(&mut out, "Release.Notes", &facts.release_notes);
    push_aliased(&mut out, "Release.Id", &facts.release_id);
    push_aliased(&mut out, "Deployment.Id", &facts.deployment_id);
    push_aliased(&mut out, "Deployment.Error", "");
    push_aliased(&mut out, "Deployment.ErrorDetail", "");
    push_aliased(&mut out, "Deployment.CreatedBy.Username", &facts.git_pusher);
    push_aliased(&mut out, "Git.Repository", &facts.git_repository);
    push_aliased(&mut out, "Git.Branch", &facts.git_branch);
    push_aliased(&mut out, "Git.Commit", &facts.git_commit);
    push_aliased(&mut out, "Git.ShortCommit", short_commit(&facts.git_commit));
    push_aliased(&mut out, "Git.Pusher", &facts.git_pusher);
    push_aliased(&mut out, "Release.Git.BranchName", &facts.git_branch);
    push_aliased(&mut out, "Release.Git.CommitHash", &facts.git_commit);
    push_aliased(&mut out, "Build", facts.build.to_string());
    push_aliased(&mut out, "Web.BaseUrl", &base);
    push_aliased(&mut out, "Web.ServerUri", base);
    push_aliased(&mut out, "Web.ProjectLink", project_link);
    push_aliased(&mut out, "Web.ReleaseLink", release_link);
    push_aliased(&mut out, "Web.DeploymentLink", deployment_link);
    if let Some(manifest) = &facts.manifest {
        push_aliased(&mut out, "Manifest.Version", &manifest.version);
        push_aliased(&mut out, "Manifest.Name", &manifest.name);
        push_aliased(&mut out, "Manifest.Author", &manifest.author);
        push_aliased(&mut out, "Manifest.Description", &manifest.description);
    }
    out
}

/// The variables naming the running step.
pub fn step_variables(step_name: &str) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(4);
    push_aliased(&mut out, "Action.Name", step_name);
    push_aliased(&mut out, "Step.Name", step_name);
    out
}

/// Names of an output variable `name` set by step `step`, in both spellings.
pub fn output_variable_names(step: &str, name: &str) -> [String; 2] {
    [
        format!("Tako.Action[{step}].Output.{name}"),
        format!("Octopus.Action[{step}].Output.{name}"),
    ]
}

/// The names of output variable `name` set by step `step` on one machine
/// (an agent), as Octopus names them: `Octopus.Action[Step].Output[machine].Name`.
pub fn machine_output_variable_names(step: &str, machine: &str, name: &str) -> [String; 2] {
    [
        format!("Tako.Action[{step}].Output[{machine}].{name}"),
        format!("Octopus.Action[{step}].Output[{machine}].{name}"),
    ]
}

/// The system variables of a step running on an agent (`Tako.Agent.*`
/// with their Octopus aliases `Octopus.Machine.*`).
pub fn agent_variables(name: &str, roles: &[String]) -> Vec<(String, String)> {
    let roles = roles.join(",");
    vec![
        ("Tako.Agent.Name".to_owned(), name.to_owned()),
        ("Tako.Agent.Roles".to_owned(), roles.clone()),
        ("Octopus.Machine.Name".to_owned(), name.to_owned()),
        ("Octopus.Machine.Roles".to_owned(), roles),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tako_variable_has_its_octopus_alias() {
        let facts = DeploymentFacts {
            project: "StatusCakeDSC".into(),
            git_commit: "0123456789abcdef".into(),
            manifest: Some(ManifestFacts {
                version: "1.4.0".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let vars = system_variables(&facts);
        for (name, value) in vars.iter().filter(|(n, _)| n.starts_with("Tako.")) {
            let alias = name.replacen("Tako.", "Octopus.", 1);
            assert!(
                vars.contains(&(alias, value.clone())),
                "{name} lacks an alias"
            );
        }
        assert!(vars.contains(&("Tako.Git.ShortCommit".into(), "0123456".into())));
        assert!(vars.contains(&("Octopus.Manifest.Version".into(), "1.4.0".into())));
    }

    #[test]
    fn web_links_match_the_web_variables() {
        let facts = DeploymentFacts {
            project: "StatusCakeDSC".into(),
            release_id: "releases-12".into(),
            deployment_id: "deployments-34".into(),
            web_base_url: "https://tako.example.com/".into(),
            ..Default::default()
        };
        let links = web_links(&facts);
        let vars = system_variables(&facts);
        for (name, value) in [
            ("Tako.Web.BaseUrl", &links.base),
            ("Tako.Web.ProjectLink", &links.project),
            ("Tako.Web.ReleaseLink", &links.release),
            ("Tako.Web.DeploymentLink", &links.deployment),
        ] {
            assert!(vars.contains(&(name.into(), value.clone())), "{name}");
        }
        assert_eq!(
            links.absolute(&links.deployment).as_deref(),
            Some("https://tako.example.com/deployments/deployments-34")
        );
        let unknown = web_links(&DeploymentFacts::default());
        assert_eq!(unknown.absolute(&unknown.project), None);
    }
}
