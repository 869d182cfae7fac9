//! Variable sources, precedence and environment scoping.
//!
//! Values come from four sources, lowest to highest precedence: system
//! variables, the takofile's `Variables`, project variables stored on the
//! server, and values given at deploy time. A name may have several values
//! with different scopes; within one source the most specific wins (a value
//! scoped to the deployment's environment beats an unscoped one), and a value
//! scoped only to other environments is invisible. A higher source always
//! beats a lower one. Names and environment names compare case-insensitively,
//! as in Octopus.
//!
//! A value may also be scoped to target roles (Octopus: target tags): it is
//! seen only by a step whose `Roles` include one of them
//! ([`resolve_for_roles`]), never by a step on the server, and scoping by
//! role makes it more specific within its source, as scoping by
//! environment does. A step's agents are each given the values of the
//! roles they share with the step ([`role_overrides`] over the server's,
//! [`relevant_roles`] telling which role sets resolve alike); a sensitive
//! value scoped only to roles an agent lacks is not among the values it
//! sees, not even among those to mask.

/// Where a value was defined; later variants take precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VariableSource {
    /// Tako's own `Tako.*` / `Octopus.*` values.
    System,
    /// The takofile's `Variables` (never sensitive).
    Takofile,
    /// Project variables stored on the server (may be sensitive).
    Project,
    /// Given at deploy time (`--var`, `--secret`).
    DeployTime,
}

/// One candidate value of a variable.
#[derive(Clone, PartialEq, Eq)]
pub struct VariableValue {
    /// The variable's name.
    pub name: String,
    /// The raw value (may contain `#{...}`).
    pub value: String,
    /// Environments this value is scoped to; empty means every environment.
    pub environments: Vec<String>,
    /// Target roles this value is scoped to; empty means every step.
    pub roles: Vec<String>,
    /// Sensitive values are masked everywhere they could be written.
    pub sensitive: bool,
    /// Where it was defined.
    pub source: VariableSource,
}

impl std::fmt::Debug for VariableValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &str = if self.sensitive {
            crate::mask::MASK
        } else {
            &self.value
        };
        f.debug_struct("VariableValue")
            .field("name", &self.name)
            .field("value", &value)
            .field("environments", &self.environments)
            .field("roles", &self.roles)
            .field("sensitive", &self.sensitive)
            .field("source", &self.source)
            .finish()
    }
}

impl VariableValue {
    /// An unscoped, non-sensitive value.
    pub fn new(source: VariableSource, name: impl Into<String>, value: impl Into<String>) -> Self {
        VariableValue {
            name: name.into(),
            value: value.into(),
            environments: Vec::new(),
            roles: Vec::new(),
            sensitive: false,
            source,
        }
    }

    /// The same value marked sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// The same value scoped to `environments`.
    pub fn scoped<S: Into<String>>(mut self, environments: impl IntoIterator<Item = S>) -> Self {
        self.environments = environments.into_iter().map(Into::into).collect();
        self
    }

    /// The same value scoped to the target `roles`.
    pub fn for_roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    fn applies_to(&self, environment: &str) -> bool {
        self.environments.is_empty()
            || self
                .environments
                .iter()
                .any(|scope| scope.eq_ignore_ascii_case(environment))
    }

    /// Whether a step targeting `roles` sees it (an unscoped value: always;
    /// a role-scoped one: when a role is shared, without regard to case).
    fn applies_to_roles(&self, roles: &[String]) -> bool {
        self.roles.is_empty()
            || self
                .roles
                .iter()
                .any(|scope| roles.iter().any(|r| r.eq_ignore_ascii_case(scope)))
    }

    /// Within a source, the more scope dimensions a value has, the more
    /// specific it is.
    fn rank(&self) -> (VariableSource, u8) {
        (
            self.source,
            u8::from(!self.environments.is_empty()) + u8::from(!self.roles.is_empty()),
        )
    }
}

/// The values one deployment sees.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ResolvedVariables {
    /// Winning value of each visible name, in first-declared order.
    pub values: Vec<(String, String)>,
    /// Every sensitive value visible to the deployment (winning or not), for
    /// the masker.
    pub sensitive_values: Vec<String>,
}

impl std::fmt::Debug for ResolvedVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedVariables")
            .field(
                "names",
                &self.values.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("sensitive_values", &self.sensitive_values.len())
            .finish()
    }
}

/// Picks, for each name, the value a deployment into `environment` sees
/// outside any role (the values steps on the server see).
///
/// Ties (same source, same specificity) go to the value declared last.
/// `sensitive_values` holds every sensitive value of the environment,
/// role-scoped ones too: the deployment's log masks whatever any of its
/// steps could print.
pub fn resolve(candidates: &[VariableValue], environment: &str) -> ResolvedVariables {
    let mut resolved = pick(candidates, environment, &[]);
    resolved.sensitive_values = sensitive_in(candidates, environment, |_| true);
    resolved
}

