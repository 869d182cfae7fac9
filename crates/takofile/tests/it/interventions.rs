//! Steps that wait for a person: `Uses: manual-intervention` (its
//! `Instructions` and `Roles` under `With`) and `OnFailure` (`fail`, `ask`):
//! read into the plan, and every mistake a diagnostic with its position.

use tako_takofile::{OnFailure, StepAction, UsesKind};

use crate::{invalid, valid};

fn with_steps(steps: &str) -> String {
    format!(
        "Project: Demo\nMappings:\n  - Branch: master\n    Environment: Production\nSteps:\n{steps}"
    )
}

#[test]
fn a_manual_intervention_and_on_failure_are_read() {
    let takofile = valid(&with_steps(
        "  - Name: Wait\n    Uses: Manual-Intervention\n    With:\n      Instructions: \"Check #{Url}\"\n      Roles: [Deployer, admin, deployer]\n  - Name: Test\n    OnFailure: Ask\n    Run: ./test.sh\n  - Name: Plain\n    Run: echo\n",
    ));
    let steps = takofile.steps.as_deref().unwrap();
    assert!(matches!(
        &steps[0].action,
        StepAction::Uses {
            kind: UsesKind::ManualIntervention,
            ..
        }
    ));
    let (instructions, roles) = steps[0].manual_intervention().unwrap();
    assert_eq!(instructions, "Check #{Url}");
    assert_eq!(roles, ["deployer", "admin"]);
    assert_eq!(steps[1].on_failure, OnFailure::Ask);
    assert_eq!(steps[2].on_failure, OnFailure::Fail);
    assert!(steps[2].manual_intervention().is_none());
    let default_roles = valid(&with_steps(
        "  - Name: Wait\n    Uses: manual-intervention\n    With:\n      Instructions: go\n",
    ));
    let step = &default_roles.steps.as_deref().unwrap()[0];
    assert_eq!(step.manual_intervention().unwrap().1, Vec::<String>::new());
}

#[test]
fn each_mistake_is_reported_at_its_position() {
    let cases: [(&str, (usize, usize), &str); 6] = [
        (
            "  - Name: Wait\n    Uses: manual-intervention\n",
            (7, 11),
            "manual-intervention needs Instructions under With",
        ),
        (
            "  - Name: Wait\n    Uses: manual-intervention\n    With:\n      Instructions: go\n      Roles: [admin, boss]\n",
            (10, 22),
            "unknown approval role boss",
        ),
        (
            "  - Name: Wait\n    Uses: manual-intervention\n    With:\n      Instructions: go\n      Instruction: typo\n",
            (10, 7),
            "unknown key Instruction in With for manual-intervention",
        ),
        (
            "  - Name: Wait\n    Uses: manual-intervention\n    Roles: [web]\n    With:\n      Instructions: go\n",
            (8, 5),
            "Roles does not apply to a manual-intervention step like step Wait: it runs nothing, it waits for a person",
        ),
        (
            "  - Name: Test\n    Run: ./test.sh\n    OnFailure: retry\n",
            (8, 16),
            "unknown OnFailure retry",
        ),
        (
            "  - Name: Test\n    Run: ./test.sh\n    Roles: [web]\n    OnFailure: ask\n",
            (9, 5),
            "OnFailure: ask is not supported on a step with Roles yet (step Test)",
        ),
    ];
    for (steps, (line, column), message) in cases {
        let diagnostics = invalid(&with_steps(steps));
        let found: Vec<(usize, usize, &str)> = diagnostics
            .0
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        assert!(
            found.contains(&(line, column, message)),
            "{steps}: expected {message} at {line}:{column}, got {found:?}"
        );
    }
}
