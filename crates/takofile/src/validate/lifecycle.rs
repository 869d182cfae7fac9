//! `Lifecycle:`: its phases, their `Requires` (earlier phases only, so no
//! cycle), `AutoDeploy` and `Approval`, checked against each other and
//! against the environments `Mappings` deploys to.

use std::time::Duration;

use super::{Ctx, Fields, closest, display_text};
use crate::lifecycle::{
    APPROVAL_ROLES, Approval, DEFAULT_APPROVAL_TIMEOUT, Lifecycle, NotBy, Phase,
};
use crate::model::Mapping;
use crate::yaml::{Entry, Node, Pos, Value};

pub(super) const PHASE_KEYS: &[&str] = &["Environment", "AutoDeploy", "Requires", "Approval"];
pub(super) const APPROVAL_KEYS: &[&str] = &["Roles", "Count", "NotBy", "Timeout"];

/// A phase as read, with the positions later checks point at.
struct Read {
    phase: Phase,
    environment_pos: Pos,
    requires: Vec<(String, Pos)>,
    auto_deploy_false: Option<Pos>,
}

impl Ctx {
    /// Validates `Lifecycle`; `mappings` are the routes (with the position
    /// of each entry's `Environment`, or of `Lifecycle` for the default
    /// routes) whose environments must all be phases.
    pub(super) fn lifecycle(
        &mut self,
        entry: &Entry,
        mappings: &[(Mapping, Pos)],
    ) -> Option<Lifecycle> {
        let expected = "a list of phases such as `- Environment: DevTest` with `AutoDeploy: true`";
        if let Value::Mapping(_) = entry.value.value {
            self.error(
                entry.value.pos,
                "Lifecycle must be a list, found a mapping",
                Some(format!(
                    "write each phase as a list entry, in order: {expected}"
                )),
            );
            return None;
        }
        let items = self.sequence(&entry.value, "Lifecycle", expected)?;
        if items.is_empty() {
            self.error(
                entry.key.pos,
                "Lifecycle is an empty list",
                Some(format!(
                    "expected {expected}; remove the key to keep every environment independent"
                )),
            );
            return None;
        }
        let before = self.error_count();
        let mut read: Vec<Read> = Vec::new();
        for item in items {
            let Some(phase) = self.phase(item) else {
                continue;
            };
            if let Some(first) = read.iter().find(|r| {
                r.phase
                    .environment
                    .eq_ignore_ascii_case(&phase.phase.environment)
            }) {
                self.error(
                    phase.environment_pos,
                    format!(
                        "environment {} is already a phase of the Lifecycle (line {})",
                        phase.phase.environment, first.phase.line
                    ),
                    Some("each environment is one phase; remove one of them".into()),
                );
                continue;
            }
            read.push(phase);
        }
        if self.error_count() != before {
            return None;
        }
        self.requires(&read);
        for (mapping, pos) in mappings {
            let Some(index) = read.iter().position(|r| {
                r.phase
                    .environment
                    .eq_ignore_ascii_case(&mapping.environment)
            }) else {
                let known: Vec<&str> = read.iter().map(|r| r.phase.environment.as_str()).collect();
                self.error(
                    *pos,
                    format!(
                        "{} {} deploys to {}, which the Lifecycle does not name",
                        match mapping.target {
                            crate::RefPattern::Branch(_) => "Branch",
                            crate::RefPattern::Tag(_) => "Tag",
                        },
                        mapping.target.glob(),
                        mapping.environment
                    ),
                    Some(match closest(&mapping.environment, known.iter().copied()) {
                        Some(suggestion) => format!("did you mean {suggestion}? with a Lifecycle every environment is one of its phases"),
                        None => format!(
                            "add `- Environment: {}` to the Lifecycle (its phases: {})",
                            mapping.environment,
                            known.join(", ")
                        ),
                    }),
                );
                continue;
            };
            if let Some(pos) = read[index].auto_deploy_false {
                self.warning(
                    pos,
                    format!(
                        "AutoDeploy: false has no effect on pushes: {} maps pushes to {}, and they deploy at once",
                        mapping.target.glob(),
                        read[index].phase.environment
                    ),
                    Some("AutoDeploy decides whether a release that succeeded in the previous phase deploys here by itself".into()),
                );
            }
        }
        (self.error_count() == before).then(|| Lifecycle {
            phases: read.into_iter().map(|r| r.phase).collect(),
        })
    }

