//! The fetcher's write buffer: points wait here until the store takes them.
//!
//! The poller must never wait on the store (an election can take seconds, a
//! restart minutes), so [`BufferedSink::insert`] only enqueues; a flusher task
//! writes batches in arrival order and, when the store fails, keeps them and
//! retries with backoff (an insert with no answer within [`INSERT_DEADLINE`]
//! counts as failed; shutdown cuts a pending one short and makes one final flush
//! attempt). The queue is bounded: when full, the oldest point is
//! dropped and counted, since the newest data matters most to live subscribers.
//!
//! One bad point never holds the queue: points the store refuses for good come
//! back as `InsertReport::rejected` (the store says why in its log), are
//! counted, and leave the queue with their batch, the rest of which was stored;
//! a point of an asset the store
//! does not know is dropped with every queued point of that asset, counted and
//! logged. Only failures of the whole write are retried.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use ratecast_core::{
    AssetId, InsertReport, Point, PointSink, StoreError,
    retry::Backoff,
    throttle::{LogThrottle, Report},
    time::unix_now_secs,
};
use ratecast_process::ErrorChain;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::metrics;

/// Points written per insert; a backlog after an outage goes in several.
const MAX_BATCH: usize = 1000;
/// How long shutdown waits for the last flush.
const FINAL_FLUSH_BUDGET: Duration = Duration::from_secs(5);
/// How long one insert may take before it counts as failed and is retried: a
/// backstop for a connection that hangs with no error (inserts are idempotent,
/// so retrying a write that did land only finds duplicates).
const INSERT_DEADLINE: Duration = Duration::from_secs(30);
/// Time between two "cannot store points" lines while the store stays down.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

struct Queue {
    points: VecDeque<Point>,
    /// Points ever removed from the front (flushed or dropped), so a flush can
    /// tell how many of the points it wrote are still at the front.
    removed: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    wake: Notify,
}

/// A [`PointSink`] that never blocks: it queues, a background task stores.
#[derive(Clone)]
pub struct BufferedSink {
    shared: Arc<Shared>,
}

impl BufferedSink {
    /// Starts the flusher into `store` on `tasks`; it stops after a final flush
    /// attempt when `shutdown` fires. `capacity` is in points.
    pub fn spawn<K: PointSink>(
        store: K,
        capacity: usize,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                points: VecDeque::new(),
                removed: 0,
            }),
            capacity: capacity.max(1),
            wake: Notify::new(),
        });
        tasks.spawn(flush_loop(shared.clone(), store, shutdown));
        Self { shared }
    }

    /// The most points it holds before dropping the oldest.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Points waiting to be stored.
    pub fn len(&self) -> usize {
        self.shared.lock().points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        ratecast_core::sync::lock(&self.queue)
    }
}

impl PointSink for BufferedSink {
    /// Queues `points`; the report counts them as `queued`, not yet stored, and
    /// the oldest points dropped to make room as `dropped`.
    async fn insert(&self, points: &[Point]) -> Result<InsertReport, StoreError> {
        let mut dropped = 0u64;
        let buffered = {
            let mut queue = self.shared.lock();
            for point in points {
                if queue.points.len() >= self.shared.capacity {
                    queue.points.pop_front();
                    queue.removed += 1;
                    dropped += 1;
                }
                queue.points.push_back(point.clone());
            }
            queue.points.len()
        };
        if dropped > 0 {
            metrics::buffer_dropped(dropped);
            warn!(
                dropped,
                capacity = self.shared.capacity,
                "write buffer full: oldest points dropped"
            );
        }
        metrics::buffered(buffered);
        self.shared.wake.notify_one();
        Ok(InsertReport {
            queued: points.len(),
            dropped: usize::try_from(dropped).unwrap_or(usize::MAX),
            ..InsertReport::default()
        })
    }
}

#[tracing::instrument(name = "flusher", skip_all)]
async fn flush_loop<K: PointSink>(shared: Arc<Shared>, store: K, shutdown: CancellationToken) {
    // Paces retries while the store fails; reset by a flush that succeeds.
    let mut backoff = Backoff::new();
    let failure_log = LogThrottle::new(FAILURE_LOG_INTERVAL);
    let mut retry_in = None;
    loop {
        let woken = async {
            match retry_in {
                Some(delay) => tokio::time::sleep(delay).await,
                None => shared.wake.notified().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = woken => {}
        }
        // A flush cut short keeps its batch queued for the final flush.
        let flushed = tokio::select! {
            () = shutdown.cancelled() => break,
            flushed = flush(&shared, &store) => flushed,
        };
        match flushed {
            Ok(()) => {
                if let Report::Recovered { failures, .. } = failure_log.success() {
                    info!(
                        failed_flushes = failures,
                        "store reachable again; buffer flushed"
                    );
                }
                backoff.reset();
                retry_in = None;
            }
            Err(error) => {
                metrics::store_failed();
                let report = failure_log.failure(unix_now_secs());
                if report.is_due() {
                    warn!(
                        error = %ErrorChain(&error),
                        buffered = shared.lock().points.len(),
                        failed_flushes = report.failures(),
                        "cannot store points; keeping them buffered and retrying"
                    );
                }
                retry_in = Some(backoff.next_delay());
            }
        }
    }
    match tokio::time::timeout(FINAL_FLUSH_BUDGET, flush(&shared, &store)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            warn!(error = %ErrorChain(&error), lost = shared.lock().points.len(), "final flush failed")
        }
        Err(_) => warn!(lost = shared.lock().points.len(), "final flush timed out"),
    }
}

