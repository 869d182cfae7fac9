//! Release numbers: Octopus's "next version increment", and version ordering.
//!
//! # The next release number
//!
//! [`next_release_number`] implements Octopus's classic release-versioning
//! rule, "use the version number from the last release and increment the
//! last portion":
//!
//! | previous            | next             | rule |
//! |---------------------|------------------|------|
//! | none                | `0.0.1`          | 1    |
//! | `1.2.3`             | `1.2.4`          | 3    |
//! | `1.2`               | `1.3`            | 3    |
//! | `1.2.3.4`           | `1.2.3.5`        | 3    |
//! | `v7`                | `v8`             | 3    |
//! | `1.2.3-beta.4`      | `1.2.3-beta.5`   | 4    |
//! | `1.2.3-beta`        | `1.2.4-beta`     | 5    |
//! | `1.2.3-rc9`         | `1.2.4-rc9`      | 5    |
//! | `1.2.3+abc.7`       | `1.2.4`          | 2    |
//! | `2017.02.09`        | `2017.02.10`     | 6    |
//! | `1.0.99`            | `1.0.100`        | 6    |
//! | `build-42`          | `build-43`       | 7    |
//! | `latest`            | `latest.1`       | 7    |
//!
//! 1. No previous release (or a blank one): the first release is `0.0.1`,
//!    which is also what Octopus's default template gives a new project.
//! 2. Build metadata (`+...`) describes the previous build and plays no part
//!    in ordering, so it is dropped; surrounding whitespace is trimmed.
//! 3. Otherwise only the *last numeric part* changes; everything before and
//!    after it (a `v` prefix, the other parts, the pre-release tag) is kept
//!    as written. There is no carrying or resetting: `1.9` becomes `1.10`.
//! 4. When the pre-release tag has a purely numeric identifier, the last such
//!    identifier is the last numeric part (`beta.4` → `beta.5`), the usual
//!    SemVer counter.
//! 5. Digits embedded in an alphanumeric identifier (`rc9`) are *not*
//!    incremented: SemVer compares such identifiers as text, so `rc10` would
//!    sort before `rc9` and the project's newest release would stop moving.
//!    The last numeric part of the version core is incremented instead.
//!    Rules 3 to 5 guarantee that, for any valid version, the next number
//!    compares greater under [`compare_versions`].
//! 6. The incremented part keeps at least its width, so zero-padded parts
//!    stay zero-padded (`09` → `10`, `009` → `010`) and numbers grow without
//!    overflow (`99` → `100`, arbitrarily long digit runs are fine). Octopus
//!    itself drops leading zeros; keeping them is the one deliberate
//!    difference, and it does not change the numeric value.
//! 7. A previous number that is not a version at all: its last run of
//!    digits is incremented; with no digits at all, `.1` is appended.
//!
//! Octopus's newer default versioning template,
//! `#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.NextPatch}`,
//! differs for short or pre-release numbers (`1.2` → `1.2.1`, `1.2.3-beta.4`
//! → `1.2.4`); projects wanting that behaviour set it as their version
//! template.
//!
//! # Comparing versions
//!
//! [`compare_versions`] orders by SemVer 2.0 precedence with the leniency of
//! NuGet and Octopus:
//!
//! - one to four numeric parts, missing parts counting as `0` (`1.2` equals
//!   `1.2.0` equals `1.2.0.0`); leading zeros allowed (`2017.02.10`);
//! - an optional leading `v` or `V` (`v1.2.3` equals `1.2.3`);
//! - a release sorts after its pre-releases (`1.0.0-rc.1` < `1.0.0`);
//!   pre-release identifiers compare left to right, numeric ones numerically
//!   and before alphanumeric ones, alphanumeric ones case-insensitively (as
//!   NuGet does), and a longer list wins when one is a prefix of the other;
//! - build metadata is ignored;
//! - text that is not a version sorts before every version; two such texts
//!   compare as plain strings, so the order is still total.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The number given to a project's first release.
pub const FIRST_RELEASE_NUMBER: &str = "0.0.1";

