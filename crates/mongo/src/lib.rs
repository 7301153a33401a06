//! ratecast-mongo: the MongoDB store of the multi-process deployment.
//!
//! The fetcher writes points with `insert_many(ordered: false)`: duplicates from a
//! second fetcher are success, a document the server refuses for good is counted
//! and dropped, anything transient fails the batch so the writer retries it. Every
//! API process follows `points` with ONE change stream, started without a gap at
//! the time of a snapshot read of the window ([`start`] argues why). The stream
//! resumes from its last token after transient errors and the window is reloaded
//! when the token left the oplog. Connecting, indexes and the asset list are in
//! [`setup`]; every query document and driver option in [`documents`]; error
//! classification in [`errors`]; the live feed in [`feed`]. Refused points are
//! logged through a [`LogThrottle`]. `points` is a regular collection:
//! change streams do not work on time-series ones.

pub mod clock;
pub mod documents;
pub mod errors;
pub mod feed;
pub mod setup;
pub mod start;

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::TryStreamExt;
use mongodb::{
    Client, Collection, Database,
    bson::Document,
    change_stream::{ChangeStream, event::ChangeStreamEvent, event::ResumeToken},
    options::ConnectionString,
};
use ratecast_core::{
    Asset, AssetId, AssetList, Candle, InsertReport, Interval, Point, PointSink, PointStore,
    SnapshotFeed, StoreError,
    throttle::LogThrottle,
    time::{SharedClock, unix_now_secs},
};
use tokio::sync::OnceCell;
use tracing::warn;

use crate::{
    errors::{classify_insert_error, store_error},
    feed::MongoFeed,
};

pub use setup::SetupError;
pub use start::StreamStart;

/// The MongoDB store. Clones share one client (and its connection pool).
///
/// A store is a handle first: [`MongoStore::new`] only checks the URI, so a
/// service can hand the store to its parts at construction and answer health
/// checks while the database is still out of reach. The client is created on
/// first use (resolving a `mongodb+srv://` URI needs DNS, which may be down at
/// start-up) and [`prepare_writer`](MongoStore::prepare_writer) or
/// [`prepare_reader`](MongoStore::prepare_reader) sets the database up.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    uri: ConnectionString,
    database: String,
    /// The configured assets, verified against the `assets` collection.
    assets: AssetList,
    /// The client and its collections, created by the first operation that
    /// succeeds in creating them.
    connection: OnceCell<Connection>,
    /// Points the server refused for good are logged through this, so a validator
    /// that refuses one asset's every point writes a line a minute, not a second.
    rejections: LogThrottle,
    /// Points stamped ahead of the database's clock, logged like refused ones.
    future: LogThrottle,
    /// Points applied under a write concern that cannot be satisfied, likewise.
    unconfirmed: LogThrottle,
    /// The database's clock as this host reads it ([`clock`]).
    clock: SharedClock,
    /// Failed rereads of that clock.
    clock_log: LogThrottle,
    clock_read: clock::LastReading,
}

/// The shortest time between two lines about refused points.
const REJECTION_LOG_INTERVAL: Duration = Duration::from_secs(60);

struct Connection {
    /// For the sessions that tie the window read to the stream's start.
    client: Client,
    db: Database,
    /// Majority read and write concern: a point is acknowledged once it survives
    /// an election, and readers never see a point that could be rolled back.
    points: Collection<Document>,
    assets: Collection<Document>,
}

impl MongoStore {
    /// The client and collections, created on first use.
    async fn connection(&self) -> mongodb::error::Result<&Connection> {
        self.inner
            .connection
            .get_or_try_init(|| setup::open(&self.inner.uri, &self.inner.database))
            .await
    }

    /// Opens the one change stream on `points`, continuing after `resume`.
    pub(crate) async fn resume_stream(
        &self,
        resume: ResumeToken,
    ) -> mongodb::error::Result<ChangeStream<ChangeStreamEvent<Document>>> {
        self.connection()
            .await?
            .points
            .watch()
            .pipeline(documents::change_stream_pipeline())
            .resume_after(resume)
            .await
    }
}

