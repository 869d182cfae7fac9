//! `Retries` and `RetryDelay` on a step: read into the plan, defaults, and
//! every mistake a diagnostic with its position.

use std::time::Duration;

use tako_takofile::Retry;

use crate::{invalid, valid};

fn with_step(keys: &str) -> String {
    format!(
        "Project: Demo\nMappings:\n  - Branch: master\n    Environment: Production\nSteps:\n  - Name: Test\n    Run: echo hi\n{keys}"
    )
}

#[test]
fn retries_and_their_delay_are_read() {
    let takofile = valid(&with_step("    Retries: 2\n    RetryDelay: 1m30s\n"));
    let step = &takofile.steps.as_deref().unwrap()[0];
    assert_eq!(
        step.retry,
        Retry {
            retries: 2,
            delay: Duration::from_secs(90),
            delay_text: "1m30s".into(),
        }
    );
    assert_eq!(step.retry.attempts(), 3);
}

#[test]
fn without_retries_a_step_runs_once_and_the_delay_defaults_to_ten_seconds() {
    let takofile = valid(&with_step(""));
    let step = &takofile.steps.as_deref().unwrap()[0];
    assert_eq!(step.retry.attempts(), 1);
    assert_eq!(step.retry.delay, Duration::from_secs(10));
    let zero = valid(&with_step("    retries: 3\n    retrydelay: 0s\n"));
    let step = &zero.steps.as_deref().unwrap()[0];
    assert_eq!((step.retry.retries, step.retry.delay), (3, Duration::ZERO));
}

#[test]
fn each_mistake_is_reported_at_its_position() {
    let cases: [(&str, (usize, usize), &str); 6] = [
        (
            "    Retries: many\n",
            (8, 14),
            "Retries must be a whole number from 0 to 10, found many",
        ),
        (
            "    Retries: 11\n",
            (8, 14),
            "Retries must be a whole number from 0 to 10, found 11",
        ),
        (
            "    Retries: -1\n",
            (8, 14),
            "Retries must be a whole number from 0 to 10, found -1",
        ),
        (
            "    RetryDelay: 5s\n",
            (8, 5),
            "RetryDelay only applies to a step with Retries, and step Test has none",
        ),
        (
            "    Retries: 1\n    RetryDelay: soon\n",
            (9, 17),
            "invalid RetryDelay soon: expected number at 0",
        ),
        (
            "    Retries: 1\n    RetryDelay: 2h\n",
            (9, 17),
            "RetryDelay 2h is longer than 1h",
        ),
    ];
    for (keys, (line, column), message) in cases {
        let diagnostics = invalid(&with_step(keys));
        let found: Vec<(usize, usize, &str)> = diagnostics
            .0
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        assert_eq!(found, [(line, column, message)], "for {keys:?}");
        assert!(diagnostics.0[0].hint.is_some(), "{keys:?} has a hint");
    }
}

#[test]
fn retries_on_a_step_with_roles_are_accepted() {
    let takofile = valid(&with_step(
        "    Roles: [web]\n    Retries: 2\n    RetryDelay: 0s\n",
    ));
    let step = &takofile.steps.as_deref().unwrap()[0];
    assert_eq!(step.retry.retries, 2);
    assert_eq!(step.retry.attempts(), 3);
    assert!(step.targets.is_some());
}
