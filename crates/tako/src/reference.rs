//! What is generated from the command line's own definitions, so it cannot
//! drift from it: shell completion scripts (`tako completions SHELL`), man
//! pages (`tako man --out-dir DIR`) and the manual's CLI reference page
//! (`tako reference cli`, compared with `docs/manual/src/cli.md` by
//! `crates/tako/tests/manual.rs`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs, ReferenceArgs, ReferencePage};

/// Prints the completion script for one shell on standard output.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tako", &mut script);
    write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `tako.1` and one page per subcommand (`tako-serve.1`,
/// `tako-agent-run.1`, …) into the directory, and names each on standard
/// output.
pub(crate) fn man(args: &ManArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot make the directory {}", args.out_dir.display()))?;
    let mut command = Cli::command();
    command.build();
    let mut written = Vec::new();
    write_pages(&command, "tako", &args.out_dir, &mut written)?;
    let listing: String = written.iter().map(|path| format!("{path}\n")).collect();
    write_stdout(listing.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// One page for `command`, named `name.1`, then one for each visible
/// subcommand (clap's own `help` excluded), depth first.
fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> Result<()> {
    let page = command.clone().name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .with_context(|| format!("cannot render the man page {name}.1"))?;
    std::fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path.display().to_string());
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Prints one generated page of the manual on standard output.
pub(crate) fn page(args: &ReferenceArgs) -> Result<ExitCode> {
    let text = match args.page {
        ReferencePage::Cli => cli_markdown(),
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The CLI reference in Markdown: one section per visible command, depth
/// first, with its description, usage and a table of its arguments.
pub(crate) fn cli_markdown() -> String {
    let mut command = Cli::command();
    command.build();
    let mut out = String::from(
        "# CLI reference\n\n\
         <!-- Generated from the command line's definitions; do not edit. \
         Regenerate with: cargo run -p tako -- reference cli > docs/manual/src/cli.md -->\n\n\
         Every command of `tako`, as `tako help` describes it. The same \
         definitions make the man pages (`tako man`) and the shell \
         completions (`tako completions`).\n",
    );
    command_markdown(&command, "tako", &mut out);
    out
}

fn command_markdown(command: &clap::Command, name: &str, out: &mut String) {
    let level = if name.matches(' ').count() == 0 {
        "##"
    } else {
        "###"
    };
    out.push_str(&format!("\n{level} `{name}`\n\n"));
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        out.push_str(&format!("{}\n\n", escape(about.to_string().trim())));
    }
    let usage = command.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim();
    out.push_str(&format!("```text\n{usage}\n```\n"));
    let args: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version"))
        .collect();
    if !args.is_empty() {
        out.push_str("\n| argument | environment | default | what |\n|---|---|---|---|\n");
        for arg in args {
            let env = arg
                .get_env()
                .map(|env| format!("`{}`", env.to_string_lossy()))
                .unwrap_or_default();
            let is_switch = matches!(
                arg.get_action(),
                clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
            );
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .filter(|_| !is_switch)
                .map(|value| format!("`{}`", value.to_string_lossy()))
                .collect();
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|help| help.to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {env} | {} | {} |\n",
                arg_name(arg),
                defaults.join(", "),
                cell(&help)
            ));
        }
    }
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        command_markdown(sub, &format!("{name} {}", sub.get_name()), out);
    }
}

/// How an argument is written: `--long <VALUE>`, `-s, --long`, `<NAME>`.
fn arg_name(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    let takes_value = arg.get_num_args().is_none_or(|range| range.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
        );
    match (arg.get_short(), arg.get_long()) {
        (None, None) => format!("<{value}>"),
        (short, long) => {
            let mut name = String::new();
            if let Some(short) = short {
                name.push_str(&format!("-{short}"));
            }
            if let Some(long) = long {
                if !name.is_empty() {
                    name.push_str(", ");
                }
                name.push_str(&format!("--{long}"));
            }
            if takes_value {
                name.push_str(&format!(" <{value}>"));
            }
            name
        }
    }
}

/// A table cell: one line, `|` escaped, `<` and `>` as in [`escape`].
fn cell(text: &str) -> String {
    escape(&text.split_whitespace().collect::<Vec<_>>().join(" ")).replace('|', "\\|")
}

/// Help text as Markdown: `<` and `>` outside code spans become `&lt;` and
/// `&gt;`, so a placeholder such as `<data-dir>` is not read as an HTML tag
/// (mdBook warns of it, and a renderer hides it) and a `>` never starts a
/// quote.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes to standard output; a reader that went away (`| head`) is not an
/// error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{cell, escape};

    #[test]
    fn placeholders_are_text_and_code_spans_are_kept() {
        assert_eq!(
            cell("[default: sqlite://<data-dir>/tako.db]"),
            "[default: sqlite://&lt;data-dir&gt;/tako.db]"
        );
        assert_eq!(
            escape("context tako/<Environment>, `a <b>` | c"),
            "context tako/&lt;Environment&gt;, `a <b>` | c"
        );
        assert_eq!(cell("a | b"), "a \\| b");
    }
}
