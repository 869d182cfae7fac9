//! `Retention`: read into the plan (each entry overriding the server's
//! setting, the others left to it), and every mistake a diagnostic with
//! its position and a hint.

use std::time::Duration;

use tako_takofile::{KeepFor, KeepReleases, Retention};

use crate::{invalid, valid};

fn with_retention(block: &str) -> String {
    format!("Project: Demo\nMappings:\n  - Branch: master\n    Environment: Production\n{block}")
}

#[test]
fn retention_is_read_and_what_it_leaves_out_is_the_servers() {
    assert_eq!(valid(&with_retention("")).retention, Retention::default());
    let takofile = valid(&with_retention(
        "Retention:\n  Releases: 10\n  tasklogs: 30d\n  Deliveries: forever\n",
    ));
    assert_eq!(
        takofile.retention,
        Retention {
            releases: Some(KeepReleases::Newest(10)),
            task_logs: Some(KeepFor::For(Duration::from_secs(30 * 86_400))),
            deliveries: Some(KeepFor::Forever),
            working_directories: None,
        }
    );
    let all = valid(&with_retention(
        "Retention:\n  Releases: all\n  WorkingDirectories: 12h\n",
    ));
    assert_eq!(all.retention.releases, Some(KeepReleases::All));
    assert_eq!(
        all.retention.working_directories,
        Some(KeepFor::For(Duration::from_secs(12 * 3600)))
    );
}

#[test]
fn each_mistake_is_reported_at_its_position() {
    type Found<'a> = Vec<(usize, usize, &'a str)>;
    let cases: [(&str, Found); 5] = [
        (
            "Retention:\n  Releases: 0\n",
            vec![(
                6,
                13,
                "invalid Retention Releases 0: 0 would remove every release: expected all or a whole number from 1",
            )],
        ),
        (
            "Retention:\n  TaskLogs: 0s\n  Deliveries: soon\n",
            vec![
                (
                    6,
                    13,
                    "invalid Retention TaskLogs 0s: 0s would remove everything at once: expected forever or a duration such as 30d, 12h or 90m",
                ),
                (
                    7,
                    15,
                    "invalid Retention Deliveries soon: expected forever or a duration such as 30d, 12h or 90m (expected number at 0), got \"soon\"",
                ),
            ],
        ),
        (
            "Retention: 10\n",
            vec![(5, 12, "Retention must be a mapping, found text")],
        ),
        (
            "Retention:\n  Releases: [1, 2]\n",
            vec![(6, 13, "Retention Releases must be a value, found a list")],
        ),
        ("Retention:\n  AuditLog: 90d\n", vec![(6, 3, "")]),
    ];
    for (block, expected) in cases {
        let diagnostics = invalid(&with_retention(block));
        let found: Vec<(usize, usize, &str)> = diagnostics
            .0
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        if expected[0].2.is_empty() {
            // An unknown key: the generic message, at the key.
            assert_eq!(found.len(), 1, "{diagnostics}");
            assert_eq!((found[0].0, found[0].1), (expected[0].0, expected[0].1));
            assert!(found[0].2.contains("AuditLog"), "{diagnostics}");
        } else {
            assert_eq!(found, expected, "for {block:?}");
        }
        assert!(
            diagnostics.0.iter().all(|d| d.hint.is_some()),
            "{block:?} has hints"
        );
    }
}
