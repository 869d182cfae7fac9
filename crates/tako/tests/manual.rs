//! The user's manual (`docs/manual/`) cannot drift from the code: its
//! takofile examples (and README.md's complete ones) go through the real
//! `tako validate`, its reference tables list exactly what the code declares
//! (takofile keys, filters, settings, system variables, built-in steps'
//! `With:` keys), its CLI page
//! is the one generated from the clap definitions, and every relative link
//! in it, in README.md and in docs/*.md names a file that exists, its
//! `#anchor` a heading of that file (mdBook's and GitHub's anchors).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

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

/// The Markdown options mdBook renders with (so headings, tables and
/// links parse as in the book).
fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// A heading's anchor as mdBook (`normalize_id`) and GitHub make it from the
/// heading's text: lowercase, each space a `-`, letters, digits, `_` and `-`
/// kept, every other character dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a Markdown text links to (links and images, inline or by reference,
/// outside code) and the anchors its headings get: the slug of each
/// heading's text (or its `{#id}`), a repeated one suffixed `-1`, `-2`, …
/// as mdBook and GitHub do.
fn links_and_anchors(text: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut links = Vec::new();
    let mut anchors = BTreeSet::new();
    let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
    let mut heading: Option<(Option<String>, String)> = None;
    for event in Parser::new_ext(text, markdown_options()) {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                links.push(dest_url.into_string());
            }
            Event::Start(Tag::Heading { id, .. }) => {
                heading = Some((id.map(|id| id.into_string()), String::new()));
            }
            Event::Text(part) | Event::Code(part) => {
                if let Some((_, title)) = &mut heading {
                    title.push_str(&part);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let (id, title) = heading.take().expect("a heading ends after it starts");
                let base = id.unwrap_or_else(|| slug(&title));
                let seen = repeats.entry(base.clone()).or_insert(0);
                anchors.insert(if *seen == 0 {
                    base
                } else {
                    format!("{base}-{seen}")
                });
                *seen += 1;
            }
            _ => {}
        }
    }
    (links, anchors)
}

/// The targets of a text's links and images.
fn link_targets(text: &str) -> Vec<String> {
    links_and_anchors(text).0
}

#[test]
fn slugs_are_the_anchors_mdbook_and_github_give_real_headings() {
    // (file, heading as written, the id mdBook's HTML and GitHub's view give it)
    let cases = [
        (
            "README.md",
            "## Quick start: a push deploys",
            "quick-start-a-push-deploys",
        ),
        (
            "README.md",
            "### Gitea/Forgejo, GitLab and Bitbucket Cloud",
            "giteaforgejo-gitlab-and-bitbucket-cloud",
        ),
        ("README.md", "### The seed's pipeline", "the-seeds-pipeline"),
        (
            "README.md",
            "### A release's journey: lifecycles and approvals",
            "a-releases-journey-lifecycles-and-approvals",
        ),
        (
            "docs/manual/src/steps.md",
            "## `publish-psmodule`",
            "publish-psmodule",
        ),
        (
            "docs/manual/src/cli.md",
            "### `tako project create`",
            "tako-project-create",
        ),
        (
            "docs/manual/src/cluster.md",
            "## Rotating the master key",
            "rotating-the-master-key",
        ),
    ];
    for (file, heading, id) in cases {
        let text = read(&root().join(file));
        assert!(
            text.lines().any(|line| line == heading),
            "{file} no longer has the heading {heading:?}: pick another real one"
        );
        let (_, anchors) = links_and_anchors(heading);
        assert_eq!(anchors.into_iter().collect::<Vec<_>>(), [id], "{heading}");
        assert!(links_and_anchors(&text).1.contains(id), "{file}: {id}");
    }
    // A repeated heading gets -1, -2, … (mdBook and GitHub alike).
    let (_, anchors) = links_and_anchors("# With\n\n## With\n\n### With\n");
    assert_eq!(
        anchors.into_iter().collect::<Vec<_>>(),
        ["with", "with-1", "with-2"]
    );
    assert_eq!(slug("Substitution: #{...}"), "substitution-");
    assert_eq!(slug("Café au lait"), "café-au-lait");
}

