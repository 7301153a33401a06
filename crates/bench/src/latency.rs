//! Latency distributions: an HDR histogram of microseconds and its summary.
//!
//! Recording is O(1) and the memory is fixed (a few tens of KB per histogram),
//! whatever the number of samples, so one histogram can take every delivery of a
//! 19,000-client run. Values above [`MAX_MICROS`] are clamped to it.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest recordable latency: ten minutes, far beyond any useful measurement.
pub const MAX_MICROS: u64 = 600_000_000;

/// A distribution of latencies in microseconds.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // Three significant digits: 0.1 % resolution at every magnitude.
        match Histogram::new_with_bounds(1, MAX_MICROS, 3) {
            Ok(histogram) => Self(histogram),
            // The bounds are constants that hdrhistogram accepts.
            Err(error) => unreachable!("constant histogram bounds rejected: {error:?}"),
        }
    }

    pub fn record(&mut self, micros: u64) {
        self.0.saturating_record(micros.min(MAX_MICROS));
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Percentiles of a [`Latency`], in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples recorded; the percentiles are 0 when there are none.
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_reported_in_milliseconds() {
        let mut latency = Latency::new();
        for micros in 1..=1000 {
            latency.record(micros * 1000);
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 1000);
        assert!((summary.p50_ms - 500.0).abs() < 1.0, "{summary:?}");
        assert!((summary.p99_ms - 990.0).abs() < 1.0, "{summary:?}");
        assert!((summary.max_ms - 1000.0).abs() < 1.0, "{summary:?}");
    }

    #[test]
    fn an_empty_distribution_summarises_to_zeros() {
        assert_eq!(Latency::new().summary(), LatencySummary::default());
    }

    #[test]
    fn zero_and_huge_values_are_kept_not_refused() {
        let mut latency = Latency::new();
        latency.record(0);
        latency.record(u64::MAX);
        assert_eq!(latency.count(), 2);
        assert!(latency.summary().max_ms >= MAX_MICROS as f64 / 1000.0 * 0.99);
    }
}
