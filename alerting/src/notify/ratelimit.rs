//! A token bucket on the injected clock: `messages` per `per`, refilled continuously. When a
//! robot's budget is spent, the engine folds pending notifications into one digest instead of
//! dropping them, and waits for the next token.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::clock::Ts;

/// What of a bucket is persisted, so a restart neither refills a spent budget nor forgets it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    pub tokens: f64,
    pub last: Ts,
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    last: Ts,
}

impl TokenBucket {
    pub fn new(messages: u32, per: Duration, now: Ts) -> Self {
        let capacity = f64::from(messages.max(1));
        TokenBucket {
            capacity,
            per_ms: per.num_milliseconds().max(1) as f64,
            tokens: capacity,
            last: now,
        }
    }

    pub fn state(&self) -> BucketState {
        BucketState {
            tokens: self.tokens,
            last: self.last,
        }
    }

    /// Continues from a persisted state (clamped to the current capacity).
    pub fn restore(&mut self, s: BucketState) {
        if s.tokens.is_finite() {
            // A deficit (see `charge`) survives a restart too.
            self.tokens = s.tokens.min(self.capacity);
            self.last = s.last;
        }
    }

    pub fn reconfigure(&mut self, messages: u32, per: Duration) {
        self.capacity = f64::from(messages.max(1));
        self.per_ms = per.num_milliseconds().max(1) as f64;
        self.tokens = self.tokens.min(self.capacity);
    }

    fn refill(&mut self, now: Ts) {
        let elapsed = (now - self.last).num_milliseconds();
        if elapsed > 0 {
            self.tokens = (self.tokens + elapsed as f64 * self.capacity / self.per_ms).min(self.capacity);
            self.last = now;
        }
    }

    /// Whole tokens available now.
    pub fn available(&mut self, now: Ts) -> u32 {
        self.refill(now);
        self.tokens.floor() as u32
    }

    /// Takes one token; false if none is available.
    pub fn take(&mut self, now: Ts) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Charges `n` more tokens for messages already decided on (the extra parts of a split
    /// message). The budget may go into deficit: later messages then wait until it has recovered,
    /// so the robot's rate over time stays within the budget.
    pub fn charge(&mut self, n: u32, now: Ts) {
        self.refill(now);
        self.tokens -= f64::from(n);
    }

    /// When the next whole token will be available.
    pub fn next_token_at(&mut self, now: Ts) -> Ts {
        self.refill(now);
        if self.tokens >= 1.0 {
            return now;
        }
        let missing = 1.0 - self.tokens;
        let ms = (missing * self.per_ms / self.capacity).ceil() as i64;
        now + Duration::milliseconds(ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn twenty_per_minute() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let mut b = TokenBucket::new(20, Duration::minutes(1), now);
        for _ in 0..20 {
            assert!(b.take(now));
        }
        assert!(!b.take(now));
        assert_eq!(b.next_token_at(now), now + Duration::seconds(3));
        assert!(b.take(now + Duration::seconds(3)));
        assert_eq!(b.available(now + Duration::minutes(5)), 20);
    }

    #[test]
    fn charged_parts_put_the_budget_into_deficit() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let mut b = TokenBucket::new(20, Duration::minutes(1), now);
        for _ in 0..19 {
            assert!(b.take(now));
        }
        // The last token pays for a message split into four parts: three more are charged.
        assert!(b.take(now));
        b.charge(3, now);
        assert_eq!(b.available(now), 0);
        // Four tokens (12 s at 20/min) to get back to one whole token.
        assert_eq!(b.next_token_at(now), now + Duration::seconds(12));
        let mut restored = TokenBucket::new(20, Duration::minutes(1), now);
        restored.restore(b.state());
        assert_eq!(restored.next_token_at(now), now + Duration::seconds(12));
        assert!(!b.clone().take(now + Duration::seconds(11)));
        assert!(b.take(now + Duration::seconds(12)));
    }
}
