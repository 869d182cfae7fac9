//! The script API: the files that define Octopus's helpers before a step's
//! script runs, and the command line that runs them.
//!
//! What each shell gets (octopus-script-api.md §3, variables.md §5):
//!
//! - **bash**: `bash --noprofile --norc wrapper.sh`, where the wrapper
//!   `source`s `helpers.sh` and then `script.sh` into the same shell, so `$#`
//!   is 0, no `set -e` is imposed and an `exit` in a helper ends the step.
//! - **sh**: the same with `sh` (possibly dash) and `.`; the helpers are
//!   POSIX functions, the very file bash gets.
//! - **python**: `python3 -u bootstrap.py`, which `runpy.run_path`s
//!   `script.py` as `__main__` with the helpers, `octopusvariables`, `sys`,
//!   `os`, `base64` and `binascii` as initial globals; the variables are read
//!   from `variables.json`.
//! - **pwsh**: `pwsh -NoProfile -NonInteractive -File bootstrap.ps1`, which
//!   defines `$OctopusParameters` and the helpers and dot-sources
//!   `script.ps1`.
//! - **a command template** (`node {0}`): the body is written to `script`
//!   and the template runs through `sh -c` with `{0}` replaced by that file's
//!   shell-quoted path. No helpers; service messages still work.
//!
//! All files are written to the request's private scratch directory with
//! mode 0600 (0700 for a command template's script, which the template may
//! execute directly): some embed variable values, which may be sensitive.
//! Bash and sh bodies get CRLF line ends turned into LF and a leading BOM
//! removed, as Calamari does. NUL characters, which no shell variable can
//! hold, are dropped from values embedded in shell helpers.
//!
//! Helpers print Tako's `##octopus[stepFailed message=...]` to fail a step;
//! Octopus's `resultMessage` is understood too
//! ([`crate::service_message`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use tako_takofile::Shell;

/// The POSIX helpers for bash and sh, without `get_octopusvariable`.
const SH_HELPERS: &str = include_str!("script_api/sh_helpers.sh");
/// The Python bootstrap; it reads `variables.json` and runs `script.py`.
const PYTHON_BOOTSTRAP: &str = include_str!("script_api/python_bootstrap.py");
/// The static part of the PowerShell bootstrap.
const PWSH_BOOTSTRAP: &str = include_str!("script_api/pwsh_bootstrap.ps1");

/// How to start a prepared script: an interpreter looked up on the child's
/// `PATH`, and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The interpreter's name (`bash`, `sh`, `python3`, `pwsh`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Another program the script needs on `PATH`: a command template's
    /// first word (`node` for `node {0}`), when it is a plain word.
    pub also_requires: Option<String>,
}

/// A file of the script API could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// The interpreter a shell runs with, as looked up on `PATH`.
pub fn interpreter(shell: &Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Sh | Shell::Command(_) => "sh",
        Shell::Python => "python3",
        Shell::Pwsh => "pwsh",
    }
}

/// A command template's first word when it names a program (`node` in
/// `node {0} --flag`); `None` when it is `{0}` or shell syntax.
pub fn template_program(template: &str) -> Option<&str> {
    let first = template.split_whitespace().next()?;
    let plain = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+'));
    (plain && !first.contains('=')).then_some(first)
}

