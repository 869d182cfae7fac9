//! Deployment freezes (journey.md §5), without the clock: when a freeze
//! holds and until when.
//!
//! A freeze is one window (`from` to `to`, UTC) or a weekly rule: days of
//! the week and a time of day span in UTC (`sat,sun 00:00-24:00`, written
//! `--every sat,sun --from 00:00 --to 24:00`). A span whose end is before
//! its start runs past midnight (`fri 22:00-06:00`: Friday 22:00 to
//! Saturday 06:00). [`active_until`] answers whether it holds at an instant
//! and when it ends; manual deployments into a frozen environment are
//! refused, automatic ones held until then.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc, Weekday};

/// When a freeze holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreezeWindow {
    /// From one instant to another.
    Once {
        /// Its start.
        from: DateTime<Utc>,
        /// Its end (after `from`).
        to: DateTime<Utc>,
    },
    /// Every week.
    Weekly(WeeklyRule),
}

/// A weekly freeze: on `days`, from `start` to `end` minutes after midnight
/// UTC (an `end` at or before `start` ends the next day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyRule {
    /// The days it starts on.
    pub days: Vec<Weekday>,
    /// Minutes after midnight it starts (0..1440).
    pub start: u32,
    /// Minutes after midnight it ends (1..=1440).
    pub end: u32,
}

/// Why a freeze rule does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreezeRuleError {
    /// A day is not a day of the week.
    #[error("{0:?} is not a day of the week: write mon, tue, wed, thu, fri, sat or sun")]
    Day(String),
    /// A time is not `HH:MM` (00:00 to 24:00).
    #[error("{0:?} is not a time of day: write HH:MM in UTC, 00:00 to 24:00")]
    Time(String),
    /// The rule is not `DAYS HH:MM-HH:MM`.
    #[error("{0:?} is not a weekly rule: write days and a span, e.g. \"sat,sun 00:00-24:00\"")]
    Shape(String),
    /// The span is empty.
    #[error("the freeze's start and end are the same time: nothing would be frozen")]
    Empty,
}

impl WeeklyRule {
    /// Reads `sat,sun 00:00-24:00`.
    pub fn parse(text: &str) -> Result<WeeklyRule, FreezeRuleError> {
        let shape = || FreezeRuleError::Shape(text.to_owned());
        let (days, span) = text.trim().split_once(' ').ok_or_else(shape)?;
        let (start, end) = span.trim().split_once('-').ok_or_else(shape)?;
        WeeklyRule::new(days, start, end)
    }

    /// A rule from its days (`sat,sun`) and times (`00:00`, `24:00`).
    pub fn new(days: &str, start: &str, end: &str) -> Result<WeeklyRule, FreezeRuleError> {
        let mut parsed = Vec::new();
        for day in days.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let weekday: Weekday = day
                .parse()
                .map_err(|_| FreezeRuleError::Day(day.to_owned()))?;
            if !parsed.contains(&weekday) {
                parsed.push(weekday);
            }
        }
        if parsed.is_empty() {
            return Err(FreezeRuleError::Day(days.to_owned()));
        }
        let start = minutes(start)?;
        let end = minutes(end)?;
        if start == end || (start == 0 && end == 0) || start == 1440 {
            return Err(FreezeRuleError::Empty);
        }
        Ok(WeeklyRule {
            days: parsed,
            start,
            end,
        })
    }

    /// `sat,sun 00:00-24:00`, as [`WeeklyRule::parse`] reads it.
    pub fn to_text(&self) -> String {
        let days: Vec<String> = self
            .days
            .iter()
            .map(|d| d.to_string().to_lowercase())
            .collect();
        format!("{} {}-{}", days.join(","), hhmm(self.start), hhmm(self.end))
    }

    /// The window of this rule holding at `at`, as its end.
    fn active_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let length = if self.end > self.start {
            self.end - self.start
        } else {
            self.end + 1440 - self.start
        };
        // A window that holds now started today or yesterday.
        for back in [0, 1] {
            let day = at.date_naive() - Duration::days(back);
            if !self.days.contains(&day.weekday()) {
                continue;
            }
            let start =
                day.and_time(NaiveTime::MIN).and_utc() + Duration::minutes(i64::from(self.start));
            let end = start + Duration::minutes(i64::from(length));
            if start <= at && at < end {
                return Some(end);
            }
        }
        None
    }
}

