//! What an operator needs to know about the upstream right now: is it answering,
//! since when is it failing, and is it stale (answering, but with quotes that have
//! not moved for a long time — a stuck feed or a closed market).
//!
//! The poller records every tick here; `/readyz` shows [`UpstreamHealth::describe`].
//! A stale feed is logged through a throttle: once when it starts, every few
//! minutes while it lasts, once when quotes move again.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use ratecast_core::throttle::{LogThrottle, Report};
use tracing::{info, warn};

/// Quotes unchanged for this long make the upstream stale.
pub const STALE_AFTER_SECS: i64 = 300;
/// Time between "still stale" log lines.
const STALE_LOG_INTERVAL: Duration = Duration::from_secs(300);

/// Upstream status shared by the poller (writer) and health endpoints (readers).
pub struct UpstreamHealth {
    state: Mutex<State>,
}

struct State {
    last_success: Option<i64>,
    failing_since: Option<i64>,
    last_error: Option<String>,
    /// The previous tick's value per asset, to see whether anything moved.
    last_values: Vec<Option<f64>>,
    /// The last second any quote changed.
    last_change: Option<i64>,
    stale_log: LogThrottle,
}

impl UpstreamHealth {
    pub fn new(assets: usize) -> Self {
        Self {
            state: Mutex::new(State {
                last_success: None,
                failing_since: None,
                last_error: None,
                last_values: vec![None; assets],
                last_change: None,
                stale_log: LogThrottle::new(STALE_LOG_INTERVAL),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        ratecast_core::sync::lock(&self.state)
    }

    /// A fetch at `second` succeeded with these values (per asset, `None` when skipped).
    pub fn record_success(&self, second: i64, values: &[Option<f64>]) {
        let mut state = self.lock();
        state.last_success = Some(second);
        state.failing_since = None;
        let moved = values
            .iter()
            .zip(&state.last_values)
            .any(|(now, before)| now.is_some() && now != before);
        state.last_values = values.to_vec();
        if moved || state.last_change.is_none() {
            state.last_change = Some(second);
            if let Report::Recovered { since, .. } = state.stale_log.success() {
                info!(stale_since = since, "upstream quotes are moving again");
            }
            return;
        }
        let unchanged_for = second - state.last_change.unwrap_or(second);
        if unchanged_for >= STALE_AFTER_SECS && state.stale_log.failure(second).is_due() {
            warn!(
                unchanged_for,
                "upstream quotes have not changed (feed stuck or market closed?)"
            );
        }
    }

    /// A fetch at `second` failed.
    pub fn record_failure(&self, second: i64, error: &str) {
        let mut state = self.lock();
        state.failing_since.get_or_insert(second);
        state.last_error = Some(error.to_owned());
    }

    /// One line for `/readyz`: `upstream ok`, `upstream failing for 42 s (…)`,
    /// `upstream stale: quotes unchanged for 600 s` or `upstream not polled yet`.
    pub fn describe(&self, now: i64) -> String {
        let state = self.lock();
        if let Some(since) = state.failing_since {
            return format!(
                "upstream failing for {} s (last error: {})",
                now - since,
                state.last_error.as_deref().unwrap_or("unknown")
            );
        }
        match (state.last_success, state.last_change) {
            (None, _) => "upstream not polled yet".to_owned(),
            (Some(_), Some(change)) if now - change >= STALE_AFTER_SECS => {
                format!("upstream stale: quotes unchanged for {} s", now - change)
            }
            (Some(last), _) => format!("upstream ok (last answer {} s ago)", now - last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_stale_and_ok_are_told_apart() {
        let health = UpstreamHealth::new(2);
        assert_eq!(health.describe(100), "upstream not polled yet");
        health.record_success(100, &[Some(1.0), Some(2.0)]);
        assert_eq!(health.describe(101), "upstream ok (last answer 1 s ago)");
        health.record_failure(102, "timeout");
        health.record_failure(103, "status");
        assert_eq!(
            health.describe(110),
            "upstream failing for 8 s (last error: status)"
        );
        for second in 111..=500 {
            health.record_success(second, &[Some(1.0), Some(2.0)]);
        }
        assert_eq!(
            health.describe(500),
            "upstream stale: quotes unchanged for 400 s"
        );
        health.record_success(501, &[Some(1.0), Some(2.5)]);
        assert_eq!(health.describe(501), "upstream ok (last answer 0 s ago)");
    }

    #[test]
    fn a_skipped_quote_is_not_a_move() {
        let health = UpstreamHealth::new(1);
        health.record_success(0, &[Some(1.0)]);
        health.record_success(1, &[None]);
        health.record_success(400, &[Some(1.0)]);
        assert!(
            health.describe(400).contains("ok"),
            "None then the same value: it moved back"
        );
    }
}
