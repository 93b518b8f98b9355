//! The release calendar: allow windows (promotions only inside them) and freeze windows (never
//! inside them), one-off or recurring, as Argo CD's sync windows work.
//!
//! A recurring window opens at each time its cron schedule (five fields, in its time zone)
//! fires and stays open for its duration. At an instant, for a release of a given plugin:
//! - a **deny** window that is open and applies wins: no promotion;
//! - otherwise, if any **allow** window applies to the plugin, one of them must be open;
//! - otherwise promotions are free.
//!
//! Only promotions wait (a stage that puts the version in front of more hosts: a rollout step,
//! GA); an abort or a rollback never consults the calendar.
//!
//! **Invariant:** [`Calendar::gate`] is a pure function of the windows, the plugin and the
//! instant; [`Calendar::next_open`] searches forward at most [`HORIZON_DAYS`] and says so when
//! nothing opens in that time, rather than looping.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};

/// How far ahead [`Calendar::next_open`] looks.
pub const HORIZON_DAYS: i64 = 400;
/// Longest window.
pub const MAX_WINDOW_DAYS: i64 = 366;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Allow,
    Deny,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Allow => "allow",
            WindowKind::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(WindowKind::Allow),
            "deny" | "freeze" => Some(WindowKind::Deny),
            _ => None,
        }
    }
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// From `start` (inclusive) to `end` (exclusive).
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// At each time `cron` fires in `tz`, for `duration`.
    Recurring {
        cron: String,
        duration: Duration,
        tz: Tz,
    },
}

/// One window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: i64,
    pub name: String,
    pub kind: WindowKind,
    pub schedule: Schedule,
    /// A glob over plugin ids; `None` applies to every plugin.
    pub plugins: Option<String>,
}

/// What the calendar says about a promotion now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Closed by this window (deny), or because no allow window is open.
    Closed {
        reason: String,
        /// When it opens, if within the horizon.
        opens_at: Option<DateTime<Utc>>,
    },
}

/// A problem with a window's definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

fn werr(field: &'static str, message: impl Into<String>) -> WindowError {
    WindowError {
        field,
        message: message.into(),
    }
}

/// Checks a cron expression (five fields: minute hour day-of-month month day-of-week).
pub fn parse_cron(text: &str) -> Result<Cron, WindowError> {
    if text.split_whitespace().count() != 5 {
        return Err(werr(
            "cron",
            format!(
                "`{text}` is not a five-field cron schedule (minute hour day-of-month month day-of-week), such as `0 22 * * FRI`"
            ),
        ));
    }
    Cron::from_str(text).map_err(|e| werr("cron", format!("`{text}`: {e}")))
}

/// Reads a time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_tz(text: &str) -> Result<Tz, WindowError> {
    Tz::from_str(text).map_err(|_| {
        werr(
            "timezone",
            format!(
                "`{text}` is not a time zone: use an IANA name such as `Europe/Berlin` or `UTC`"
            ),
        )
    })
}

