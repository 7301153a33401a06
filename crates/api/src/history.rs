//! `history` and `candles` queries: the store's range reads (raw points, or
//! candles the store computes), behind an object-safe handle so the HTTP server
//! and its sessions need no store type parameter, with the process-wide limit
//! and the deadline every query runs under (one pool of slots for both reads),
//! the paging of long point ranges (candle pages are in
//! [`ratecast_core::candle::page`]), and the one throttled log of failed queries.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use ratecast_core::{
    AssetId, Candle, Interval, Point, PointStore, StoreError, throttle::LogThrottle,
    time::unix_now_secs,
};
use ratecast_process::ErrorChain;
use tokio::sync::Semaphore;
use tracing::warn;

/// A boxed range-read future.
pub type RangeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Point>, StoreError>> + Send + 'a>>;

/// A boxed candle-read future.
pub type CandlesFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Candle>, StoreError>> + Send + 'a>>;

/// Range reads against the store, as sessions make them.
pub trait HistorySource: Send + Sync + 'static {
    /// The stored points of `asset` with `from <= time <= to`, ascending.
    fn range(&self, asset: AssetId, from: i64, to: i64) -> RangeFuture<'_>;

    /// [`PointStore::candles`]: at most `limit` candles starting in `[from, to]`.
    fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> CandlesFuture<'_>;
}

impl<S: PointStore> HistorySource for S {
    fn range(&self, asset: AssetId, from: i64, to: i64) -> RangeFuture<'_> {
        Box::pin(self.history(asset, from, to))
    }

    fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> CandlesFuture<'_> {
        Box::pin(PointStore::candles(self, asset, interval, from, to, limit))
    }
}

/// The longest span one `history` reply covers: at most one point per second,
/// so a page holds at most this many points (~270 KB for a six-letter symbol).
/// A longer request is answered page by page: the reply says where the next
/// page starts.
pub const PAGE_SECS: i64 = 3600;

/// The page of `[from, to]` a reply covers, and where the next one starts.
pub fn page(from: i64, to: i64) -> (i64, Option<i64>) {
    let page_to = to.min(from.saturating_add(PAGE_SECS - 1));
    (page_to, (page_to < to).then(|| page_to + 1))
}

/// Why a `history` query was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// Every process-wide query slot is taken.
    ServerBusy,
}

/// How a query ended: `T` is what the read returns (the points of a `history`
/// query, the candles of a `candles` one).
#[derive(Debug)]
pub enum Answered<T = Vec<Point>> {
    /// The store's answer (points, or candles for a candle read).
    Points(T),
    /// The store failed.
    Failed(StoreError),
    /// The store did not answer within the deadline.
    TimedOut,
}

/// Time between two lines about failing `history` queries.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The process's `history` and `candles` queries: the store, a limit on how
/// many run at once, both kinds together (each holds a store connection and
/// builds a reply of up to a page), and a deadline on each.
pub struct HistoryQueries {
    source: Arc<dyn HistorySource>,
    slots: Arc<Semaphore>,
    timeout: Duration,
    /// Shared by every session's queries: a store outage fails them all, and
    /// must write a line a minute, not one per query.
    failure_log: Arc<LogThrottle>,
}

impl HistoryQueries {
    pub fn new(source: Arc<dyn HistorySource>, concurrency: usize, timeout: Duration) -> Self {
        Self {
            source,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            timeout,
            failure_log: Arc::new(LogThrottle::new(FAILURE_LOG_INTERVAL)),
        }
    }

