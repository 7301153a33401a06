//! MongoDB integration tests: they run only where `RATECAST_TEST_MONGODB_URI`
//! names a replica set, and each writes to a database of its own.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable that names the test replica set.
pub const URI_VAR: &str = "RATECAST_TEST_MONGODB_URI";

/// The test replica set's URI; `None` (after printing why the test is
/// skipped) when none is given.
pub fn test_uri() -> Option<String> {
    match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => Some(uri),
        _ => {
            eprintln!(
                "skipped: {URI_VAR} is not set; MongoDB integration tests need a replica set"
            );
            None
        }
    }
}

/// A database name no other test (or test run) uses: `{prefix}_{pid}_{time}_{n}`.
pub fn fresh_database(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        ratecast_core::time::unix_now_secs(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
