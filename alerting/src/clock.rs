//! Injected time. Every timer of the alert engine (group wait/interval, repeat, resolve timeout,
//! silence state, escalation waits, ack TTLs, rate budgets) reads the time from a [`Clock`], so tests
//! drive the engine with a [`ManualClock`] instead of sleeping.

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A timestamp as used throughout the engine.
pub type Ts = DateTime<Utc>;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> Ts;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests and scenario runs.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Ts>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Ts) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or backward, for a negative duration).
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock();
        *now += d;
    }

    /// Puts the clock at `t`.
    pub fn set(&self, t: Ts) {
        *self.now.lock() = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Ts {
        *self.now.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").map(|t| t.with_timezone(&Utc));
        let start = start.unwrap_or_default();
        let c = ManualClock::new(start);
        assert_eq!(c.now(), start);
        c.advance(Duration::seconds(30));
        assert_eq!(c.now(), start + Duration::seconds(30));
    }
}