impl FreezeWindow {
    /// When the freeze holding at `at` ends; `None` when it does not hold.
    /// Back-to-back weekly windows (`sat,sun 00:00-24:00`) end at the last.
    pub fn active_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            FreezeWindow::Once { from, to } => (*from <= at && at < *to).then_some(*to),
            FreezeWindow::Weekly(rule) => {
                let mut end = rule.active_until(at)?;
                // At most a week of back-to-back windows.
                for _ in 0..8 {
                    match rule.active_until(end) {
                        Some(next) if next > end => end = next,
                        _ => break,
                    }
                }
                Some(end)
            }
        }
    }

    /// Whether it can never hold again after `at` (a past one-off window).
    pub fn is_over(&self, at: DateTime<Utc>) -> bool {
        matches!(self, FreezeWindow::Once { to, .. } if *to <= at)
    }
}

/// The latest end among `windows` holding at `at` (several freezes may
/// overlap), with the index of the one ending last; `None` when none holds.
pub fn active_until(windows: &[FreezeWindow], at: DateTime<Utc>) -> Option<(usize, DateTime<Utc>)> {
    windows
        .iter()
        .enumerate()
        .filter_map(|(index, window)| window.active_until(at).map(|end| (index, end)))
        .max_by_key(|(_, end)| *end)
}

fn minutes(text: &str) -> Result<u32, FreezeRuleError> {
    let bad = || FreezeRuleError::Time(text.to_owned());
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h == 24 && m == 0 {
        return Ok(1440);
    }
    let time = NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)?;
    Ok(time.hour() * 60 + time.minute())
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_one_off_freeze_holds_between_its_ends() {
        let window = FreezeWindow::Once {
            from: at("2026-11-27T00:00:00Z"),
            to: at("2026-11-30T00:00:00Z"),
        };
        assert_eq!(window.active_until(at("2026-11-26T23:59:59Z")), None);
        assert_eq!(
            window.active_until(at("2026-11-27T00:00:00Z")),
            Some(at("2026-11-30T00:00:00Z"))
        );
        assert_eq!(window.active_until(at("2026-11-30T00:00:00Z")), None);
        assert!(window.is_over(at("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn a_weekly_rule_holds_on_its_days_and_joins_back_to_back_days() {
        let rule = WeeklyRule::parse("sat,sun 00:00-24:00").unwrap();
        assert_eq!(rule.to_text(), "sat,sun 00:00-24:00");
        let window = FreezeWindow::Weekly(rule);
        // 2026-12-05 is a Saturday.
        assert_eq!(
            window.active_until(at("2026-12-05T10:00:00Z")),
            Some(at("2026-12-07T00:00:00Z"))
        );
        assert_eq!(
            window.active_until(at("2026-12-06T23:00:00Z")),
            Some(at("2026-12-07T00:00:00Z"))
        );
        assert_eq!(window.active_until(at("2026-12-07T00:00:00Z")), None);
        assert_eq!(window.active_until(at("2026-12-04T23:59:00Z")), None);
    }

    #[test]
    fn a_span_past_midnight_ends_the_next_day() {
        let window = FreezeWindow::Weekly(WeeklyRule::parse("fri 22:00-06:00").unwrap());
        // 2026-12-04 is a Friday.
        assert_eq!(
            window.active_until(at("2026-12-05T05:00:00Z")),
            Some(at("2026-12-05T06:00:00Z"))
        );
        assert_eq!(window.active_until(at("2026-12-04T21:59:00Z")), None);
    }

    #[test]
    fn bad_rules_say_what_to_write() {
        for (text, expected) in [
            ("sat 00:00", "not a weekly rule"),
            ("someday 00:00-01:00", "not a day of the week"),
            ("sat 25:00-26:00", "not a time of day"),
            ("sat 10:00-10:00", "nothing would be frozen"),
        ] {
            let error = WeeklyRule::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn overlapping_freezes_end_with_the_last() {
        let windows = [
            FreezeWindow::Once {
                from: at("2026-12-01T00:00:00Z"),
                to: at("2026-12-02T00:00:00Z"),
            },
            FreezeWindow::Once {
                from: at("2026-12-01T12:00:00Z"),
                to: at("2026-12-03T00:00:00Z"),
            },
        ];
        assert_eq!(
            active_until(&windows, at("2026-12-01T13:00:00Z")),
            Some((1, at("2026-12-03T00:00:00Z")))
        );
        assert_eq!(active_until(&windows, at("2026-12-04T00:00:00Z")), None);
    }
}
