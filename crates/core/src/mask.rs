//! Masking of sensitive values: the one way text leaves a deployment.
//!
//! Every sensitive value a deployment can see is registered with a [`Masker`];
//! every line written to the task log, every output, error message and summary
//! passes through [`Masker::mask`] first. Besides the exact value the masker
//! also hides each line of a multi-line value and the value's JSON-escaped,
//! URL-encoded and base64 forms, since scripts print secrets in those shapes
//! too. Values shorter than [`MIN_SECRET_CHARS`] characters are not masked (as
//! in Octopus): masking every `a` or `1` would make logs unreadable and reveal
//! the value by its holes anyway.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

/// What a masked value is replaced with.
pub const MASK: &str = "********";

/// Values (and forms of values) with fewer characters than this are not masked.
pub const MIN_SECRET_CHARS: usize = 4;

/// Replaces every registered sensitive value (in all its forms) by [`MASK`].
#[derive(Clone, Default)]
pub struct Masker {
    patterns: Vec<String>,
    automaton: Option<AhoCorasick>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the patterns themselves: they are the secrets.
        f.debug_struct("Masker")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Masker {
    /// A masker that hides nothing yet.
    pub fn new() -> Masker {
        Masker::default()
    }

    /// A masker for all of `values`.
    pub fn with_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut masker = Masker::new();
        masker.add_all(values);
        masker
    }

    /// Registers one sensitive value (and its derived forms).
    pub fn add(&mut self, value: &str) {
        self.add_all([value]);
    }

    /// Registers several sensitive values at once (one rebuild).
    pub fn add_all<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        let before = self.patterns.len();
        for value in values {
            for form in forms_of(value) {
                if form.chars().count() >= MIN_SECRET_CHARS && !self.patterns.contains(&form) {
                    self.patterns.push(form);
                }
            }
        }
        if self.patterns.len() != before {
            self.rebuild();
        }
    }

    /// Every registered form, for another masker that must hide the same
    /// (an agent's: the list travels to it in its job, never to a log).
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(String::as_str)
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The text with every registered form replaced by [`MASK`].
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.automaton {
            Some(automaton) if automaton.is_match(text) => {
                let replacements = vec![MASK; self.patterns.len()];
                Cow::Owned(automaton.replace_all(text, &replacements))
            }
            _ => Cow::Borrowed(text),
        }
    }

    fn rebuild(&mut self) {
        self.automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&self.patterns)
            .ok();
        if self.automaton.is_none() {
            // Building only fails for absurd pattern sets (beyond the
            // automaton's size limits); fall back to hiding everything rather
            // than leaking.
            self.automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build([""])
                .ok();
        }
    }
}

/// The exact value, each of its lines, and its escaped/encoded forms.
fn forms_of(value: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let mut push = |form: String| {
        if !form.is_empty() && !forms.contains(&form) {
            forms.push(form);
        }
    };
    push(value.to_owned());
    if value.contains('\n') {
        for line in value.lines() {
            push(line.trim_end_matches('\r').to_owned());
            push(line.trim().to_owned());
        }
    }
    if let Ok(json) = serde_json::to_string(value) {
        push(json[1..json.len() - 1].to_owned());
    }
    push(
        percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    );
    push(percent_encoding::utf8_percent_encode(value, RFC3986_UNRESERVED).to_string());
    push(percent_encoding::utf8_percent_encode(value, URI_COMPONENT).to_string());
    push(form_urlencode(value));
    let standard = base64::engine::general_purpose::STANDARD.encode(value);
    push(standard.trim_end_matches('=').to_owned());
    push(standard);
    push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value));
    forms
}

/// Everything but RFC 3986's unreserved characters is encoded (Python's
/// `urllib.parse.quote`, curl's `--data-urlencode`, Go's `PathEscape`).
const RFC3986_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// JavaScript's `encodeURIComponent`: also leaves `!'()*` as they are.
const URI_COMPONENT: &percent_encoding::AsciiSet = &RFC3986_UNRESERVED
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// `application/x-www-form-urlencoded` form (spaces as `+`), as curl and
/// most HTTP clients write query strings.
fn form_urlencode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, RFC3986_UNRESERVED)
        .to_string()
        .replace("%20", "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(secrets: &[&str], text: &str) -> String {
        Masker::with_values(secrets.iter().copied())
            .mask(text)
            .into_owned()
    }

    #[test]
    fn exact_value_anywhere_in_a_line_is_masked() {
        assert_eq!(masked(&["hunter22"], "pw=hunter22;"), "pw=********;");
    }

    #[test]
    fn each_line_of_a_multi_line_value_is_masked() {
        let key = "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----";
        assert_eq!(masked(&[key], "got AAAABBBBCCCC here"), "got ******** here");
        assert_eq!(masked(&[key], key), "********");
    }

    #[test]
    fn encoded_forms_are_masked() {
        let secret = "p@ss word/\"x\"";
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert_eq!(masked(&[secret], &format!("b64={b64}")), "b64=********");
        assert_eq!(
            masked(&[secret], r#"{"v":"p@ss word/\"x\""}"#),
            r#"{"v":"********"}"#
        );
        assert_eq!(masked(&[secret], "u=p%40ss%20word%2F%22x%22"), "u=********");
        assert_eq!(masked(&[secret], "u=p%40ss+word%2F%22x%22"), "u=********");
        // Unreserved characters left as they are (Python's quote, JS's
        // encodeURIComponent).
        let dashed = "my-key.v2 (x)";
        assert_eq!(masked(&[dashed], "q=my-key.v2%20%28x%29"), "q=********");
        assert_eq!(masked(&[dashed], "q=my-key.v2%20(x)"), "q=********");
    }

    #[test]
    fn short_values_are_not_masked() {
        assert_eq!(masked(&["abc"], "abc abcd"), "abc abcd");
    }

    #[test]
    fn longest_overlapping_secret_wins() {
        assert_eq!(
            masked(&["secret", "secret-long"], "x secret-long y"),
            "x ******** y"
        );
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        let masker = Masker::with_values(["abcdef"]);
        assert!(matches!(masker.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn debug_output_does_not_reveal_values() {
        let masker = Masker::with_values(["topsecretvalue"]);
        assert!(!format!("{masker:?}").contains("topsecret"));
    }
}
