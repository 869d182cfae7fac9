//! The local side of `tako run` and `tako validate`: finding the takofile,
//! asking git about the repository, copying it into a working directory and
//! reading variables from the command line and files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use walkdir::WalkDir;

/// The takofile in `path` (a file, or a directory searched in lookup order).
pub(crate) fn find_takofile(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_owned());
    }
    if !path.is_dir() {
        bail!("{} does not exist", path.display());
    }
    for name in tako_takofile::FILE_NAMES {
        let candidate = path.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no takofile in {}: looked for {}",
        path.display(),
        tako_takofile::FILE_NAMES.join(", ")
    )
}

/// Runs git in `repo` and returns its trimmed output, or `None` when git
/// fails (not a repository, no commits yet).
pub(crate) fn git(repo: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Facts git knows about the repository (empty strings where unknown).
#[derive(Debug, Default)]
pub(crate) struct RepoFacts {
    pub(crate) branch: Option<String>,
    pub(crate) commit: String,
    pub(crate) author: String,
    pub(crate) origin: String,
}

pub(crate) fn repo_facts(repo: &Path) -> RepoFacts {
    let branch = git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"]);
    RepoFacts {
        branch,
        commit: git(repo, &["rev-parse", "HEAD"]).unwrap_or_default(),
        author: git(repo, &["config", "user.name"])
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default(),
        origin: git(repo, &["remote", "get-url", "origin"])
            .unwrap_or_else(|| repo.display().to_string()),
    }
}

/// Copies the repository (working tree as it is, `.git` included) into
/// `target`, keeping symbolic links as links.
pub(crate) fn copy_tree(source: &Path, target: &Path) -> Result<()> {
    fs::create_dir_all(target).with_context(|| format!("cannot create {}", target.display()))?;
    for entry in WalkDir::new(source).min_depth(1).follow_links(false) {
        let entry = entry.with_context(|| format!("cannot read {}", source.display()))?;
        let relative = entry
            .path()
            .strip_prefix(source)
            .context("walked outside the repository")?;
        let destination = target.join(relative);
        let file_type = entry.file_type();
        if file_type.is_dir() {
            fs::create_dir_all(&destination)
                .with_context(|| format!("cannot create {}", destination.display()))?;
        } else if file_type.is_symlink() {
            let link = fs::read_link(entry.path())
                .with_context(|| format!("cannot read link {}", entry.path().display()))?;
            std::os::unix::fs::symlink(&link, &destination)
                .with_context(|| format!("cannot create link {}", destination.display()))?;
        } else if file_type.is_file() {
            fs::copy(entry.path(), &destination)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Splits `NAME=VALUE`.
pub(crate) fn parse_assignment(text: &str, flag: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => bail!("{flag} expects NAME=VALUE, got {:?}", redact_value(text)),
    }
}

/// Shows only the name part of something that may hold a secret.
fn redact_value(text: &str) -> String {
    match text.split_once('=') {
        Some((name, _)) => format!("{name}=…"),
        None if text.len() > 12 => format!(
            "{}…",
            &text[..text.char_indices().nth(4).map_or(0, |(i, _)| i)]
        ),
        None => text.to_owned(),
    }
}

/// Reads a variable file: a JSON object of strings, or `NAME=VALUE` lines
/// (blank lines and `#` comments ignored).
pub(crate) fn read_var_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read variable file {}", path.display()))?;
    if text.trim_start().starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON object of strings", path.display()))?;
        return object
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(value) => Ok((name, value)),
                serde_json::Value::Number(n) => Ok((name, n.to_string())),
                serde_json::Value::Bool(b) => {
                    Ok((name, if b { "True" } else { "False" }.to_owned()))
                }
                _ => bail!("{}: variable {name} must be a string", path.display()),
            })
            .collect();
    }
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                out.push((name.trim().to_owned(), value.to_owned()));
            }
            _ => bail!("{}:{}: expected NAME=VALUE", path.display(), index + 1),
        }
    }
    Ok(out)
}
