//! The keys that send a step to agents (`Roles` and its companions): read
//! into the plan, and every mistake a diagnostic with its position.

use tako_takofile::{StepTargets, WhenNoAgents};

use crate::{invalid, valid};

fn with_step(keys: &str) -> String {
    format!(
        "Project: Demo\nMappings:\n  - Branch: master\n    Environment: Production\nSteps:\n  - Name: Test\n    Run: echo hi\n{keys}"
    )
}

#[test]
fn roles_and_their_companions_are_read() {
    let takofile = valid(&with_step(
        "    Roles: [windows, ps, Windows]\n    MaxParallelism: 1\n    WhenNoAgents: skip\n    SkipOfflineAgents: true\n",
    ));
    let step = &takofile.steps.as_deref().unwrap()[0];
    assert_eq!(
        step.targets,
        Some(StepTargets {
            roles: vec!["windows".into(), "ps".into()],
            max_parallelism: Some(1),
            when_no_agents: WhenNoAgents::Skip,
            skip_offline_agents: true,
        })
    );
}

#[test]
fn target_roles_and_octopus_names_read_the_same_and_default_the_rest() {
    for key in ["TargetRoles", "Octopus.Action.TargetRoles", "roles"] {
        let takofile = valid(&with_step(&format!("    {key}: \"windows, ps\"\n")));
        let step = &takofile.steps.as_deref().unwrap()[0];
        assert_eq!(
            step.targets,
            Some(StepTargets {
                roles: vec!["windows".into(), "ps".into()],
                max_parallelism: None,
                when_no_agents: WhenNoAgents::Fail,
                skip_offline_agents: false,
            }),
            "{key}"
        );
    }
    let takofile = valid(&with_step(""));
    assert_eq!(takofile.steps.as_deref().unwrap()[0].targets, None);
}

#[test]
fn mistakes_are_diagnostics_with_positions() {
    let cases = [
        ("    Roles: []\n", 8, "Roles is an empty list"),
        (
            "    Roles: {a: b}\n",
            8,
            "Roles must be a list, found a mapping",
        ),
        ("    Roles: \"a,,b\"\n", 8, "Roles has an empty role"),
        (
            "    Roles: [ps]\n    TargetRoles: [ps]\n",
            9,
            "has both Roles and TargetRoles",
        ),
        (
            "    Roles: [ps]\n    MaxParallelism: 0\n",
            9,
            "MaxParallelism must be a whole number from 1",
        ),
        (
            "    Roles: [ps]\n    MaxParallelism: two\n",
            9,
            "MaxParallelism must be a whole number from 1",
        ),
        (
            "    Roles: [ps]\n    WhenNoAgents: wait\n",
            9,
            "unknown WhenNoAgents wait",
        ),
        (
            "    Roles: [ps]\n    SkipOfflineAgents: yes\n",
            9,
            "SkipOfflineAgents must be true or false",
        ),
        (
            "    MaxParallelism: 2\n",
            8,
            "MaxParallelism only applies to a step with Roles",
        ),
        (
            "    WhenNoAgents: skip\n",
            8,
            "WhenNoAgents only applies to a step with Roles",
        ),
        ("    Rolse: [ps]\n", 8, "unknown key"),
    ];
    for (keys, line, message) in cases {
        let diagnostics = invalid(&with_step(keys));
        let errors: Vec<_> = diagnostics.errors().collect();
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.message.contains(message)),
            "{keys:?}: expected {message:?} at line {line}, got:\n{diagnostics}"
        );
    }
}

#[test]
fn a_variable_may_be_scoped_to_roles() {
    let text = "Project: Demo\nMappings:\n  - Branch: main\n    Environment: Production\nVariables:\n  - Name: Url\n    Value: https://web\n    Environments: [Production]\n    Roles: [web, api]\n  - Name: Url\n    Value: https://any\n";
    let takofile = valid(text);
    assert_eq!(takofile.variables[0].roles, ["web", "api"]);
    assert_eq!(takofile.variables[0].environments, ["Production"]);
    assert!(takofile.variables[1].roles.is_empty());

    let diagnostics = invalid(&text.replace("Roles: [web, api]", "Roles: []"));
    let found: Vec<(usize, &str)> = diagnostics
        .0
        .iter()
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(found, [(9, "Roles is an empty list")], "{diagnostics}");
}
