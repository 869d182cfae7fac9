//! Integration tests for `tako-takofile`, one binary with a module per concern:
//!
//! - `compat`: the real Takofukku-era takofiles validate and route as
//!   Takofukku did (minus the defects the spec lists);
//! - `routing`: branch and tag globs, defaults, first match wins;
//! - `plan`: the extended example of the spec becomes the expected plan;
//! - `diagnostics`: snapshots of the rendered diagnostics of every broken
//!   fixture, and the ten-mistakes test with exact positions;
//! - `robustness`: garbage, truncation, NUL bytes, deep nesting and alias
//!   fan-out never panic;
//! - `retries`: `Retries` and `RetryDelay`, read and checked with positions;
//! - `interventions`: `Uses: manual-intervention` and `OnFailure`, likewise.

mod agents;
mod compat;
mod diagnostics;
mod interventions;
mod lifecycle;
mod plan;
mod retention;
mod retries;
mod robustness;
mod routing;

use std::path::{Path, PathBuf};

/// The path of a fixture under `tests/fixtures`.
fn fixture_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// The text of a fixture under `tests/fixtures`.
fn fixture(relative: &str) -> String {
    std::fs::read_to_string(fixture_path(relative)).expect("fixture is readable")
}

/// Parses text that must be valid, showing the diagnostics otherwise.
fn valid(text: &str) -> tako_takofile::Takofile {
    match tako_takofile::parse("takofile", text) {
        Ok(takofile) => takofile,
        Err(diagnostics) => panic!("expected a valid takofile, got:\n{diagnostics}"),
    }
}

/// Parses text that must be invalid and returns its diagnostics.
fn invalid(text: &str) -> tako_takofile::Diagnostics {
    match tako_takofile::parse("takofile", text) {
        Ok(takofile) => panic!("expected diagnostics, got {takofile:#?}"),
        Err(diagnostics) => diagnostics,
    }
}
