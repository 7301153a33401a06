//! The backlog server: the real ratecast API over an in-memory store, fed as a
//! fetcher feeds it after a store outage, so `run --expect-backlog` can measure
//! how the API delivers a flush of buffered points (issue 9).
//!
//! It is wiring of existing pieces and nothing else: `ratecast_api::run` (what
//! the product binaries run) over a `MemoryStore`, the simulated source's
//! back-fill for the history, the buffered seconds and the flush, and the
//! fetcher's `Poller` for the seconds after it. What the API does with the flush
//! is the API's business; this module only writes the points. The timeline is
//! in [`Outage`].

use std::time::Duration;

use ratecast_api::ApiError;
use ratecast_core::{
    AssetList, MemoryStore, PointSink, StoreError,
    time::{history_cutoff, unix_now, unix_now_secs},
};
use ratecast_fetcher::{Poller, SimulatedSource};
use ratecast_process::metrics::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::BacklogConfig;

/// Why the backlog server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the simulated points could not be stored")]
    Store(#[source] StoreError),
}

/// The simulated outage, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// The newest second stored before the flush: every history sent before the
    /// flush ends here.
    pub last_stored: i64,
    /// The second the flush happens in, and the newest point it holds.
    pub flush_at: i64,
}

impl Outage {
    /// The outage of a server started at `start`: the flush comes `flush_after`
    /// seconds later and holds the `backlog` seconds before it, the flush
    /// second included.
    pub fn plan(start: i64, backlog: Duration, flush_after: Duration) -> Self {
        let flush_at = start + secs(flush_after);
        Self {
            last_stored: flush_at - secs(backlog),
            flush_at,
        }
    }

    /// The seconds the flush writes, per asset.
    pub fn backlog(&self) -> std::ops::RangeInclusive<i64> {
        self.last_stored + 1..=self.flush_at
    }
}

/// How long the backlog server's store keeps points: a day, longer than any
/// stored history and backlog a run asks for.
const RETENTION_SECS: i64 = 24 * 3600;

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Serves the API on `listener` and plays the outage `config` describes until
/// `shutdown`; `/metrics` renders `metrics`.
pub async fn serve_backlog(
    listener: std::net::TcpListener,
    config: BacklogConfig,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), BacklogError> {
    let BacklogConfig {
        server,
        assets,
        backlog,
        flush_after,
        stored_history,
    } = config;
    let (assets, server) = (assets.list, server.server_config());
    let store = MemoryStore::new(assets.clone(), RETENTION_SECS);
    let source = SimulatedSource::new(&assets);
    let start = unix_now_secs();
    let outage = Outage::plan(start, backlog, flush_after);
    let oldest = history_cutoff(start).min(start - secs(stored_history) + 1);
    let history = source.backfill(&assets, oldest, outage.last_stored);
    store.insert(&history).await.map_err(BacklogError::Store)?;
    info!(
        points = history.len(),
        last_stored = outage.last_stored,
        flush_at = outage.flush_at,
        "history stored; nothing more is written until the flush"
    );
    let api = ratecast_api::run(
        listener,
        assets.clone(),
        store.clone(),
        std::future::ready(Ok(Some(()))),
        server,
        metrics,
        shutdown.clone(),
    );
    let writer = async move {
        let flushed = flush_when_due(&store, &source, &assets, outage, &shutdown).await;
        match flushed {
            Ok(true) => Poller::new(source, store, assets).run(shutdown).await,
            Ok(false) => {}
            // Without its points the run measures nothing: stop the API too.
            Err(_) => shutdown.cancel(),
        }
        flushed
    };
    let (served, written) = tokio::join!(api, writer);
    served?;
    written.map(drop)
}

/// Waits for the start of the flush second and stores the backlog in one
/// insert; `Ok(false)` if shut down before.
async fn flush_when_due(
    store: &MemoryStore,
    source: &SimulatedSource,
    assets: &AssetList,
    outage: Outage,
    shutdown: &CancellationToken,
) -> Result<bool, BacklogError> {
    let due = Duration::from_secs(outage.flush_at.unsigned_abs());
    tokio::select! {
        () = shutdown.cancelled() => return Ok(false),
        () = tokio::time::sleep(due.saturating_sub(unix_now())) => {}
    }
    let points = source.backfill(assets, *outage.backlog().start(), *outage.backlog().end());
    let report = store.insert(&points).await.map_err(BacklogError::Store)?;
    info!(
        flush_unix_ms = u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX),
        first = outage.backlog().start(),
        last = outage.backlog().end(),
        points = points.len(),
        inserted = report.inserted,
        "flushed the backlog in one insert; one point per asset per second from now on"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_holds_exactly_the_backlog_and_ends_at_the_flush_second() {
        let outage = Outage::plan(1_000, Duration::from_secs(900), Duration::from_secs(60));
        assert_eq!(outage.flush_at, 1_060);
        assert_eq!(outage.last_stored, 160);
        assert_eq!(outage.backlog().count(), 900);
        assert_eq!(outage.backlog(), 161..=1_060);
    }
}
