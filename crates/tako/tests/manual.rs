//! The user's manual (`docs/manual/`) cannot drift from the code: its
//! takofile examples (and README.md's complete ones) go through the real
//! `tako validate`, its reference tables list exactly what the code declares
//! (takofile keys, filters, settings, system variables, built-in steps'
//! `With:` keys), its CLI page
//! is the one generated from the clap definitions, and every relative link
//! in it and in README.md resolves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manual() -> PathBuf {
    root().join("docs/manual/src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Every Markdown page of the manual, with its text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut pages: Vec<(PathBuf, String)> = walkdir::WalkDir::new(manual())
        .into_iter()
        .map(|entry| entry.expect("the manual's directory is readable"))
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "md"))
        .map(|entry| (entry.path().to_owned(), read(entry.path())))
        .collect();
    pages.sort();
    assert!(pages.len() > 5, "the manual has its pages");
    pages
}

/// The fenced code blocks of a page: (info string, body, line of the fence).
fn code_blocks(text: &str) -> Vec<(String, String, usize)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((info.trim().to_owned(), String::new(), index + 1));
                }
            }
            Some((_, body, _)) => {
                if trimmed.starts_with("```") {
                    blocks.push(open.take().expect("a block is open"));
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    blocks
}

/// The section of `text` under the heading line `heading` (up to the next
/// heading of the same or a higher level).
fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n{heading}\n"))? + heading.len() + 2;
    let level = heading.split(' ').next().unwrap_or("##");
    let rest = &text[start..];
    let end = rest
        .lines()
        .scan(0, |offset, line| {
            let here = *offset;
            *offset += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level.len() && line[hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(offset, _)| offset);
    Some(&rest[..end])
}

/// The first cell of each table row in `text` that is a single code span:
/// `` | `name` | ... `` gives `name`.
fn table_keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let cell = line.trim().strip_prefix('|')?.split('|').next()?.trim();
            let name = cell.strip_prefix('`')?.strip_suffix('`')?;
            (!name.contains('`')).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn every_takofile_example_is_checked_by_tako_validate() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut checked = 0;
    let mut failures = Vec::new();
    // The README's complete takofiles (those with a `Project`) too; its
    // other YAML blocks are fragments of one.
    let readme = root().join("README.md");
    let mut sources = pages();
    sources.push((readme.clone(), read(&readme)));
    for (path, text) in sources {
        for (info, body, line) in code_blocks(&text) {
            let mut words = info.split_whitespace();
            if words.next() != Some("yaml") {
                continue;
            }
            if path == readme && !body.lines().any(|line| line.starts_with("Project:")) {
                continue;
            }
            let invalid = words.any(|word| word == "invalid");
            let file = dir.path().join("takofile.yml");
            std::fs::write(&file, &body).expect("the example is written");
            let output = Command::new(env!("CARGO_BIN_EXE_tako"))
                .arg("validate")
                .arg(&file)
                .output()
                .expect("tako validate runs");
            let where_ = format!("{}:{line}", path.display());
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if invalid && output.status.code() != Some(1) {
                failures.push(format!(
                    "{where_}: an example marked `yaml invalid` must fail tako validate, it said:\n{said}"
                ));
            } else if !invalid && !output.status.success() {
                failures.push(format!(
                    "{where_}: a takofile example fails tako validate (mark it ```yaml invalid if meant):\n{said}"
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 10, "only {checked} takofile examples were found");
}

#[test]
fn the_settings_page_lists_exactly_the_settings_the_server_reads() {
    let page = read(&manual().join("settings.md"));
    let table = section(&page, "## Settings").expect("settings.md has a '## Settings' section");
    let listed = table_keys(table);
    let declared: BTreeSet<String> = tako_server::config::SETTINGS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let missing: Vec<_> = declared.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/manual/src/settings.md '## Settings' table: missing {missing:?}, not a setting {unknown:?} \
         (the list is tako_server::config::SETTINGS)"
    );
    for name in &declared {
        let env = format!("TAKO_{}", name.to_ascii_uppercase());
        assert!(table.contains(&env), "settings.md does not name {env}");
    }
}

#[test]
fn every_system_variable_is_in_the_variables_page() {
    let page = read(&manual().join("variables.md"));
    let facts = tako_core::system::DeploymentFacts {
        manifest: Some(tako_core::system::ManifestFacts::default()),
        ..Default::default()
    };
    let mut names: BTreeSet<String> = tako_core::system::system_variables(&facts)
        .into_iter()
        .chain(tako_core::system::step_variables("S"))
        .chain(tako_core::system::agent_variables("a", &[]))
        .map(|(name, _)| name)
        .collect();
    names.extend(tako_core::system::output_variable_names("Step", "Name"));
    names.extend(tako_core::system::machine_output_variable_names(
        "Step", "machine", "Name",
    ));
    let missing: Vec<_> = names
        .iter()
        .filter(|name| !page.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/manual/src/variables.md does not list (as `Name`) these system variables: {missing:?}"
    );
}

#[test]
fn each_built_in_step_lists_exactly_the_with_keys_its_code_accepts() {
    let page = read(&manual().join("steps.md"));
    for kind in tako_takofile::UsesKind::BUILT_IN {
        let heading = format!("## `{}`", kind.name());
        let text = section(&page, &heading)
            .unwrap_or_else(|| panic!("docs/manual/src/steps.md has no section {heading}"));
        let with = section(text, "### With").unwrap_or_else(|| {
            panic!("docs/manual/src/steps.md: {heading} has no '### With' table")
        });
        let listed = table_keys(with);
        let accepted: BTreeSet<String> = kind
            .parameters()
            .expect("a built-in step has parameters")
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            listed, accepted,
            "docs/manual/src/steps.md {heading}: the With keys differ from the code's"
        );
    }
}

#[test]
fn the_takofile_page_lists_exactly_the_keys_the_parser_accepts() {
    let page = read(&manual().join("takofile.md"));
    for (place, keys) in tako_takofile::ACCEPTED_KEYS {
        let heading = match place {
            "top level" => "## Top-level keys".to_owned(),
            "Steps" => "## Step keys".to_owned(),
            other => format!("### `{other}`"),
        };
        let text = section(&page, &heading)
            .unwrap_or_else(|| panic!("docs/manual/src/takofile.md has no section {heading}"));
        // Its own table, before any subsection.
        let own = text.split("\n#").next().unwrap_or(text);
        let listed = table_keys(own);
        let accepted: BTreeSet<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        assert_eq!(
            listed, accepted,
            "docs/manual/src/takofile.md {heading}: the keys differ from the parser's ({place})"
        );
    }
}

#[test]
fn the_substitution_page_lists_exactly_the_filters_there_are() {
    let page = read(&manual().join("substitution.md"));
    let table = section(&page, "## Filters").expect("substitution.md has a '## Filters' section");
    let listed: BTreeSet<String> = table
        .lines()
        .filter_map(|line| line.trim().strip_prefix('|')?.split('|').next())
        .flat_map(|cell| {
            cell.split(',')
                .filter_map(|name| {
                    let name = name.trim().strip_prefix('`')?.strip_suffix('`')?;
                    Some(name.to_ascii_lowercase())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let known: BTreeSet<String> = tako_octostache::FILTERS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let missing: Vec<_> = known.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&known).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/manual/src/substitution.md '## Filters': missing {missing:?}, not a filter {unknown:?} \
         (the list is tako_octostache::FILTERS)"
    );
}

#[test]
fn the_cli_reference_is_the_one_generated_from_clap() {
    let output = Command::new(env!("CARGO_BIN_EXE_tako"))
        .args(["reference", "cli"])
        .output()
        .expect("tako reference cli runs");
    assert!(output.status.success(), "tako reference cli fails");
    let generated = String::from_utf8(output.stdout).expect("UTF-8");
    let committed = read(&manual().join("cli.md"));
    assert!(
        generated == committed,
        "docs/manual/src/cli.md differs from the command line's definitions; regenerate it with:\n  \
         cargo run -p tako -- reference cli > docs/manual/src/cli.md"
    );
}

/// The targets of inline Markdown links and images, `](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_points_to_a_file_that_exists() {
    let mut files = vec![root().join("README.md"), manual().join("../README.md")];
    files.extend(pages().into_iter().map(|(path, _)| path));
    let mut broken = Vec::new();
    let mut seen = 0;
    for file in files {
        for target in link_targets(&read(&file)) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let resolved = file.parent().expect("a file has a directory").join(path);
            seen += 1;
            if !resolved.exists() {
                broken.push(format!("{} -> {target}", file.display()));
            }
        }
    }
    assert!(seen > 20, "only {seen} relative links were found");
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn every_page_is_in_the_summary() {
    let summary = read(&manual().join("SUMMARY.md"));
    let linked: BTreeSet<String> = link_targets(&summary).into_iter().collect();
    for (path, _) in pages() {
        let name = path
            .strip_prefix(manual())
            .expect("a page is in the manual")
            .display()
            .to_string();
        assert!(
            name == "SUMMARY.md" || linked.contains(&name),
            "docs/manual/src/{name} is not in SUMMARY.md"
        );
    }
}

#[test]
fn every_api_path_in_the_manual_is_one_the_server_serves() {
    use utoipa::OpenApi;
    let document = serde_json::to_value(tako_server::api::ApiDoc::openapi()).unwrap();
    let templates: Vec<Vec<String>> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|path| path.split('/').map(str::to_owned).collect())
        .collect();
    let page = read(&manual().join("api.md"));
    let mut checked = 0;
    let mut unknown = Vec::new();
    for (index, _) in page.match_indices("/api/v1/") {
        let path: String = page[index..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !"`\"'?)".contains(*c))
            .collect();
        let segments: Vec<&str> = path.split('/').collect();
        let known = templates.iter().any(|template| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
        });
        if known {
            checked += 1;
        } else if !path.contains("...") && path != "/api/v1/" {
            unknown.push(path);
        }
    }
    assert!(checked >= 8, "too few API paths found in api.md: {checked}");
    assert!(
        unknown.is_empty(),
        "docs/manual/src/api.md names paths the OpenAPI document does not have: {unknown:?}"
    );
}
