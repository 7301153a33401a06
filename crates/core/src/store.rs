//! The store contract: what the fetcher writes and what the API reads.
//!
//! Two sides, so a process holds only what it uses: the fetcher holds a [`PointSink`],
//! the API a [`PointStore`]. Both the embedded [`MemoryStore`](crate::MemoryStore) and
//! the MongoDB store implement them and pass the same conformance suite
//! (`ratecast_core::conformance`). Implementations own their retention; callers never
//! delete.

use std::future::Future;

use crate::{
    asset::{Asset, AssetId},
    candle::{Candle, Interval},
    point::Point,
    time::SharedClock,
};

/// Why a store operation failed. Transient failures may succeed when retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("point for unknown asset id {0}")]
    UnknownAsset(AssetId),
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("store error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What an insert did. Points already stored are duplicates, not errors: two
/// fetchers may run at once and both insert the same second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertReport {
    pub inserted: usize,
    pub duplicates: usize,
    /// Points older than the store's retention, dropped on arrival.
    pub expired: usize,
    /// Points accepted by a buffering sink for a later write, not yet stored.
    pub queued: usize,
    /// Older points a full buffering sink dropped to make room for these.
    pub dropped: usize,
    /// Points the store refused for good (MongoDB document validation, a point
    /// stamped in the future): never stored, never retried. The writer counts
    /// them; MongoDB's reasons are in the store's log.
    pub rejected: usize,
    /// Of `inserted`, points the store applied without the acknowledgement it
    /// asked for (MongoDB: a write concern that cannot be satisfied, e.g. a `w`
    /// naming an unknown tag). Not retried; they could be rolled back.
    pub unconfirmed: usize,
}

/// The write side, held by the fetcher.
pub trait PointSink: Send + Sync + 'static {
    /// Stores `points`, idempotently by (asset_id, time).
    fn insert(
        &self,
        points: &[Point],
    ) -> impl Future<Output = Result<InsertReport, StoreError>> + Send;

    /// The clock the store judges points by (see [`SharedClock`]): the local one
    /// unless the store reads a clock every service shares.
    fn clock(&self) -> SharedClock {
        SharedClock::local()
    }
}

/// The read side, held by the API.
pub trait PointStore: Send + Sync + 'static {
    type Feed: LiveFeed;

    /// The tracked assets in id order.
    fn assets(&self) -> impl Future<Output = Result<Vec<Asset>, StoreError>> + Send;

    /// `asset`'s points with `from <= time <= to`, ascending by time.
    fn history(
        &self,
        asset: AssetId,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<Point>, StoreError>> + Send;

    /// `asset`'s candles of `interval` whose start is in `[from, to]`, ascending,
    /// at most `limit`, each summarising every stored point of its interval
    /// (see [`candle`](crate::candle)); intervals without a point are absent.
    /// `closed` is judged by [`clock`](Self::clock). Computed where the points
    /// are: the caller never receives the raw points.
    fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Candle>, StoreError>> + Send;

    /// A snapshot of every point with `time >= since` and a feed of every point
    /// stored after that snapshot: no point is in neither, none is in both.
    fn follow(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<SnapshotFeed<Self::Feed>, StoreError>> + Send;

    /// The clock a reader judges "now" by (see [`SharedClock`]): the local one
    /// unless the store reads a clock every service shares.
    fn clock(&self) -> SharedClock {
        SharedClock::local()
    }
}

/// A snapshot and the live feed that continues it without a gap.
pub struct SnapshotFeed<F> {
    /// Points with `time >= since`, ascending by time within each asset.
    pub snapshot: Vec<Point>,
    pub feed: F,
}

/// Why a live feed did not deliver a point.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The reader fell so far behind that points were discarded: it must
    /// [`follow`](PointStore::follow) again and reconcile with the new snapshot.
    #[error("live feed lagged: {missed} batches were discarded")]
    Lagged { missed: u64 },
    /// The feed cannot continue from where it was (e.g. its resume point left
    /// the oplog): the reader must follow again and reconcile.
    #[error("live feed must restart")]
    Reset(#[source] StoreError),
    /// A transient failure: nothing was lost, calling `next` again resumes
    /// (after a backoff the feed applies itself) and reports
    /// [`FeedEvent::Resumed`] once it follows the store again.
    #[error("live feed interrupted")]
    Interrupted(#[source] StoreError),
    /// The store shut the feed down; following again may work.
    #[error("live feed closed by the store")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a live feed delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// The next stored point, in the order the store accepted them.
    Point(Point),
    /// After an [`Interrupted`](FeedError::Interrupted) feed reconnected: it
    /// follows the store again, and nothing was lost meanwhile.
    Resumed,
}

/// The live continuation of a [`SnapshotFeed`] snapshot.
pub trait LiveFeed: Send + 'static {
    /// The next stored point, or news that the feed follows the store again.
    fn next(&mut self) -> impl Future<Output = Result<FeedEvent, FeedError>> + Send;
}

/// A shared store is a store: the API hands one `Arc` to the feed and the sessions.
impl<S: PointStore> PointStore for std::sync::Arc<S> {
    type Feed = S::Feed;

    fn assets(&self) -> impl Future<Output = Result<Vec<Asset>, StoreError>> + Send {
        (**self).assets()
    }

    fn history(
        &self,
        asset: AssetId,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<Point>, StoreError>> + Send {
        (**self).history(asset, from, to)
    }

    fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Candle>, StoreError>> + Send {
        (**self).candles(asset, interval, from, to, limit)
    }

    fn follow(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<SnapshotFeed<S::Feed>, StoreError>> + Send {
        (**self).follow(since)
    }

    fn clock(&self) -> SharedClock {
        (**self).clock()
    }
}
