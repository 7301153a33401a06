//! ratecast-testkit: the black-box test harness every crate's `tests/` share
//! (a dev-dependency only; nothing in the product links it).
//!
//! A scriptable HTTP upstream on loopback ([`upstream`]), plain HTTP requests and
//! readiness waits ([`http`]), a websocket client that waits with deadlines
//! ([`client`]), a server future spawned on port 0 ([`spawn`]), the real
//! binaries run with an environment ([`binary`]) or as a server process whose
//! memory and metrics are its own ([`process`]), a raw websocket client that
//! sends what a library would refuse to ([`raw`]) and stores that misbehave on
//! purpose ([`rigged`]). Every wait is bounded by [`WAIT`]. It links no product
//! crate but `ratecast-core`: tests of every crate use it without a cycle.

pub mod binary;
pub mod client;
pub mod http;
pub mod mongo;
pub mod process;
pub mod raw;
pub mod rigged;
pub mod spawn;
pub mod upstream;

use std::time::Duration;

use ratecast_core::{AssetId, Point};

pub use client::{Client, Received};
pub use http::{http_get, metric, wait_for_metric_above, wait_ready};
pub use spawn::{Spawned, TEST_RETENTION_SECS, spawn_server};
pub use upstream::{FakeUpstream, Reply, rates_body};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A point of `asset_id` / `asset_name` at `time`.
pub fn point(asset_id: u32, asset_name: &str, time: i64, value: f64) -> Point {
    Point {
        asset_id: AssetId(asset_id),
        asset_name: asset_name.into(),
        time,
        value,
    }
}
