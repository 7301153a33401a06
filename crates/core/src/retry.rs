//! The project's one retry policy: exponential backoff, doubling up to a cap.
//!
//! Every retry loop (the API's feed, the fetcher's write buffer, the change
//! stream's reopen, MongoDB set-up, `ratecast watch`) holds a [`Backoff`]: it asks
//! [`Backoff::next_delay`] after each failure and calls [`Backoff::reset`] after
//! each success, so one incident's backoff never carries over into the next.

use std::time::Duration;

/// The first delay of the default policy.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay of every policy.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// Delays of `first`, doubling after each failure, capped at [`MAX_DELAY`].
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    /// Failures since the last success.
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// 100 ms, 200 ms, 400 ms, … up to 10 s.
    pub const fn new() -> Self {
        Self::starting_at(FIRST_DELAY)
    }

    /// `first`, doubling up to 10 s (e.g. a client reconnecting starts slower).
    pub const fn starting_at(first: Duration) -> Self {
        Self { first, failures: 0 }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay_after(self.failures);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// The delay the next failure will get, without recording one.
    pub fn peek(&self) -> Duration {
        self.delay_after(self.failures)
    }

    /// Records a success: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn delay_after(&self, failures: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(failures))
            .min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(mut backoff: Backoff, n: usize) -> Vec<u128> {
        (0..n).map(|_| backoff.next_delay().as_millis()).collect()
    }

    #[test]
    fn the_default_doubles_from_100ms_and_caps_at_10s() {
        assert_eq!(
            delays(Backoff::new(), 9),
            vec![100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        let mut long = Backoff::new();
        for _ in 0..100 {
            long.next_delay();
        }
        assert_eq!(long.next_delay(), MAX_DELAY);
    }

    #[test]
    fn a_success_starts_the_next_incident_from_the_first_delay() {
        let mut backoff = Backoff::new();
        backoff.next_delay();
        backoff.next_delay();
        assert_eq!(backoff.failures(), 2);
        assert_eq!(backoff.peek(), Duration::from_millis(400));
        backoff.reset();
        assert_eq!(backoff.next_delay(), FIRST_DELAY);
    }

    #[test]
    fn another_first_delay_keeps_the_doubling_and_the_cap() {
        assert_eq!(
            delays(Backoff::starting_at(Duration::from_millis(800)), 6),
            vec![800, 1600, 3200, 6400, 10_000, 10_000]
        );
    }
}
