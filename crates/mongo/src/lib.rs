//! ratecast-mongo: the MongoDB store of the multi-process deployment.
//!
//! The fetcher writes points with `insert_many(ordered: false)` (duplicates from a
//! second fetcher are success); every API process follows `points` with ONE change
//! stream, opened before its window is loaded so start-up is gapless, resumed from
//! the last token after transient errors and restarted from a fresh window when
//! the token left the oplog. Collections, indexes and every query document are in
//! [`documents`]; error handling in [`errors`]; the live feed in [`feed`].
//! `points` is a regular collection: change streams do not work on time-series ones.

pub mod documents;
pub mod errors;
pub mod feed;

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::TryStreamExt;
use mongodb::{
    Client, Collection, Database,
    bson::{Document, doc},
    change_stream::{ChangeStream, event::ChangeStreamEvent, event::ResumeToken},
    options::{ClientOptions, CollectionOptions, ReadConcern, WriteConcern},
};
use ratecast_core::{
    Asset, AssetId, AssetList, Follow, InsertReport, Point, PointSink, PointStore, StoreError,
};
use ratecast_core::{report::ErrorChain, time::backoff};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    documents::{ASSETS, POINTS},
    errors::{classify_insert_error, server_code, store_error},
    feed::MongoFeed,
};