/// Writes the script and the script API files for `shell` into
/// `scratch_dir` (which must exist) and returns how to run them.
pub fn prepare(
    shell: &Shell,
    body: &str,
    variables: &[(String, String)],
    scratch_dir: &Path,
) -> Result<Invocation, WriteError> {
    match shell {
        Shell::Bash | Shell::Sh => {
            let helpers = scratch_dir.join("helpers.sh");
            let script = scratch_dir.join("script.sh");
            let wrapper = scratch_dir.join("wrapper.sh");
            write_private(&helpers, sh_helpers(variables).as_bytes(), 0o600)?;
            write_private(&script, shell_body(body).as_bytes(), 0o600)?;
            let source = if *shell == Shell::Bash { "source" } else { "." };
            let wrapper_text = format!(
                "{source} {}\n{source} {}\n",
                shell_quote(&helpers.to_string_lossy()),
                shell_quote(&script.to_string_lossy())
            );
            write_private(&wrapper, wrapper_text.as_bytes(), 0o600)?;
            let wrapper = wrapper.to_string_lossy().into_owned();
            let args = if *shell == Shell::Bash {
                vec!["--noprofile".to_owned(), "--norc".to_owned(), wrapper]
            } else {
                vec![wrapper]
            };
            Ok(Invocation {
                program: interpreter(shell).to_owned(),
                args,
                also_requires: None,
            })
        }
        Shell::Python => {
            let bootstrap = scratch_dir.join("bootstrap.py");
            write_private(&scratch_dir.join("script.py"), body.as_bytes(), 0o600)?;
            write_private(
                &scratch_dir.join("variables.json"),
                python_variables(variables).as_bytes(),
                0o600,
            )?;
            write_private(&bootstrap, PYTHON_BOOTSTRAP.as_bytes(), 0o600)?;
            Ok(Invocation {
                program: interpreter(shell).to_owned(),
                args: vec!["-u".to_owned(), bootstrap.to_string_lossy().into_owned()],
                also_requires: None,
            })
        }
        Shell::Pwsh => {
            let bootstrap = scratch_dir.join("bootstrap.ps1");
            let script = scratch_dir.join("script.ps1");
            write_private(&script, body.as_bytes(), 0o600)?;
            write_private(
                &bootstrap,
                pwsh_bootstrap(variables, &script).as_bytes(),
                0o600,
            )?;
            Ok(Invocation {
                program: interpreter(shell).to_owned(),
                args: vec![
                    "-NoProfile".to_owned(),
                    "-NonInteractive".to_owned(),
                    "-File".to_owned(),
                    bootstrap.to_string_lossy().into_owned(),
                ],
                also_requires: None,
            })
        }
        Shell::Command(template) => {
            let script = scratch_dir.join("script");
            write_private(&script, body.as_bytes(), 0o700)?;
            let command = template.replace("{0}", &shell_quote(&script.to_string_lossy()));
            Ok(Invocation {
                program: interpreter(shell).to_owned(),
                args: vec!["-c".to_owned(), command],
                also_requires: template_program(template).map(str::to_owned),
            })
        }
    }
}

/// The helper file for bash and sh: the POSIX helpers plus a
/// `get_octopusvariable` that matches names exactly and prints an empty line
/// for an unknown one. Values are embedded single-quoted.
pub fn sh_helpers(variables: &[(String, String)]) -> String {
    let size: usize = variables.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
    let mut text = String::with_capacity(SH_HELPERS.len() + size + 128);
    text.push_str(SH_HELPERS);
    text.push_str("\nget_octopusvariable() {\n    case \"$1\" in\n");
    for (name, value) in variables {
        text.push_str("        ");
        text.push_str(&shell_quote(&name.replace('\0', "")));
        text.push_str(") printf '%s\\n' ");
        text.push_str(&shell_quote(&value.replace('\0', "")));
        text.push_str(" ;;\n");
    }
    text.push_str("        *) printf '\\n' ;;\n    esac\n}\n");
    text
}

