//! From the spanned YAML tree to a validated [`Takofile`], collecting every
//! problem as a [`Diagnostic`] with the position of the offending key or
//! value, what was expected, and a hint.
//!
//! Validation never stops at the first problem: each key is checked on its
//! own, and the plan is only assembled when no error was found.

use std::collections::HashMap;
use std::time::Duration;

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::glob::{Glob, RefPattern};
use crate::model::{
    Condition, Mapping, OnFailure, ParamShape, Retry, SERVER_IGNORED, Step, StepAction,
    StepTargets, Takofile, Timeout, UsesKind, VariableDecl, WhenNoAgents, WithValue,
};
use crate::shell::Shell;
use crate::yaml::{self, Entry, Node, Pos, Value};

mod lifecycle;
mod retention;

const TOP_KEYS: &[&str] = &[
    "Project",
    "Server",
    "Mappings",
    "CreateRelease",
    "Version",
    "Manifest",
    "Variables",
    "Steps",
    "Lifecycle",
    "Retention",
];
const MAPPING_KEYS: &[&str] = &["Branch", "Tag", "Environment"];
const VARIABLE_KEYS: &[&str] = &["Name", "Value", "Environments", "Roles"];
const STEP_KEYS: &[&str] = &[
    "Name",
    "Run",
    "Script",
    "Uses",
    "With",
    "Shell",
    "Environments",
    "ExcludeEnvironments",
    "Condition",
    "Timeout",
    "Retries",
    "RetryDelay",
    "OnFailure",
    "WorkingDirectory",
    "Env",
    "Roles",
    "TargetRoles",
    "Octopus.Action.TargetRoles",
    "MaxParallelism",
    "WhenNoAgents",
    "SkipOfflineAgents",
];
/// Every key the parser accepts, by where it may appear: the top level, a
/// `Mappings` entry, a `Variables` entry, a step, a `Lifecycle` phase and its
/// `Approval`. The one list the user's manual is checked against
/// (`crates/tako/tests/manual.rs`).
pub const ACCEPTED_KEYS: [(&str, &[&str]); 6] = [
    ("top level", TOP_KEYS),
    ("Mappings", MAPPING_KEYS),
    ("Variables", VARIABLE_KEYS),
    ("Steps", STEP_KEYS),
    ("Lifecycle", lifecycle::PHASE_KEYS),
    ("Approval", lifecycle::APPROVAL_KEYS),
];
/// The keys naming a step's roles (one of them at most).
const ROLE_KEYS: [&str; 3] = ["Roles", "TargetRoles", "Octopus.Action.TargetRoles"];
/// The keys that only mean something with roles.
const AGENT_KEYS: [&str; 3] = ["MaxParallelism", "WhenNoAgents", "SkipOfflineAgents"];
const CONDITION_WORDS: &[&str] = &["Success", "Failure", "Always"];

/// Parses and validates a takofile; see [`crate::parse`].
pub(crate) fn parse(file_name: &str, text: &str) -> Result<Takofile, Diagnostics> {
    let mut ctx = Ctx {
        file: file_name.to_owned(),
        diagnostics: Vec::new(),
    };
    let loaded = yaml::load(text);
    for problem in loaded.problems {
        ctx.push(Severity::Error, problem.pos, problem.message, problem.hint);
    }
    let takofile = match &loaded.root {
        Some(root) => ctx.takofile(root),
        None => {
            if !ctx.has_errors() {
                ctx.error(
                    Pos { line: 1, column: 1 },
                    "the takofile is empty",
                    Some("expected a mapping with at least `Project: <name>`".into()),
                );
            }
            None
        }
    };
    ctx.diagnostics
        .sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
    match takofile {
        Some(mut takofile) if !ctx.has_errors() => {
            takofile.warnings = ctx.diagnostics;
            Ok(takofile)
        }
        _ => Err(Diagnostics(ctx.diagnostics)),
    }
}

struct Ctx {
    file: String,
    diagnostics: Vec<Diagnostic>,
}

/// The recognised keys of one YAML mapping, by canonical name.
struct Fields<'a> {
    found: Vec<(&'static str, &'a Entry)>,
    /// Known keys suggested for misspelt ones: not reported again as missing.
    suggested: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Entry> {
        self.found
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, entry)| *entry)
    }

    /// Whether `name` is absent and no misspelling of it was reported.
    fn missing(&self, name: &str) -> bool {
        self.get(name).is_none() && !self.suggested.contains(&name)
    }
}