/// The points among stored documents; anything else is logged and skipped.
fn parse_points(documents: &[Document]) -> Vec<Point> {
    documents
        .iter()
        .filter_map(|document| match documents::parse_point(document) {
            Ok(point) => Some(point),
            Err(error) => {
                warn!(%error, "skipping a stored document that is not a point");
                None
            }
        })
        .collect()
}

impl PointSink for MongoStore {
    async fn insert(&self, points: &[Point]) -> Result<InsertReport, StoreError> {
        if let Some(unknown) = points
            .iter()
            .find(|p| self.inner.assets.get(p.asset_id).is_none())
        {
            return Err(StoreError::UnknownAsset(unknown.asset_id));
        }
        if points.is_empty() {
            return Ok(InsertReport::default());
        }
        // Judged by the database's clock, which every service shares: a point
        // further ahead would take the place of the real point of its second.
        self.refresh_clock().await;
        let latest = self.inner.clock.latest_acceptable();
        let (current, future): (Vec<&Point>, Vec<&Point>) =
            points.iter().partition(|p| p.time <= latest);
        if let Some(first) = future.first() {
            self.log_future(future.len(), first);
        }
        let mut report = self.insert_current(&current).await?;
        report.rejected += future.len();
        Ok(report)
    }

    fn clock(&self) -> SharedClock {
        self.database_clock()
    }
}

impl MongoStore {
    /// Inserts points no later than the database's clock allows.
    async fn insert_current(&self, points: &[&Point]) -> Result<InsertReport, StoreError> {
        if points.is_empty() {
            return Ok(InsertReport::default());
        }
        let documents: Vec<Document> = points
            .iter()
            .map(|p| documents::point_document(p))
            .collect();
        let connection = self.connection().await.map_err(store_error)?;
        match connection
            .points
            .insert_many(documents)
            .ordered(false)
            .await
        {
            Ok(result) => Ok(InsertReport {
                inserted: result.inserted_ids.len(),
                ..InsertReport::default()
            }),
            Err(error) => {
                let outcome = classify_insert_error(error, points.len())?;
                if let Some(rejection) = &outcome.rejection {
                    self.log_rejection(outcome.report.rejected, rejection, points);
                }
                if let Some(concern) = &outcome.concern {
                    self.log_unconfirmed(outcome.report.unconfirmed, concern);
                }
                Ok(outcome.report)
            }
        }
    }

    /// The database's clock as this host reads it: the local clock plus the
    /// offset measured with `hello` (0 until the first reading).
    pub fn database_clock(&self) -> SharedClock {
        self.inner.clock.clone()
    }

    /// Logs writes whose write concern cannot be satisfied, at most a line a
    /// minute.
    fn log_unconfirmed(&self, count: usize, concern: &errors::ConcernFailure) {
        let report = self
            .inner
            .unconfirmed
            .failures(count as u64, unix_now_secs());
        if !report.is_due() {
            return;
        }
        let unconfirmed = report.failures();
        warn!(
            unconfirmed,
            code = concern.code,
            code_name = %concern.code_name,
            reason = %concern.message,
            "MongoDB applied points but cannot satisfy their write concern (check the \
             replica set's members and tags); not retried, counted in \
             ratecast_points_unconfirmed_total"
        );
    }

    /// Logs points refused as stamped in the future, at most a line a minute.
    fn log_future(&self, count: usize, first: &Point) {
        let report = self.inner.future.failures(count as u64, unix_now_secs());
        if !report.is_due() {
            return;
        }
        let refused = report.failures();
        warn!(
            refused,
            asset = first.asset_name.as_ref(),
            time = first.time,
            ahead_secs = first.time.saturating_sub(self.inner.clock.now_secs()),
            clock_offset_ms = self.inner.clock.offset_ms(),
            "refusing points stamped ahead of the database's clock (is this fetcher's clock \
             ahead?); counted in ratecast_points_rejected_total"
        );
    }
}

