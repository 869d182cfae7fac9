//! Octopus Deploy's **Octostache** substitution language, reimplemented.
//!
//! A [`VariableDictionary`] holds named string values; [`VariableDictionary::evaluate`]
//! renders a template such as `Hello #{Name | ToUpper}` against it with Octostache's
//! semantics: case-insensitive names, filters, `#{if}`/`#{unless}`/`#{each}`,
//! `#{calc}`, JSON indexing into values, recursive evaluation of values, and the
//! *echo* rule (anything that cannot be evaluated is left in the output as text,
//! with a [`Warning`]). The grammar is Octostache's continue-on-error grammar:
//! text that does not parse as a token is copied verbatim.
//!
//! This crate does no I/O and never reads the clock: the current time is part of
//! the [`EvalContext`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

mod eval;
mod filters;
mod json;
mod netfmt;
mod parser;
mod tree;

pub use filters::FILTERS;

/// The moment and place an evaluation happens in (`NowDate`, `NowDateUtc`, and
/// dates without an offset use these).
#[derive(Clone, Copy, Debug)]
pub struct EvalContext {
    /// The current time.
    pub now_utc: chrono::DateTime<chrono::Utc>,
    /// The server's local offset from UTC (for `NowDate` and naive dates).
    pub local_offset: chrono::FixedOffset,
}

/// The result of an evaluation: the text, and one warning per thing that could
/// not be evaluated and was echoed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The rendered text.
    pub text: String,
    /// What was echoed instead of evaluated, and why.
    pub warnings: Vec<Warning>,
}

/// Something that could not be evaluated and was left in the output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Warning {
    /// A lowercase sentence, e.g. `unknown variable Foo.Bar was left as #{Foo.Bar}`.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why an evaluation failed outright.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// A variable refers to itself, directly or through others.
    #[error("variable {} refers to itself through {}", chain.first().map_or("", String::as_str), chain.join(" -> "))]
    Recursion {
        /// The variables involved, first and last being the same.
        chain: Vec<String>,
    },
}

/// Octostache's truthiness: false for an empty value, `0`, and `false` or `no`
/// in any case (surrounding whitespace ignored); true for everything else.
/// An undefined variable is evaluated as the empty string, so it is false too.
pub fn is_truthy(value: &str) -> bool {
    let t = value.trim();
    !(value.is_empty()
        || value == "0"
        || t.eq_ignore_ascii_case("false")
        || t.eq_ignore_ascii_case("no"))
}

/// A set of named variables (names are case-insensitive).
#[derive(Clone, Debug, Default)]
pub struct VariableDictionary {
    entries: Vec<(String, String)>,
    lookup: HashMap<String, usize>,
    tree: OnceLock<Arc<tree::Tree>>,
}

impl VariableDictionary {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable, replacing any earlier value of that name (compared
    /// case-insensitively); the name keeps the spelling it was first set with.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let key = name.to_lowercase();
        match self.lookup.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.lookup.insert(key, self.entries.len());
                self.entries.push((name, value));
            }
        }
        self.tree = OnceLock::new();
    }

    /// The unevaluated value of a variable (case-insensitive lookup).
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.lookup
            .get(&name.to_lowercase())
            .map(|&i| self.entries[i].1.as_str())
    }

    /// The names, in the order (and spelling) they were first set.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no variables.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn tree(&self) -> &tree::Tree {
        self.tree
            .get_or_init(|| Arc::new(tree::Tree::build(&self.entries)))
    }

    /// Evaluates a template (continue-on-error grammar: text that does not parse
    /// is copied verbatim).
    pub fn evaluate(&self, template: &str, ctx: &EvalContext) -> Result<Rendered, EvaluationError> {
        eval::evaluate(self.tree(), template, ctx)
    }

    /// The evaluated value of a variable (values may contain `#{...}`
    /// themselves), `None` if it is not defined.
    pub fn get(&self, name: &str, ctx: &EvalContext) -> Result<Option<String>, EvaluationError> {
        let Some(raw) = self.get_raw(name) else {
            return Ok(None);
        };
        if !raw.contains("#{") {
            return Ok(Some(raw.to_string()));
        }
        eval::get(self.tree(), name, raw, ctx)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for VariableDictionary {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut d = Self::new();
        for (k, v) in iter {
            d.set(k, v);
        }
        d
    }
}