/// The Markdown files whose links are checked: README.md, docs/*.md, the
/// manual's README and every page of the manual.
fn linking_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), manual().join("../README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("docs/ is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files.extend(pages().into_iter().map(|(path, _)| path));
    files
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut anchors_of: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut anchors = |path: &Path| -> BTreeSet<String> {
        anchors_of
            .entry(path.to_owned())
            .or_insert_with(|| links_and_anchors(&read(path)).1)
            .clone()
    };
    let mut broken = Vec::new();
    let (mut files_seen, mut anchors_seen) = (0, 0);
    for file in linking_files() {
        let shown = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for target in link_targets(&read(&file)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            if path.starts_with('/') {
                broken.push(format!(
                    "{shown}: ({target}) is an absolute path; write it relative to the page"
                ));
                continue;
            }
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a file has a directory").join(path)
            };
            if !path.is_empty() {
                files_seen += 1;
                if !resolved.exists() {
                    broken.push(format!("{shown}: ({target}): there is no file {path}"));
                    continue;
                }
            }
            let Some(anchor) = anchor else { continue };
            anchors_seen += 1;
            if resolved.extension().is_none_or(|ext| ext != "md") {
                broken.push(format!(
                    "{shown}: ({target}): an anchor into a file that is not Markdown cannot be checked"
                ));
            } else if !anchors(&resolved).contains(anchor) {
                let mut known: Vec<String> = anchors(&resolved).into_iter().collect();
                known.retain(|known| known.contains(anchor) || anchor.contains(known.as_str()));
                broken.push(format!(
                    "{shown}: ({target}): {} has no heading whose anchor is #{anchor}{}",
                    if path.is_empty() { "the page" } else { path },
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (close: {known:?})")
                    }
                ));
            }
        }
    }
    assert!(
        files_seen > 20,
        "only {files_seen} relative links were found"
    );
    assert!(anchors_seen >= 5, "only {anchors_seen} anchors were found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
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

/// The page's commands that `packaging/test-deb.sh` runs differently (no
/// systemd there, a temporary repository, a random port), each with the
/// test's line that stands for it.
const DEBIAN_PAGE_DIFFERENCES: &[(&str, &str)] = &[
    ("dpkg -i tako_*.deb", r#"dpkg -i "$deb""#),
    (
        "sudoedit /etc/tako/tako.toml",
        r#"$exec_start --data-dir "$data" --listen 127.0.0.1:0 \"#,
    ),
    (
        "systemctl enable --now tako",
        r"setpriv --reuid tako --regid tako --init-groups env -i PATH=/usr/bin:/bin TAKO_LOG=info \",
    ),
    (
        "export TAKO_TOKEN=tako_...",
        r#"export TAKO_SERVER="$url" TAKO_TOKEN="$token""#,
    ),
    (
        "tako project create MyApp --repo https://github.com/you/myapp.git",
        r#"/usr/bin/tako project create MyApp --repo "$repo_url" >/dev/null || fail "tako project create""#,
    ),
    (
        "repo_url=file:///srv/git/myapp.git",
        r#"repo_url="file://$work/myapp.git""#,
    ),
    (
        "after=$(git -C ~/myapp rev-parse main)",
        r#"after=$(git -C "$repo" rev-parse main)"#,
    ),
    (
        r#"install -d -o "$USER" /srv/git"#,
        "work=$(mktemp -d /srv/tako-deb-test.XXXXXX)",
    ),
    (
        "git clone --bare ~/myapp /srv/git/myapp.git",
        r#"git clone -q --bare "$repo" "$work/myapp.git""#,
    ),
    (
        "chown -R tako:tako /srv/git/myapp.git",
        r#"chown -R tako:tako "$work/myapp.git""#,
    ),
    (
        "tako project create MyApp --repo file:///srv/git/myapp.git",
        r#"/usr/bin/tako project create MyApp --repo "$repo_url" >/dev/null || fail "tako project create""#,
    ),
    (
        r"curl -sS -X POST http://127.0.0.1:8080/hooks/github \",
        r#"status=$(curl -sS -o "$work/push.out" -w '%{http_code}' -X POST "$url/hooks/github" \"#,
    ),
    (r#"--data-binary "$body""#, r#"--data-binary "$body")"#),
    (
        "tako deployment list --project MyApp",
        r#"/usr/bin/tako deployment list --project MyApp | grep -q success || fail "tako deployment list""#,
    ),
    (
        "tako logs ID --follow",
        r#"timeout 120 /usr/bin/tako logs "$id" --follow >"$work/deploy.log" \"#,
    ),
];

#[test]
fn the_debian_walk_through_is_what_test_deb_sh_runs() {
    let page = read(&manual().join("debian.md"));
    let script = read(&root().join("packaging/test-deb.sh"));
    // The script's lines, and the commands its comments show.
    let script_lines: BTreeSet<&str> = script
        .lines()
        .map(|line| line.trim().trim_start_matches('#').trim())
        .collect();
    let mut commands = 0;
    let mut unmatched = Vec::new();
    let mut used = BTreeSet::new();
    for (info, body, line) in code_blocks(&page) {
        if info == "yaml" {
            assert!(
                script.contains(&body),
                "docs/manual/src/debian.md:{line}: the takofile is not the one test-deb.sh deploys"
            );
            continue;
        }
        assert_eq!(
            info, "sh",
            "debian.md:{line}: a block that is neither sh nor yaml"
        );
        for command in body.lines() {
            // What the test runs as root: the line without `sudo`, without
            // its trailing comment.
            let command = command.replace("sudo ", "");
            let command = command.split("  #").next().unwrap_or_default().trim();
            if command.is_empty() {
                continue;
            }
            commands += 1;
            if script_lines.contains(command) {
                continue;
            }
            match DEBIAN_PAGE_DIFFERENCES
                .iter()
                .find(|(page_line, _)| *page_line == command)
            {
                Some((page_line, test_line)) if script_lines.contains(test_line) => {
                    used.insert(*page_line);
                }
                Some((_, test_line)) => unmatched.push(format!(
                    "`{command}`: test-deb.sh no longer runs `{test_line}` in its place"
                )),
                None => unmatched.push(format!(
                    "`{command}` is not a line of test-deb.sh (run it there, or list how the \
                     test does it in DEBIAN_PAGE_DIFFERENCES)"
                )),
            }
        }
    }
    for (page_line, _) in DEBIAN_PAGE_DIFFERENCES {
        if !used.contains(page_line) {
            unmatched.push(format!(
                "DEBIAN_PAGE_DIFFERENCES lists `{page_line}`, which the page no longer has"
            ));
        }
    }
    assert!(commands >= 15, "only {commands} commands on debian.md");
    assert!(
        unmatched.is_empty(),
        "docs/manual/src/debian.md and packaging/test-deb.sh differ:\n{}",
        unmatched.join("\n")
    );
}
