//! The poller: once per wall-clock second, fetch quotes and store one point per asset.
//!
//! Ticks come from the [`clock`](crate::clock): one per wall-clock second. Each
//! tick stamps its points with its own second; a tick that runs late skips the
//! seconds it missed rather than stamping two points with one time. What a tick
//! did is its [`TickReport`]; failures are counted in the fetcher's
//! [`metrics`](crate::metrics) and logged through a [`LogThrottle`]: a start
//! line, a summary a minute, a recovery line.

use std::{sync::Arc, time::Duration};

use ratecast_core::{
    AssetId, AssetList, InsertReport, Point, PointSink, StoreError,
    throttle::{LogThrottle, Report},
};
use ratecast_process::ErrorChain;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    clock::{Clock, SystemClock, next_tick},
    health::UpstreamHealth,
    metrics,
    source::{FetchError, QuoteError, RateSource},
};

/// Time between "still failing" log summaries.
const LOG_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// What one tick did.
#[derive(Debug, Default)]
pub struct TickReport {
    pub second: i64,
    pub fetch_error: Option<FetchError>,
    pub skipped: Vec<(AssetId, QuoteError)>,
    pub stored: Option<Result<InsertReport, StoreError>>,
}

/// Polls a [`RateSource`] once a second into a [`PointSink`].
pub struct Poller<R, K> {
    source: R,
    sink: K,
    assets: AssetList,
    upstream_log: LogThrottle,
    store_log: LogThrottle,
    lag_log: LogThrottle,
    /// One throttle per asset, in id order, for that asset's skipped quotes.
    quote_logs: Vec<LogThrottle>,
    /// Failing / stale status for health endpoints.
    health: Arc<UpstreamHealth>,
}

impl<R: RateSource, K: PointSink> Poller<R, K> {
    pub fn new(source: R, sink: K, assets: AssetList) -> Self {
        let health = Arc::new(UpstreamHealth::new(assets.len()));
        Self::with_health(source, sink, assets, health)
    }

    /// A poller that reports the upstream's status into `health`.
    pub fn with_health(source: R, sink: K, assets: AssetList, health: Arc<UpstreamHealth>) -> Self {
        let throttle = || LogThrottle::new(LOG_SUMMARY_INTERVAL);
        Self {
            health,
            quote_logs: assets.iter().map(|_| throttle()).collect(),
            source,
            sink,
            assets,
            upstream_log: throttle(),
            store_log: throttle(),
            lag_log: throttle(),
        }
    }

    /// Runs ticks on the wall clock until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        self.run_with_clock(SystemClock, shutdown).await;
    }

    #[tracing::instrument(name = "poller", skip_all)]
    pub async fn run_with_clock<C: Clock>(mut self, clock: C, shutdown: CancellationToken) {
        info!(source = %self.source.describe(), assets = %self.assets, "poller started");
        let mut last: Option<i64> = None;
        loop {
            let (second, wait) = next_tick(clock.now(), last);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            if let Some(last) = last {
                self.note_missed_ticks(second, second - last - 1);
            }
            last = Some(second);
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = self.poll_once(second) => {}
            }
        }
        info!("poller stopped");
    }

    fn note_missed_ticks(&mut self, second: i64, missed: i64) {
        if missed <= 0 {
            return;
        }
        metrics::missed_ticks(missed.unsigned_abs());
        if self.lag_log.failure(second).is_due() {
            warn!(
                missed,
                "poller ran late and skipped seconds (is the process starved of CPU?)"
            );
        }
    }

    /// One tick: fetch, turn quotes into points stamped `second`, store them.
    pub async fn poll_once(&mut self, second: i64) -> TickReport {
        metrics::tick();
        let mut report = TickReport {
            second,
            ..TickReport::default()
        };
        let started = std::time::Instant::now();
        let fetched = self.source.fetch().await;
        metrics::fetch_took(started.elapsed().as_secs_f64());
        let quotes = match fetched {
            Ok(quotes) => {
                if let Report::Recovered { failures, since } = self.upstream_log.success() {
                    info!(failed_seconds = failures, since, "upstream recovered");
                }
                quotes
            }
            Err(error) => {
                self.health.record_failure(second, error.kind());
                metrics::fetch_failed(error.kind());
                log_failure(
                    &self.upstream_log,
                    second,
                    "upstream fetch failed; second skipped",
                    &error,
                );
                report.fetch_error = Some(error);
                return report;
            }
        };
        let mut points = Vec::with_capacity(self.assets.len());
        let mut values = Vec::with_capacity(self.assets.len());
        for (asset, log) in self.assets.iter().zip(&self.quote_logs) {
            let quote = quotes.get(&asset.name);
            values.push(quote.as_ref().ok().copied());
            match quote {
                Ok(value) => {
                    if let Report::Recovered { failures, since } = log.success() {
                        info!(asset = %asset.name, failed_seconds = failures, since, "quotes recovered");
                    }
                    points.push(Point {
                        asset_id: asset.id,
                        asset_name: asset.name.clone(),
                        time: second,
                        value,
                    });
                }
                Err(error) => {
                    metrics::quote_skipped(error.kind());
                    log_failure(
                        log,
                        second,
                        &format!("no usable quote for {}; second skipped", asset.name),
                        &error,
                    );
                    report.skipped.push((asset.id, error));
                }
            }
        }
        self.health.record_success(second, &values);
        if !points.is_empty() {
            report.stored = Some(self.store(second, &points).await);
        }
        report
    }

    async fn store(&mut self, second: i64, points: &[Point]) -> Result<InsertReport, StoreError> {
        let result = self.sink.insert(points).await;
        match &result {
            Ok(inserted) => {
                metrics::stored(inserted);
                if let Report::Recovered { failures, since } = self.store_log.success() {
                    info!(failed_seconds = failures, since, "store recovered");
                }
            }
            Err(error) => {
                metrics::store_failed();
                log_failure(
                    &self.store_log,
                    second,
                    "storing points failed; second lost",
                    error,
                );
            }
        }
        result
    }
}

