//! Rendered diagnostics: one insta snapshot per broken fixture, and the
//! ten-mistakes test with exact positions.

use tako_takofile::Severity;

use crate::{fixture_path, invalid};

#[test]
fn broken_fixtures_render_their_diagnostics() {
    let directory = fixture_path("invalid");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .expect("fixtures/invalid is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "too few invalid fixtures");
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("fixture is readable");
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("utf-8 file name");
        let stem = name.trim_end_matches(".yml");
        let diagnostics = match tako_takofile::parse(name, &text) {
            Ok(takofile) => panic!("{name} should not validate: {takofile:#?}"),
            Err(diagnostics) => diagnostics,
        };
        assert!(diagnostics.errors().count() > 0, "{name} has no error");
        let description: String = if text.len() > 2_000 {
            format!("{}…", text.chars().take(2_000).collect::<String>())
        } else {
            text.clone()
        };
        insta::with_settings!({
            description => description,
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("invalid__{stem}"), diagnostics.to_string());
        });
    }
}

const TEN_MISTAKES: &str = "\
Project: StatusCakeDSC
Mapings:
  - Branch: master
    Environment: Production
CreateRelease: sometimes
Variables:
  - Name: GitBranch
Steps:
  - Name: Test
    Run: ./test.sh
    Timeout: forever
  - Name: test
    Run: ./again.sh
  - Name: Notify
    Uses: slak
  - Name: Both
    Run: echo a
    Script: b.sh
  - Name: Shelly
    Run: echo a
    Shell: fish
  - Name: Checkout
    Uses: git-checkout
    With:
      Repo: other
  - Name: Env
    Run: echo a
    Env: [A]
";

#[test]
fn ten_mistakes_give_ten_diagnostics_with_positions() {
    let diagnostics = invalid(TEN_MISTAKES);
    let found: Vec<(usize, usize, &str)> = diagnostics
        .0
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert!(
        diagnostics.0.iter().all(|d| d.severity == Severity::Error),
        "{diagnostics}"
    );
    assert_eq!(
        found,
        [
            (2, 1, "unknown key Mapings"),
            (
                5,
                16,
                "CreateRelease must be true or false, found sometimes"
            ),
            (7, 5, "a Variables entry needs Value"),
            (11, 14, "invalid Timeout forever: expected number at 0"),
            (12, 11, "duplicate step name test (first at line 9)"),
            (15, 11, "unknown step kind slak"),
            (18, 5, "step Both has both Run and Script"),
            (21, 12, "unknown Shell fish"),
            (25, 7, "unknown key Repo in With for git-checkout"),
            (
                28,
                10,
                "Env must be a mapping of names to values, found a list"
            ),
        ],
        "{diagnostics}"
    );
    let hints: Vec<Option<&str>> = diagnostics.0.iter().map(|d| d.hint.as_deref()).collect();
    assert_eq!(hints[0], Some("did you mean Mappings?"));
    assert_eq!(hints[5], Some("did you mean slack?"));
    assert_eq!(hints[8], Some("did you mean Repository?"));
    assert_eq!(
        diagnostics.0[0].to_string(),
        "takofile:2:1: error: unknown key Mapings (did you mean Mappings?)"
    );
    assert_eq!(diagnostics.to_string().lines().count(), 10);
}

#[test]
fn errors_come_with_every_warning() {
    let diagnostics = invalid("Server: https://x/\nProject: P\nCreateRelease: 2\n");
    assert_eq!(diagnostics.errors().count(), 1);
    assert_eq!(diagnostics.warnings().count(), 1);
    assert_eq!(diagnostics.0[0].severity, Severity::Warning);
}

#[test]
fn a_misspelt_required_key_is_reported_once() {
    let diagnostics = invalid("Project: P\nSteps:\n  - Nmae: Build\n    Rnu: make\n");
    assert_eq!(
        diagnostics.to_string(),
        "takofile:3:5: error: unknown key Nmae in a step (did you mean Name?)\n\
         takofile:4:5: error: unknown key Rnu in a step (did you mean Run?)"
    );
}

#[test]
fn file_name_labels_every_diagnostic() {
    let diagnostics = match tako_takofile::parse("takofile.yaml", "Projetc: x\n") {
        Ok(takofile) => panic!("unexpected {takofile:?}"),
        Err(diagnostics) => diagnostics,
    };
    assert!(diagnostics.0.iter().all(|d| d.file == "takofile.yaml"));
    assert_eq!(
        diagnostics.to_string(),
        "takofile.yaml:1:1: error: unknown key Projetc (did you mean Project?)"
    );
}