    /// Each `Requires` names an earlier phase: not an unknown environment,
    /// not the phase itself, not a later one (which could never be met).
    fn requires(&mut self, read: &[Read]) {
        for (index, phase) in read.iter().enumerate() {
            for (required, pos) in &phase.requires {
                let found = read
                    .iter()
                    .position(|r| r.phase.environment.eq_ignore_ascii_case(required));
                let name = &phase.phase.environment;
                match found {
                    None => {
                        let known = read.iter().map(|r| r.phase.environment.as_str());
                        self.error(
                            *pos,
                            format!(
                                "{name} requires unknown environment {}",
                                display_text(required)
                            ),
                            Some(match closest(required, known) {
                                Some(suggestion) => format!("did you mean {suggestion}?"),
                                None => "Requires names earlier phases of the Lifecycle".into(),
                            }),
                        );
                    }
                    Some(found) if found == index => self.error(
                        *pos,
                        format!("{name} requires itself: a cycle no release can complete"),
                        Some("Requires names earlier phases of the Lifecycle; remove it".into()),
                    ),
                    Some(found) if found > index => {
                        let later = &read[found].phase;
                        let cycle = later.requires.iter().any(|r| r.eq_ignore_ascii_case(name));
                        self.error(
                            *pos,
                            if cycle {
                                format!(
                                    "{name} requires {}, which requires {name}: a cycle no release can complete",
                                    later.environment
                                )
                            } else {
                                format!(
                                    "{name} requires {}, a later phase (line {}): no release could reach {name}",
                                    later.environment, later.line
                                )
                            },
                            Some(format!(
                                "Requires names earlier phases; move {} before {name} or remove it from Requires",
                                later.environment
                            )),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }

    fn phase(&mut self, item: &Node) -> Option<Read> {
        let entries = self.mapping(
            item,
            "a Lifecycle entry",
            "`Environment: <name>` with AutoDeploy, Requires or Approval",
        )?;
        let fields: Fields<'_> = self.fields(
            entries,
            PHASE_KEYS,
            " in a Lifecycle entry",
            misplaced_in_phase,
        );
        let before = self.error_count();
        let environment = match fields.get("Environment") {
            Some(entry) => self
                .text(&entry.value, "Environment", "the name of an environment")
                .map(|name| (name.trim().to_owned(), entry.value.pos)),
            None if !fields.missing("Environment") => None,
            None => {
                self.error(
                    item.pos,
                    "a Lifecycle entry needs Environment",
                    Some("add `Environment: <name>`; phases are deployed in list order".into()),
                );
                None
            }
        };
        let (auto_deploy, auto_deploy_false) = match fields.get("AutoDeploy") {
            Some(entry) => match self.boolean(&entry.value, "AutoDeploy") {
                Some(value) => (Some(value), (!value).then_some(entry.value.pos)),
                None => (None, None),
            },
            None => (Some(false), None),
        };
        let requires = match fields.get("Requires") {
            Some(entry) => self.required(&entry.value),
            None => Some(Vec::new()),
        };
        let approval = match fields.get("Approval") {
            Some(entry) => self.approval(&entry.value).map(Some),
            None => Some(None),
        };
        if self.error_count() != before {
            return None;
        }
        let (environment, environment_pos) = environment?;
        let requires = requires?;
        Some(Read {
            phase: Phase {
                environment,
                auto_deploy: auto_deploy?,
                requires: requires.iter().map(|(name, _)| name.clone()).collect(),
                approval: approval?,
                line: item.pos.line,
            },
            environment_pos,
            requires,
            auto_deploy_false,
        })
    }

    /// `Requires`: one environment or a list, each with its position.
    fn required(&mut self, node: &Node) -> Option<Vec<(String, Pos)>> {
        let expected = "an earlier phase's environment or a list of them, such as [Staging]";
        match &node.value {
            Value::Scalar(_) => self
                .text(node, "Requires", expected)
                .map(|name| vec![(name.trim().to_owned(), node.pos)]),
            Value::Sequence(items) => {
                let before = self.error_count();
                let names: Vec<(String, Pos)> = items
                    .iter()
                    .filter_map(|item| {
                        self.text(item, "an entry of Requires", expected)
                            .map(|name| (name.trim().to_owned(), item.pos))
                    })
                    .collect();
                (self.error_count() == before).then_some(names)
            }
            Value::Mapping(_) => {
                self.error(
                    node.pos,
                    "Requires must be a list, found a mapping",
                    Some(format!("expected {expected}")),
                );
                None
            }
        }
    }

    fn approval(&mut self, node: &Node) -> Option<Approval> {
        let entries = self.mapping(
            node,
            "Approval",
            "`{ Roles: [admin], Count: 1, NotBy: pusher, Timeout: 7d }`",
        )?;
        let fields = self.fields(entries, APPROVAL_KEYS, " in Approval", |_| None);
        let before = self.error_count();
        let roles = match fields.get("Roles") {
            Some(entry) => self.approval_roles(&entry.value),
            None => Some(vec!["admin".to_owned()]),
        };
        let count = match fields.get("Count") {
            Some(entry) => {
                let expected = "how many different people must approve, from 1";
                self.text(&entry.value, "Count", expected).and_then(|text| {
                    match text.trim().parse::<u32>() {
                        Ok(n) if (1..=100).contains(&n) => Some(n),
                        _ => {
                            self.error(
                                entry.value.pos,
                                format!(
                                    "Count must be a whole number from 1 to 100, found {}",
                                    display_text(&text)
                                ),
                                Some(format!("expected {expected}")),
                            );
                            None
                        }
                    }
                })
            }
            None => Some(1),
        };
        let not_by = match fields.get("NotBy") {
            Some(entry) => {
                let expected =
                    "pusher (whose push made the release) or creator (who created the deployment)";
                self.text(&entry.value, "NotBy", expected).and_then(|text| {
                    match NotBy::parse(&text) {
                        Some(not_by) => Some(Some(not_by)),
                        None => {
                            self.error(
                                entry.value.pos,
                                format!("unknown NotBy {}", display_text(&text)),
                                Some(format!("expected {expected}")),
                            );
                            None
                        }
                    }
                })
            }
            None => Some(None),
        };
        let timeout = match fields.get("Timeout") {
            Some(entry) => self.approval_timeout(&entry.value),
            None => Some((DEFAULT_APPROVAL_TIMEOUT, "7d".to_owned())),
        };
        if self.error_count() != before {
            return None;
        }
        let (timeout, timeout_text) = timeout?;
        Some(Approval {
            roles: roles?,
            count: count?,
            not_by: not_by?,
            timeout,
            timeout_text,
        })
    }

    pub(super) fn approval_roles(&mut self, node: &Node) -> Option<Vec<String>> {
        let expected = format!("a list of roles among {}", APPROVAL_ROLES.join(", "));
        let items: Vec<(String, Pos)> = match &node.value {
            Value::Scalar(_) => vec![(self.text(node, "Roles", &expected)?, node.pos)],
            Value::Sequence(items) if !items.is_empty() => {
                let before = self.error_count();
                let texts: Vec<_> = items
                    .iter()
                    .filter_map(|item| {
                        self.text(item, "an entry of Roles", &expected)
                            .map(|text| (text, item.pos))
                    })
                    .collect();
                if self.error_count() != before {
                    return None;
                }
                texts
            }
            _ => {
                self.error(
                    node.pos,
                    format!("Roles must be a non-empty list, found {}", node.kind()),
                    Some(format!("expected {expected}")),
                );
                return None;
            }
        };
        let mut roles: Vec<String> = Vec::new();
        let mut good = true;
        for (text, pos) in items {
            let role = text.trim().to_ascii_lowercase();
            if !APPROVAL_ROLES.contains(&role.as_str()) {
                good = false;
                self.error(
                    pos,
                    format!("unknown approval role {}", display_text(&text)),
                    Some(match closest(&role, APPROVAL_ROLES) {
                        Some(suggestion) => {
                            format!("did you mean {suggestion}? expected {expected}")
                        }
                        None => format!("expected {expected} (the roles of Tako's API tokens)"),
                    }),
                );
            } else if !roles.contains(&role) {
                roles.push(role);
            }
        }
        good.then_some(roles)
    }

    fn approval_timeout(&mut self, node: &Node) -> Option<(Duration, String)> {
        let expected = "a duration such as 30m, 8h or 7d";
        let text = self.text(node, "Timeout", expected)?;
        let trimmed = text.trim();
        match humantime::parse_duration(trimmed) {
            Ok(duration) if duration > Duration::ZERO => Some((duration, trimmed.to_owned())),
            Ok(_) => {
                self.error(
                    node.pos,
                    format!("Timeout {trimmed} is zero"),
                    Some(format!(
                        "expected {expected}; remove the key for the 7d default"
                    )),
                );
                None
            }
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
}

fn misplaced_in_phase(key: &str) -> Option<&'static str> {
    match key {
        "environments" => Some("did you mean Environment? a phase names one environment"),
        "branch" | "tag" => Some("Branch and Tag belong in an entry under Mappings"),
        "roles" | "count" | "notby" | "timeout" => {
            Some("approval settings go under Approval: `Approval: { Roles: [admin] }`")
        }
        "autopromote" | "auto" => Some("did you mean AutoDeploy?"),
        _ => None,
    }
}
