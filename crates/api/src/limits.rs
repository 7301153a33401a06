//! Inbound rate limiting: a token bucket per connection.
//!
//! A client may send `rate` messages a second with bursts of `burst`. A message
//! over the limit is answered with a `rate_limited` error and dropped; a client
//! that keeps going over it (its rejections outrun a second, slower bucket) is
//! closed with 1008. Time is passed in, so tests drive it without a clock.

use tokio::time::Instant;

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(per_second: f64, capacity: f64, now: Instant) -> Self {
        Self {
            capacity: capacity.max(1.0),
            per_second: per_second.max(0.0),
            tokens: capacity.max(1.0),
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Over the limit: answer `rate_limited`, drop the message.
    Reject,
    /// Over the limit for too long: close the connection (1008).
    Close,
}

/// Per-connection inbound limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    messages: TokenBucket,
    /// Rejections allowed: a burst of 2 s worth of over-limit messages, refilled
    /// at a quarter of the message rate. Empty means persistent abuse.
    rejections: TokenBucket,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let rate = f64::from(per_second);
        Self {
            messages: TokenBucket::new(rate, f64::from(burst), now),
            rejections: TokenBucket::new(rate / 4.0, rate * 2.0, now),
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.messages.try_take(now) {
            Verdict::Accept
        } else if self.rejections.try_take(now) {
            Verdict::Reject
        } else {
            Verdict::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 40.0, start);
        assert_eq!((0..50).filter(|_| bucket.try_take(start)).count(), 40);
        let later = start + Duration::from_millis(500);
        assert_eq!((0..50).filter(|_| bucket.try_take(later)).count(), 10);
    }

    #[test]
    fn a_client_within_the_limit_is_never_rejected() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 40, start);
        for i in 0..2000u64 {
            let now = start + Duration::from_millis(i * 60); // ~16.7 messages/s
            assert_eq!(limiter.check(now), Verdict::Accept, "message {i}");
        }
    }

    #[test]
    fn a_flood_is_rejected_then_closed() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 40, start);
        let verdicts: Vec<Verdict> = (0..200u64)
            .map(|i| limiter.check(start + Duration::from_millis(i)))
            .collect();
        assert!(verdicts[..40].iter().all(|v| *v == Verdict::Accept));
        assert_eq!(verdicts[40], Verdict::Reject);
        assert!(
            verdicts.contains(&Verdict::Close),
            "a 1000/s flood is closed"
        );
    }

    #[test]
    fn an_occasional_burst_over_the_limit_is_only_rejected() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 40, start);
        for round in 0..10u64 {
            let t = start + Duration::from_secs(round * 10);
            let verdicts: Vec<Verdict> = (0..60).map(|_| limiter.check(t)).collect();
            assert!(!verdicts.contains(&Verdict::Close), "round {round}");
        }
    }
}