impl Ctx {
    fn push(&mut self, severity: Severity, pos: Pos, message: String, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            message,
            hint,
        });
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>, hint: Option<String>) {
        self.push(Severity::Error, pos, message.into(), hint);
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>, hint: Option<String>) {
        self.push(Severity::Warning, pos, message.into(), hint);
    }

    fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    // ----- generic shapes -------------------------------------------------

    /// Sorts a mapping's entries into known keys, reporting unknown ones.
    /// `place` completes "unknown key X{place}".
    fn fields<'a>(
        &mut self,
        entries: &'a [Entry],
        known: &[&'static str],
        place: &str,
        misplaced: fn(&str) -> Option<&'static str>,
    ) -> Fields<'a> {
        let mut found = Vec::new();
        let mut suggested = Vec::new();
        for entry in entries {
            let Some(key) = entry.key.as_scalar().filter(|scalar| !scalar.is_null()) else {
                self.error(
                    entry.key.pos,
                    format!("a key must be text, found {}", entry.key.kind()),
                    Some(format!("expected one of {}", known.join(", "))),
                );
                continue;
            };
            let text = key.text.trim();
            if let Some(canonical) = known.iter().find(|k| k.eq_ignore_ascii_case(text)) {
                found.push((*canonical, entry));
                continue;
            }
            let hint = if text == "<<" {
                "YAML merge keys (<<) are not supported; write the keys out".to_owned()
            } else if let Some(suggestion) = closest(text, known.iter().copied()) {
                suggested.push(suggestion);
                format!("did you mean {suggestion}?")
            } else if let Some(hint) = misplaced(&text.to_ascii_lowercase()) {
                hint.to_owned()
            } else {
                format!("expected one of {}", known.join(", "))
            };
            self.error(
                entry.key.pos,
                format!("unknown key {}{place}", display_text(text)),
                Some(hint),
            );
        }
        Fields { found, suggested }
    }

    /// A mapping's entries, or an error naming what was expected.
    fn mapping<'a>(&mut self, node: &'a Node, what: &str, expected: &str) -> Option<&'a [Entry]> {
        match &node.value {
            Value::Mapping(entries) => Some(entries),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, found {}", node.kind()),
                    Some(format!("expected {expected}")),
                );
                None
            }
        }
    }

    /// A non-empty scalar's text (any YAML type, as written).
    fn text(&mut self, node: &Node, what: &str, expected: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(scalar) if scalar.is_null() || scalar.text.trim().is_empty() => {
                self.error(
                    node.pos,
                    format!("{what} is empty"),
                    Some(format!("expected {expected}")),
                );
                None
            }
            Value::Scalar(scalar) => Some(scalar.text.clone()),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be text, found {}", node.kind()),
                    Some(format!("expected {expected}")),
                );
                None
            }
        }
    }

    /// A list of names, or a single name.
    fn names(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        let expected = "an environment name or a list of them, such as [Production, DevTest]";
        match &node.value {
            Value::Scalar(_) => self.text(node, what, expected).map(|name| vec![name]),
            Value::Sequence(items) => {
                let before = self.error_count();
                let names: Vec<String> = items
                    .iter()
                    .filter_map(|item| self.text(item, &format!("an entry of {what}"), expected))
                    .collect();
                if items.is_empty() {
                    self.error(
                        node.pos,
                        format!("{what} is an empty list"),
                        Some(format!(
                            "expected {expected}; remove the key to mean every environment"
                        )),
                    );
                    return None;
                }
                (self.error_count() == before).then_some(names)
            }
            Value::Mapping(_) => {
                self.error(
                    node.pos,
                    format!("{what} must be a list, found a mapping"),
                    Some(format!("expected {expected}")),
                );
                None
            }
        }
    }

    /// A sequence's items; null is an empty list.
    fn sequence<'a>(&mut self, node: &'a Node, what: &str, expected: &str) -> Option<&'a [Node]> {
        match &node.value {
            Value::Sequence(items) => Some(items),
            Value::Scalar(scalar) if scalar.is_null() => Some(&[]),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a list, found {}", node.kind()),
                    Some(format!("expected {expected}")),
                );
                None
            }
        }
    }

    // ----- the file -------------------------------------------------------

    fn takofile(&mut self, root: &Node) -> Option<Takofile> {
        let entries = match &root.value {
            Value::Mapping(entries) => entries,
            Value::Scalar(scalar) if scalar.is_null() => {
                self.error(
                    root.pos,
                    "the takofile is empty",
                    Some("expected a mapping with at least `Project: <name>`".into()),
                );
                return None;
            }
            _ => {
                self.error(
                    root.pos,
                    format!(
                        "the takofile must be a mapping of keys, found {}",
                        root.kind()
                    ),
                    Some("expected keys such as `Project: <name>` and `Mappings:`".into()),
                );
                return None;
            }
        };
        let fields = self.fields(entries, TOP_KEYS, "", misplaced_at_top);

        let project = match fields.get("Project") {
            Some(entry) => self
                .text(
                    &entry.value,
                    "Project",
                    "the name of the project this repository deploys",
                )
                .filter(|name| {
                    // The same rule as names given to the API: the server
                    // registers projects under this name.
                    let bad = name.chars().any(|c| c.is_control() || c == '/');
                    if bad {
                        self.error(
                            entry.value.pos,
                            "Project must not contain control characters or /",
                            Some(
                                "name the project with printable text, such as `Project: Demo`"
                                    .into(),
                            ),
                        );
                    }
                    !bad
                }),
            None if !fields.missing("Project") => None,
            None => {
                self.error(
                    root.pos,
                    "missing key Project",
                    Some("name the project this repository deploys: `Project: <name>`".into()),
                );
                None
            }
        };

        let server = fields.get("Server").and_then(|entry| {
            let server = self.text(&entry.value, "Server", "the URL of an Octopus Deploy server")?;
            self.warning(
                entry.key.pos,
                SERVER_IGNORED,
                Some("it is only used when the Tako server forwards this URL to Octopus; otherwise remove it".into()),
            );
            Some(server)
        });

        let (mappings, mappings_defaulted) = match fields.get("Mappings") {
            Some(entry) => (self.mappings(entry), false),
            None => (
                Some(
                    default_mappings()
                        .into_iter()
                        .map(|mapping| {
                            let pos = fields.get("Lifecycle").map_or(root.pos, |e| e.key.pos);
                            (mapping, pos)
                        })
                        .collect::<Vec<_>>(),
                ),
                true,
            ),
        };
        let lifecycle = match (fields.get("Lifecycle"), &mappings) {
            (Some(entry), Some(mappings)) => self.lifecycle(entry, mappings).map(Some),
            (Some(_), None) => None,
            (None, _) => Some(None),
        };
        let mappings = mappings.map(|found| {
            found
                .into_iter()
                .map(|(mapping, _)| mapping)
                .collect::<Vec<_>>()
        });

        let create_release = match fields.get("CreateRelease") {
            Some(entry) => self.boolean(&entry.value, "CreateRelease"),
            None => Some(true),
        };

        let version = fields.get("Version").and_then(|entry| {
            let version = self.text(&entry.value, "Version", "a release number template such as \"1.0.#{Tako.Build}\"")?;
            if !version.contains("#{") {
                self.warning(
                    entry.value.pos,
                    format!("Version {version} has no #{{...}} variable: every push computes the same release number"),
                    Some("include a changing part such as #{Tako.Build}".into()),
                );
            }
            Some(version)
        });

        let manifest = fields.get("Manifest").and_then(|entry| {
            let manifest = self.text(
                &entry.value,
                "Manifest",
                "the path of a .psd1 module manifest",
            )?;
            if !manifest.to_ascii_lowercase().ends_with(".psd1") {
                self.warning(
                    entry.value.pos,
                    format!("Manifest {manifest} is not a .psd1 file"),
                    Some(
                        "Manifest names a PowerShell module manifest such as Modules/X/X.psd1"
                            .into(),
                    ),
                );
            }
            Some(manifest)
        });

        let variables = match fields.get("Variables") {
            Some(entry) => self.variables(&entry.value),
            None => Some(Vec::new()),
        };

        let steps = match fields.get("Steps") {
            Some(entry) => self.steps(entry).map(Some),
            None => Some(None),
        };

        let retention = match fields.get("Retention") {
            Some(entry) => self.retention(entry),
            None => Some(crate::retention::Retention::default()),
        };

        Some(Takofile {
            project: project?,
            server,
            mappings: mappings?,
            mappings_defaulted,
            lifecycle: lifecycle?,
            create_release: create_release?,
            version,
            manifest,
            variables: variables?,
            steps: steps?,
            retention: retention?,
            warnings: Vec::new(),
        })
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        if let Some(scalar) = node.as_scalar() {
            if let Some(value) = scalar.as_plain_bool() {
                return Some(value);
            }
            let text = scalar.text.trim();
            if text.eq_ignore_ascii_case("true") {
                return Some(true);
            }
            if text.eq_ignore_ascii_case("false") {
                return Some(false);
            }
            let hint = if matches!(
                text.to_ascii_lowercase().as_str(),
                "yes" | "no" | "on" | "off" | "y" | "n"
            ) {
                format!("expected true or false; `{text}` is not a boolean in YAML 1.2")
            } else {
                "expected true or false".to_owned()
            };
            let found = if scalar.is_null() {
                "nothing".to_owned()
            } else {
                display_text(text)
            };
            self.error(
                node.pos,
                format!("{what} must be true or false, found {found}"),
                Some(hint),
            );
            return None;
        }
        self.error(
            node.pos,
            format!("{what} must be true or false, found {}", node.kind()),
            Some("expected true or false".into()),
        );
        None
    }

    // ----- Mappings -------------------------------------------------------

    /// The mappings, each with the position of its `Environment`.
    fn mappings(&mut self, entry: &Entry) -> Option<Vec<(Mapping, Pos)>> {
        let node = &entry.value;
        let expected =
            "a list of entries such as `- Branch: master` with `Environment: Production`";
        if let Value::Mapping(_) = node.value {
            self.error(
                node.pos,
                "Mappings must be a list, found a mapping",
                Some("write each mapping as a list entry: `- Branch: master` then `Environment: Production` below it".into()),
            );
            return None;
        }
        let items = self.sequence(node, "Mappings", expected)?;
        if items.is_empty() {
            self.warning(
                entry.key.pos,
                "Mappings is empty: no push will deploy",
                Some("remove the key to map master and main to Production".into()),
            );
        }
        let before = self.error_count();
        let mut mappings = Vec::new();
        let mut seen: HashMap<(bool, String), usize> = HashMap::new();
        for item in items {
            let Some((mapping, pos, environment_pos)) = self.mapping_entry(item) else {
                continue;
            };
            let is_tag = matches!(mapping.target, RefPattern::Tag(_));
            let key = (is_tag, mapping.target.glob().as_str().to_owned());
            if let Some(first) = seen.get(&key) {
                self.warning(
                    pos,
                    format!(
                        "{} {} is already mapped at line {first}; this entry never matches",
                        if is_tag { "Tag" } else { "Branch" },
                        mapping.target.glob()
                    ),
                    Some("the first matching mapping wins; remove one of them".into()),
                );
            } else {
                seen.insert(key, pos.line);
            }
            mappings.push((mapping, environment_pos));
        }
        (self.error_count() == before).then_some(mappings)
    }

    fn mapping_entry(&mut self, item: &Node) -> Option<(Mapping, Pos, Pos)> {
        let entries = self.mapping(
            item,
            "a Mappings entry",
            "`Branch: <name or glob>` and `Environment: <name>`",
        )?;
        let fields = self.fields(
            entries,
            MAPPING_KEYS,
            " in a Mappings entry",
            misplaced_in_mapping,
        );
        let before = self.error_count();
        let environment = match fields.get("Environment") {
            Some(entry) => self.text(&entry.value, "Environment", "the name of an environment"),
            None if !fields.missing("Environment") => None,
            None => {
                self.error(
                    item.pos,
                    "a Mappings entry needs Environment",
                    Some("add `Environment: <name>` to say where matching pushes deploy".into()),
                );
                None
            }
        };
        let target = match (fields.get("Branch"), fields.get("Tag")) {
            (Some(_), Some(tag)) => {
                self.error(
                    tag.key.pos,
                    "a Mappings entry has both Branch and Tag",
                    Some("use one entry for the branch and another for the tag".into()),
                );
                None
            }
            (None, None) if !fields.missing("Branch") || !fields.missing("Tag") => None,
            (None, None) => {
                self.error(
                    item.pos,
                    "a Mappings entry needs Branch or Tag",
                    Some("add `Branch: <name or glob>` or `Tag: <glob>`".into()),
                );
                None
            }
            (Some(branch), None) => self.pattern(branch, "Branch").map(RefPattern::Branch),
            (None, Some(tag)) => self.pattern(tag, "Tag").map(RefPattern::Tag),
        };
        if self.error_count() != before {
            return None;
        }
        let environment_pos = fields.get("Environment").map_or(item.pos, |e| e.value.pos);
        Some((
            Mapping {
                target: target?,
                environment: environment?,
            },
            item.pos,
            environment_pos,
        ))
    }

    fn pattern(&mut self, entry: &Entry, what: &str) -> Option<Glob> {
        let text = self.text(&entry.value, what, "a name or a glob such as release/*")?;
        let text = text.trim().to_owned();
        let prefix = if what == "Tag" {
            "refs/tags/"
        } else {
            "refs/heads/"
        };
        if text.starts_with("refs/") {
            self.warning(
                entry.value.pos,
                format!("{what} {text} starts with refs/"),
                Some(format!(
                    "{what} patterns match names without the {prefix} prefix"
                )),
            );
        }
        match Glob::new(&text) {
            Ok(glob) => Some(glob),
            Err(error) => {
                self.error(
                    entry.value.pos,
                    format!("invalid {what} glob {text}: {error}"),
                    Some("`*` matches within one segment, `**` across segments: release/*, hotfix/**".into()),
                );
                None
            }
        }
    }

    // ----- Variables ------------------------------------------------------

    fn variables(&mut self, node: &Node) -> Option<Vec<VariableDecl>> {
        let items = self.sequence(
            node,
            "Variables",
            "a list of entries such as `- Name: X` with `Value: Y`",
        )?;
        let before = self.error_count();
        let mut variables = Vec::new();
        for item in items {
            if let Some(variable) = self.variable(item) {
                variables.push(variable);
            }
        }
        (self.error_count() == before).then_some(variables)
    }

    fn variable(&mut self, item: &Node) -> Option<VariableDecl> {
        let entries = self.mapping(
            item,
            "a Variables entry",
            "`Name: <name>` and `Value: <value>`",
        )?;
        let fields = self.fields(entries, VARIABLE_KEYS, " in a Variables entry", |_| None);
        let name = match fields.get("Name") {
            Some(entry) => self.text(&entry.value, "Name", "the variable's name"),
            None if !fields.missing("Name") => None,
            None => {
                self.error(
                    item.pos,
                    "a Variables entry needs Name",
                    Some("add `Name: <name>`".into()),
                );
                None
            }
        };
        let value = match fields.get("Value") {
            Some(entry) => match &entry.value.value {
                Value::Scalar(scalar) if scalar.is_null() => {
                    self.error(
                        entry.value.pos,
                        "Value is empty",
                        Some("write `Value: \"\"` for an empty value".into()),
                    );
                    None
                }
                Value::Scalar(scalar) => Some(scalar.text.clone()),
                _ => {
                    self.error(
                        entry.value.pos,
                        format!("Value must be text, found {}", entry.value.kind()),
                        Some(
                            "expected a single value; scope variants with Environments instead"
                                .into(),
                        ),
                    );
                    None
                }
            },
            None if !fields.missing("Value") => None,
            None => {
                self.error(
                    item.pos,
                    "a Variables entry needs Value",
                    Some("add `Value: <value>`".into()),
                );
                None
            }
        };
        let environments = match fields.get("Environments") {
            Some(entry) => self.names(&entry.value, "Environments"),
            None => Some(Vec::new()),
        };
        let roles = match fields.get("Roles") {
            Some(entry) => self.roles(&entry.value, "to give the value to every step"),
            None => Some(Vec::new()),
        };
        let (name, value, environments, roles) = (name?, value?, environments?, roles?);
        if looks_sensitive(&name)
            && !value.is_empty()
            && !value.trim_start().starts_with("#{")
            && let Some(entry) = fields.get("Value")
        {
            self.warning(
                entry.value.pos,
                format!("variable {name} looks sensitive but its value is in the takofile"),
                Some(
                    "store secrets as sensitive variables on the server, never in the repository"
                        .into(),
                ),
            );
        }
        Some(VariableDecl {
            name,
            value,
            environments,
            roles,
        })
    }

    // ----- Steps ----------------------------------------------------------

    fn steps(&mut self, entry: &Entry) -> Option<Vec<Step>> {
        let items = self.sequence(
            &entry.value,
            "Steps",
            "a list of steps such as `- Name: Test` with `Run: ./test.sh`",
        )?;
        if items.is_empty() {
            self.warning(
                entry.key.pos,
                "Steps is empty: deployments will run no steps",
                Some("remove the key to use the process stored on the server".into()),
            );
        }
        let before = self.error_count();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut steps = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(step) = self.step(item, index + 1, &mut names) {
                steps.push(step);
            }
        }
        (self.error_count() == before).then_some(steps)
    }

    fn step(
        &mut self,
        item: &Node,
        number: usize,
        names: &mut HashMap<String, usize>,
    ) -> Option<Step> {
        let entries = self.mapping(
            item,
            &format!("step {number}"),
            "a mapping with Name and one of Run, Script or Uses",
        )?;
        let before = self.error_count();
        let fields = self.fields(entries, STEP_KEYS, " in a step", misplaced_in_step);

        let name = match fields.get("Name") {
            Some(entry) => {
                let name = self.text(
                    &entry.value,
                    "Name",
                    "the step's name, unique in the process",
                );
                if let Some(name) = &name {
                    let folded = name.to_lowercase();
                    if let Some(first) = names.get(&folded) {
                        self.error(
                            entry.value.pos,
                            format!("duplicate step name {name} (first at line {first})"),
                            Some("step names are unique, compared case-insensitively; later steps refer to outputs by name".into()),
                        );
                    } else {
                        names.insert(folded, entry.value.pos.line);
                    }
                }
                name
            }
            None if !fields.missing("Name") => None,
            None => {
                self.error(
                    item.pos,
                    format!("step {number} needs Name"),
                    Some("add `Name: <name>`, unique in the process".into()),
                );
                None
            }
        };
        let label = name
            .as_deref()
            .map_or_else(|| format!("step {number}"), |name| format!("step {name}"));

        let action = self.action(item, &fields, &label);

        let shell = match fields.get("Shell") {
            Some(entry) if fields.get("Uses").is_some() => {
                self.error(
                    entry.key.pos,
                    format!("Shell only applies to Run or Script steps, not to a Uses step like {label}"),
                    Some("a built-in kind or step template chooses its own interpreter; remove Shell".into()),
                );
                None
            }
            Some(entry) => {
                let expected = "bash, sh, python, pwsh or a command template containing {0} such as `node {0}`";
                self.text(&entry.value, "Shell", expected).and_then(|text| {
                    let shell = Shell::parse(&text);
                    if shell.is_none() {
                        let suggestion = closest(&text, ["bash", "sh", "python", "pwsh"]);
                        self.error(
                            entry.value.pos,
                            format!("unknown Shell {}", display_text(&text)),
                            Some(match suggestion {
                                Some(s) => format!("did you mean {s}? expected {expected}"),
                                None => format!("expected {expected}"),
                            }),
                        );
                    }
                    shell
                })
            }
            None => Some(Shell::Bash),
        };

        let environments = match fields.get("Environments") {
            Some(entry) => self.names(&entry.value, "Environments"),
            None => Some(Vec::new()),
        };
        let exclude_environments = match fields.get("ExcludeEnvironments") {
            Some(entry) => self.names(&entry.value, "ExcludeEnvironments"),
            None => Some(Vec::new()),
        };

        let condition = match fields.get("Condition") {
            Some(entry) => self.condition(&entry.value),
            None => Some(Condition::Success),
        };

        let timeout = match fields.get("Timeout") {
            Some(entry) => self.timeout(&entry.value),
            None => Some(Timeout::default()),
        };

        let retry = self.retry(&fields, &label);

        let working_directory = fields
            .get("WorkingDirectory")
            .and_then(|entry| self.working_directory(&entry.value));

        let env = match fields.get("Env") {
            Some(entry) => self.env(&entry.value),
            None => Some(Vec::new()),
        };

        let targets = self.targets(&fields, &label);
        let on_failure = self.on_failure(&fields, &label);
        if matches!(
            &action,
            Some(StepAction::Uses {
                kind: UsesKind::ManualIntervention,
                ..
            })
        ) {
            for key in ROLE_KEYS
                .iter()
                .chain(&AGENT_KEYS)
                .chain(&["Retries", "OnFailure"])
            {
                if let Some(entry) = fields.get(key) {
                    self.error(
                        entry.key.pos,
                        format!("{key} does not apply to a manual-intervention step like {label}: it runs nothing, it waits for a person"),
                        Some(if ROLE_KEYS.contains(key) {
                            "who may answer goes under With, as `Roles: [admin, deployer]`".into()
                        } else {
                            format!("remove {key}")
                        }),
                    );
                }
            }
        }

        if self.error_count() != before {
            return None;
        }
        Some(Step {
            name: name?,
            action: action?,
            shell: shell?,
            environments: environments?,
            exclude_environments: exclude_environments?,
            condition: condition?,
            timeout: timeout?,
            retry: retry?,
            working_directory,
            env: env?,
            targets: targets?,
            on_failure: on_failure?,
            line: item.pos.line,
        })
    }

    /// `Roles` and the keys that go with it; `Some(None)`: a server step.
    fn targets(&mut self, fields: &Fields<'_>, label: &str) -> Option<Option<StepTargets>> {
        let given: Vec<(&str, &Entry)> = ROLE_KEYS
            .into_iter()
            .filter_map(|key| fields.get(key).map(|entry| (key, entry)))
            .collect();
        let roles_entry = match given.as_slice() {
            [] => {
                for key in AGENT_KEYS {
                    if let Some(entry) = fields.get(key) {
                        self.error(
                            entry.key.pos,
                            format!("{key} only applies to a step with Roles, and {label} has none"),
                            Some("add `Roles: [<role>]` to run the step on agents, or remove the key".into()),
                        );
                    }
                }
                return if AGENT_KEYS.iter().any(|key| fields.get(key).is_some()) {
                    None
                } else {
                    Some(None)
                };
            }
            [(_, entry)] => entry,
            [(first, _), (second, entry), ..] => {
                self.error(
                    entry.key.pos,
                    format!("{label} has both {first} and {second}"),
                    Some(
                        "they mean the same (the roles of the agents the step runs on): keep one"
                            .into(),
                    ),
                );
                return None;
            }
        };
        let roles = self.roles(&roles_entry.value, "to run the step on the server");
        let max_parallelism = match fields.get("MaxParallelism") {
            Some(entry) => self.max_parallelism(&entry.value).map(Some),
            None => Some(None),
        };
        let when_no_agents = match fields.get("WhenNoAgents") {
            Some(entry) => {
                let expected = "fail (the default) or skip";
                self.text(&entry.value, "WhenNoAgents", expected)
                    .and_then(|text| match text.trim().to_ascii_lowercase().as_str() {
                        "fail" => Some(WhenNoAgents::Fail),
                        "skip" => Some(WhenNoAgents::Skip),
                        _ => {
                            self.error(
                                entry.value.pos,
                                format!("unknown WhenNoAgents {}", display_text(&text)),
                                Some(format!("expected {expected}")),
                            );
                            None
                        }
                    })
            }
            None => Some(WhenNoAgents::Fail),
        };
        let skip_offline_agents = match fields.get("SkipOfflineAgents") {
            Some(entry) => self.boolean(&entry.value, "SkipOfflineAgents"),
            None => Some(false),
        };
        Some(Some(StepTargets {
            roles: roles?,
            max_parallelism: max_parallelism?,
            when_no_agents: when_no_agents?,
            skip_offline_agents: skip_offline_agents?,
        }))
    }

    /// A list of roles, or one text of roles separated by commas (as
    /// Octopus's `Octopus.Action.TargetRoles` holds them).
    /// A `Roles` value; `without` says what leaving the key out means.
    fn roles(&mut self, node: &Node, without: &str) -> Option<Vec<String>> {
        let expected = "a role or a list of roles, such as [windows, ps]";
        let texts: Vec<(String, Pos)> = match &node.value {
            Value::Scalar(_) => vec![(self.text(node, "Roles", expected)?, node.pos)],
            Value::Sequence(items) if items.is_empty() => {
                self.error(
                    node.pos,
                    "Roles is an empty list".to_owned(),
                    Some(format!("expected {expected}; remove the key {without}")),
                );
                return None;
            }
            Value::Sequence(items) => {
                let before = self.error_count();
                let texts: Vec<_> = items
                    .iter()
                    .filter_map(|item| {
                        self.text(item, "an entry of Roles", expected)
                            .map(|text| (text, item.pos))
                    })
                    .collect();
                if self.error_count() != before {
                    return None;
                }
                texts
            }
            Value::Mapping(_) => {
                self.error(
                    node.pos,
                    "Roles must be a list, found a mapping".to_owned(),
                    Some(format!("expected {expected}")),
                );
                return None;
            }
        };
        let mut roles: Vec<String> = Vec::new();
        for (text, pos) in texts {
            for role in text.split(',').map(str::trim) {
                if role.is_empty() {
                    self.error(
                        pos,
                        format!("Roles has an empty role in {}", display_text(&text)),
                        Some(format!("expected {expected}")),
                    );
                    return None;
                }
                if !roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
                    roles.push(role.to_owned());
                }
            }
        }
        Some(roles)
    }

    fn max_parallelism(&mut self, node: &Node) -> Option<u32> {
        let expected = "a whole number of agents from 1, such as 1 for one at a time";
        let text = self.text(node, "MaxParallelism", expected)?;
        match text.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "MaxParallelism must be a whole number from 1, found {}",
                        display_text(&text)
                    ),
                    Some(format!(
                        "expected {expected}; remove the key to run on every agent at once"
                    )),
                );
                None
            }
        }
    }

    fn action(&mut self, item: &Node, fields: &Fields<'_>, label: &str) -> Option<StepAction> {
        let present: Vec<(&str, &Entry)> = ["Run", "Script", "Uses"]
            .into_iter()
            .filter_map(|key| fields.get(key).map(|entry| (key, entry)))
            .collect();
        let with = fields.get("With");
        match present.as_slice() {
            [] if ["Run", "Script", "Uses"]
                .iter()
                .any(|key| !fields.missing(key)) =>
            {
                None
            }
            [] => {
                self.error(
                    item.pos,
                    format!("{label} needs one of Run, Script or Uses"),
                    Some("Run: an inline script; Script: a script file's path; Uses: a built-in kind such as slack".into()),
                );
                None
            }
            [("Run", entry)] | [("Script", entry)] => {
                let is_run = matches!(present.as_slice(), [("Run", _)]);
                if let Some(with) = with {
                    self.error(
                        with.key.pos,
                        format!(
                            "With only applies to Uses steps, not to a {} step like {label}",
                            if is_run { "Run" } else { "Script" }
                        ),
                        Some("pass values to a script through Env or variables".into()),
                    );
                }
                if is_run {
                    self.text(&entry.value, "Run", "an inline script")
                        .map(StepAction::Run)
                } else {
                    self.text(
                        &entry.value,
                        "Script",
                        "the path of a script file in the repository",
                    )
                    .map(StepAction::Script)
                }
            }
            [("Uses", entry)] => self.uses(entry, with),
            [_, (second, entry), ..] => {
                let first = present.first().map_or("", |(key, _)| *key);
                self.error(
                    entry.key.pos,
                    format!("{label} has both {first} and {second}"),
                    Some(
                        "a step has exactly one of Run, Script or Uses; split it into two steps"
                            .into(),
                    ),
                );
                None
            }
            [(_, _)] => None,
        }
    }

    fn uses(&mut self, uses: &Entry, with: Option<&Entry>) -> Option<StepAction> {
        let built_in: Vec<&str> = UsesKind::BUILT_IN.iter().map(|kind| kind.name()).collect();
        let expected = format!(
            "one of {} or the path of a step template .json file",
            built_in.join(", ")
        );
        let text = self.text(&uses.value, "Uses", &expected)?;
        let Some(kind) = UsesKind::parse(&text) else {
            let hint = match closest(&text, built_in.iter().copied()) {
                Some(suggestion) => format!("did you mean {suggestion}?"),
                None => format!("expected {expected}"),
            };
            self.error(
                uses.value.pos,
                format!("unknown step kind {}", display_text(&text)),
                Some(hint),
            );
            return None;
        };
        let entries: &[Entry] = match with {
            None => &[],
            Some(with) => match &with.value.value {
                Value::Mapping(entries) => entries,
                Value::Scalar(scalar) if scalar.is_null() => &[],
                _ => {
                    self.error(
                        with.value.pos,
                        format!(
                            "With must be a mapping of parameters, found {}",
                            with.value.kind()
                        ),
                        Some(match kind.parameters() {
                            Some(params) => format!("{} takes {}", kind.name(), params.join(", ")),
                            None => "expected `Name: value` pairs".to_owned(),
                        }),
                    );
                    return None;
                }
            },
        };
        let before = self.error_count();
        let mut parameters = Vec::new();
        match kind.params() {
            Some(params) => {
                let names: Vec<&'static str> = params.iter().map(|param| param.name).collect();
                let place = format!(" in With for {}", kind.name());
                let fields = self.fields(entries, &names, &place, |_| None);
                for (name, entry) in &fields.found {
                    let shape = params
                        .iter()
                        .find(|param| param.name == *name)
                        .map_or(ParamShape::Text, |param| param.shape);
                    if let Some(value) = self.param(entry, name, shape) {
                        parameters.push(((*name).to_owned(), value));
                    }
                }
                let missing: Vec<&str> = params
                    .iter()
                    .filter(|param| param.required && fields.missing(param.name))
                    .map(|param| param.name)
                    .collect();
                if kind == UsesKind::ManualIntervention
                    && let Some(entry) = fields.get("Roles")
                    && let Some(roles) = self.approval_roles(&entry.value)
                {
                    parameters.retain(|(name, _)| name != "Roles");
                    parameters.push((
                        "Roles".to_owned(),
                        WithValue::List(roles.into_iter().map(WithValue::Text).collect()),
                    ));
                }
                if !missing.is_empty() {
                    let pos = with.map_or(uses.value.pos, |with| with.key.pos);
                    self.error(
                        pos,
                        format!("{} needs {} under With", kind.name(), missing.join(" and ")),
                        Some(format!("{} takes {}", kind.name(), names.join(", "))),
                    );
                }
            }
            None => {
                for entry in entries {
                    let Some(key) = entry.key.as_scalar().filter(|key| !key.is_null()) else {
                        self.error(
                            entry.key.pos,
                            format!("a With key must be text, found {}", entry.key.kind()),
                            Some("expected the step template's parameter names".into()),
                        );
                        continue;
                    };
                    if let Some(value) = self.with_value(&entry.value) {
                        parameters.push((key.text.clone(), value));
                    }
                }
            }
        }
        (self.error_count() == before).then_some(StepAction::Uses {
            kind,
            with: parameters,
        })
    }

    fn param(&mut self, entry: &Entry, name: &str, shape: ParamShape) -> Option<WithValue> {
        let node = &entry.value;
        let ok = match (shape, &node.value) {
            (ParamShape::Text, Value::Scalar(_)) => true,
            (ParamShape::Map, Value::Mapping(_)) => true,
            (ParamShape::Map, Value::Scalar(scalar)) => scalar.is_null(),
            (ParamShape::TextOrList, Value::Scalar(_) | Value::Sequence(_)) => true,
            _ => false,
        };
        if !ok {
            let expected = match shape {
                ParamShape::Text => "a single value",
                ParamShape::Map => "a mapping of names to values",
                ParamShape::TextOrList => "a value or a list of values",
            };
            self.error(
                node.pos,
                format!("{name} must be {expected}, found {}", node.kind()),
                Some(format!("expected {expected}")),
            );
            return None;
        }
        self.with_value(node)
    }

    /// Converts a parameter value; nested values must be scalars at the leaves.
    fn with_value(&mut self, node: &Node) -> Option<WithValue> {
        match &node.value {
            Value::Scalar(scalar) if scalar.is_null() => Some(WithValue::Text(String::new())),
            Value::Scalar(scalar) => Some(WithValue::Text(scalar.text.clone())),
            Value::Sequence(items) => {
                let before = self.error_count();
                let values: Vec<WithValue> = items
                    .iter()
                    .filter_map(|item| self.with_value(item))
                    .collect();
                (self.error_count() == before).then_some(WithValue::List(values))
            }
            Value::Mapping(entries) => {
                let before = self.error_count();
                let mut values = Vec::new();
                for entry in entries {
                    let Some(key) = entry.key.as_scalar().filter(|key| !key.is_null()) else {
                        self.error(
                            entry.key.pos,
                            format!("a key must be text, found {}", entry.key.kind()),
                            None,
                        );
                        continue;
                    };
                    if let Some(value) = self.with_value(&entry.value) {
                        values.push((key.text.clone(), value));
                    }
                }
                (self.error_count() == before).then_some(WithValue::Map(values))
            }
        }
    }

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let text = self.text(
            node,
            "Condition",
            "Success, Failure, Always or a variable expression such as \"#{if X}true#{/if}\"",
        )?;
        let condition = Condition::parse(&text);
        if let Condition::Expression(expression) = &condition
            && !expression.contains("#{")
        {
            let hint = match closest(expression, CONDITION_WORDS.iter().copied()) {
                Some(word) => format!("did you mean {word}?"),
                None => {
                    "expected Success, Failure, Always or an expression using #{...}".to_owned()
                }
            };
            self.warning(
                node.pos,
                format!(
                    "Condition {} is not Success, Failure or Always and uses no variable: it is a constant",
                    display_text(expression)
                ),
                Some(hint),
            );
        }
        Some(condition)
    }

    fn timeout(&mut self, node: &Node) -> Option<Timeout> {
        let expected = "a duration such as 90s, 10m or 1h";
        let text = self.text(node, "Timeout", expected)?;
        let trimmed = text.trim();
        match humantime::parse_duration(trimmed) {
            Ok(duration) if duration == Duration::ZERO => {
                self.error(
                    node.pos,
                    format!("Timeout {trimmed} is zero"),
                    Some(format!(
                        "expected {expected}; remove the key for the 1h default"
                    )),
                );
                None
            }
            Ok(duration) => Some(Timeout {
                duration,
                text: trimmed.to_owned(),
            }),
            Err(error) => {
                self.error(
                    node.pos,
                    format!("invalid Timeout {}: {error}", display_text(trimmed)),
                    Some(format!("expected {expected}")),
                );
                None
            }
        }
    }

    /// `Retries` and `RetryDelay` (only with `Retries`); on a step with
    /// `Roles` each attempt is a new job per agent.
    fn retry(&mut self, fields: &Fields<'_>, label: &str) -> Option<Retry> {
        let mut retry = Retry::default();
        let Some(entry) = fields.get("Retries") else {
            if let Some(delay) = fields.get("RetryDelay") {
                self.error(
                    delay.key.pos,
                    format!("RetryDelay only applies to a step with Retries, and {label} has none"),
                    Some("add `Retries: <n>` (how many times a failed step runs again), or remove RetryDelay".into()),
                );
                return None;
            }
            return Some(retry);
        };
        let expected = format!(
            "a whole number from 0 to {}: how many times a failed step runs again",
            Retry::MAX_RETRIES
        );
        let text = self.text(&entry.value, "Retries", &expected)?;
        match text.trim().parse::<u32>() {
            Ok(n) if n <= Retry::MAX_RETRIES => retry.retries = n,
            _ => {
                self.error(
                    entry.value.pos,
                    format!(
                        "Retries must be a whole number from 0 to {}, found {}",
                        Retry::MAX_RETRIES,
                        display_text(&text)
                    ),
                    Some(format!("expected {expected}")),
                );
                return None;
            }
        }
        if let Some(delay) = fields.get("RetryDelay") {
            let expected = "a duration such as 0s, 10s or 2m (at most 1h)";
            let text = self.text(&delay.value, "RetryDelay", expected)?;
            let trimmed = text.trim();
            match humantime::parse_duration(trimmed) {
                Ok(duration) if duration <= Duration::from_secs(3600) => {
                    retry.delay = duration;
                    trimmed.clone_into(&mut retry.delay_text);
                }
                Ok(_) => {
                    self.error(
                        delay.value.pos,
                        format!("RetryDelay {trimmed} is longer than 1h"),
                        Some(format!("expected {expected}")),
                    );
                    return None;
                }
                Err(error) => {
                    self.error(
                        delay.value.pos,
                        format!("invalid RetryDelay {}: {error}", display_text(trimmed)),
                        Some(format!("expected {expected}")),
                    );
                    return None;
                }
            }
        }
        Some(retry)
    }

    /// `OnFailure`: `fail` (the default) or `ask` (guided failure); not on
    /// a step with `Roles` yet (`docs/decisions.md`).
    fn on_failure(&mut self, fields: &Fields<'_>, label: &str) -> Option<OnFailure> {
        let Some(entry) = fields.get("OnFailure") else {
            return Some(OnFailure::Fail);
        };
        let expected = "fail (the default) or ask (pause for a person to retry, ignore or abort)";
        let text = self.text(&entry.value, "OnFailure", expected)?;
        let value = match text.trim().to_ascii_lowercase().as_str() {
            "fail" => OnFailure::Fail,
            "ask" => OnFailure::Ask,
            _ => {
                self.error(
                    entry.value.pos,
                    format!("unknown OnFailure {}", display_text(&text)),
                    Some(match closest(&text.to_ascii_lowercase(), ["fail", "ask"]) {
                        Some(s) => format!("did you mean {s}? expected {expected}"),
                        None => format!("expected {expected}"),
                    }),
                );
                return None;
            }
        };
        if value == OnFailure::Ask
            && let Some(roles) = ROLE_KEYS.iter().find(|key| fields.get(key).is_some())
        {
            self.error(
                entry.key.pos,
                format!("OnFailure: ask is not supported on a step with {roles} yet ({label})"),
                Some("run the step on the server, or use Retries inside the agent's script".into()),
            );
            return None;
        }
        Some(value)
    }

    fn working_directory(&mut self, node: &Node) -> Option<String> {
        let text = self.text(
            node,
            "WorkingDirectory",
            "a directory relative to the checkout",
        )?;
        let escapes = text.starts_with('/')
            || text.starts_with('\\')
            || text.chars().nth(1) == Some(':')
            || text.split(['/', '\\']).any(|part| part == "..");
        if escapes {
            self.error(
                node.pos,
                format!(
                    "WorkingDirectory {} leaves the checkout",
                    display_text(&text)
                ),
                Some("expected a path relative to the checkout, without `..`".into()),
            );
            return None;
        }
        Some(text)
    }

    fn env(&mut self, node: &Node) -> Option<Vec<(String, String)>> {
        let entries: &[Entry] = match &node.value {
            Value::Mapping(entries) => entries,
            Value::Scalar(scalar) if scalar.is_null() => &[],
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "Env must be a mapping of names to values, found {}",
                        node.kind()
                    ),
                    Some("expected entries such as `DOTNET_NOLOGO: 1`".into()),
                );
                return None;
            }
        };
        let before = self.error_count();
        let mut env = Vec::new();
        for entry in entries {
            let key = match entry.key.as_scalar() {
                Some(key) if !key.is_null() && !key.text.is_empty() => key.text.clone(),
                _ => {
                    self.error(
                        entry.key.pos,
                        format!("an Env name must be text, found {}", entry.key.kind()),
                        None,
                    );
                    continue;
                }
            };
            if key.contains('=') || key.contains('\0') {
                self.error(
                    entry.key.pos,
                    format!("invalid environment variable name {}", display_text(&key)),
                    Some("names cannot contain `=` or NUL".into()),
                );
                continue;
            }
            match &entry.value.value {
                Value::Scalar(scalar) if scalar.is_null() => env.push((key, String::new())),
                Value::Scalar(scalar) => env.push((key, scalar.text.clone())),
                _ => self.error(
                    entry.value.pos,
                    format!(
                        "Env value of {key} must be text, found {}",
                        entry.value.kind()
                    ),
                    Some("environment variables hold a single value".into()),
                ),
            }
        }
        (self.error_count() == before).then_some(env)
    }
}

