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
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// Whether this clock only moves when told to.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(t) => *t.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
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
}
