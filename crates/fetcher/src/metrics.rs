//! The fetcher's Prometheus metrics: every name, and one function per event.
//!
//! The poller and the write buffer record here and nowhere else, so a series is
//! named once. `/metrics` (the fetcher's port, or the all-in-one's API port)
//! renders the recorder the binary installed
//! (`ratecast_process::metrics::install_recorder`).

use metrics::{counter, gauge, histogram};
use ratecast_core::InsertReport;

pub const TICKS: &str = "ratecast_fetcher_ticks_total";
pub const MISSED_TICKS: &str = "ratecast_fetcher_missed_ticks_total";
pub const FETCH_SECONDS: &str = "ratecast_upstream_fetch_seconds";
pub const FETCH_FAILURES: &str = "ratecast_upstream_failures_total";
pub const QUOTES_SKIPPED: &str = "ratecast_quotes_skipped_total";
pub const POINTS_STORED: &str = "ratecast_points_stored_total";
pub const DUPLICATES: &str = "ratecast_points_duplicate_total";
pub const REJECTED: &str = "ratecast_points_rejected_total";
/// Points the store applied without the acknowledgement it asked for.
pub const UNCONFIRMED: &str = "ratecast_points_unconfirmed_total";
pub const STORE_FAILURES: &str = "ratecast_store_failures_total";
pub const BUFFER_POINTS: &str = "ratecast_buffer_points";
pub const BUFFER_DROPPED: &str = "ratecast_buffer_dropped_total";
/// The shared (database's) clock minus this host's, as last measured.
pub const CLOCK_OFFSET: &str = "ratecast_clock_offset_seconds";

/// One poll of the upstream began.
pub fn tick() {
    counter!(TICKS).increment(1);
}

/// The poller ran late and skipped `seconds`.
pub fn missed_ticks(seconds: u64) {
    counter!(MISSED_TICKS).increment(seconds);
}

/// A poll of the upstream took `seconds`, answered or not.
pub fn fetch_took(seconds: f64) {
    histogram!(FETCH_SECONDS).record(seconds);
}

/// A whole poll failed, by cause (`FetchError::kind`).
pub fn fetch_failed(kind: &'static str) {
    counter!(FETCH_FAILURES, "kind" => kind).increment(1);
}

/// An asset had no usable quote in an answered poll, by cause (`QuoteError::kind`).
pub fn quote_skipped(kind: &'static str) {
    counter!(QUOTES_SKIPPED, "kind" => kind).increment(1);
}

/// A write reached the store: what it stored, what the store already held and
/// what it refused for good (dropped, never retried).
pub fn stored(report: &InsertReport) {
    counter!(POINTS_STORED).increment(report.inserted as u64);
    counter!(DUPLICATES).increment(report.duplicates as u64);
    counter!(REJECTED).increment(report.rejected as u64);
    counter!(UNCONFIRMED).increment(report.unconfirmed as u64);
}

/// The store's reference clock reads `offset_ms` ahead of this host's (negative:
/// this host's clock is ahead). Points stamped ahead of it are refused.
pub fn clock_offset(offset_ms: i64) {
    gauge!(CLOCK_OFFSET).set(offset_ms as f64 / 1000.0);
}

/// A write to the store failed.
pub fn store_failed() {
    counter!(STORE_FAILURES).increment(1);
}

/// Points now waiting in the write buffer.
pub fn buffered(points: usize) {
    gauge!(BUFFER_POINTS).set(points as f64);
}

/// A full write buffer dropped its `points` oldest points.
pub fn buffer_dropped(points: u64) {
    counter!(BUFFER_DROPPED).increment(points);
}