/// The values a step targeting `roles` sees in a deployment into
/// `environment`: [`resolve`]'s, with the values scoped to one of `roles`
/// (more specific within their source) and without those scoped only to
/// other roles. `sensitive_values` holds only the sensitive values it sees:
/// the values to mask that may go with a job of an agent with `roles`
/// (a value scoped only to roles it lacks is not among them).
pub fn resolve_for_roles(
    candidates: &[VariableValue],
    environment: &str,
    roles: &[String],
) -> ResolvedVariables {
    pick(candidates, environment, roles)
}

/// What a step targeting `roles` sees otherwise than a step on the server
/// in a deployment into `environment`: each name whose winning value for
/// `roles` ([`resolve_for_roles`]) is not the server's ([`resolve`]), with
/// that value. Empty without `roles`.
pub fn role_overrides(
    candidates: &[VariableValue],
    environment: &str,
    roles: &[String],
) -> Vec<(String, String)> {
    if roles.is_empty() {
        return Vec::new();
    }
    let server = pick(candidates, environment, &[]);
    pick(candidates, environment, roles)
        .values
        .into_iter()
        .filter(|(name, value)| {
            !server
                .values
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
        })
        .collect()
}

/// Of `roles`, those some value of `environment` is scoped to (compared
/// without case, in `roles`' spelling, each once): two sets of roles with
/// the same relevant ones see the same values.
pub fn relevant_roles(
    candidates: &[VariableValue],
    environment: &str,
    roles: &[String],
) -> Vec<String> {
    let mut relevant: Vec<String> = Vec::new();
    for role in roles {
        let scoped = candidates.iter().any(|c| {
            c.applies_to(environment) && c.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
        });
        if scoped && !relevant.iter().any(|r| r.eq_ignore_ascii_case(role)) {
            relevant.push(role.clone());
        }
    }
    relevant
}

fn sensitive_in(
    candidates: &[VariableValue],
    environment: &str,
    keep: impl Fn(&VariableValue) -> bool,
) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for candidate in candidates
        .iter()
        .filter(|c| c.sensitive && c.applies_to(environment) && keep(c))
    {
        if !values.contains(&candidate.value) {
            values.push(candidate.value.clone());
        }
    }
    values
}

fn pick(candidates: &[VariableValue], environment: &str, roles: &[String]) -> ResolvedVariables {
    let mut winners: Vec<&VariableValue> = Vec::new();
    let mut sensitive_values = Vec::new();
    for candidate in candidates
        .iter()
        .filter(|c| c.applies_to(environment) && c.applies_to_roles(roles))
    {
        if candidate.sensitive && !sensitive_values.contains(&candidate.value) {
            sensitive_values.push(candidate.value.clone());
        }
        match winners
            .iter_mut()
            .find(|w| w.name.eq_ignore_ascii_case(&candidate.name))
        {
            Some(winner) if candidate.rank() >= winner.rank() => *winner = candidate,
            Some(_) => {}
            None => winners.push(candidate),
        }
    }
    ResolvedVariables {
        values: winners
            .into_iter()
            .map(|w| (w.name.clone(), w.value.clone()))
            .collect(),
        sensitive_values,
    }
}

