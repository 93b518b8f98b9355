//! The clock of everything that happens on a schedule: the scheduler, job leases
//! and back-offs, and (as they arrive) stage holds, analysis intervals, expiries and freeze
//! windows.
//!
//! **Invariant:** background work reads time from a [`Clock`], never from the system directly.
//! `stellar serve` runs on [`Clock::system`]; tests run on [`Clock::manual`] and move it with
//! [`Clock::advance`], so that no test waits for a tick or depends on the machine's speed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current time: the system's, or one that tests move by hand.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
    /// A clock that runs `factor` times faster than the system's from `origin`
    /// (`stellar serve --time-scale`, for demonstrations: a rollout of hours plays in minutes).
    scaled: Option<(DateTime<Utc>, u32)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock `factor` times faster than the system's, starting from now. Everything on the
    /// schedule runs faster alike: analysis intervals, holds, leases, session lifetimes.
    pub fn scaled(factor: u32) -> Clock {
        Clock::scaled_since(factor, Utc::now())
    }

    /// A clock `factor` times faster than the system's since `origin` (the same origin for
    /// every instance of a deployment keeps their clocks together across restarts).
    pub fn scaled_since(factor: u32, origin: DateTime<Utc>) -> Clock {
        if factor <= 1 {
            return Clock::system();
        }
        Clock {
            manual: None,
            scaled: Some((origin, factor)),
        }
    }

    /// How much faster than the system's this clock runs (1 for the system clock).
    pub fn factor(&self) -> u32 {
        self.scaled.map_or(1, |(_, f)| f)
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(start))),
            scaled: None,
        }
    }

    /// Whether this clock only moves when told to.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match (&self.manual, self.scaled) {
            (Some(t), _) => *t.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            (None, Some((origin, factor))) => {
                let now = Utc::now();
                (now - origin)
                    .checked_mul(factor as i32)
                    .and_then(|d| origin.checked_add_signed(d))
                    .unwrap_or(now)
            }
            (None, None) => Utc::now(),
        }
    }

    /// Now, in milliseconds since the Unix epoch (how job leases are compared in SQL).
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Moves a manual clock forward; the system clock cannot be moved and ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            let mut t = t.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *t += TimeDelta::from_std(by).unwrap_or(TimeDelta::zero());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let c = Clock::manual(start);
        assert_eq!(c.now(), start);
        c.advance(Duration::from_secs(300));
        assert_eq!(c.now(), start + TimeDelta::seconds(300));
        assert!(c.is_manual() && !Clock::system().is_manual());
    }

    #[test]
    fn a_scaled_clock_runs_ahead_of_the_system_one() {
        let c = Clock::scaled(1000);
        let before = Utc::now();
        std::thread::sleep(Duration::from_millis(20));
        // 20 ms of real time is at least 20 s of scaled time.
        assert!(
            c.now() - before >= TimeDelta::seconds(19),
            "{}",
            c.now() - before
        );
        assert_eq!(Clock::scaled(1).factor(), 1);
    }
}
