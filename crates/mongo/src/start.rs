//! The start of a follow: the window read, and the time the change stream starts at.
//!
//! This module owns the seam between the snapshot an API replica loads and the
//! live stream that continues it; why it has no gap is argued on
//! [`read_window`]. It reads and picks the time; opening the stream and dropping
//! the overlap are the store's (`lib.rs`) and the feed's (`feed.rs`).

use futures_util::TryStreamExt;
use mongodb::{
    ClientSession,
    bson::{Document, Timestamp},
};
use ratecast_core::{AssetId, StoreError};
use tracing::warn;

use crate::{Connection, documents, errors::store_error};

/// How a follow chose the time its change stream starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The window was a snapshot read; the stream starts at its `atClusterTime`.
    Snapshot(Timestamp),
    /// The server reported no snapshot time (it is not MongoDB 5.0 or later): the
    /// window was a causal majority read after this time, the stream starts at it.
    Causal(Timestamp),
}

impl StreamStart {
    /// The time the change stream starts at (inclusive).
    pub fn time(self) -> Timestamp {
        match self {
            Self::Snapshot(time) | Self::Causal(time) => time,
        }
    }
}

/// Why no start time could be chosen.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server reported no operation time for the fallback window read; \
     a change stream cannot be started without a gap"
)]
pub struct NoStartTime;

/// Reads the window (`time >= since` for `assets`) and the time the change stream
/// must start at so that every point is in the window, the stream, or both.
///
/// **The argument.** The window is read with read concern `snapshot` in a snapshot
/// session, and `S` is the read's `atClusterTime`, which the driver keeps as the
/// session's `snapshot_time()`:
///
/// 1. The snapshot holds every majority-committed write with a commit time ≤ `S`:
///    a `snapshot` read "returns majority-committed data … from a specific single
///    point in time" (<https://www.mongodb.com/docs/v7.0/reference/read-concern-snapshot/>),
///    and `atClusterTime` "represents the timestamp of the read and is guaranteed
///    to be majority committed" (snapshot-sessions specification,
///    <https://github.com/mongodb/specifications/blob/master/source/sessions/snapshot-sessions.md>).
///    The `getMore`s carry `atClusterTime: S`, so every batch comes from that one
///    point in time.
/// 2. A change stream opened with `startAtOperationTime: S` "will only return
///    changes that occurred at or after the specified timestamp" (change-streams
///    specification, <https://github.com/mongodb/specifications/blob/master/source/change-streams/change-streams.md>;
///    `$changeStream`, <https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStream/>).
///    `S` is seconds old, so it is inside the oplog as that page requires.
///
/// Every insert has one time; it is ≤ `S` (in the window) or > `S` (in the
/// stream), so none is in neither. Points stamped exactly `S` may be in both: the
/// feed drops what the window holds. The operation time of the read is NOT used:
/// for a majority read the server stamps the reply with its current commit point,
/// which may be later than the snapshot (SERVER-27788,
/// <https://jira.mongodb.org/browse/SERVER-27788>); starting there was the gap this
/// replaces. The read must end within `minSnapshotHistoryWindowInSeconds` (300 s
/// by default); past it, or when the snapshot is not available yet, the server
/// answers 239 SnapshotTooOld or 246 SnapshotUnavailable, which are transient
/// store errors: the caller follows again from the top.
///
/// **The fallback.** A server that answers the snapshot read without
/// `atClusterTime` is not MongoDB 5.0 or later (which always sends it), so its
/// snapshot time is unknown. Then [`read_causal_window`] runs instead: also gapless
/// by documented guarantees, logged as a warning, and visible as
/// [`StreamStart::Causal`] to tests (the Mongo integration tests assert that a real
/// replica set takes the snapshot path).
pub(crate) async fn read_window(
    connection: &Connection,
    assets: &[AssetId],
    since: i64,
) -> Result<(Vec<Document>, StreamStart), StoreError> {
    let mut session = start_session(connection, documents::snapshot_session_options()).await?;
    let window = documents::window_filter(assets, since);
    let options = documents::snapshot_window_find_options();
    let documents = find_all(connection, window, options, &mut session).await?;
    if let Some(time) = session.snapshot_time() {
        return Ok((documents, StreamStart::Snapshot(time)));
    }
    warn!(
        "the server reported no snapshot time (atClusterTime) for the window read, \
         so it is not MongoDB 5.0 or later; using a causal majority read instead"
    );
    read_causal_window(connection, assets, since).await
}

async fn start_session(
    connection: &Connection,
    options: mongodb::options::SessionOptions,
) -> Result<mongodb::ClientSession, StoreError> {
    connection
        .client
        .start_session()
        .with_options(options)
        .await
        .map_err(store_error)
}

/// The fallback start: `T` = the operation time of a `ping` in a causally
/// consistent session, then the window read at majority in that session, which the
/// driver sends with `afterClusterTime: T`.
///
/// A read with `afterClusterTime: T` is served only once the node has reached `T`
/// (read concern, "Read Operations and afterClusterTime",
/// <https://www.mongodb.com/docs/manual/reference/read-concern/>), and at majority
/// from a committed snapshot at or after `T` (SERVER-27771,
/// <https://jira.mongodb.org/browse/SERVER-27771>): it holds every write ≤ `T`. The
/// stream starts at `T`, so it holds every write ≥ `T`. The overlap, from `T` to
/// the snapshot, is dropped by the feed.
async fn read_causal_window(
    connection: &Connection,
    assets: &[AssetId],
    since: i64,
) -> Result<(Vec<Document>, StreamStart), StoreError> {
    let mut session = start_session(connection, documents::causal_session_options()).await?;
    connection
        .db
        .run_command(documents::ping_command())
        .session(&mut session)
        .await
        .map_err(store_error)?;
    let start = session
        .operation_time()
        .ok_or_else(|| StoreError::Other(Box::new(NoStartTime)))?;
    let window = documents::window_filter(assets, since);
    let options = documents::causal_window_find_options();
    let documents = find_all(connection, window, options, &mut session).await?;
    Ok((documents, StreamStart::Causal(start)))
}

/// Every document of a `points` read in `session`.
async fn find_all(
    connection: &Connection,
    filter: Document,
    options: mongodb::options::FindOptions,
    session: &mut ClientSession,
) -> Result<Vec<Document>, StoreError> {
    let mut cursor = connection
        .points
        .find(filter)
        .with_options(options)
        .session(&mut *session)
        .await
        .map_err(store_error)?;
    cursor
        .stream(session)
        .try_collect()
        .await
        .map_err(store_error)
}