/// The takofile's `Variables`, as candidates of the [`VariableSource::Takofile`]
/// source (never sensitive).
pub fn from_takofile(takofile: &tako_takofile::Takofile) -> Vec<VariableValue> {
    takofile
        .variables
        .iter()
        .map(|decl| {
            VariableValue::new(
                VariableSource::Takofile,
                decl.name.clone(),
                decl.value.clone(),
            )
            .scoped(decl.environments.clone())
            .for_roles(decl.roles.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use VariableSource::*;

    fn value_of(resolved: &ResolvedVariables, name: &str) -> Option<String> {
        resolved
            .values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn scoped_value_beats_unscoped_within_a_source() {
        let values = [
            VariableValue::new(Takofile, "GitBranch", "develop").scoped(["DevTest"]),
            VariableValue::new(Takofile, "GitBranch", "main"),
            VariableValue::new(Takofile, "GitBranch", "master").scoped(["Production"]),
        ];
        assert_eq!(
            value_of(&resolve(&values, "Production"), "GitBranch").unwrap(),
            "master"
        );
        assert_eq!(
            value_of(&resolve(&values, "devtest"), "gitbranch").unwrap(),
            "develop"
        );
        assert_eq!(
            value_of(&resolve(&values, "Staging"), "GitBranch").unwrap(),
            "main"
        );
    }

    #[test]
    fn value_scoped_elsewhere_is_invisible() {
        let values = [VariableValue::new(Project, "Key", "prod").scoped(["Production"])];
        assert_eq!(value_of(&resolve(&values, "DevTest"), "Key"), None);
    }

    #[test]
    fn higher_source_beats_more_specific_lower_source() {
        let values = [
            VariableValue::new(Takofile, "X", "takofile").scoped(["DevTest"]),
            VariableValue::new(Project, "X", "project"),
            VariableValue::new(System, "X", "system"),
        ];
        assert_eq!(
            value_of(&resolve(&values, "DevTest"), "X").unwrap(),
            "project"
        );
        let with_cli = [
            values.to_vec(),
            vec![VariableValue::new(DeployTime, "x", "cli")],
        ]
        .concat();
        assert_eq!(
            value_of(&resolve(&with_cli, "DevTest"), "X").unwrap(),
            "cli"
        );
    }

    #[test]
    fn sensitive_values_of_other_environments_are_not_handed_out() {
        let values = [
            VariableValue::new(Project, "ApiKey", "prod-secret")
                .scoped(["Production"])
                .sensitive(),
            VariableValue::new(Project, "ApiKey", "dev-secret")
                .scoped(["DevTest"])
                .sensitive(),
        ];
        let resolved = resolve(&values, "DevTest");
        assert_eq!(resolved.sensitive_values, vec!["dev-secret".to_owned()]);
        assert!(!format!("{resolved:?}").contains("dev-secret"));
    }

    #[test]
    fn a_role_scoped_value_is_seen_only_by_steps_with_that_role() {
        let roles = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let values = [
            VariableValue::new(Project, "Url", "https://any"),
            VariableValue::new(Project, "Url", "https://web").for_roles(["web"]),
            VariableValue::new(Project, "DbKey", "db-secret")
                .for_roles(["db"])
                .sensitive(),
            VariableValue::new(Project, "Both", "prod-web")
                .scoped(["Production"])
                .for_roles(["WEB"]),
            VariableValue::new(Project, "Both", "prod").scoped(["Production"]),
        ];
        // On the server: no role-scoped value.
        let server = resolve(&values, "Production");
        assert_eq!(value_of(&server, "Url").unwrap(), "https://any");
        assert_eq!(value_of(&server, "DbKey"), None);
        assert_eq!(value_of(&server, "Both").unwrap(), "prod");
        // ... but the log masks every secret a step could print.
        assert_eq!(server.sensitive_values, ["db-secret"]);

        let web = resolve_for_roles(&values, "Production", &roles(&["web"]));
        assert_eq!(value_of(&web, "Url").unwrap(), "https://web");
        assert_eq!(value_of(&web, "DbKey"), None);
        assert_eq!(value_of(&web, "Both").unwrap(), "prod-web");
        assert!(web.sensitive_values.is_empty());
        assert_eq!(
            role_overrides(&values, "Production", &roles(&["web"])),
            [
                ("Url".to_owned(), "https://web".to_owned()),
                ("Both".to_owned(), "prod-web".to_owned())
            ]
        );

        let db = resolve_for_roles(&values, "Production", &roles(&["db", "other"]));
        assert_eq!(value_of(&db, "Url").unwrap(), "https://any");
        assert_eq!(value_of(&db, "DbKey").unwrap(), "db-secret");
        assert_eq!(db.sensitive_values, ["db-secret"]);
        assert_eq!(
            role_overrides(&values, "Production", &roles(&["db"])),
            [("DbKey".to_owned(), "db-secret".to_owned())]
        );
        assert!(role_overrides(&values, "Production", &[]).is_empty());
        assert_eq!(
            relevant_roles(&values, "Production", &roles(&["Db", "other", "web", "DB"])),
            ["Db", "web"]
        );
        // Scoped to another environment: invisible whatever the role.
        let dev = resolve_for_roles(&values, "DevTest", &roles(&["web"]));
        assert_eq!(value_of(&dev, "Both"), None);
    }

    #[test]
    fn a_role_scoped_secret_that_a_step_also_sees_under_another_name_is_among_its_secrets() {
        let values = [
            VariableValue::new(Project, "A", "shared")
                .for_roles(["db"])
                .sensitive(),
            VariableValue::new(Project, "B", "shared").sensitive(),
        ];
        let web = resolve_for_roles(&values, "Production", &["web".to_owned()]);
        assert_eq!(web.sensitive_values, ["shared"]);
        assert_eq!(value_of(&web, "A"), None);
    }
}