fn default_mappings() -> Vec<Mapping> {
    ["master", "main"]
        .into_iter()
        .filter_map(|branch| Glob::new(branch).ok())
        .map(|glob| Mapping {
            target: RefPattern::Branch(glob),
            environment: "Production".into(),
        })
        .collect()
}

/// The closest candidate to `word`, compared case-insensitively, if close enough.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.trim().to_lowercase();
    if word.is_empty() || word.chars().count() > 64 {
        return None;
    }
    let mut best: Option<(&str, usize, f64)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let distance = strsim::damerau_levenshtein(&word, &lower);
        let similarity = strsim::jaro_winkler(&word, &lower);
        let prefix = word.chars().count() >= 3 && lower.starts_with(&word);
        let close = distance <= (lower.chars().count() / 3).max(1) || similarity >= 0.9 || prefix;
        if !close {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, best_distance, best_similarity)) => {
                distance < best_distance
                    || (distance == best_distance && similarity > best_similarity)
            }
        };
        if better {
            best = Some((candidate, distance, similarity));
        }
    }
    best.map(|(candidate, _, _)| candidate)
}

fn misplaced_at_top(key: &str) -> Option<&'static str> {
    match key {
        "lifecycles" | "phases" | "promotion" => Some("did you mean Lifecycle? a list of phases"),
        "branch" | "tag" | "environment" => {
            Some("Branch, Tag and Environment belong in an entry under Mappings")
        }
        "name"
        | "run"
        | "script"
        | "uses"
        | "with"
        | "shell"
        | "condition"
        | "timeout"
        | "retries"
        | "retrydelay"
        | "env"
        | "workingdirectory"
        | "environments"
        | "excludeenvironments" => Some("step keys belong in an entry under Steps"),
        _ => None,
    }
}