/// Default retention of points (the TTL index), 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid MongoDB connection URI")]
    Uri(#[source] mongodb::error::Error),
    #[error("MongoDB is unreachable")]
    Unreachable(#[source] mongodb::error::Error),
    #[error("cannot create indexes on {collection}")]
    Index {
        collection: &'static str,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("cannot seed the asset list")]
    Seed(#[source] mongodb::error::Error),
    #[error("ASSET_LIST does not match the database: {0}")]
    AssetConflict(String),
}

/// The MongoDB store. Clones share one client (and its connection pool).
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Majority read and write concern: a point is acknowledged once it survives
    /// an election, and readers never see a point that could be rolled back.
    points: Collection<Document>,
    assets_collection: Collection<Document>,
    /// The configured assets, verified against the `assets` collection.
    assets: AssetList,
}

impl MongoStore {
    /// Connects, checks the server answers, and seeds and verifies `assets`.
    pub async fn connect(uri: &str, database: &str, assets: AssetList) -> Result<Self, SetupError> {
        let mut options = ClientOptions::parse(uri).await.map_err(SetupError::Uri)?;
        options.app_name = Some("ratecast".to_owned());
        // Fail operations in seconds, not the driver's 30 s, while no server is
        // selectable: callers retry or buffer, and readiness should say so quickly.
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(5));
        let client = Client::with_options(options).map_err(SetupError::Uri)?;
        let db = client.database(database);
        let majority = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        let store = Self {
            inner: Arc::new(Inner {
                points: db.collection_with_options(POINTS, majority.clone()),
                assets_collection: db.collection_with_options(ASSETS, majority),
                db,
                assets,
            }),
        };
        store
            .inner
            .db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(SetupError::Unreachable)?;
        store.seed_assets().await?;
        Ok(store)
    }

    /// [`connect`](Self::connect), retried with capped backoff while MongoDB is
    /// unreachable (each failure logged with its cause); a bad URI or an asset
    /// conflict fails at once, since retrying cannot fix them. `None` if
    /// `shutdown` fires first.
    pub async fn connect_with_retry(
        uri: &str,
        database: &str,
        assets: AssetList,
        shutdown: &CancellationToken,
    ) -> Result<Option<Self>, SetupError> {
        let mut attempt = 0u32;
        loop {
            let connecting = Self::connect(uri, database, assets.clone());
            let error = tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                connected = connecting => match connected {
                    Ok(store) => {
                        info!(database, "connected to MongoDB");
                        return Ok(Some(store));
                    }
                    Err(error @ (SetupError::Uri(_) | SetupError::AssetConflict(_))) => {
                        return Err(error);
                    }
                    Err(error) => error,
                },
            };
            let delay = backoff(attempt);
            attempt = attempt.saturating_add(1);
            warn!(error = %ErrorChain(&error), retry_in = ?delay, "cannot connect to MongoDB; retrying");
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    pub fn asset_list(&self) -> &AssetList {
        &self.inner.assets
    }

    /// Creates the indexes of both collections (idempotent); the TTL of an
    /// existing `at` index is changed to `retention` if it differs. Called by the
    /// fetcher, the owner of retention.
    pub async fn ensure_indexes(&self, retention: Duration) -> Result<(), SetupError> {
        let index_error = |collection| move |source| SetupError::Index { collection, source };
        self.inner
            .assets_collection
            .create_index(documents::asset_name_index())
            .await
            .map_err(index_error(ASSETS))?;
        self.inner
            .points
            .create_index(documents::asset_time_index())
            .await
            .map_err(index_error(POINTS))?;
        match self
            .inner
            .points
            .create_index(documents::ttl_index(retention))
            .await
        {
            Ok(_) => Ok(()),
            // IndexOptionsConflict / IndexKeySpecsConflict: same keys, other TTL.
            Err(error) if matches!(server_code(&error), Some(85 | 86)) => self
                .inner
                .db
                .run_command(documents::ttl_update_command(retention))
                .await
                .map(|_| ())
                .map_err(index_error(POINTS)),
            Err(error) => Err(index_error(POINTS)(error)),
        }
    }

    /// Inserts each configured asset if its id is free, then checks that every
    /// configured (id, name) is what the database holds. Ids never change: a
    /// mismatch is a start-up error, never a silent renumbering.
    async fn seed_assets(&self) -> Result<(), SetupError> {
        let collection = &self.inner.assets_collection;
        for asset in self.inner.assets.iter() {
            let document = documents::asset_document(asset);
            let seeded = collection
                .update_one(
                    doc! { "_id": document.get("_id") },
                    doc! { "$setOnInsert": { "name": asset.name.as_ref() } },
                )
                .upsert(true)
                .await;
            match seeded {
                Ok(_) => {}
                // The name is taken by another id: reported precisely below.
                Err(error) if server_code(&error) == Some(errors::DUPLICATE_KEY) => {}
                Err(error) => return Err(SetupError::Seed(error)),
            }
        }
        let stored: Vec<Document> = collection
            .find(doc! {})
            .await
            .map_err(SetupError::Seed)?
            .try_collect()
            .await
            .map_err(SetupError::Seed)?;
        let stored: Vec<(i64, String)> = stored
            .iter()
            .filter_map(|d| Some((d.get_i64("_id").ok()?, d.get_str("name").ok()?.to_owned())))
            .collect();
        check_assets(&self.inner.assets, &stored).map_err(SetupError::AssetConflict)
    }

    /// Opens the one change stream on `points`, from `resume` if given.
    pub(crate) async fn open_stream(
        &self,
        resume: Option<ResumeToken>,
    ) -> mongodb::error::Result<ChangeStream<ChangeStreamEvent<Document>>> {
        self.inner
            .points
            .watch()
            .pipeline(documents::change_stream_pipeline())
            .resume_after(resume)
            .await
    }
}

/// Checks the configured assets against the stored `(id, name)` pairs.
pub fn check_assets(assets: &AssetList, stored: &[(i64, String)]) -> Result<(), String> {
    for asset in assets.iter() {
        let id = i64::from(asset.id.0);
        if let Some((other, _)) = stored.iter().find(|(i, n)| *n == *asset.name && *i != id) {
            return Err(format!(
                "asset {} is stored with id {other}, but ASSET_LIST puts it at id {id}; \
                 asset ids never change: reorder ASSET_LIST to match the database",
                asset.name
            ));
        }
        match stored.iter().find(|(i, _)| *i == id) {
            Some((_, name)) if *name == *asset.name => {}
            Some((_, name)) => {
                return Err(format!(
                    "id {id} is {name} in the database but {} in ASSET_LIST; \
                     asset ids never change: reorder ASSET_LIST to match the database",
                    asset.name
                ));
            }
            None => {
                return Err(format!(
                    "asset {} (id {id}) is missing after seeding",
                    asset.name
                ));
            }
        }
    }
    Ok(())
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
        let documents: Vec<Document> = points.iter().map(documents::point_document).collect();
        match self
            .inner
            .points
            .insert_many(documents)
            .ordered(false)
            .await
        {
            Ok(result) => Ok(InsertReport {
                inserted: result.inserted_ids.len(),
                ..InsertReport::default()
            }),
            Err(error) => classify_insert_error(error, points.len()),
        }
    }
}

impl PointStore for MongoStore {
    type Feed = MongoFeed;

    async fn assets(&self) -> Result<Vec<Asset>, StoreError> {
        Ok(self.inner.assets.iter().cloned().collect())
    }

    async fn history(&self, asset: AssetId, from: i64, to: i64) -> Result<Vec<Point>, StoreError> {
        let documents: Vec<Document> = self
            .inner
            .points
            .find(documents::history_filter(asset, from, to))
            .sort(documents::history_sort())
            .await
            .map_err(store_error)?
            .try_collect()
            .await
            .map_err(store_error)?;
        Ok(documents
            .iter()
            .filter_map(|document| match documents::parse_point(document) {
                Ok(point) => Some(point),
                Err(error) => {
                    warn!(%error, "skipping a stored document that is not a point");
                    None
                }
            })
            .collect())
    }

    async fn follow(&self, since: i64) -> Result<Follow<MongoFeed>, StoreError> {
        // The stream opens first: a point inserted while the window loads is in
        // the stream, the window or both, never in neither; the feed drops the
        // ones the window already holds.
        let stream = self.open_stream(None).await.map_err(store_error)?;
        let mut snapshot = Vec::new();
        for asset in self.inner.assets.iter() {
            snapshot.extend(self.history(asset.id, since, i64::MAX).await?);
        }
        let held: HashSet<(u32, i64)> = snapshot.iter().map(|p| (p.asset_id.0, p.time)).collect();
        Ok(Follow {
            snapshot,
            feed: MongoFeed::new(self.clone(), stream, held),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> AssetList {
        "EURUSD,USDJPY".parse().expect("valid")
    }

    #[test]
    fn matching_assets_pass_and_extra_stored_ones_are_ignored() {
        let stored = vec![
            (1, "EURUSD".to_owned()),
            (2, "USDJPY".to_owned()),
            (3, "GBPUSD".to_owned()),
        ];
        assert_eq!(check_assets(&assets(), &stored), Ok(()));
    }

    #[test]
    fn a_name_under_another_id_is_refused_with_a_clear_message() {
        let stored = vec![(1, "USDJPY".to_owned()), (2, "EURUSD".to_owned())];
        let error = check_assets(&assets(), &stored).expect_err("renumbering is refused");
        assert_eq!(
            error,
            "asset EURUSD is stored with id 2, but ASSET_LIST puts it at id 1; \
             asset ids never change: reorder ASSET_LIST to match the database"
        );
    }

    #[test]
    fn an_id_holding_another_name_is_refused() {
        let stored = vec![(1, "EURUSD".to_owned()), (2, "GBPUSD".to_owned())];
        let error = check_assets(&assets(), &stored).expect_err("refused");
        assert!(
            error.starts_with("id 2 is GBPUSD in the database but USDJPY"),
            "{error}"
        );
    }
}
