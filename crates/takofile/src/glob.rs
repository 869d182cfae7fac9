//! Branch and tag patterns: exact names or globs where `*` matches within one
//! `/`-separated segment and `**` across segments. Matching is case-sensitive,
//! as git ref names are.

use std::fmt;

use thiserror::Error;

/// A compiled branch or tag pattern.
#[derive(Clone)]
pub struct Glob {
    text: String,
    matcher: globset::GlobMatcher,
}

/// Why a pattern is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct GlobError {
    message: String,
}

impl Glob {
    /// Compiles a pattern. `*` does not cross `/`; `**` as a whole segment
    /// (`release/**`, `**/fix`, `a/**/b`) does.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError {
                message: "the pattern is empty".into(),
            });
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .case_insensitive(false)
            .backslash_escape(true)
            .build()
            .map_err(|error| GlobError {
                message: lowercase_first(&error.kind().to_string()),
            })?;
        Ok(Glob {
            text: pattern.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether a full branch or tag name (without `refs/heads/` or
    /// `refs/tags/`) matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has glob syntax (otherwise it is an exact name).
    pub fn is_literal(&self) -> bool {
        !self
            .text
            .chars()
            .any(|c| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\'))
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.text).finish()
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.text == other.text
    }
}

impl Eq for Glob {}

/// What a mapping entry matches: pushed branches or pushed tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefPattern {
    /// `Branch:` — matches branch pushes by full name (`feature/x`).
    Branch(Glob),
    /// `Tag:` — matches tag pushes by full name (`v1.2.0`).
    Tag(Glob),
}

impl RefPattern {
    /// The glob, whichever kind of ref it matches.
    pub fn glob(&self) -> &Glob {
        match self {
            RefPattern::Branch(glob) | RefPattern::Tag(glob) => glob,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str) -> Glob {
        Glob::new(pattern).expect("a valid glob")
    }

    #[test]
    fn exact_names_match_only_themselves() {
        let master = glob("master");
        assert!(master.matches("master"));
        assert!(!master.matches("Master"));
        assert!(!master.matches("master2"));
        assert!(!master.matches("feature/master"));
        assert!(master.is_literal());
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        let release = glob("release/*");
        assert!(release.matches("release/1.0"));
        assert!(!release.matches("release/1.0/fix"));
        assert!(!release.matches("release"));
        assert!(!glob("feature*").matches("feature/x"));
        assert!(glob("*").matches("develop"));
        assert!(!glob("*").matches("feature/x"));
    }

    #[test]
    fn double_star_crosses_segments() {
        let hotfix = glob("hotfix/**");
        assert!(hotfix.matches("hotfix/a"));
        assert!(hotfix.matches("hotfix/a/b/c"));
        assert!(!hotfix.matches("hotfixes/a"));
        assert!(glob("**").matches("a/b/c"));
        assert!(glob("**/fix").matches("team/a/fix"));
    }

    #[test]
    fn broken_globs_are_errors() {
        assert!(Glob::new("release/[").is_err());
        assert!(Glob::new("").is_err());
        assert!(Glob::new("{a,b").is_err());
    }
}