fn misplaced_in_mapping(key: &str) -> Option<&'static str> {
    match key {
        "environments" => Some("did you mean Environment? a mapping names one environment"),
        "branches" | "tags" => {
            Some("a mapping names one Branch or Tag; use a glob or several entries")
        }
        _ => None,
    }
}

fn misplaced_in_step(key: &str) -> Option<&'static str> {
    match key {
        "path" | "content" | "apikey" | "token" | "webhookurl" | "url" | "tag" => {
            Some("parameters of a Uses step go under With")
        }
        _ => None,
    }
}

fn looks_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "apikey",
        "api_key",
        "token",
        "privatekey",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// Shows user text in a message, shortened and without line breaks.
fn display_text(text: &str) -> String {
    let single: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(60)
        .collect();
    if text.chars().count() > 60 {
        format!("{single}…")
    } else {
        single
    }
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggestions_are_close_keys() {
        let top = ["Project", "Server", "Mappings", "CreateRelease", "Steps"];
        assert_eq!(closest("Mapings", top), Some("Mappings"));
        assert_eq!(closest("stpes", top), Some("Steps"));
        assert_eq!(closest("createrelase", top), Some("CreateRelease"));
        assert_eq!(closest("Colour", top), None);
        assert_eq!(
            closest("git-tags", ["git-tag", "git-checkout"]),
            Some("git-tag")
        );
    }
}
