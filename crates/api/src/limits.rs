//! Inbound rate limiting: token buckets per connection, charged for every frame.
//!
//! A client may send `rate` frames a second with bursts of `burst`, and a
//! quarter of that many bytes as if each frame were of the largest size
//! ([`RateLimiter::new`]). Every frame counts: text, binary and continuation
//! frames, pings, pongs, empty ones too (a flood of empty pongs costs the server
//! as much as a flood of requests). A frame over the limit is dropped (a data
//! message is answered `rate_limited`, a control frame gets nothing, a ping no
//! pong); a client that keeps going over it (its rejections outrun a second,
//! slower bucket) is closed with 1008: at 1.75 times the rate or more within 2 s
//! of going over it, at three times or more within 2 s of its first frame
//! (`a_flood_of_three_times_the_rate_is_closed_within_2_s`), while an occasional
//! burst is only refused.
//! Time is passed in, so tests drive it without a clock.

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

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one inbound frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Over the limit: drop the frame (a data message is answered `rate_limited`).
    Reject,
    /// Over the limit for too long: close the connection (1008).
    Close,
}

/// Per-connection inbound limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    frames: TokenBucket,
    /// Bytes on the wire (headers included, so empty frames cost too).
    bytes: TokenBucket,
    /// Rejections allowed: a burst of 1 s worth of over-limit frames, refilled
    /// at a quarter of the frame rate. Empty means persistent abuse.
    rejections: TokenBucket,
}

impl RateLimiter {
    /// `per_second` frames a second with bursts of `burst`; bytes at a quarter of
    /// `per_second × max_frame_bytes` a second, with bursts of a quarter of
    /// `burst × max_frame_bytes` but never less than one frame of the largest
    /// size (`max_frame_bytes`: the largest frame let through, header included).
    pub fn new(per_second: u32, burst: u32, max_frame_bytes: usize, now: Instant) -> Self {
        let rate = f64::from(per_second);
        let largest = max_frame_bytes as f64;
        Self {
            frames: TokenBucket::new(rate, f64::from(burst), now),
            bytes: TokenBucket::new(
                rate * largest / 4.0,
                (f64::from(burst) * largest / 4.0).max(largest),
                now,
            ),
            rejections: TokenBucket::new(rate / 4.0, rate, now),
        }
    }

    /// The verdict on one frame of `bytes` bytes (header included).
    pub fn check(&mut self, now: Instant, bytes: usize) -> Verdict {
        self.frames.refill(now);
        self.bytes.refill(now);
        let cost = bytes as f64;
        if self.frames.tokens >= 1.0 && self.bytes.tokens >= cost {
            self.frames.tokens -= 1.0;
            self.bytes.tokens -= cost;
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

    const SMALL: usize = 60;

    fn limiter(start: Instant) -> RateLimiter {
        RateLimiter::new(20, 40, 4096 + 14, start)
    }

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
        let mut limiter = limiter(start);
        for i in 0..2000u64 {
            let now = start + Duration::from_millis(i * 60); // ~16.7 frames/s
            assert_eq!(limiter.check(now, SMALL), Verdict::Accept, "frame {i}");
        }
    }

    #[test]
    fn a_flood_is_rejected_then_closed() {
        let start = Instant::now();
        let mut limiter = limiter(start);
        let verdicts: Vec<Verdict> = (0..200u64)
            .map(|i| limiter.check(start + Duration::from_millis(i), SMALL))
            .collect();
        assert!(verdicts[..40].iter().all(|v| *v == Verdict::Accept));
        assert_eq!(verdicts[40], Verdict::Reject);
        assert!(
            verdicts.contains(&Verdict::Close),
            "a 1000/s flood is closed"
        );
    }

    /// The first `Close` verdict for frames of `bytes` sent `per_second`, if
    /// any comes within `within`.
    fn closed_after(per_second: u64, bytes: usize, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut limiter = limiter(start);
        let step = Duration::from_nanos(1_000_000_000 / per_second);
        (1..)
            .map(|i| step * i)
            .take_while(|at| *at <= within)
            .find(|at| limiter.check(start + *at, bytes) == Verdict::Close)
    }

    #[test]
    fn a_flood_of_three_times_the_rate_is_closed_within_2_s() {
        for per_second in [60, 100, 1_000, 1_000_000] {
            let closed = closed_after(per_second, 6, Duration::from_secs(2));
            assert!(closed.is_some(), "{per_second} empty frames/s: {closed:?}");
        }
    }

    #[test]
    fn large_frames_within_the_frame_rate_are_limited_by_bytes() {
        // 20 frames a second pass the frame bucket; at 4 KiB each they are four
        // times the byte rate, and the client is closed.
        assert!(closed_after(20, 4096 + 14, Duration::from_secs(30)).is_some());
        // The same at 100 bytes a frame goes on for good.
        assert_eq!(closed_after(19, 100, Duration::from_secs(30)), None);
    }

    #[test]
    fn one_frame_of_the_largest_size_always_fits_a_full_bucket() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, 1, 1_048_576 + 14, start);
        assert_eq!(limiter.check(start, 1_048_576 + 14), Verdict::Accept);
    }

    #[test]
    fn an_occasional_burst_over_the_limit_is_only_rejected() {
        let start = Instant::now();
        let mut limiter = limiter(start);
        for round in 0..10u64 {
            let t = start + Duration::from_secs(round * 10);
            let verdicts: Vec<Verdict> = (0..60).map(|_| limiter.check(t, SMALL)).collect();
            assert!(!verdicts.contains(&Verdict::Close), "round {round}");
        }
    }
}
