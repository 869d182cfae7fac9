//! `Lifecycle:`: its phases read into the plan, and every mistake (unknown
//! environments, cycles, `Requires` naming a later phase, bad approvals) a
//! diagnostic with its position.

use std::time::Duration;

use tako_takofile::{Approval, NotBy};

use crate::{invalid, valid};

const HEAD: &str = "Project: Demo\nMappings:\n  - Branch: develop\n    Environment: DevTest\n  - Branch: master\n    Environment: Production\n";

fn with_lifecycle(lifecycle: &str) -> String {
    format!("{HEAD}Lifecycle:\n{lifecycle}")
}

const SPEC: &str = "  - Environment: DevTest\n    AutoDeploy: true\n  - Environment: Staging\n    AutoDeploy: true\n  - Environment: Production\n    Requires: [Staging]\n    Approval: { Roles: [admin], Count: 1, NotBy: pusher }\n";

#[test]
fn the_specs_lifecycle_is_read_in_order() {
    let takofile = valid(&with_lifecycle(SPEC));
    let lifecycle = takofile.lifecycle.expect("a lifecycle");
    assert_eq!(
        lifecycle.environments(),
        ["DevTest", "Staging", "Production"]
    );
    let production = &lifecycle.phases[2];
    assert!(lifecycle.phases[0].auto_deploy && lifecycle.phases[1].auto_deploy);
    assert!(!production.auto_deploy);
    assert_eq!(production.requires, ["Staging"]);
    assert_eq!(production.line, 12);
    assert_eq!(
        production.approval,
        Some(Approval {
            roles: vec!["admin".into()],
            count: 1,
            not_by: Some(NotBy::Pusher),
            timeout: Duration::from_secs(7 * 24 * 3600),
            timeout_text: "7d".into(),
        })
    );
    assert!(takofile.warnings.is_empty(), "{:?}", takofile.warnings);
    assert_eq!(valid(HEAD).lifecycle, None);
}

#[test]
fn approvals_default_and_read_their_settings() {
    let takofile = valid(&with_lifecycle(
        "  - Environment: DevTest\n  - Environment: Production\n    Requires: DevTest\n    Approval:\n      Roles: [Admin, deployer, admin]\n      Count: 2\n      NotBy: Creator\n      Timeout: 90s\n  - Environment: Staging\n    Approval: {}\n",
    ));
    let lifecycle = takofile.lifecycle.unwrap();
    let approval = lifecycle.phases[1].approval.clone().unwrap();
    assert_eq!(approval.roles, ["admin", "deployer"]);
    assert_eq!(approval.count, 2);
    assert_eq!(approval.not_by, Some(NotBy::Creator));
    assert_eq!(approval.timeout, Duration::from_secs(90));
    let defaults = lifecycle.phases[2].approval.clone().unwrap();
    assert_eq!(defaults.roles, ["admin"]);
    assert_eq!((defaults.count, defaults.not_by), (1, None));
    assert_eq!(defaults.timeout_text, "7d");
}

#[test]
fn an_auto_deploy_false_on_a_mapped_phase_is_a_warning() {
    let takofile = valid(&with_lifecycle(
        "  - Environment: DevTest\n    AutoDeploy: false\n  - Environment: Production\n",
    ));
    let warning = &takofile.warnings[0];
    assert_eq!((warning.line, warning.column), (9, 17));
    assert!(
        warning
            .message
            .contains("AutoDeploy: false has no effect on pushes"),
        "{warning}"
    );
}

#[test]
fn mistakes_are_diagnostics_with_positions() {
    let two = "  - Environment: DevTest\n  - Environment: Production\n";
    let cases: Vec<(String, usize, &str)> = vec![
        (
            "  - Environment: DevTest\n    Requires: [Production]\n  - Environment: Production\n".into(),
            9,
            "DevTest requires Production, a later phase (line 10)",
        ),
        (
            "  - Environment: DevTest\n    Requires: [Production]\n  - Environment: Production\n    Requires: DevTest\n".into(),
            9,
            "DevTest requires Production, which requires DevTest: a cycle",
        ),
        (
            "  - Environment: DevTest\n    Requires: devtest\n  - Environment: Production\n".into(),
            9,
            "DevTest requires itself: a cycle",
        ),
        (
            format!("{two}    Requires: [Stagign]\n"),
            10,
            "Production requires unknown environment Stagign",
        ),
        (
            "  - Environment: DevTest\n".into(),
            6,
            "Branch master deploys to Production, which the Lifecycle does not name",
        ),
        (
            format!("{two}  - Environment: devtest\n"),
            10,
            "environment devtest is already a phase of the Lifecycle (line 8)",
        ),
        ("  - AutoDeploy: true\n".into(), 8, "a Lifecycle entry needs Environment"),
        (format!("{two}    AutoDeploy: yes\n"), 10, "AutoDeploy must be true or false"),
        (format!("{two}    Approval: {{ Roles: [owner] }}\n"), 10, "unknown approval role owner"),
        (format!("{two}    Approval: {{ Count: 0 }}\n"), 10, "Count must be a whole number from 1"),
        (format!("{two}    Approval: {{ NotBy: me }}\n"), 10, "unknown NotBy me"),
        (format!("{two}    Approval: {{ Timeout: soon }}\n"), 10, "invalid Timeout soon"),
        (format!("{two}    Approval: {{ Timeout: 0s }}\n"), 10, "Timeout 0s is zero"),
        (format!("{two}    Approval: yes\n"), 10, "Approval must be a mapping"),
        (format!("{two}    Aproval: {{}}\n"), 10, "unknown key Aproval in a Lifecycle entry"),
        ("  Environment: DevTest\n".into(), 8, "Lifecycle must be a list, found a mapping"),
    ];
    for (lifecycle, line, message) in cases {
        let diagnostics = invalid(&with_lifecycle(&lifecycle));
        let errors: Vec<_> = diagnostics.errors().collect();
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.message.contains(message) && e.hint.is_some()),
            "{lifecycle:?}: expected {message:?} at line {line}, got:\n{diagnostics}"
        );
    }
    let empty = invalid(&format!("{HEAD}Lifecycle: []\n"));
    assert!(
        empty.to_string().contains("Lifecycle is an empty list"),
        "{empty}"
    );
    // Without Mappings, master and main deploy to Production.
    let defaulted = invalid("Project: Demo\nLifecycle:\n  - Environment: DevTest\n");
    assert!(
        defaulted
            .to_string()
            .contains("takofile:2:1: error: Branch master deploys to Production"),
        "{defaulted}"
    );
}
