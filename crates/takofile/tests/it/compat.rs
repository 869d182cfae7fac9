//! The Takofukku-era takofiles (fixtures/takofukku) validate and route as
//! Takofukku did: exact, case-sensitive branch names, first match wins,
//! `CreateRelease: true`. Fixed defects: unmapped branches are not sent to
//! Staging (nor, when mappings exist, master to Production) but ignored.

use tako_takofile::{RefPattern, SERVER_IGNORED, Severity};

use crate::{fixture, valid};

fn branches(takofile: &tako_takofile::Takofile) -> Vec<(&str, &str)> {
    takofile
        .mappings
        .iter()
        .map(|mapping| match &mapping.target {
            RefPattern::Branch(glob) => (glob.as_str(), mapping.environment.as_str()),
            RefPattern::Tag(glob) => panic!("unexpected tag mapping {glob}"),
        })
        .collect()
}

#[test]
fn statuscakedsc_takofile_is_the_reference() {
    let takofile = valid(&fixture("takofukku/StatusCakeDSC.takofile"));
    assert_eq!(takofile.project, "StatuscakeDSC");
    assert_eq!(
        takofile.server.as_deref(),
        Some("https://deploy.d.evops.co/")
    );
    assert!(takofile.create_release);
    assert!(!takofile.mappings_defaulted);
    assert_eq!(
        branches(&takofile),
        [("master", "Production"), ("develop", "DevTest")]
    );
    assert_eq!(
        takofile.environment_for_branch("master"),
        Some("Production")
    );
    assert_eq!(takofile.environment_for_branch("develop"), Some("DevTest"));
    // Takofukku sent these to Staging; Tako ignores them.
    assert_eq!(takofile.environment_for_branch("feature/x"), None);
    assert_eq!(takofile.environment_for_branch("Master"), None);
    // Takofukku split `refs/heads/develop/x` into `develop`; Tako does not.
    assert_eq!(takofile.environment_for_branch("develop/x"), None);
    assert_eq!(takofile.environment_for_tag("master"), None);
    assert_eq!(takofile.steps, None);
    assert!(takofile.variables.is_empty());
    assert_eq!(takofile.version, None);
    assert_eq!(takofile.manifest, None);
}

#[test]
fn server_key_is_only_a_warning() {
    let takofile = valid(&fixture("takofukku/StatusCakeDSC.takofile"));
    assert_eq!(takofile.warnings.len(), 1);
    let warning = &takofile.warnings[0];
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(warning.message, SERVER_IGNORED);
    assert_eq!((warning.line, warning.column), (2, 1));
    assert_eq!(
        warning.to_string(),
        "takofile:2:1: warning: Server is ignored: Tako is the deployment server \
         (it is only used when the Tako server forwards this URL to Octopus; otherwise remove it)"
    );
}

#[test]
fn takofukkus_own_takofile_routes_master_and_develop() {
    let takofile = valid(&fixture("takofukku/takofukku-root.takofile"));
    assert_eq!(takofile.project, "Takofukku");
    assert_eq!(
        branches(&takofile),
        [("master", "Production"), ("develop", "DevTest")]
    );
    assert!(takofile.create_release);
}

#[test]
fn readme_example_routes_three_branches() {
    let takofile = valid(&fixture("takofukku/takofukku-readme.takofile"));
    assert_eq!(
        takofile.environment_for_branch("master"),
        Some("Production")
    );
    assert_eq!(takofile.environment_for_branch("release"), Some("Staging"));
    assert_eq!(takofile.environment_for_branch("develop"), Some("UAT"));
    assert_eq!(takofile.environment_for_branch("release/1.0"), None);
    assert_eq!(takofile.environment_for_branch("hotfix"), None);
}

#[test]
fn takofiles_md_example_routes_three_branches() {
    let takofile = valid(&fixture("takofukku/takofiles-md.takofile"));
    assert_eq!(takofile.project, "Important Business App");
    assert_eq!(
        takofile.server.as_deref(),
        Some("https://deploy.mycompany.com/")
    );
    assert_eq!(
        branches(&takofile),
        [
            ("master", "Production"),
            ("release", "Staging"),
            ("develop", "Dev")
        ]
    );
}

#[test]
fn model_takofile_matches_branch_names_case_sensitively() {
    // Takofukku compared `q.Branch = targetbranch`: `Master` only matches a
    // branch called `Master`. Its fallback of master -> Production when no
    // mapping matched is a fixed defect: the push is ignored.
    let takofile = valid(&fixture("takofukku/takofukku-model.takofile.yml"));
    assert_eq!(
        takofile.environment_for_branch("Master"),
        Some("Production")
    );
    assert_eq!(takofile.environment_for_branch("master"), None);
    assert_eq!(takofile.environment_for_branch("release"), Some("Staging"));
    assert_eq!(takofile.environment_for_branch("develop"), Some("UAT"));
}

#[test]
fn every_file_name_variant_is_listed_in_lookup_order() {
    assert_eq!(
        tako_takofile::FILE_NAMES,
        ["takofile", "takofile.yml", "takofile.yaml"]
    );
}

#[test]
fn create_release_false_and_string_booleans() {
    for (text, expected) in [
        ("false", false),
        ("False", false),
        ("FALSE", false),
        ("'false'", false),
        ("\"True\"", true),
        ("tRuE", true),
        ("true", true),
    ] {
        let takofile = valid(&format!("Project: P\nCreateRelease: {text}\n"));
        assert_eq!(takofile.create_release, expected, "CreateRelease: {text}");
    }
    assert!(valid("Project: P\n").create_release);
}

#[test]
fn keys_are_case_insensitive() {
    let takofile = valid(
        "project: P\nmappings:\n  - branch: master\n    ENVIRONMENT: Production\ncreaterelease: false\n",
    );
    assert_eq!(takofile.project, "P");
    assert_eq!(
        takofile.environment_for_branch("master"),
        Some("Production")
    );
    assert!(!takofile.create_release);
}
