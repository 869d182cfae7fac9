//! `Retention:`: what the server keeps of this project's history, each
//! entry overriding the server's setting of the same name. The value types
//! and their text forms are shared with the server's settings
//! (`retention_releases = 10`, `retention_task_logs = "30d"`), so the
//! takofile and `tako.toml` read the same.

use std::time::Duration;

/// How many releases are kept per project and environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReleases {
    /// Every release (`all`).
    All,
    /// The newest this many (at least 1).
    Newest(u32),
}

impl KeepReleases {
    /// `all` or a whole number from 1 (`10`).
    pub fn parse(text: &str) -> Result<KeepReleases, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(KeepReleases::All);
        }
        match text.parse::<u32>() {
            Ok(0) => {
                Err("0 would remove every release: expected all or a whole number from 1".into())
            }
            Ok(n) => Ok(KeepReleases::Newest(n)),
            Err(_) => Err(format!(
                "expected all or a whole number from 1 (the newest releases kept per environment), got {text:?}"
            )),
        }
    }
}

/// How long something is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepFor {
    /// Never removed (`forever`).
    Forever,
    /// Removed once this old (`30d`, `12h`; not zero).
    For(Duration),
}

impl KeepFor {
    /// `forever` or a duration that is not zero (`30d`, `12h`, `90m`).
    pub fn parse(text: &str) -> Result<KeepFor, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("forever") {
            return Ok(KeepFor::Forever);
        }
        match humantime::parse_duration(text) {
            Ok(duration) if !duration.is_zero() => Ok(KeepFor::For(duration)),
            Ok(_) => Err(format!(
                "{text} would remove everything at once: expected forever or a duration such as 30d, 12h or 90m"
            )),
            Err(error) => Err(format!(
                "expected forever or a duration such as 30d, 12h or 90m ({error}), got {text:?}"
            )),
        }
    }

    /// The age past which something goes; `None`: kept forever.
    pub fn duration(self) -> Option<Duration> {
        match self {
            KeepFor::Forever => None,
            KeepFor::For(duration) => Some(duration),
        }
    }
}

/// A project's `Retention:`; `None`: the server's setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// `Releases`: the newest releases kept per environment.
    pub releases: Option<KeepReleases>,
    /// `TaskLogs`: how long a finished deployment's task log is kept.
    pub task_logs: Option<KeepFor>,
    /// `Deliveries`: how long a routed webhook delivery is kept.
    pub deliveries: Option<KeepFor>,
    /// `WorkingDirectories`: how long a finished deployment's working
    /// directory is kept.
    pub working_directories: Option<KeepFor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ages_read_as_in_tako_toml() {
        assert_eq!(KeepReleases::parse(" ALL "), Ok(KeepReleases::All));
        assert_eq!(KeepReleases::parse("10"), Ok(KeepReleases::Newest(10)));
        assert!(
            KeepReleases::parse("0")
                .unwrap_err()
                .contains("every release")
        );
        assert!(KeepReleases::parse("-1").is_err());
        assert_eq!(KeepFor::parse("forever"), Ok(KeepFor::Forever));
        assert_eq!(
            KeepFor::parse("30d"),
            Ok(KeepFor::For(Duration::from_secs(30 * 86_400)))
        );
        assert_eq!(
            KeepFor::parse("10s"),
            Ok(KeepFor::For(Duration::from_secs(10)))
        );
        assert!(
            KeepFor::parse("0s")
                .unwrap_err()
                .contains("everything at once")
        );
        assert!(KeepFor::parse("soon").is_err());
    }
}
