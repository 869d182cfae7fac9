//! The validated takofile plan: what downstream crates consume. Nothing here
//! refers to YAML; every value has already been checked.

use std::fmt;
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::glob::RefPattern;
use crate::shell::Shell;

/// The exact message of the warning given for a `Server:` key. The server
/// drops this warning when it forwards that URL to Octopus.
pub const SERVER_IGNORED: &str = "Server is ignored: Tako is the deployment server";

/// A validated takofile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takofile {
    /// The project this repository deploys.
    pub project: String,
    /// Takofukku's Octopus server URL, if given; only used for forwarding.
    pub server: Option<String>,
    /// Branch and tag routes, in file order; the first match wins.
    pub mappings: Vec<Mapping>,
    /// Whether `mappings` is the default (`master` and `main` to `Production`)
    /// because the file has no `Mappings` key.
    pub mappings_defaulted: bool,
    /// The order of environments and the rules of each (`Lifecycle`);
    /// `None`: every environment is independent.
    pub lifecycle: Option<crate::lifecycle::Lifecycle>,
    /// Whether a mapped push creates a release (default) or redeploys the newest.
    pub create_release: bool,
    /// The release number template, unevaluated.
    pub version: Option<String>,
    /// Path of a `.psd1` module manifest in the repository.
    pub manifest: Option<String>,
    /// Non-sensitive variables declared in the file, in file order.
    pub variables: Vec<VariableDecl>,
    /// The process; `None` when the file has no `Steps` key (the process then
    /// lives on the server).
    pub steps: Option<Vec<Step>>,
    /// What the server keeps of this project's history (`Retention`),
    /// each entry overriding the server's setting; read from the default
    /// branch.
    pub retention: crate::retention::Retention,
    /// Warnings found while validating (never errors).
    pub warnings: Vec<Diagnostic>,
}

impl Takofile {
    /// The environment of the first `Branch:` mapping matching `branch` (a full
    /// branch name without `refs/heads/`).
    pub fn environment_for_branch(&self, branch: &str) -> Option<&str> {
        self.mappings
            .iter()
            .find_map(|mapping| match &mapping.target {
                RefPattern::Branch(glob) if glob.matches(branch) => {
                    Some(mapping.environment.as_str())
                }
                _ => None,
            })
    }

    /// The environment of the first `Tag:` mapping matching `tag` (a full tag
    /// name without `refs/tags/`).
    pub fn environment_for_tag(&self, tag: &str) -> Option<&str> {
        self.mappings
            .iter()
            .find_map(|mapping| match &mapping.target {
                RefPattern::Tag(glob) if glob.matches(tag) => Some(mapping.environment.as_str()),
                _ => None,
            })
    }

    /// The step with this name (compared case-insensitively).
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps
            .as_deref()?
            .iter()
            .find(|step| step.name.to_lowercase() == name.to_lowercase())
    }
}

/// One route: pushes matching `target` deploy to `environment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Which branch or tag pushes match.
    pub target: RefPattern,
    /// The environment they deploy to.
    pub environment: String,
}

/// A variable declared in the takofile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDecl {
    /// The variable's name.
    pub name: String,
    /// Its value (may itself reference other variables).
    pub value: String,
    /// The environments it is scoped to; empty means all.
    pub environments: Vec<String>,
    /// The target roles it is scoped to (`Roles`); empty means every step.
    pub roles: Vec<String>,
}

/// One step of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique (case-insensitively) name; later steps read its outputs by it.
    pub name: String,
    /// What the step does.
    pub action: StepAction,
    /// The interpreter for `Run`/`Script` steps (default bash).
    pub shell: Shell,
    /// Run only in these environments; empty means all.
    pub environments: Vec<String>,
    /// Never run in these environments.
    pub exclude_environments: Vec<String>,
    /// When the step runs, given the outcome of earlier steps.
    pub condition: Condition,
    /// How long the step may run (default 1h).
    pub timeout: Timeout,
    /// How often a failed step runs again before it counts as failed
    /// (`Retries`, `RetryDelay`).
    pub retry: Retry,
    /// Directory to run in, relative to the checkout.
    pub working_directory: Option<String>,
    /// Extra environment variables, in file order, values unevaluated.
    pub env: Vec<(String, String)>,
    /// The agents it runs on (`Roles:`); `None`: it runs on the server.
    pub targets: Option<StepTargets>,
    /// What a failure does (`OnFailure`): fail, or wait for a person.
    pub on_failure: OnFailure,
    /// The line where the step starts, for later messages.
    pub line: usize,
}

