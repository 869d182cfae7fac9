//! The values a data file can hold: strings, numbers, booleans, `$null`,
//! arrays and (case-insensitive, insertion-ordered) hashtables.

use std::fmt;

/// A value read from a PowerShell data file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string or here-string (escapes already applied).
    String(String),
    /// An integer literal that fits in an `i64` (decimal or `0x` hex).
    Integer(i64),
    /// Any other number: decimals, exponents, `d` suffixes, integers too
    /// large for `i64`. Keeps the source text, so `1.0` stays `1.0`.
    Number(Number),
    /// `$true` or `$false`.
    Bool(bool),
    /// `$null`.
    Null,
    /// `@( ... )` or a comma list `a, b`.
    Array(Vec<Value>),
    /// `@{ ... }`.
    Hashtable(Hashtable),
}

impl Value {
    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Integer`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The hashtable, if this is a [`Value::Hashtable`].
    pub fn as_hashtable(&self) -> Option<&Hashtable> {
        match self {
            Value::Hashtable(table) => Some(table),
            _ => None,
        }
    }

    /// Whether this is `$null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short description of the kind of value, for error messages
    /// (`"a string"`, `"an array"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "$null",
            Value::Array(_) => "an array",
            Value::Hashtable(_) => "a hashtable",
        }
    }
}

/// A non-integer number literal: its source text and its value as `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    text: String,
    value: f64,
}

impl Number {
    pub(crate) fn new(text: String, value: f64) -> Self {
        Number { text, value }
    }

    /// The literal as written in the file (for example `1.0`, `-2.5e3`, `1.5kb`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numeric value (multipliers such as `kb` applied).
    pub fn to_f64(&self) -> f64 {
        self.value
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A PowerShell hashtable: keys compare case-insensitively, as in PowerShell,
/// and entries keep the order in which they appear in the file.
#[derive(Clone, PartialEq, Default)]
pub struct Hashtable {
    entries: Vec<(String, Value)>,
}

/// Case-insensitive key comparison (Unicode lowercase folding).
fn keys_equal(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
}

impl Hashtable {
    /// An empty hashtable.
    pub fn new() -> Self {
        Hashtable::default()
    }

    /// The value for `key`, compared case-insensitively.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| keys_equal(k, key))
            .map(|(_, v)| v)
    }

    /// Whether `key` (compared case-insensitively) is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The key as spelled in the file, for a case-insensitive `key`.
    pub fn original_key(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| keys_equal(k, key))
            .map(|(k, _)| k.as_str())
    }

    /// Inserts or replaces. A replaced entry keeps its position and original
    /// spelling; the previous value is returned.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| keys_equal(k, &key)) {
            Some((_, slot)) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in file order, keys as spelled in the file.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Keys in file order, as spelled in the file.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

impl fmt::Debug for Hashtable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, Value)> for Hashtable {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut table = Hashtable::new();
        for (k, v) in iter {
            table.insert(k, v);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_ordered() {
        let mut t = Hashtable::new();
        assert_eq!(t.insert("ModuleVersion", Value::Integer(1)), None);
        t.insert("Author", Value::Null);
        assert_eq!(
            t.insert("MODULEVERSION", Value::Integer(2)),
            Some(Value::Integer(1))
        );
        assert_eq!(t.get("moduleversion"), Some(&Value::Integer(2)));
        assert_eq!(t.original_key("MODULEversion"), Some("ModuleVersion"));
        assert_eq!(t.keys().collect::<Vec<_>>(), ["ModuleVersion", "Author"]);
        assert!(t.contains_key("ÄUTHOR") == t.contains_key("äuthor"));
        assert_eq!(t.len(), 2);
    }
}
