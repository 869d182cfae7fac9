//! Routing: full branch names, `*` within a segment, `**` across segments,
//! tags, the no-Mappings default and first-match-wins.

use crate::valid;

const ROUTES: &str = "\
Project: Routing
Mappings:
  - Branch: master
    Environment: Production
  - Branch: release/*
    Environment: Staging
  - Branch: hotfix/**
    Environment: Production
  - Branch: feature/x
    Environment: Review
  - Branch: '*'
    Environment: Dev
  - Tag: v*
    Environment: Production
  - Tag: rc/**
    Environment: Staging
";

#[test]
fn full_names_match_exactly() {
    let takofile = valid(ROUTES);
    assert_eq!(takofile.environment_for_branch("feature/x"), Some("Review"));
    assert_eq!(takofile.environment_for_branch("feature"), Some("Dev"));
    assert_eq!(takofile.environment_for_branch("feature/y"), None);
    assert_eq!(takofile.environment_for_branch("feature/x/y"), None);
}

#[test]
fn single_star_does_not_cross_segments() {
    let takofile = valid(ROUTES);
    assert_eq!(
        takofile.environment_for_branch("release/1.0"),
        Some("Staging")
    );
    assert_eq!(takofile.environment_for_branch("release/1.0/fix"), None);
    assert_eq!(takofile.environment_for_branch("release"), Some("Dev"));
}

#[test]
fn double_star_crosses_segments() {
    let takofile = valid(ROUTES);
    assert_eq!(
        takofile.environment_for_branch("hotfix/a"),
        Some("Production")
    );
    assert_eq!(
        takofile.environment_for_branch("hotfix/a/b/c"),
        Some("Production")
    );
    assert_eq!(takofile.environment_for_branch("hotfixes/a"), None);
}

#[test]
fn matching_is_case_sensitive() {
    let takofile = valid(ROUTES);
    assert_eq!(takofile.environment_for_branch("Release/1.0"), None);
    assert_eq!(takofile.environment_for_branch("MASTER"), Some("Dev"));
}

#[test]
fn tags_route_only_through_tag_mappings() {
    let takofile = valid(ROUTES);
    assert_eq!(takofile.environment_for_tag("v1.2.0"), Some("Production"));
    assert_eq!(takofile.environment_for_tag("rc/1/2"), Some("Staging"));
    assert_eq!(takofile.environment_for_tag("master"), None);
    assert_eq!(takofile.environment_for_tag("x/v1"), None);
    // A branch called v1 is routed by branch mappings only.
    assert_eq!(takofile.environment_for_branch("v1"), Some("Dev"));
}

#[test]
fn first_match_wins() {
    let takofile = valid(
        "Project: P\nMappings:\n  - Branch: release/*\n    Environment: Staging\n  - Branch: release/1.0\n    Environment: Production\n",
    );
    assert_eq!(
        takofile.environment_for_branch("release/1.0"),
        Some("Staging")
    );
    let takofile = valid(
        "Project: P\nMappings:\n  - Branch: release/1.0\n    Environment: Production\n  - Branch: release/*\n    Environment: Staging\n",
    );
    assert_eq!(
        takofile.environment_for_branch("release/1.0"),
        Some("Production")
    );
    assert_eq!(
        takofile.environment_for_branch("release/2.0"),
        Some("Staging")
    );
}

#[test]
fn no_mappings_key_routes_master_and_main_to_production() {
    let takofile = valid("Project: P\n");
    assert!(takofile.mappings_defaulted);
    assert_eq!(takofile.mappings.len(), 2);
    assert_eq!(
        takofile.environment_for_branch("master"),
        Some("Production")
    );
    assert_eq!(takofile.environment_for_branch("main"), Some("Production"));
    assert_eq!(takofile.environment_for_branch("develop"), None);
    assert_eq!(takofile.environment_for_tag("v1"), None);
}

#[test]
fn empty_mappings_route_nothing_and_warn() {
    let takofile = valid("Project: P\nMappings: []\n");
    assert!(!takofile.mappings_defaulted);
    assert_eq!(takofile.environment_for_branch("master"), None);
    assert_eq!(takofile.warnings.len(), 1);
    assert!(takofile.warnings[0].message.contains("no push will deploy"));
}

#[test]
fn shadowed_mapping_is_a_warning() {
    let takofile = valid(
        "Project: P\nMappings:\n  - Branch: master\n    Environment: Production\n  - Branch: master\n    Environment: Staging\n",
    );
    assert_eq!(
        takofile.environment_for_branch("master"),
        Some("Production")
    );
    assert_eq!(takofile.warnings.len(), 1);
    assert_eq!(takofile.warnings[0].line, 5);
}
