//! The interpreter a script step runs with (`Shell:`).

use std::fmt;

/// How a script step's body is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shell {
    /// `bash` (the default): the body is sourced after the script API helpers.
    Bash,
    /// `sh`: a POSIX shell, helpers defined as POSIX functions.
    Sh,
    /// `python`: `python3`, helpers are globals of the script.
    Python,
    /// `pwsh`: PowerShell 7, when installed.
    Pwsh,
    /// A command template containing `{0}`, replaced by the script file's path
    /// (`node {0}`). No helpers are defined; service messages still work.
    Command(String),
}

impl Shell {
    /// Parses a `Shell:` value: a known name (case-insensitive) or a template
    /// containing `{0}`. Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<Shell> {
        let trimmed = text.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "bash" => Some(Shell::Bash),
            "sh" => Some(Shell::Sh),
            "python" | "python3" => Some(Shell::Python),
            "pwsh" | "powershell" => Some(Shell::Pwsh),
            _ if trimmed.contains("{0}") => Some(Shell::Command(trimmed.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for Shell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shell::Bash => f.write_str("bash"),
            Shell::Sh => f.write_str("sh"),
            Shell::Python => f.write_str("python"),
            Shell::Pwsh => f.write_str("pwsh"),
            Shell::Command(template) => f.write_str(template),
        }
    }
}
