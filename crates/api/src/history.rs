//! `history` queries: the store's range reads, behind an object-safe handle so
//! the HTTP server and its sessions need no store type parameter.

use std::{future::Future, pin::Pin};

use ratecast_core::{AssetId, Point, PointStore, StoreError};

/// A boxed range-read future.
pub type RangeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Point>, StoreError>> + Send + 'a>>;

/// Range reads against the store, as sessions make them.
pub trait HistorySource: Send + Sync + 'static {
    /// The stored points of `asset` with `from <= time <= to`, ascending.
    fn range(&self, asset: AssetId, from: i64, to: i64) -> RangeFuture<'_>;
}

impl<S: PointStore> HistorySource for S {
    fn range(&self, asset: AssetId, from: i64, to: i64) -> RangeFuture<'_> {
        Box::pin(self.history(asset, from, to))
    }
}
