//! `Retention:`: a mapping of `Releases`, `TaskLogs`, `Deliveries` and
//! `WorkingDirectories`, each read as the server's setting of the same
//! kind (`crate::retention`).

use super::{Ctx, display_text};
use crate::retention::{KeepFor, KeepReleases, Retention};
use crate::yaml::{Entry, Value};

const RETENTION_KEYS: &[&str] = &["Releases", "TaskLogs", "Deliveries", "WorkingDirectories"];

impl Ctx {
    /// Validates `Retention`.
    pub(super) fn retention(&mut self, entry: &Entry) -> Option<Retention> {
        let Value::Mapping(entries) = &entry.value.value else {
            self.error(
                entry.value.pos,
                format!("Retention must be a mapping, found {}", entry.value.kind()),
                Some("write for example `Retention:` then `  Releases: 10` and `  TaskLogs: 30d` indented below it".into()),
            );
            return None;
        };
        let fields = self.fields(entries, RETENTION_KEYS, "Retention", |_| None);
        let before = self.error_count();
        let mut retention = Retention::default();
        for (key, entry) in &fields.found {
            let Some(scalar) = entry.value.as_scalar().filter(|s| !s.is_null()) else {
                self.error(
                    entry.value.pos,
                    format!(
                        "Retention {key} must be a value, found {}",
                        entry.value.kind()
                    ),
                    Some(hint(key).into()),
                );
                continue;
            };
            let text = scalar.text.trim();
            let fail = |ctx: &mut Ctx, message: String| {
                ctx.error(
                    entry.value.pos,
                    format!("invalid Retention {key} {}: {message}", display_text(text)),
                    Some(hint(key).into()),
                );
            };
            match *key {
                "Releases" => match KeepReleases::parse(text) {
                    Ok(keep) => retention.releases = Some(keep),
                    Err(message) => fail(self, message),
                },
                other => match KeepFor::parse(text) {
                    Ok(keep) => match other {
                        "TaskLogs" => retention.task_logs = Some(keep),
                        "Deliveries" => retention.deliveries = Some(keep),
                        _ => retention.working_directories = Some(keep),
                    },
                    Err(message) => fail(self, message),
                },
            }
        }
        (self.error_count() == before).then_some(retention)
    }
}

fn hint(key: &str) -> &'static str {
    match key {
        "Releases" => {
            "expected all or how many of the newest releases to keep per environment, such as 10"
        }
        _ => "expected forever or how long to keep it, such as 30d, 12h or 90m",
    }
}