/// The release number that follows `previous` (see the module documentation
/// for the rules); `None` gives [`FIRST_RELEASE_NUMBER`].
pub fn next_release_number(previous: Option<&str>) -> String {
    let Some(previous) = previous.map(str::trim).filter(|p| !p.is_empty()) else {
        return FIRST_RELEASE_NUMBER.to_owned();
    };
    let without_metadata = match previous.split_once('+') {
        Some((before, _)) => before,
        None => previous,
    };
    if Version::parse(without_metadata).is_err() {
        return increment_last_digit_run(without_metadata)
            .unwrap_or_else(|| format!("{without_metadata}.1"));
    }
    let (core, prerelease) = match without_metadata.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (without_metadata, None),
    };
    if let Some(pre) = prerelease {
        let identifiers: Vec<&str> = pre.split('.').collect();
        if let Some(last_numeric) = identifiers.iter().rposition(|id| is_numeric(id)) {
            let bumped: Vec<String> = identifiers
                .iter()
                .enumerate()
                .map(|(index, id)| {
                    if index == last_numeric {
                        increment_digits(id)
                    } else {
                        (*id).to_owned()
                    }
                })
                .collect();
            return format!("{core}-{}", bumped.join("."));
        }
    }
    // A valid core always ends with a digit run: its last numeric part.
    let core = increment_last_digit_run(core).unwrap_or_else(|| core.to_owned());
    match prerelease {
        Some(pre) => format!("{core}-{pre}"),
        None => core,
    }
}

/// Orders two version strings by precedence (see the module documentation).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// The newest of `versions` by [`compare_versions`]; among equals (such as
/// `1.2` and `1.2.0`) the last one given. `None` when there are none.
pub fn newest_version<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    versions.into_iter().max_by(|a, b| compare_versions(a, b))
}

/// Why a string is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {text:?}: {reason}")]
pub struct VersionError {
    /// The text that was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A parsed, leniently SemVer version: `[v]N[.N[.N[.N]]][-pre][+meta]`.
///
/// Equality and ordering are by precedence, so `1.2` equals `1.2.0.0` and
/// build metadata is ignored; [`Display`](fmt::Display) shows the text as
/// given (trimmed).
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    parts: Vec<u64>,
    prerelease: Option<String>,
    metadata: Option<String>,
}

impl Version {
    /// Parses a version; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let text = text.trim();
        let fail = |reason| VersionError {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        let (rest, metadata) = match text.split_once('+') {
            Some((rest, meta)) => (rest, Some(meta)),
            None => (text, None),
        };
        let (core, prerelease) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let core = core
            .strip_prefix('v')
            .or_else(|| core.strip_prefix('V'))
            .unwrap_or(core);
        let mut parts = Vec::with_capacity(4);
        for part in core.split('.') {
            if !is_numeric(part) {
                return Err(fail(
                    "expected one to four dot-separated numbers, like 1.2.3",
                ));
            }
            let value = part
                .parse::<u64>()
                .map_err(|_| fail("a numeric part is too large"))?;
            parts.push(value);
        }
        if parts.len() > 4 {
            return Err(fail("more than four numeric parts"));
        }
        if let Some(pre) = prerelease
            && !valid_identifiers(pre)
        {
            return Err(fail(
                "the pre-release tag must be dot-separated identifiers of letters, digits and `-`",
            ));
        }
        if let Some(meta) = metadata
            && !valid_identifiers(meta)
        {
            return Err(fail(
                "the build metadata must be dot-separated identifiers of letters, digits and `-`",
            ));
        }
        Ok(Version {
            text: text.to_owned(),
            parts,
            prerelease: prerelease.map(str::to_owned),
            metadata: metadata.map(str::to_owned),
        })
    }

    /// The numeric parts as written (one to four of them).
    pub fn parts(&self) -> &[u64] {
        &self.parts
    }

    /// The first numeric part.
    pub fn major(&self) -> u64 {
        self.part(0)
    }

    /// The second numeric part (`0` when missing).
    pub fn minor(&self) -> u64 {
        self.part(1)
    }

    /// The third numeric part (`0` when missing).
    pub fn patch(&self) -> u64 {
        self.part(2)
    }

    /// The fourth numeric part (`0` when missing).
    pub fn revision(&self) -> u64 {
        self.part(3)
    }

    fn part(&self, index: usize) -> u64 {
        self.parts.get(index).copied().unwrap_or(0)
    }