impl MongoStore {
    /// Logs refused points: the first refusal at once, later ones summed into at
    /// most one line per [`REJECTION_LOG_INTERVAL`]. They are counted by the
    /// writer (`InsertReport::rejected`), which the fetcher exports as a metric.
    fn log_rejection(&self, count: usize, rejection: &errors::Rejection, points: &[&Point]) {
        let report = self
            .inner
            .rejections
            .failures(count as u64, unix_now_secs());
        if !report.is_due() {
            return;
        }
        let rejected = report.failures();
        let point = points.get(rejection.index).copied();
        warn!(
            rejected,
            code = rejection.code,
            code_name = %rejection.code_name,
            reason = %rejection.message,
            asset = point.map(|p| p.asset_name.as_ref()),
            time = point.map(|p| p.time),
            "MongoDB refused points for good (e.g. document validation); they are dropped"
        );
    }
}

impl PointStore for MongoStore {
    type Feed = MongoFeed;

    fn clock(&self) -> SharedClock {
        self.database_clock()
    }

    async fn assets(&self) -> Result<Vec<Asset>, StoreError> {
        Ok(self.inner.assets.iter().cloned().collect())
    }

    async fn history(&self, asset: AssetId, from: i64, to: i64) -> Result<Vec<Point>, StoreError> {
        let documents: Vec<Document> = self
            .connection()
            .await
            .map_err(store_error)?
            .points
            .find(documents::history_filter(asset, from, to))
            .with_options(documents::history_find_options())
            .await
            .map_err(store_error)?
            .try_collect()
            .await
            .map_err(store_error)?;
        Ok(parse_points(&documents))
    }

    /// Summarised by the database ([`documents::candles_pipeline`]); a reply
    /// document that is not a candle fails the read ([`StoreError::Other`]).
    /// `closed` is judged by the database's clock.
    async fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Candle>, StoreError> {
        let documents: Vec<Document> = self
            .connection()
            .await
            .map_err(store_error)?
            .points
            .aggregate(documents::candles_pipeline(
                asset, interval, from, to, limit,
            ))
            .with_options(documents::candles_aggregate_options())
            .await
            .map_err(store_error)?
            .try_collect()
            .await
            .map_err(store_error)?;
        let now = self.inner.clock.now_secs();
        documents
            .iter()
            .map(|document| documents::parse_candle(document, interval, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|malformed| StoreError::Other(Box::new(malformed)))
    }

    /// The window since `since` and the stream that continues it without a gap:
    /// [`start::read_window`] reads the window and picks the start time `S` (the
    /// argument, with the server documentation, is there); the stream is then
    /// opened at `S`, without the read's session (a change stream needs majority
    /// or no read concern, not `snapshot`). What both hold is dropped once by the
    /// feed. Every failure ends this follow; the caller follows again from the
    /// top (the API does, with backoff). Transient ones (network, an election, 239
    /// SnapshotTooOld, 246 SnapshotUnavailable) are [`StoreError::Unavailable`].
    async fn follow(&self, since: i64) -> Result<SnapshotFeed<MongoFeed>, StoreError> {
        let connection = self.connection().await.map_err(store_error)?;
        let ids: Vec<AssetId> = self.inner.assets.iter().map(|a| a.id).collect();
        let (documents, start) = start::read_window(connection, &ids, since).await?;
        let stream = connection
            .points
            .watch()
            .pipeline(documents::change_stream_pipeline())
            .with_options(documents::stream_start_options(start.time()))
            .await
            .map_err(store_error)?;
        let snapshot = parse_points(&documents);
        let held: HashSet<(u32, i64)> = snapshot.iter().map(|p| (p.asset_id.0, p.time)).collect();
        Ok(SnapshotFeed {
            snapshot,
            feed: MongoFeed::new(self.clone(), stream, held, start),
        })
    }
}