impl Step {
    /// A `Uses: manual-intervention` step's `Instructions` (unevaluated)
    /// and the token roles that may answer it (`Roles` under `With`,
    /// lowercase; empty: admins and deployers); `None` for other steps.
    pub fn manual_intervention(&self) -> Option<(&str, Vec<String>)> {
        let StepAction::Uses {
            kind: UsesKind::ManualIntervention,
            with,
        } = &self.action
        else {
            return None;
        };
        let mut instructions = "";
        let mut roles = Vec::new();
        for (name, value) in with {
            match (name.as_str(), value) {
                ("Instructions", WithValue::Text(text)) => instructions = text,
                ("Roles", WithValue::Text(role)) => roles.push(role.to_ascii_lowercase()),
                ("Roles", WithValue::List(items)) => roles.extend(
                    items
                        .iter()
                        .filter_map(WithValue::as_text)
                        .map(str::to_ascii_lowercase),
                ),
                _ => {}
            }
        }
        Some((instructions, roles))
    }
}

/// What a step's failure does (`OnFailure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The step fails and the failure rules apply (the default).
    #[default]
    Fail,
    /// Guided failure: the deployment pauses for a person to choose
    /// *Retry*, *Ignore* or *Abort*.
    Ask,
}

/// Where a step with `Roles` runs: on every approved, enabled agent of the
/// deployment's environment with at least one of the roles
/// (`../shared/spec/agents.md` §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTargets {
    /// The roles (`Roles`, also `TargetRoles` or `Octopus.Action.TargetRoles`),
    /// as written, without duplicates.
    pub roles: Vec<String>,
    /// The most agents running it at once (`MaxParallelism`); `None`: all.
    pub max_parallelism: Option<u32>,
    /// What happens when no agent has any of the roles (`WhenNoAgents`).
    pub when_no_agents: WhenNoAgents,
    /// Agents offline when the step starts are left out
    /// (`SkipOfflineAgents`) instead of failing their part.
    pub skip_offline_agents: bool,
}

/// What a step with `Roles` does when no agent has any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenNoAgents {
    /// The step fails (the default).
    #[default]
    Fail,
    /// The step is skipped, with the reason.
    Skip,
}

/// What a step does: exactly one of `Run`, `Script`, `Uses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    /// An inline script.
    Run(String),
    /// The path of a script file in the repository.
    Script(String),
    /// A built-in step kind or an Octopus step template, with its parameters.
    Uses {
        /// Which kind.
        kind: UsesKind,
        /// The `With:` parameters in file order; built-in kinds use the
        /// canonical parameter spelling.
        with: Vec<(String, WithValue)>,
    },
}

/// A built-in step kind (steps.md) or an Octopus step template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsesKind {
    /// `git-checkout`.
    GitCheckout,
    /// `write-file`.
    WriteFile,
    /// `publish-psmodule`.
    PublishPsModule,
    /// `git-tag`.
    GitTag,
    /// `slack`.
    Slack,
    /// `http`.
    Http,
    /// `manual-intervention`: the deployment waits for a person.
    ManualIntervention,
    /// A path to an Octopus step-template `.json` file in the repository.
    Template(String),
}

/// How a built-in parameter's value must be shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamShape {
    /// A single value.
    Text,
    /// A map of names to values.
    Map,
    /// A list of values, or a single value.
    TextOrList,
}

/// A parameter of a built-in kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub(crate) name: &'static str,
    pub(crate) shape: ParamShape,
    pub(crate) required: bool,
}

const fn text(name: &'static str) -> Param {
    Param {
        name,
        shape: ParamShape::Text,
        required: false,
    }
}

const fn required(name: &'static str) -> Param {
    Param {
        name,
        shape: ParamShape::Text,
        required: true,
    }
}

const GIT_CHECKOUT: &[Param] = &[text("Repository"), text("Ref"), text("Path"), text("Token")];
const WRITE_FILE: &[Param] = &[required("Path"), required("Content"), text("Mode")];
const PUBLISH_PSMODULE: &[Param] = &[
    required("Path"),
    text("Feed"),
    text("ApiKey"),
    Param {
        name: "ExcludePaths",
        shape: ParamShape::TextOrList,
        required: false,
    },
];
const GIT_TAG: &[Param] = &[
    text("Tag"),
    text("Message"),
    text("Remote"),
    text("Token"),
    text("Force"),
];
const SLACK: &[Param] = &[
    required("WebhookUrl"),
    text("Channel"),
    text("Username"),
    text("IconUrl"),
    text("Text"),
];
const MANUAL_INTERVENTION: &[Param] = &[
    required("Instructions"),
    Param {
        name: "Roles",
        shape: ParamShape::TextOrList,
        required: false,
    },
];
const HTTP: &[Param] = &[
    text("Method"),
    required("Url"),
    Param {
        name: "Headers",
        shape: ParamShape::Map,
        required: false,
    },
    text("Body"),
    text("ExpectStatus"),
    text("Timeout"),
];