    /// The pre-release tag without its `-` (e.g. `beta.4`), if any.
    pub fn prerelease(&self) -> Option<&str> {
        self.prerelease.as_deref()
    }

    /// The build metadata without its `+`, if any.
    pub fn metadata(&self) -> Option<&str> {
        self.metadata.as_deref()
    }

    /// Whether this is a pre-release (has a `-tag`).
    pub fn is_prerelease(&self) -> bool {
        self.prerelease.is_some()
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let width = self.parts.len().max(other.parts.len());
        for index in 0..width {
            let ordering = self.part(index).cmp(&other.part(index));
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        match (&self.prerelease, &other.prerelease) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => {
                let mut a = a.split('.');
                let mut b = b.split('.');
                loop {
                    match (a.next(), b.next()) {
                        (None, None) => return Ordering::Equal,
                        (None, Some(_)) => return Ordering::Less,
                        (Some(_), None) => return Ordering::Greater,
                        (Some(x), Some(y)) => {
                            let ordering = compare_identifiers(x, y);
                            if ordering != Ordering::Equal {
                                return ordering;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// SemVer identifier precedence, alphanumerics compared case-insensitively.
fn compare_identifiers(a: &str, b: &str) -> Ordering {
    match (is_numeric(a), is_numeric(b)) {
        (true, true) => compare_digit_strings(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
    }
}

/// Compares two non-empty ASCII digit strings by value, of any length.
fn compare_digit_strings(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

fn valid_identifiers(s: &str) -> bool {
    s.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

/// Adds one to a string of ASCII digits, keeping at least its width.
fn increment_digits(digits: &str) -> String {
    let mut out: Vec<char> = digits.chars().collect();
    let mut index = out.len();
    loop {
        if index == 0 {
            out.insert(0, '1');
            break;
        }
        index -= 1;
        match out[index] {
            '9' => out[index] = '0',
            c => {
                out[index] = char::from_digit(c.to_digit(10).unwrap_or(0) + 1, 10).unwrap_or('1');
                break;
            }
        }
    }
    out.into_iter().collect()
}

/// Increments the last run of ASCII digits in `s`; `None` if it has none.
fn increment_last_digit_run(s: &str) -> Option<String> {
    let end = s.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = s[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    Some(format!(
        "{}{}{}",
        &s[..start],
        increment_digits(&s[start..end]),
        &s[end..]
    ))
}

/// A takofile `Version` template that does not give a release number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionTemplateError {
    /// Substitution failed (a variable refers to itself).
    #[error("Version {template:?}: {message}")]
    Substitution {
        /// The template as written.
        template: String,
        /// What went wrong (masked).
        message: String,
    },
    /// The result is empty or still holds an unresolved `#{...}`.
    #[error(
        "Version {template:?} does not give a release number (got {result:?}): check the variables it uses"
    )]
    Unresolved {
        /// The template as written.
        template: String,
        /// What it evaluated to (masked).
        result: String,
    },
}

/// Evaluates a takofile's `Version` template for a release: `candidates`
/// are the takofile's and project's variables, to which the system variables
/// of `facts` (manifest, build counter, git facts) are added. Sensitive
/// values are masked in errors.
pub fn render_version_template(
    template: &str,
    facts: &crate::system::DeploymentFacts,
    mut candidates: Vec<crate::variables::VariableValue>,
    context: &tako_octostache::EvalContext,
) -> Result<String, VersionTemplateError> {
    use crate::variables::{VariableSource, VariableValue};
    candidates.extend(
        crate::system::system_variables(facts)
            .into_iter()
            .map(|(name, value)| VariableValue::new(VariableSource::System, name, value)),
    );
    let resolved = crate::variables::resolve(&candidates, &facts.environment);
    let masker = crate::Masker::with_values(resolved.sensitive_values.iter().map(String::as_str));
    let mut dictionary = tako_octostache::VariableDictionary::new();
    for (name, value) in resolved.values {
        dictionary.set(name, value);
    }
    let rendered =
        dictionary
            .evaluate(template, context)
            .map_err(|e| VersionTemplateError::Substitution {
                template: template.to_owned(),
                message: masker.mask(&e.to_string()).into_owned(),
            })?;
    let number = rendered.text.trim();
    if number.is_empty() || number.contains("#{") {
        return Err(VersionTemplateError::Unresolved {
            template: template.to_owned(),
            result: masker.mask(number).into_owned(),
        });
    }
    Ok(number.to_owned())
}

/// A new release's number, the one rule for every caller (a push, a release
/// made by hand, `tako run`): the takofile's `Version` template rendered
/// when it has one, else the number after `latest` (the first is
/// [`FIRST_RELEASE_NUMBER`]).
pub fn release_number(
    version_template: Option<&str>,
    latest: Option<&str>,
    facts: &crate::system::DeploymentFacts,
    candidates: Vec<crate::variables::VariableValue>,
    context: &tako_octostache::EvalContext,
) -> Result<String, VersionTemplateError> {
    match version_template {
        Some(template) => render_version_template(template, facts, candidates, context),
        None => Ok(next_release_number(latest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_release_numbers() {
        let cases: &[(Option<&str>, &str)] = &[
            (None, "0.0.1"),
            (Some(""), "0.0.1"),
            (Some("   "), "0.0.1"),
            (Some("0.0.1"), "0.0.2"),
            (Some("1.2.3"), "1.2.4"),
            (Some(" 1.2.3 "), "1.2.4"),
            (Some("1.2"), "1.3"),
            (Some("1"), "2"),
            (Some("1.9"), "1.10"),
            (Some("1.2.3.4"), "1.2.3.5"),
            (Some("v7"), "v8"),
            (Some("V1.2.9"), "V1.2.10"),
            (Some("1.2.3-beta.4"), "1.2.3-beta.5"),
            (Some("1.2.3-beta.4.x"), "1.2.3-beta.5.x"),
            (Some("1.2.3-0"), "1.2.3-1"),
            (Some("1.2.3-beta"), "1.2.4-beta"),
            (Some("1.2.3-rc9"), "1.2.4-rc9"),
            (Some("1.2.3-pre-release"), "1.2.4-pre-release"),
            (Some("1.2.3+abc.7"), "1.2.4"),
            (Some("1.2.3-beta.4+sha.5114f85"), "1.2.3-beta.5"),
            (Some("2017.02.09"), "2017.02.10"),
            (Some("1.0.009"), "1.0.010"),
            (Some("1.0.99"), "1.0.100"),
            (Some("1.0.0-beta.999"), "1.0.0-beta.1000"),
            (Some("1.0.18446744073709551615"), "1.0.18446744073709551616"),
            (Some("build-42"), "build-43"),
            (Some("release_7_final"), "release_8_final"),
            (Some("latest"), "latest.1"),
            (Some("1.2.3.4.5"), "1.2.3.4.6"),
        ];
        for (previous, expected) in cases {
            assert_eq!(
                next_release_number(*previous),
                *expected,
                "previous {previous:?}"
            );
        }
    }

    #[test]
    fn next_is_always_newer_for_valid_versions() {
        for previous in [
            "0.0.1",
            "1.2",
            "1.2.3.4",
            "v7",
            "1.2.3-beta",
            "1.2.3-beta.4",
            "1.2.3-rc9",
            "1.2.3-rc.9",
            "1.2.3-alpha.1.beta",
            "1.2.3+meta",
            "2017.02.09",
            "1.0.99-x.99",
        ] {
            let next = next_release_number(Some(previous));
            assert_eq!(
                compare_versions(&next, previous),
                Ordering::Greater,
                "{previous} -> {next}"
            );
            assert!(Version::parse(&next).is_ok(), "{next}");
        }
    }

    #[test]
    fn comparisons() {
        use Ordering::{Equal, Greater, Less};
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.2.3", "1.2.4", Less),
            ("1.2.10", "1.2.9", Greater),
            ("1.10.0", "1.9.9", Greater),
            ("2.0.0", "1.99.99", Greater),
            ("1.2", "1.2.0", Equal),
            ("1.2", "1.2.0.0", Equal),
            ("1", "1.0.0", Equal),
            ("1.2.0.1", "1.2", Greater),
            ("1.2.3.4", "1.2.3.5", Less),
            ("v1.2.3", "1.2.3", Equal),
            ("2017.02.10", "2017.2.9", Greater),
            ("1.0.0-alpha", "1.0.0", Less),
            ("1.0.0", "1.0.0-rc.1", Greater),
            // The SemVer 2.0 specification's own example chain.
            ("1.0.0-alpha", "1.0.0-alpha.1", Less),
            ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
            ("1.0.0-alpha.beta", "1.0.0-beta", Less),
            ("1.0.0-beta", "1.0.0-beta.2", Less),
            ("1.0.0-beta.2", "1.0.0-beta.11", Less),
            ("1.0.0-beta.11", "1.0.0-rc.1", Less),
            ("1.0.0-rc.1", "1.0.0", Less),
            // NuGet leniency: tags are case-insensitive, metadata ignored.
            ("1.0.0-BETA", "1.0.0-beta", Equal),
            ("1.0.0+build.1", "1.0.0+build.2", Equal),
            ("1.0.0-beta+x", "1.0.0-beta", Equal),
            ("1.0.0-beta.007", "1.0.0-beta.7", Equal),
            ("1.0.0-1", "1.0.0-a", Less),
            ("1.0.0-rc10", "1.0.0-rc9", Less),
            // Not versions sort first, then among themselves as text.
            ("latest", "0.0.1", Less),
            ("0.0.1", "latest", Greater),
            ("abc", "abd", Less),
            ("1.2.3.4.5", "0.0.1", Less),
            ("", "0.0.1", Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_versions(a, b), *expected, "{a} vs {b}");
            assert_eq!(
                compare_versions(b, a),
                expected.reverse(),
                "{b} vs {a} (antisymmetry)"
            );
        }
    }

    #[test]
    fn newest() {
        assert_eq!(newest_version([]), None);
        assert_eq!(
            newest_version(["1.2.9", "1.2.10", "1.2.10-rc.1", "junk", "1.1"]),
            Some("1.2.10")
        );
        assert_eq!(newest_version(["1.2", "1.2.0"]), Some("1.2.0"));
        assert_eq!(newest_version(["junk"]), Some("junk"));
    }

    #[test]
    fn parsing() {
        let v = Version::parse(" v1.2.3-beta.4+sha.abc ").unwrap();
        assert_eq!(v.parts(), [1, 2, 3]);
        assert_eq!(
            (v.major(), v.minor(), v.patch(), v.revision()),
            (1, 2, 3, 0)
        );
        assert_eq!(v.prerelease(), Some("beta.4"));
        assert_eq!(v.metadata(), Some("sha.abc"));
        assert!(v.is_prerelease());
        assert_eq!(v.to_string(), "v1.2.3-beta.4+sha.abc");
        assert_eq!(
            "1.2".parse::<Version>().unwrap(),
            Version::parse("1.2.0.0").unwrap()
        );

        for (bad, reason) in [
            ("", "it is empty"),
            ("1.2.3.4.5", "more than four numeric parts"),
            (
                "1..2",
                "expected one to four dot-separated numbers, like 1.2.3",
            ),
            (
                "1.x",
                "expected one to four dot-separated numbers, like 1.2.3",
            ),
            (
                "1.2.3-",
                "the pre-release tag must be dot-separated identifiers of letters, digits and `-`",
            ),
            (
                "1.2.3-a..b",
                "the pre-release tag must be dot-separated identifiers of letters, digits and `-`",
            ),
            (
                "1.2.3-a b",
                "the pre-release tag must be dot-separated identifiers of letters, digits and `-`",
            ),
            (
                "1.2.3+",
                "the build metadata must be dot-separated identifiers of letters, digits and `-`",
            ),
            ("99999999999999999999", "a numeric part is too large"),
        ] {
            let err = Version::parse(bad).unwrap_err();
            assert_eq!(err.reason, reason, "{bad:?}");
        }
        assert_eq!(
            Version::parse("1.x").unwrap_err().to_string(),
            "invalid version \"1.x\": expected one to four dot-separated numbers, like 1.2.3"
        );
    }

    #[test]
    fn digit_increments() {
        for (input, expected) in [
            ("0", "1"),
            ("9", "10"),
            ("09", "10"),
            ("009", "010"),
            ("199", "200"),
            ("999", "1000"),
        ] {
            assert_eq!(increment_digits(input), expected);
        }
    }
}