/// Writes the queue front to back in batches until it is empty or the store fails.
async fn flush<K: PointSink>(shared: &Shared, store: &K) -> Result<(), StoreError> {
    loop {
        let (batch, removed_before) = {
            let queue = shared.lock();
            let batch: Vec<Point> = queue.points.iter().take(MAX_BATCH).cloned().collect();
            (batch, queue.removed)
        };
        if batch.is_empty() {
            return Ok(());
        }
        let inserted = tokio::time::timeout(INSERT_DEADLINE, store.insert(&batch))
            .await
            .unwrap_or_else(|_elapsed| {
                Err(StoreError::Unavailable(
                    format!("no answer to an insert within {INSERT_DEADLINE:?}").into(),
                ))
            });
        let report = match inserted {
            Ok(report) => report,
            Err(StoreError::UnknownAsset(asset)) => {
                drop_asset(shared, asset);
                continue;
            }
            Err(error) => return Err(error),
        };
        metrics::stored(&report);
        metrics::clock_offset(store.clock().offset_ms());
        let mut queue = shared.lock();
        // Points dropped from the front meanwhile were part of this batch.
        let already_gone = usize::try_from(queue.removed - removed_before).unwrap_or(usize::MAX);
        let remove = batch
            .len()
            .saturating_sub(already_gone)
            .min(queue.points.len());
        queue.points.drain(..remove);
        queue.removed += remove as u64;
        metrics::buffered(queue.points.len());
    }
}

