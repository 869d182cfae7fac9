//! Parsing of Octopus service messages: the `##octopus[...]` lines through
//! which a script talks to the runner.
//!
//! The syntax is Octopus's (octopus-script-api.md §3.3):
//! `##octopus[<name>( <attr>='<base64>')*]`. The marker may appear anywhere
//! in a line; every attribute value is base64 of UTF-8 text (decoded lossily,
//! as Calamari does). Values may be quoted with `'` or `"`. A line whose
//! marker is followed by anything that does not parse (a bad name, an
//! unterminated value, invalid base64, a missing required attribute) is not a
//! service message: [`parse_line`] returns `None` and the runner shows the
//! line as ordinary text.
//!
//! Message names are matched ignoring ASCII case. Kinds that are valid but
//! not acted upon by Tako (`set-environmentstate`, `createStepPackageTarget`,
//! `delete-target`, ...) come back as [`ServiceMessage::Other`] so that they
//! are consumed rather than shown.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use tako_core::log::LogStream;

/// The marker that starts a service message.
const MARKER: &str = "##octopus[";

/// Standard base64 that accepts values with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which helper produced a failure message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Tako's own `##octopus[stepFailed message=...]` (printed by Tako's
    /// `fail_step`, `failstep` and `Fail-Step`).
    StepFailed,
    /// Octopus's `##octopus[resultMessage message=...]`, printed by scripts
    /// written against Calamari's helpers.
    ResultMessage,
}

/// One parsed service message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceMessage {
    /// `setVariable`: an output variable of the step.
    SetVariable {
        /// The variable's name (exact).
        name: String,
        /// Its value; `""` when the `value` attribute is absent.
        value: String,
        /// `sensitive='True'` (any case): mask the value from now on.
        sensitive: bool,
    },
    /// `stepFailed` (Tako) or `resultMessage` (Octopus): the text that
    /// replaces the step's generic failure message.
    StepFailed {
        /// The message; `""` when the attribute is absent.
        message: String,
        /// Which of the two message names carried it.
        kind: FailureKind,
    },
    /// `createArtifact`: collect a file as an artifact after the step.
    CreateArtifact {
        /// The file's path as the script gave it (absolute for the helpers).
        path: String,
        /// The artifact's name; the path's last component when absent.
        name: String,
        /// The byte count the script reported, when present and a number.
        length: Option<u64>,
    },
    /// `mask`: add a value to the masking set.
    Mask {
        /// The value to mask.
        value: String,
    },
    /// `progress`: a progress report.
    Progress {
        /// The percentage as the script sent it (text, not validated).
        percentage: String,
        /// The progress message; `""` when absent.
        message: String,
    },
    /// `stdout-<level>` or `stderr-<level>`: how following lines of `stream`
    /// are treated.
    LogLevel {
        /// The stream the directive applies to (not the one it arrived on).
        stream: LogStream,
        /// The part after the dash, lowercase: `default`, `verbose`,
        /// `highlight`, `wait`, `warning`, `error`, `ignore`, `progress`.
        level: String,
    },
    /// A syntactically valid message of a kind Tako does not act upon.
    Other {
        /// The message's name as written.
        name: String,
    },
}

/// Parses the first service message in `line`, if the line carries one.
///
/// Returns `None` when the line has no marker or the text after the first
/// marker is malformed.
pub fn parse_line(line: &str) -> Option<ServiceMessage> {
    let start = line.find(MARKER)?;
    let rest = &line[start + MARKER.len()..];
    let (name, attributes) = parse_body(rest)?;
    build(name, &attributes)
}

/// Parses `name( attr='value')*]` (the text after the marker) into the name
/// and the decoded attributes.
fn parse_body(text: &str) -> Option<(&str, Vec<(&str, String)>)> {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &text[name_end..];
    let mut attributes = Vec::new();
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if trimmed.starts_with(']') {
            return Some((name, attributes));
        }
        if trimmed.len() == rest.len() {
            // Attributes must be separated from what precedes them by space.
            return None;
        }
        let key_end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(trimmed.len());
        let key = &trimmed[..key_end];
        if key.is_empty() {
            return None;
        }
        let after_key = trimmed[key_end..].strip_prefix('=')?;
        let quote = after_key
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')?;
        let value_text = &after_key[1..];
        let value_end = value_text.find(quote)?;
        let encoded = value_text[..value_end].trim();
        let bytes = BASE64.decode(encoded).ok()?;
        attributes.push((key, String::from_utf8_lossy(&bytes).into_owned()));
        rest = &value_text[value_end + 1..];
    }
}