impl Schedule {
    /// Checks a schedule's shape.
    pub fn check(&self) -> Result<(), WindowError> {
        match self {
            Schedule::Once { start, end } => {
                if end <= start {
                    return Err(werr("end", "a window must end after it starts"));
                }
                if *end - *start > Duration::days(MAX_WINDOW_DAYS) {
                    return Err(werr(
                        "end",
                        format!("a window lasts at most {MAX_WINDOW_DAYS} days"),
                    ));
                }
                Ok(())
            }
            Schedule::Recurring { cron, duration, .. } => {
                parse_cron(cron)?;
                if *duration <= Duration::zero() || *duration > Duration::days(MAX_WINDOW_DAYS) {
                    return Err(werr(
                        "duration",
                        format!(
                            "a window lasts more than nothing and at most {MAX_WINDOW_DAYS} days"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// The occurrence open at `at` (its start and end), if any.
    pub fn open_at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Schedule::Once { start, end } => (*start <= at && at < *end).then_some((*start, *end)),
            Schedule::Recurring { cron, duration, tz } => {
                let cron = parse_cron(cron).ok()?;
                let local = at.with_timezone(tz);
                let start = cron.find_previous_occurrence(&local, true).ok()?;
                let start = start.with_timezone(&Utc);
                let end = start + *duration;
                (at < end).then_some((start, end))
            }
        }
    }

    /// The first opening strictly after `after`, if any.
    pub fn next_start(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Once { start, .. } => (*start > after).then_some(*start),
            Schedule::Recurring { cron, tz, .. } => {
                let cron = parse_cron(cron).ok()?;
                cron.find_next_occurrence(&after.with_timezone(tz), false)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }
}

impl Window {
    pub fn applies_to(&self, plugin: &str) -> bool {
        self.plugins
            .as_ref()
            .is_none_or(|p| glob::Pattern::new(p).is_ok_and(|p| p.matches(plugin)))
    }
}

/// The windows in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    pub windows: Vec<Window>,
}

impl Calendar {
    pub fn new(windows: Vec<Window>) -> Self {
        Calendar { windows }
    }

    /// Whether a promotion of `plugin` may happen at `at`, without looking ahead.
    fn state_at(&self, plugin: &str, at: DateTime<Utc>) -> (Option<String>, Option<DateTime<Utc>>) {
        // A deny window open now: closed until the last such window ends.
        let denies: Vec<(&Window, DateTime<Utc>)> = self
            .windows
            .iter()
            .filter(|w| w.kind == WindowKind::Deny && w.applies_to(plugin))
            .filter_map(|w| w.schedule.open_at(at).map(|(_, end)| (w, end)))
            .collect();
        if let Some((w, _)) = denies.first() {
            let until = denies.iter().map(|(_, e)| *e).max();
            return (
                Some(format!(
                    "freeze window `{}` is in force until {}",
                    w.name,
                    until.map(|t| t.to_rfc3339()).unwrap_or_default()
                )),
                until,
            );
        }
        let allows: Vec<&Window> = self
            .windows
            .iter()
            .filter(|w| w.kind == WindowKind::Allow && w.applies_to(plugin))
            .collect();
        if allows.is_empty() || allows.iter().any(|w| w.schedule.open_at(at).is_some()) {
            return (None, None);
        }
        let next = allows
            .iter()
            .filter_map(|w| w.schedule.next_start(at))
            .min();
        let names: Vec<&str> = allows.iter().map(|w| w.name.as_str()).collect();
        (
            Some(format!(
                "promotions of `{plugin}` happen only inside allow window(s) {}, and none is open",
                names.join(", ")
            )),
            next,
        )
    }

    /// What the calendar says about promoting `plugin` at `at`, with the time it opens.
    pub fn gate(&self, plugin: &str, at: DateTime<Utc>) -> Gate {
        match self.state_at(plugin, at) {
            (None, _) => Gate::Open,
            (Some(reason), _) => Gate::Closed {
                opens_at: self.next_open(plugin, at),
                reason,
            },
        }
    }

    /// The first instant at or after `at` when a promotion of `plugin` may happen, within the
    /// horizon.
    pub fn next_open(&self, plugin: &str, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let horizon = at + Duration::days(HORIZON_DAYS);
        let mut t = at;
        // Each step moves to a window boundary strictly later; bounded both by the horizon and
        // by a step count, whatever the windows.
        for _ in 0..10_000 {
            if t > horizon {
                return None;
            }
            match self.state_at(plugin, t) {
                (None, _) => return Some(t),
                (Some(_), Some(next)) if next > t => t = next,
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn recurring(id: i64, kind: WindowKind, cron: &str, hours: i64, tz: &str) -> Window {
        Window {
            id,
            name: format!("w{id}"),
            kind,
            schedule: Schedule::Recurring {
                cron: cron.into(),
                duration: Duration::hours(hours),
                tz: parse_tz(tz).expect("tz"),
            },
            plugins: None,
        }
    }

    #[test]
    fn no_windows_means_open() {
        assert_eq!(Calendar::default().gate("p", Utc::now()), Gate::Open);
    }

    /// (windows, instant, open?, opens_at) — tests as data.
    #[test]
    fn deny_wins_over_allow_and_time_zones_count() {
        // Business hours in Berlin: 09:00 for 8 hours, Monday to Friday.
        let office = recurring(1, WindowKind::Allow, "0 9 * * MON-FRI", 8, "Europe/Berlin");
        // Friday freeze from 15:00 UTC for 3 days.
        let friday = recurring(2, WindowKind::Deny, "0 15 * * FRI", 66, "UTC");
        let cal = Calendar::new(vec![office.clone(), friday]);
        let cases = [
            // Tuesday 2026-12-01 10:00 Berlin = 09:00 UTC: inside office hours.
            ("2026-12-01T09:00:00Z", true, None),
            // Tuesday 07:30 UTC = 08:30 Berlin: before office hours; opens 08:00 UTC.
            ("2026-12-01T07:30:00Z", false, Some("2026-12-01T08:00:00Z")),
            // Friday 2026-12-04 15:30 UTC: office hours, but the freeze wins; the freeze ends
            // Monday 09:00 UTC = 10:00 Berlin, inside office hours.
            ("2026-12-04T15:30:00Z", false, Some("2026-12-07T09:00:00Z")),
            // Saturday: frozen, then closed until Monday's office hours.
            ("2026-12-05T12:00:00Z", false, Some("2026-12-07T09:00:00Z")),
        ];
        for (instant, open, opens) in cases {
            let gate = cal.gate("p", at(instant));
            match (gate, open) {
                (Gate::Open, true) => {}
                (Gate::Closed { opens_at, reason }, false) => {
                    assert_eq!(opens_at, opens.map(at), "{instant}: {reason}");
                }
                (g, _) => panic!("{instant}: {g:?}"),
            }
        }
    }

    #[test]
    fn one_off_windows_and_plugin_scopes() {
        let freeze = Window {
            id: 3,
            name: "launch".into(),
            kind: WindowKind::Deny,
            schedule: Schedule::Once {
                start: Utc
                    .with_ymd_and_hms(2026, 12, 24, 0, 0, 0)
                    .single()
                    .expect("t"),
                end: Utc
                    .with_ymd_and_hms(2026, 12, 27, 0, 0, 0)
                    .single()
                    .expect("t"),
            },
            plugins: Some("acme-*".into()),
        };
        let cal = Calendar::new(vec![freeze]);
        let xmas = at("2026-12-25T12:00:00Z");
        assert!(
            matches!(cal.gate("acme-hello", xmas), Gate::Closed { opens_at: Some(t), .. } if t == at("2026-12-27T00:00:00Z"))
        );
        assert_eq!(cal.gate("globex-cache", xmas), Gate::Open);
        assert_eq!(
            cal.gate("acme-hello", at("2026-12-27T00:00:00Z")),
            Gate::Open
        );
    }

    #[test]
    fn a_calendar_that_never_opens_says_so() {
        let always = recurring(4, WindowKind::Deny, "0 0 * * *", 25, "UTC");
        assert!(matches!(
            Calendar::new(vec![always]).gate("p", at("2026-12-01T00:00:00Z")),
            Gate::Closed { opens_at: None, .. }
        ));
    }

    #[test]
    fn bad_windows_are_refused() {
        assert!(parse_cron("0 9 * *").is_err());
        assert!(parse_cron("61 9 * * *").is_err());
        assert!(parse_tz("Mars/Olympus").is_err());
        let backwards = Schedule::Once {
            start: at("2026-12-02T00:00:00Z"),
            end: at("2026-12-01T00:00:00Z"),
        };
        assert_eq!(backwards.check().expect_err("backwards").field, "end");
    }
}
