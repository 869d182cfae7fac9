//! House rules checked as tests (rust-analyzer's "tidy" idea): the layers'
//! dependency direction, `//!` docs on every module, and no stubs or debug
//! leftovers in the code.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Each workspace crate's layer; a crate may only depend (normally, not as a
/// dev-dependency) on crates of strictly lower layers, except inside the
/// domain layer, whose crates are pure and may use one another.
const LAYERS: &[(&str, u8)] = &[
    ("tako-octostache", 0),
    ("tako-psd1", 0),
    ("tako-takofile", 0),
    ("tako-core", 0),
    ("tako-github", 0),
    ("tako-forges", 0),
    ("tako-protocol", 0),
    ("tako-store", 1),
    ("tako-git", 1),
    ("tako-exec", 2),
    ("tako-server", 3),
    ("tako-agent", 3),
    ("tako", 4),
    ("tako-test-support", 5),
];

/// Crates that do I/O or bring a runtime: never allowed in the domain layer.
const IO_CRATES: &[&str] = &[
    "tokio",
    "sqlx",
    "axum",
    "hyper",
    "reqwest",
    "tower",
    "tower-http",
    "rusqlite",
    "nix",
    "tempfile",
];

fn workspace_root() -> PathBuf {
    tako_test_support::workspace_root()
}

fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

fn layer_of(name: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .map(|(_, layer)| *layer)
}

#[test]
fn crates_depend_only_on_lower_layers() {
    let metadata = metadata();
    let mut problems = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name");
        let Some(layer) = layer_of(name) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS in tests/tidy.rs and ARCHITECTURE.md"
            ));
            continue;
        };
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let dep = dependency["name"].as_str().expect("dependency name");
            let is_dev = dependency["kind"].as_str() == Some("dev");
            if is_dev {
                continue;
            }
            if dep == "tako-test-support" {
                problems.push(format!(
                    "{name} depends on tako-test-support outside dev-dependencies"
                ));
            }
            if let Some(dep_layer) = layer_of(dep) {
                let allowed = dep_layer < layer || (layer == 0 && dep_layer == 0);
                if !allowed {
                    problems.push(format!(
                        "{name} (layer {layer}) depends on {dep} (layer {dep_layer})"
                    ));
                }
            }
            if layer == 0 && IO_CRATES.contains(&dep) {
                problems.push(format!(
                    "{name} is in the domain layer but depends on {dep}, which does I/O"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layer violations:\n{}",
        problems.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            let name = entry.file_name();
            if name != "target" && name != "fixtures" && name != "snapshots" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for top in ["crates", "bench", "fuzz"] {
        rust_files(&workspace_root().join(top), &mut files);
    }
    files
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let missing: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let first = text
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            !first.starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! doc comment:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_stubs_or_debug_leftovers() {
    let banned = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("dbg", "!("),
        concat!("#[", "ignore"),
        concat!("#[", "should_panic"),
    ];
    let mut found = Vec::new();
    for path in all_rust_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (index, line) in text.lines().enumerate() {
            for pattern in banned {
                if line.contains(pattern) {
                    found.push(format!("{}:{}: {}", path.display(), index + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "banned constructs:\n{}", found.join("\n"));
}

/// The `use` paths and qualified paths of a Rust file: every `crate::a::b`
/// and `tako_x::…` it names, outside comments.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(index, line)| (index + 1, line.to_owned()))
        .collect()
}

/// Lines of the files under `dir` that name any of `forbidden`.
fn lines_naming(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    if dir.is_file() {
        files.push(dir.to_owned());
    }
    assert!(!files.is_empty(), "{} has no Rust files", dir.display());
    let mut found = Vec::new();
    for file in files {
        for (number, line) in code_lines(&file) {
            if forbidden.iter().any(|needle| line.contains(needle)) {
                found.push(format!("{}:{number}: {}", file.display(), line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_service_layer_knows_nothing_of_http() {
    let services = workspace_root().join("crates/server/src/services");
    let found = lines_naming(
        &services,
        &[
            "axum",
            "StatusCode",
            "crate::api",
            "crate::web",
            "crate::http",
            "crate::state",
            "api::",
            "web::",
        ],
    );
    assert!(
        found.is_empty(),
        "the service layer must not use HTTP types or import the HTTP layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_web_ui_and_the_api_do_not_import_each_other() {
    let root = workspace_root().join("crates/server/src");
    let mut found = lines_naming(&root.join("web"), &["crate::api"]);
    found.extend(lines_naming(&root.join("api"), &["crate::web"]));
    assert!(
        found.is_empty(),
        "the two front ends share crate::http and crate::services, not each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn releases_do_not_import_the_router() {
    let root = workspace_root().join("crates/server/src");
    let found = lines_naming(&root.join("releases.rs"), &["crate::router"]);
    assert!(
        found.is_empty(),
        "the router uses releases, never the other way:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_binarys_client_commands_do_not_depend_on_the_server() {
    let client = workspace_root().join("crates/tako/src/client");
    let found = lines_naming(&client, &["tako_server"]);
    assert!(
        found.is_empty(),
        "the client reads the wire types of tako-protocol, not the server's:\n{}",
        found.join("\n")
    );
}