    /// Starts a query of `asset` in `[from, to]` if a slot is free; the future
    /// holds the slot until it ends, never outlives `timeout` and logs a
    /// failure (throttled).
    pub fn start(
        &self,
        asset: AssetId,
        from: i64,
        to: i64,
    ) -> Result<impl Future<Output = Answered> + 'static, NotStarted> {
        self.start_read("history", move |source| source.range(asset, from, to))
    }

    /// Starts a read of at most `limit` candles of `asset` starting in
    /// `[from, to]`, under the same slots, deadline and log as [`start`](Self::start).
    pub fn start_candles(
        &self,
        asset: AssetId,
        interval: Interval,
        (from, to): (i64, i64),
        limit: usize,
    ) -> Result<impl Future<Output = Answered<Vec<Candle>>> + 'static, NotStarted> {
        self.start_read("candles", move |source| {
            source.candles(asset, interval, from, to, limit)
        })
    }

    /// Starts `read` if a slot is free: the one place a query takes a slot,
    /// runs under the deadline and has its failure logged.
    fn start_read<T, R>(
        &self,
        kind: &'static str,
        read: R,
    ) -> Result<impl Future<Output = Answered<T>> + 'static, NotStarted>
    where
        T: 'static,
        R: for<'s> FnOnce(
                &'s dyn HistorySource,
            )
                -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 's>>
            + 'static,
    {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| NotStarted::ServerBusy)?;
        let (source, timeout) = (self.source.clone(), self.timeout);
        let failure_log = self.failure_log.clone();
        Ok(async move {
            let answered = match tokio::time::timeout(timeout, read(&*source)).await {
                Ok(Ok(answer)) => Answered::Points(answer),
                Ok(Err(error)) => Answered::Failed(error),
                Err(_elapsed) => Answered::TimedOut,
            };
            drop(slot);
            log_failure(&failure_log, kind, &answered);
            answered
        })
    }
}

/// Logs a failed query when `log` says a line is due; an answered one ends
/// the outage, so the next failure is logged at once.
fn log_failure<T>(log: &LogThrottle, kind: &'static str, answered: &Answered<T>) {
    let report = match answered {
        Answered::Points(_) => {
            log.success();
            return;
        }
        Answered::Failed(_) | Answered::TimedOut => log.failure(unix_now_secs()),
    };
    if !report.is_due() {
        return;
    }
    let failures = report.failures();
    match answered {
        Answered::Failed(error) => {
            warn!(error = %ErrorChain(error), failures, kind, "store query failed");
        }
        Answered::TimedOut => warn!(failures, kind, "store query timed out"),
        Answered::Points(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_long_range_is_answered_a_page_at_a_time() {
        assert_eq!(page(0, 10), (10, None));
        assert_eq!(page(0, PAGE_SECS - 1), (PAGE_SECS - 1, None));
        assert_eq!(page(0, PAGE_SECS), (PAGE_SECS - 1, Some(PAGE_SECS)));
        assert_eq!(page(100, 100 + 86_399), (100 + 3599, Some(3700)));
        assert_eq!(page(i64::MAX - 1, i64::MAX), (i64::MAX, None));
    }

    /// A store whose range reads never answer, counting calls.
    struct Hanging(AtomicUsize);

    impl HistorySource for Hanging {
        fn range(&self, _: AssetId, _: i64, _: i64) -> RangeFuture<'_> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::pending())
        }

        fn candles(&self, _: AssetId, _: Interval, _: i64, _: i64, _: usize) -> CandlesFuture<'_> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queries_beyond_the_limit_are_refused_and_a_hung_store_times_out() {
        let source = Arc::new(Hanging(AtomicUsize::new(0)));
        let queries = HistoryQueries::new(source.clone(), 2, Duration::from_secs(5));
        let first = queries.start(AssetId(1), 0, 10).expect("a free slot");
        let second = queries.start(AssetId(1), 0, 10).expect("a free slot");
        assert_eq!(
            queries.start(AssetId(1), 0, 10).err(),
            Some(NotStarted::ServerBusy)
        );
        assert_eq!(
            queries
                .start_candles(AssetId(1), Interval::M1, (0, 10), 1)
                .err(),
            Some(NotStarted::ServerBusy),
            "candle reads share the slots"
        );
        assert!(matches!(first.await, Answered::TimedOut));
        let third = queries
            .start_candles(AssetId(1), Interval::M1, (0, 10), 1)
            .expect("the slot was given back");
        assert!(matches!(third.await, Answered::TimedOut));
        let third = queries
            .start(AssetId(1), 0, 10)
            .expect("the slot was given back");
        drop(second);
        drop(third);
        assert_eq!(
            source.0.load(Ordering::SeqCst),
            2,
            "a query reaches the store only when its session polls it"
        );
    }
}