fn log_failure(
    throttle: &LogThrottle,
    second: i64,
    what: &str,
    error: &(dyn std::error::Error + 'static),
) {
    match throttle.failure(second) {
        Report::Started { .. } => warn!(error = %ErrorChain(error), "{what}"),
        Report::StillFailing { failures, since } => warn!(
            error = %ErrorChain(error),
            failures_since_last_report = failures,
            failing_since = since,
            "still failing: {what}"
        ),
        Report::Quiet | Report::Recovered { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use ratecast_core::{MemoryStore, PointStore};
    use ratecast_testkit::TEST_RETENTION_SECS;
    use tokio::time::Instant;

    use super::*;
    use crate::{emcont::ParseError, source::Quotes};

    /// A clock that follows tokio's (pausable) time from a fixed Unix start.
    struct TokioClock {
        origin: Instant,
        unix_origin: Duration,
    }

    impl Clock for TokioClock {
        fn now(&self) -> Duration {
            self.unix_origin + self.origin.elapsed()
        }
    }

    /// A source that scripts each call's result by call number.
    struct Scripted {
        calls: AtomicUsize,
        script: fn(usize) -> Result<Quotes, FetchError>,
    }

    impl RateSource for Scripted {
        async fn fetch(&self) -> Result<Quotes, FetchError> {
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            (self.script)(n)
        }

        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    fn assets() -> AssetList {
        "EURUSD,USDJPY".parse().expect("valid")
    }

    fn both_quoted(n: usize) -> Result<Quotes, FetchError> {
        let v = 1.0 + n as f64 / 1000.0;
        Ok([
            ("EURUSD".to_owned(), Ok(v)),
            ("USDJPY".to_owned(), Ok(150.0)),
        ]
        .into_iter()
        .collect())
    }

    fn poller(
        script: fn(usize) -> Result<Quotes, FetchError>,
    ) -> (Poller<Scripted, MemoryStore>, MemoryStore) {
        let store = MemoryStore::new(assets(), TEST_RETENTION_SECS);
        let source = Scripted {
            calls: AtomicUsize::new(0),
            script,
        };
        (Poller::new(source, store.clone(), assets()), store)
    }

    #[tokio::test(start_paused = true)]
    async fn an_hour_of_wall_clock_is_exactly_3600_ticks_and_points_per_asset() {
        let (poller, store) = poller(both_quoted);
        let clock = TokioClock {
            origin: Instant::now(),
            unix_origin: Duration::from_millis(1_700_000_000_300),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(poller.run_with_clock(clock, shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        shutdown.cancel();
        task.await.expect("poller task ends");
        let history = store
            .history(AssetId(1), 0, i64::MAX)
            .await
            .expect("history");
        let times: Vec<i64> = history.iter().map(|p| p.time).collect();
        assert_eq!(times, (1_700_000_001..=1_700_003_600).collect::<Vec<_>>());
        assert_eq!(store.len(), 7200);
    }

    #[tokio::test]
    async fn a_failed_fetch_skips_the_second_and_the_next_one_works() {
        let (mut poller, store) = poller(|n| {
            if n == 1 {
                Err(FetchError::Parse(ParseError::NoRates))
            } else {
                both_quoted(n)
            }
        });
        let mut reports = Vec::new();
        for second in 100..103 {
            reports.push(poller.poll_once(second).await);
        }
        let times: Vec<i64> = store
            .history(AssetId(2), 0, 1000)
            .await
            .expect("history")
            .iter()
            .map(|p| p.time)
            .collect();
        assert_eq!(
            times,
            vec![100, 102],
            "second 101 is a gap, not an invented value"
        );
        let failures: Vec<Option<&str>> = reports
            .iter()
            .map(|r| r.fetch_error.as_ref().map(FetchError::kind))
            .collect();
        assert_eq!(failures, vec![None, Some("parse"), None]);
    }

    #[tokio::test]
    async fn a_bad_quote_skips_only_its_asset() {
        let (mut poller, store) = poller(|_| {
            Ok([
                (
                    "EURUSD".to_owned(),
                    Err(QuoteError::MissingField { field: "Ask" }),
                ),
                ("USDJPY".to_owned(), Ok(150.25)),
            ]
            .into_iter()
            .collect())
        });
        let report = poller.poll_once(500).await;
        assert_eq!(
            report.skipped,
            vec![(AssetId(1), QuoteError::MissingField { field: "Ask" })]
        );
        assert!(
            store
                .history(AssetId(1), 0, 1000)
                .await
                .expect("history")
                .is_empty()
        );
        let jpy = store.history(AssetId(2), 0, 1000).await.expect("history");
        assert_eq!((jpy[0].time, jpy[0].value), (500, 150.25));
    }

    #[tokio::test]
    async fn the_same_second_twice_stores_one_point() {
        let (mut poller, store) = poller(both_quoted);
        poller.poll_once(7).await;
        let report = poller.poll_once(7).await;
        let stored = report.stored.expect("stored").expect("no error");
        assert_eq!((stored.inserted, stored.duplicates), (0, 2));
        assert_eq!(store.len(), 2);
    }
}