impl UsesKind {
    /// The built-in kinds, in the order of steps.md.
    pub const BUILT_IN: [UsesKind; 7] = [
        UsesKind::GitCheckout,
        UsesKind::WriteFile,
        UsesKind::PublishPsModule,
        UsesKind::GitTag,
        UsesKind::Slack,
        UsesKind::Http,
        UsesKind::ManualIntervention,
    ];

    /// The name as written after `Uses:` (the template's path for templates).
    pub fn name(&self) -> &str {
        match self {
            UsesKind::GitCheckout => "git-checkout",
            UsesKind::WriteFile => "write-file",
            UsesKind::PublishPsModule => "publish-psmodule",
            UsesKind::GitTag => "git-tag",
            UsesKind::Slack => "slack",
            UsesKind::Http => "http",
            UsesKind::ManualIntervention => "manual-intervention",
            UsesKind::Template(path) => path,
        }
    }

    /// Parses a `Uses:` value: a built-in name (case-insensitive) or a path
    /// ending in `.json`. `None` for anything else.
    pub fn parse(text: &str) -> Option<UsesKind> {
        let trimmed = text.trim();
        if let Some(kind) = UsesKind::BUILT_IN
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(trimmed))
        {
            return Some(kind);
        }
        if trimmed.len() > ".json".len() && trimmed.to_ascii_lowercase().ends_with(".json") {
            return Some(UsesKind::Template(trimmed.to_owned()));
        }
        None
    }

    /// The names of the parameters a built-in kind accepts, canonical
    /// spelling; `None` for templates (their parameters come from the file).
    pub fn parameters(&self) -> Option<Vec<&'static str>> {
        self.params()
            .map(|params| params.iter().map(|param| param.name).collect())
    }

    pub(crate) fn params(&self) -> Option<&'static [Param]> {
        match self {
            UsesKind::GitCheckout => Some(GIT_CHECKOUT),
            UsesKind::WriteFile => Some(WRITE_FILE),
            UsesKind::PublishPsModule => Some(PUBLISH_PSMODULE),
            UsesKind::GitTag => Some(GIT_TAG),
            UsesKind::Slack => Some(SLACK),
            UsesKind::Http => Some(HTTP),
            UsesKind::ManualIntervention => Some(MANUAL_INTERVENTION),
            UsesKind::Template(_) => None,
        }
    }
}

impl fmt::Display for UsesKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `With:` value: scalars of any YAML type as their source text, or lists
/// and maps of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithValue {
    /// A scalar as written (`true`, `10`, `1.50` stay text); null is empty.
    Text(String),
    /// A list.
    List(Vec<WithValue>),
    /// A map, in file order.
    Map(Vec<(String, WithValue)>),
}

impl WithValue {
    /// The text, if this is a scalar.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            WithValue::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// When a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only if every earlier step succeeded (the default).
    Success,
    /// Only if an earlier step failed.
    Failure,
    /// Whatever happened before.
    Always,
    /// A variable expression; the step runs when it evaluates to a non-empty
    /// value other than `false`, `False` or `0`.
    Expression(String),
}

impl Condition {
    /// Parses a `Condition:` value: `Success`, `Failure`, `Always`
    /// (case-insensitive) or else an expression.
    pub fn parse(text: &str) -> Condition {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("success") {
            Condition::Success
        } else if trimmed.eq_ignore_ascii_case("failure") {
            Condition::Failure
        } else if trimmed.eq_ignore_ascii_case("always") {
            Condition::Always
        } else {
            Condition::Expression(text.to_owned())
        }
    }
}

/// A step's time limit, as a duration and as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    /// The limit.
    pub duration: Duration,
    /// As written in the takofile (`10m`), for messages such as *timed out after 10m*.
    pub text: String,
}

impl Default for Timeout {
    fn default() -> Timeout {
        Timeout {
            duration: Duration::from_secs(3600),
            text: "1h".into(),
        }
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A step's retries: how many times a failed attempt runs again, and how
/// long to wait before each new attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// `Retries`: attempts after the first (0: the step runs once).
    pub retries: u32,
    /// `RetryDelay`: the wait before each new attempt.
    pub delay: Duration,
    /// The delay as written (`10s`), for messages.
    pub delay_text: String,
}

impl Retry {
    /// The most `Retries` a step may have.
    pub const MAX_RETRIES: u32 = 10;

    /// How many attempts the step gets at most (1 + `Retries`).
    pub fn attempts(&self) -> u32 {
        self.retries + 1
    }
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            retries: 0,
            delay: Duration::from_secs(10),
            delay_text: "10s".into(),
        }
    }
}