/// The variables as a JSON object for the Python bootstrap (the last value
/// of a repeated name wins).
pub fn python_variables(variables: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = variables
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The PowerShell bootstrap: the helpers, `$OctopusParameters` filled from
/// base64 (so no value needs quoting), then the script dot-sourced, exiting
/// with `$LASTEXITCODE` when a native command set one, as Calamari does.
pub fn pwsh_bootstrap(variables: &[(String, String)], script: &Path) -> String {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut text = String::from(PWSH_BOOTSTRAP);
    for (name, value) in variables {
        text.push_str(&format!(
            "$OctopusParameters[(ConvertFrom-TakoBase64 '{}')] = (ConvertFrom-TakoBase64 '{}')\n",
            engine.encode(name),
            engine.encode(value)
        ));
    }
    text.push_str(&format!(
        "\n. {}\nif ((Test-Path variable:global:LASTEXITCODE)) {{ exit $LASTEXITCODE }}\n",
        pwsh_quote(&script.to_string_lossy())
    ));
    text
}

/// Quotes `text` for a POSIX shell: `'...'` with each `'` written `'\''`.
pub fn shell_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// Quotes `text` as a PowerShell single-quoted string: every character that
/// PowerShell treats as a single quote (including the typographic ones) is
/// doubled.
fn pwsh_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// A bash/sh body as Calamari writes it: no BOM, LF line ends.
fn shell_body(body: &str) -> String {
    body.strip_prefix('\u{feff}')
        .unwrap_or(body)
        .replace("\r\n", "\n")
}

/// Writes a new file readable only by us (any old file is removed first, so
/// the mode always applies).
fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteError> {
    let error = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    // Windows: no mode bits; the scratch directory's ACL (the user's
    // profile) keeps the file private.
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents).map_err(error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn shell_quote_escapes_single_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn sh_helpers_embed_values_quoted() {
        let text = sh_helpers(&vars(&[("A [x]?", "it's $HOME\n`id`"), ("Nul", "a\0b")]));
        assert!(text.contains("'A [x]?') printf '%s\\n' 'it'\\''s $HOME\n`id`' ;;"));
        assert!(text.contains("'Nul') printf '%s\\n' 'ab' ;;"));
        assert!(text.contains("*) printf '\\n' ;;"));
    }

    #[test]
    fn python_variables_are_a_json_object() {
        let json = python_variables(&vars(&[("a\"b", "x\ny"), ("a\"b", "last")]));
        assert_eq!(json, r#"{"a\"b":"last"}"#);
    }

    #[test]
    fn pwsh_bootstrap_text() {
        let text = pwsh_bootstrap(
            &vars(&[("Name", "it's")]),
            Path::new("/scratch/o'k\u{2019}/script.ps1"),
        );
        assert!(text.contains("$OctopusParameters = New-Object"));
        assert!(text.contains("function Set-OctopusVariable"));
        assert!(text.contains("function Fail-Step"));
        assert!(text.contains("function New-OctopusArtifact"));
        assert!(text.contains("function Write-Verbose"));
        assert!(text.contains(
            "$OctopusParameters[(ConvertFrom-TakoBase64 'TmFtZQ==')] = (ConvertFrom-TakoBase64 'aXQncw==')"
        ));
        assert!(text.contains(". '/scratch/o''k\u{2019}\u{2019}/script.ps1'\n"));
        assert!(text.ends_with("{ exit $LASTEXITCODE }\n"));
        // The parameters exist before they are filled, and are filled before
        // the script runs.
        let declared = text.find("$OctopusParameters = ").unwrap_or(usize::MAX);
        let filled = text.find("$OctopusParameters[(").unwrap_or(0);
        let sourced = text.rfind(". '").unwrap_or(0);
        assert!(declared < filled && filled < sourced);
    }

    #[test]
    fn template_program_is_the_first_plain_word() {
        assert_eq!(template_program("node {0}"), Some("node"));
        assert_eq!(
            template_program("/usr/bin/perl -w {0}"),
            Some("/usr/bin/perl")
        );
        assert_eq!(template_program("{0}"), None);
        assert_eq!(template_program("FOO=1 node {0}"), None);
    }

    #[cfg(unix)]
    #[test]
    fn prepare_writes_private_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let invocation = prepare(
            &Shell::Bash,
            "echo hi\r\n",
            &vars(&[("a", "b")]),
            dir.path(),
        )
        .expect("prepare");
        assert_eq!(invocation.program, "bash");
        assert_eq!(invocation.args[..2], ["--noprofile", "--norc"]);
        for name in ["helpers.sh", "script.sh", "wrapper.sh"] {
            let meta = fs::metadata(dir.path().join(name)).expect("metadata");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
        let script = fs::read_to_string(dir.path().join("script.sh")).expect("read");
        assert_eq!(script, "echo hi\n");
        let invocation =
            prepare(&Shell::Command("node {0}".into()), "x", &[], dir.path()).expect("prepare");
        assert_eq!(invocation.program, "sh");
        assert_eq!(
            invocation.args[1],
            format!("node '{}'", dir.path().join("script").display())
        );
        assert_eq!(invocation.also_requires.as_deref(), Some("node"));
    }
}
