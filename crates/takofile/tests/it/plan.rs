//! The spec's extended example (fixtures/valid/spec-extended.yml) becomes the
//! expected plan, and step defaults are what the spec says.

use std::time::Duration;

use tako_takofile::{Condition, Shell, StepAction, UsesKind, VariableDecl, WithValue};

use crate::{fixture, valid};

fn text(value: &str) -> WithValue {
    WithValue::Text(value.to_owned())
}

#[test]
fn spec_extended_example_is_the_expected_plan() {
    let takofile = valid(&fixture("valid/spec-extended.yml"));
    assert!(takofile.warnings.is_empty(), "{:?}", takofile.warnings);
    assert_eq!(takofile.project, "StatusCakeDSC");
    assert_eq!(takofile.server, None);
    assert_eq!(
        takofile.manifest.as_deref(),
        Some("Modules/StatusCakeDSC/StatusCakeDSC.psd1")
    );
    assert_eq!(
        takofile.version.as_deref(),
        Some("#{Tako.Manifest.Version}-ci.#{Tako.Build}")
    );
    assert_eq!(
        takofile.variables,
        [
            VariableDecl {
                name: "GitBranch".into(),
                value: "master".into(),
                environments: vec!["Production".into()],
                roles: Vec::new(),
            },
            VariableDecl {
                name: "GitBranch".into(),
                value: "develop".into(),
                environments: vec!["DevTest".into()],
                roles: Vec::new(),
            },
        ]
    );

    let steps = takofile.steps.as_deref().expect("steps");
    let names: Vec<&str> = steps.iter().map(|step| step.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Write creds",
            "Run tests",
            "Publish to PS Gallery",
            "Tag release",
            "Notify Slack"
        ]
    );
    let lines: Vec<usize> = steps.iter().map(|step| step.line).collect();
    assert_eq!(lines, [17, 22, 25, 31, 38]);

    assert_eq!(
        steps[0].action,
        StepAction::Uses {
            kind: UsesKind::WriteFile,
            with: vec![
                ("Path".into(), text(".creds")),
                (
                    "Content".into(),
                    text(r##"{"Username":"#{StatusCakeUser}","ApiKey":"#{StatusCakeApiKey}"}"##)
                ),
            ],
        }
    );
    assert_eq!(
        steps[1].action,
        StepAction::Run("pwsh -NoProfile -Command 'Invoke-Pester -EnableExit'\n".into())
    );
    assert_eq!(steps[1].shell, Shell::Bash);
    assert_eq!(steps[1].condition, Condition::Success);
    assert_eq!(steps[1].timeout.duration, Duration::from_secs(3600));
    assert_eq!(steps[1].timeout.text, "1h");
    assert!(steps[1].environments.is_empty());
    assert_eq!(steps[2].environments, ["Production"]);
    assert_eq!(
        steps[3].condition,
        Condition::Expression(
            "#{if Octopus.Action[Publish to PS Gallery].Output.Published}true#{/if}".into()
        )
    );
    assert_eq!(steps[4].condition, Condition::Always);
    assert!(matches!(
        &steps[4].action,
        StepAction::Uses { kind: UsesKind::Slack, with } if with == &[("WebhookUrl".to_owned(), text("#{SlackWebhookUrl}"))]
    ));
    assert_eq!(
        takofile.step("notify slack").map(|step| step.line),
        Some(38)
    );
}

#[test]
fn step_keys_parse_into_their_types() {
    let takofile = valid(
        r##"Project: P
Steps:
  - name: Deploy
    script: deploy.js
    shell: node {0}
    environments: Production
    excludeEnvironments: [DevTest, QA]
    condition: FAILURE
    timeout: 10m
    workingDirectory: site/app
    env:
      B: 2
      A: "yes"
      C: 1.50
      D:
  - Name: Template
    Uses: steps/notify.JSON
    With:
      Flag: true
      Count: 10
      Price: 1.50
      List: [a, 2]
      Nested: {k: v}
  - Name: Http
    Uses: HTTP
    With:
      url: https://example.com
      headers:
        X-Token: "#{Token}"
"##,
    );
    let steps = takofile.steps.as_deref().expect("steps");
    let deploy = &steps[0];
    assert_eq!(deploy.action, StepAction::Script("deploy.js".into()));
    assert_eq!(deploy.shell, Shell::Command("node {0}".into()));
    assert_eq!(deploy.environments, ["Production"]);
    assert_eq!(deploy.exclude_environments, ["DevTest", "QA"]);
    assert_eq!(deploy.condition, Condition::Failure);
    assert_eq!(deploy.timeout.duration, Duration::from_secs(600));
    assert_eq!(deploy.timeout.text, "10m");
    assert_eq!(deploy.working_directory.as_deref(), Some("site/app"));
    assert_eq!(
        deploy.env,
        [
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "yes".to_owned()),
            ("C".to_owned(), "1.50".to_owned()),
            ("D".to_owned(), String::new()),
        ]
    );
    assert_eq!(
        steps[1].action,
        StepAction::Uses {
            kind: UsesKind::Template("steps/notify.JSON".into()),
            with: vec![
                ("Flag".into(), text("true")),
                ("Count".into(), text("10")),
                ("Price".into(), text("1.50")),
                ("List".into(), WithValue::List(vec![text("a"), text("2")])),
                (
                    "Nested".into(),
                    WithValue::Map(vec![("k".into(), text("v"))])
                ),
            ],
        }
    );
    assert_eq!(
        steps[2].action,
        StepAction::Uses {
            kind: UsesKind::Http,
            with: vec![
                ("Url".into(), text("https://example.com")),
                (
                    "Headers".into(),
                    WithValue::Map(vec![("X-Token".into(), text("#{Token}"))])
                ),
            ],
        }
    );
}

#[test]
fn uses_kind_names_round_trip() {
    for kind in UsesKind::BUILT_IN {
        assert_eq!(UsesKind::parse(kind.name()), Some(kind.clone()));
    }
    assert_eq!(UsesKind::parse("slak"), None);
    assert_eq!(UsesKind::parse(".json"), None);
}

#[test]
fn empty_steps_key_means_an_empty_process() {
    let takofile = valid("Project: P\nSteps: []\n");
    assert_eq!(takofile.steps, Some(Vec::new()));
    assert_eq!(takofile.warnings.len(), 1);
}