/// Turns a parsed name and attributes into a message; `None` when a
/// required attribute is missing.
fn build(name: &str, attributes: &[(&str, String)]) -> Option<ServiceMessage> {
    let get = |key: &str| {
        attributes
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let lower = name.to_ascii_lowercase();
    let message = match lower.as_str() {
        "setvariable" => ServiceMessage::SetVariable {
            name: get("name")?,
            value: get("value").unwrap_or_default(),
            sensitive: get("sensitive").is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
        },
        "stepfailed" | "resultmessage" => ServiceMessage::StepFailed {
            message: get("message").unwrap_or_default(),
            kind: if lower == "stepfailed" {
                FailureKind::StepFailed
            } else {
                FailureKind::ResultMessage
            },
        },
        "createartifact" => {
            let path = get("path")?;
            let name = get("name").filter(|n| !n.is_empty()).unwrap_or_else(|| {
                path.rsplit('/')
                    .find(|part| !part.is_empty())
                    .unwrap_or(path.as_str())
                    .to_owned()
            });
            let length = get("length").and_then(|l| l.trim().parse().ok());
            ServiceMessage::CreateArtifact { path, name, length }
        }
        "mask" => ServiceMessage::Mask {
            value: get("value")?,
        },
        "progress" => ServiceMessage::Progress {
            percentage: get("percentage").unwrap_or_default(),
            message: get("message").unwrap_or_default(),
        },
        _ => {
            if let Some(level) = lower.strip_prefix("stdout-") {
                log_level(LogStream::Stdout, level)?
            } else if let Some(level) = lower.strip_prefix("stderr-") {
                log_level(LogStream::Stderr, level)?
            } else {
                ServiceMessage::Other {
                    name: name.to_owned(),
                }
            }
        }
    };
    Some(message)
}

/// A `stdout-*` / `stderr-*` directive; `None` for an empty level.
fn log_level(stream: LogStream, level: &str) -> Option<ServiceMessage> {
    if level.is_empty() {
        return None;
    }
    Some(ServiceMessage::LogLevel {
        stream,
        level: level.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn set_variable_with_all_attributes() {
        let line = format!(
            "##octopus[setVariable name='{}' value='{}' sensitive='{}']",
            b64("Out [1]?"),
            b64("héllo wörld"),
            b64("True")
        );
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::SetVariable {
                name: "Out [1]?".into(),
                value: "héllo wörld".into(),
                sensitive: true
            })
        );
    }

    #[test]
    fn set_variable_without_value_is_empty_and_not_sensitive() {
        let line = format!("##octopus[setVariable name='{}']", b64("X"));
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::SetVariable {
                name: "X".into(),
                value: String::new(),
                sensitive: false
            })
        );
    }

    #[test]
    fn set_variable_without_name_is_malformed() {
        let line = format!("##octopus[setVariable value='{}']", b64("v"));
        assert_eq!(parse_line(&line), None);
    }

    #[test]
    fn marker_anywhere_in_the_line_and_double_quotes() {
        let line = format!(
            "prefix text ##octopus[mask value=\"{}\"] trailing",
            b64("s3cret")
        );
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::Mask {
                value: "s3cret".into()
            })
        );
    }

    #[test]
    fn step_failed_and_result_message() {
        let line = format!("##octopus[stepFailed message='{}']", b64("boom"));
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::StepFailed {
                message: "boom".into(),
                kind: FailureKind::StepFailed
            })
        );
        let line = format!("##octopus[resultMessage message='{}']", b64("bang"));
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::StepFailed {
                message: "bang".into(),
                kind: FailureKind::ResultMessage
            })
        );
    }

    #[test]
    fn create_artifact_with_and_without_name() {
        let line = format!(
            "##octopus[createArtifact path='{}' name='{}' length='{}']",
            b64("/w/out/report.txt"),
            b64("Report"),
            b64("42")
        );
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::CreateArtifact {
                path: "/w/out/report.txt".into(),
                name: "Report".into(),
                length: Some(42)
            })
        );
        let line = format!("##octopus[createArtifact path='{}']", b64("/w/a.log"));
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::CreateArtifact {
                path: "/w/a.log".into(),
                name: "a.log".into(),
                length: None
            })
        );
    }

    #[test]
    fn progress_and_log_levels() {
        let line = format!(
            "##octopus[progress percentage='{}' message='{}']",
            b64("50"),
            b64("half")
        );
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::Progress {
                percentage: "50".into(),
                message: "half".into()
            })
        );
        assert_eq!(
            parse_line("##octopus[stdout-verbose]"),
            Some(ServiceMessage::LogLevel {
                stream: LogStream::Stdout,
                level: "verbose".into()
            })
        );
        assert_eq!(
            parse_line("##octopus[stderr-ignore]"),
            Some(ServiceMessage::LogLevel {
                stream: LogStream::Stderr,
                level: "ignore".into()
            })
        );
    }

    #[test]
    fn unknown_kinds_are_other() {
        let line = format!(
            "##octopus[set-environmentstate key='{}' value='{}']",
            b64("k"),
            b64("v")
        );
        assert_eq!(
            parse_line(&line),
            Some(ServiceMessage::Other {
                name: "set-environmentstate".into()
            })
        );
    }

    #[test]
    fn malformed_lines_are_none() {
        for line in [
            "plain text",
            "##octopus[",
            "##octopus[]",
            "##octopus[setVariable",
            "##octopus[setVariable name='!!!']",
            "##octopus[setVariable name='YQ==' value='unterminated]",
            "##octopus[setVariable name='YQ=='value='YQ==']",
            "##octopus[setVariable name=YQ==]",
            "##octopus[mask]",
            "##octopus[stdout-]",
            "##octopus[bad name]",
            "##octopus[name='YQ==']",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn unpadded_base64_and_lossy_utf8() {
        // "ab" without padding; then bytes that are not UTF-8.
        assert_eq!(
            parse_line("##octopus[mask value='YWI']"),
            Some(ServiceMessage::Mask { value: "ab".into() })
        );
        let invalid = base64::engine::general_purpose::STANDARD.encode([0x61, 0xff]);
        assert_eq!(
            parse_line(&format!("##octopus[mask value='{invalid}']")),
            Some(ServiceMessage::Mask {
                value: "a\u{fffd}".into()
            })
        );
    }
}