/// Drops every queued point of `asset`, which the store does not know: retrying
/// them could only fail again, and would hold every point behind them.
fn drop_asset(shared: &Shared, asset: AssetId) {
    let dropped = {
        let mut queue = shared.lock();
        let before = queue.points.len();
        queue.points.retain(|p| p.asset_id != asset);
        before - queue.points.len()
    };
    metrics::stored(&InsertReport {
        rejected: dropped,
        ..InsertReport::default()
    });
    warn!(
        asset = asset.0,
        dropped, "the store does not know this asset id; its queued points are dropped"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use ratecast_core::{AssetId, MemoryStore, PointStore};
    use ratecast_testkit::TEST_RETENTION_SECS;

    use super::*;

    /// A store that fails while `down` is set.
    #[derive(Clone)]
    struct Flaky {
        inner: MemoryStore,
        down: Arc<AtomicBool>,
    }

    impl PointSink for Flaky {
        async fn insert(&self, points: &[Point]) -> Result<InsertReport, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.inner.insert(points).await
        }
    }

    /// A store that refuses points with a negative value for good, as MongoDB
    /// does with a document validator, and counts its insert calls.
    #[derive(Clone)]
    struct Refusing {
        inner: MemoryStore,
        calls: Arc<AtomicUsize>,
    }

    impl PointSink for Refusing {
        async fn insert(&self, points: &[Point]) -> Result<InsertReport, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let good: Vec<Point> = points.iter().filter(|p| p.value > 0.0).cloned().collect();
            let mut report = self.inner.insert(&good).await?;
            report.rejected = points.len() - good.len();
            Ok(report)
        }
    }

    /// Waits (in paused time) until the flusher has emptied `sink`.
    async fn drained(sink: &BufferedSink) {
        tokio::time::timeout(Duration::from_secs(60), async {
            while !sink.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the buffer drains");
    }

    fn point(time: i64) -> Point {
        ratecast_testkit::point(1, "EURUSD", time, 1.0)
    }

    fn flaky() -> Flaky {
        Flaky {
            inner: MemoryStore::new("EURUSD".parse().expect("valid"), TEST_RETENTION_SECS),
            down: Arc::new(AtomicBool::new(true)),
        }
    }

    async fn stored_times(store: &MemoryStore) -> Vec<i64> {
        store
            .history(AssetId(1), 0, i64::MAX)
            .await
            .expect("history")
            .iter()
            .map(|p| p.time)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_loses_nothing_within_capacity_and_flushes_in_order() {
        let store = flaky();
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let sink = BufferedSink::spawn(store.clone(), 1000, &tasks, shutdown.clone());
        let mut dropped = 0;
        for t in 0..600 {
            dropped += sink
                .insert(&[point(t)])
                .await
                .expect("insert never fails")
                .dropped;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            sink.len(),
            600,
            "everything is buffered while the store is down"
        );
        store.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert!(sink.is_empty());
        assert_eq!(
            stored_times(&store.inner).await,
            (0..600).collect::<Vec<_>>()
        );
        assert_eq!(dropped, 0);
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
    }

    /// A store whose first insert never answers (a connection that hangs with
    /// no error); later ones are the memory store's.
    #[derive(Clone)]
    struct HangsOnce {
        inner: MemoryStore,
        hung: Arc<AtomicBool>,
    }

    impl PointSink for HangsOnce {
        async fn insert(&self, points: &[Point]) -> Result<InsertReport, StoreError> {
            if !self.hung.swap(true, Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.inner.insert(points).await
        }
    }

    /// A buffer flushing into a [`HangsOnce`] store.
    fn hangs_once() -> (HangsOnce, BufferedSink, TaskTracker, CancellationToken) {
        let store = HangsOnce {
            inner: MemoryStore::new("EURUSD".parse().expect("valid"), TEST_RETENTION_SECS),
            hung: Arc::new(AtomicBool::new(false)),
        };
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let sink = BufferedSink::spawn(store.clone(), 1000, &tasks, shutdown.clone());
        (store, sink, tasks, shutdown)
    }

    #[tokio::test(start_paused = true)]
    async fn an_insert_that_hangs_is_abandoned_at_the_deadline_and_its_points_stored_after() {
        let (store, sink, tasks, shutdown) = hangs_once();
        sink.insert(&[point(1), point(2)]).await.expect("queued");
        tokio::time::sleep(INSERT_DEADLINE - Duration::from_secs(1)).await;
        assert_eq!(sink.len(), 2, "still waiting on the hung insert");
        drained(&sink).await;
        assert_eq!(stored_times(&store.inner).await, vec![1, 2]);
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_hung_insert_still_makes_the_final_flush() {
        let (store, sink, tasks, shutdown) = hangs_once();
        sink.insert(&[point(1)]).await.expect("queued");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = tokio::time::Instant::now();
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        assert!(
            start.elapsed() < INSERT_DEADLINE,
            "shutdown did not wait out the hung insert"
        );
        assert_eq!(
            stored_times(&store.inner).await,
            vec![1],
            "the final flush stored it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_drops_the_oldest_points_and_counts_them() {
        let store = flaky();
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let sink = BufferedSink::spawn(store.clone(), 100, &tasks, shutdown.clone());
        let mut dropped = 0;
        for t in 0..150 {
            dropped += sink
                .insert(&[point(t)])
                .await
                .expect("insert never fails")
                .dropped;
        }
        assert_eq!(sink.len(), 100);
        assert_eq!(dropped, 50);
        store.down.store(false, Ordering::SeqCst);
        sink.insert(&[point(150)]).await.expect("insert");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(
            stored_times(&store.inner).await,
            (51..=150).collect::<Vec<_>>()
        );
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_point_the_store_refuses_for_good_is_dropped_and_never_retried() {
        let store = Refusing {
            inner: MemoryStore::new("EURUSD".parse().expect("valid"), TEST_RETENTION_SECS),
            calls: Arc::new(AtomicUsize::new(0)),
        };
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let sink = BufferedSink::spawn(store.clone(), 100, &tasks, shutdown.clone());
        let bad = Point {
            value: -1.0,
            ..point(2)
        };
        sink.insert(&[point(1), bad, point(3)])
            .await
            .expect("insert never fails");
        drained(&sink).await;
        assert_eq!(stored_times(&store.inner).await, vec![1, 3]);
        assert_eq!(store.calls.load(Ordering::SeqCst), 1, "one write, no retry");
        sink.insert(&[point(4)]).await.expect("insert");
        drained(&sink).await;
        assert_eq!(stored_times(&store.inner).await, vec![1, 3, 4]);
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn points_of_an_asset_the_store_does_not_know_are_dropped_and_the_rest_stored() {
        let store = MemoryStore::new("EURUSD".parse().expect("valid"), TEST_RETENTION_SECS);
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let sink = BufferedSink::spawn(store.clone(), 100, &tasks, shutdown.clone());
        let unknown = |time| Point {
            asset_id: AssetId(9),
            asset_name: "XAUUSD".into(),
            ..point(time)
        };
        sink.insert(&[point(1), unknown(1), point(2), unknown(2), point(3)])
            .await
            .expect("insert never fails");
        drained(&sink).await;
        assert_eq!(stored_times(&store).await, vec![1, 2, 3]);
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
