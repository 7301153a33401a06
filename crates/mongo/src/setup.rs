//! Connecting to MongoDB and preparing it: indexes, retention and the asset list.
//!
//! Asset ids never change: the configured list is seeded idempotently and then
//! checked against what the database holds; a name stored under another id is a
//! start-up error with a clear message, never a silent renumbering. Whether a
//! failure is worth retrying is [`SetupError::is_transient`]; the retry loop itself
//! is the services' (`ratecast_process::startup`).

use std::{sync::Arc, time::Duration};

use futures_util::TryStreamExt;
use mongodb::{
    Client,
    bson::{Document, doc},
    error::ErrorKind,
    options::{
        Acknowledgment, ClientOptions, CollectionOptions, ConnectionString, ReadConcern,
        WriteConcern,
    },
};
use ratecast_core::{AssetList, StoreError, throttle::LogThrottle, time::SharedClock};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::{
    Connection, Inner, MongoStore,
    clock::{ClockError, LastReading},
    documents::{self, ASSETS, POINTS},
    errors::{self, server_code, store_error},
};

/// The server's code for an index that exists with other options.
const INDEX_OPTIONS_CONFLICT: i32 = 85;
/// The server's code for a command the user may not run.
const UNAUTHORIZED: i32 = 13;
/// Longest wait for a majority write before it fails (and is retried).
const MAJORITY_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation waits for a usable server (the driver's default is 30 s):
/// callers retry or buffer, and readiness should say so quickly.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

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
    #[error(
        "MongoDB 5.0 or later is required (wire version {min}); this server speaks \
         wire version {found}",
        min = documents::MIN_WIRE_VERSION
    )]
    ServerTooOld { found: i32 },
    #[error("cannot read the server's clock")]
    Clock(#[source] documents::MalformedHello),
}

impl SetupError {
    /// Whether retrying the set-up later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Index { source, .. } | Self::Seed(source) => errors::is_transient(source),
            Self::Uri(_) | Self::AssetConflict(_) | Self::ServerTooOld { .. } | Self::Clock(_) => {
                false
            }
        }
    }
}

fn index_error(collection: &'static str) -> impl Fn(mongodb::error::Error) -> SetupError {
    move |source| SetupError::Index { collection, source }
}

/// Creates the client and its collections for `uri`. Parsing resolves
/// `mongodb+srv://` names; the client itself connects lazily.
pub(crate) async fn open(
    uri: &ConnectionString,
    database: &str,
) -> mongodb::error::Result<Connection> {
    let mut options = ClientOptions::parse(uri.clone()).await?;
    options
        .app_name
        .get_or_insert_with(|| "ratecast".to_owned());
    options
        .server_selection_timeout
        .get_or_insert(SERVER_SELECTION_TIMEOUT);
    let client = Client::with_options(options)?;
    let db = client.database(database);
    // A majority write that cannot complete (e.g. the only secondary is down)
    // fails after a while instead of blocking the writer forever.
    let write_concern = WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .w_timeout(MAJORITY_WRITE_TIMEOUT)
        .build();
    let majority = CollectionOptions::builder()
        .read_concern(ReadConcern::majority())
        .write_concern(write_concern)
        .build();
    Ok(Connection {
        points: db.collection_with_options(POINTS, majority.clone()),
        assets: db.collection_with_options(ASSETS, majority),
        db,
        client,
    })
}

impl MongoStore {
    /// A store for `database` at `uri`. Only checks the URI: nothing is sent
    /// until [`prepare_writer`](Self::prepare_writer),
    /// [`prepare_reader`](Self::prepare_reader) or another operation runs.
    pub fn new(uri: &str, database: &str, assets: AssetList) -> Result<Self, SetupError> {
        let uri = ConnectionString::parse(uri).map_err(SetupError::Uri)?;
        Ok(Self {
            inner: Arc::new(Inner {
                uri,
                database: database.to_owned(),
                assets,
                connection: OnceCell::new(),
                rejections: LogThrottle::new(crate::REJECTION_LOG_INTERVAL),
                future: LogThrottle::new(crate::REJECTION_LOG_INTERVAL),
                unconfirmed: LogThrottle::new(crate::REJECTION_LOG_INTERVAL),
                clock: SharedClock::local(),
                clock_log: LogThrottle::new(crate::REJECTION_LOG_INTERVAL),
                clock_read: LastReading::default(),
            }),
        })
    }

    /// Prepares the database for the writer (the fetcher, owner of retention):
    /// everything [`prepare_reader`](Self::prepare_reader) does, then the
    /// indexes of `points`, with a TTL of `retention`. Idempotent; retry it
    /// while [`SetupError::is_transient`].
    pub async fn prepare_writer(&self, retention: Duration) -> Result<(), SetupError> {
        let connection = self.check_assets().await?;
        self.ensure_indexes(connection, retention).await?;
        info!(database = %self.inner.database, "connected to MongoDB");
        Ok(())
    }

    /// Prepares the database for a reader (an API replica): checks the server
    /// answers, seeds and verifies the asset list; the indexes of `points` are
    /// the writer's. Idempotent; retry it while [`SetupError::is_transient`].
    pub async fn prepare_reader(&self) -> Result<(), SetupError> {
        self.check_assets().await?;
        info!(database = %self.inner.database, "connected to MongoDB");
        Ok(())
    }

    /// Connects, reads the server's clock and wire version (`hello`; MongoDB
    /// older than 5.0 is refused), and seeds and verifies the asset list.
    async fn check_assets(&self) -> Result<&Connection, SetupError> {
        let connection = self.connection().await.map_err(|error| {
            // A DNS failure while resolving mongodb+srv:// is unreachability,
            // not a bad URI, and is retried like one.
            if matches!(error.kind.as_ref(), ErrorKind::DnsResolve { .. }) {
                SetupError::Unreachable(error)
            } else {
                SetupError::Uri(error)
            }
        })?;
        let hello = self
            .read_server_clock(connection)
            .await
            .map_err(|error| match error {
                ClockError::Driver(error) => SetupError::Unreachable(error),
                ClockError::Reply(error) => SetupError::Clock(error),
            })?;
        supported(&hello)?;
        // The unique name index must exist before seeding, or two processes with
        // differently ordered lists could store one name under two ids.
        connection
            .assets
            .create_index(documents::asset_name_index())
            .await
            .map_err(index_error(ASSETS))?;
        self.seed_assets(connection).await?;
        Ok(connection)
    }

    /// Creates the indexes of `points` (idempotent); the TTL of an existing `at`
    /// index is changed to `retention` if it differs.
    async fn ensure_indexes(
        &self,
        connection: &Connection,
        retention: Duration,
    ) -> Result<(), SetupError> {
        let points = &connection.points;
        points
            .create_index(documents::asset_time_index())
            .await
            .map_err(index_error(POINTS))?;
        let error = match points.create_index(documents::ttl_index(retention)).await {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if server_code(&error) != Some(INDEX_OPTIONS_CONFLICT) {
            return Err(index_error(POINTS)(error));
        }
        // The `at` index exists with another TTL: change it in place.
        match connection
            .db
            .run_command(documents::ttl_update_command(retention))
            .await
        {
            Ok(_) => {
                info!(
                    retention_secs = retention.as_secs(),
                    "changed the TTL of stored points"
                );
                Ok(())
            }
            Err(error) if server_code(&error) == Some(UNAUTHORIZED) => {
                warn!(
                    %error,
                    "cannot change the TTL of stored points (collMod needs the dbAdmin role); \
                     the previous retention stays in force"
                );
                Ok(())
            }
            Err(error) => Err(index_error(POINTS)(error)),
        }
    }

    /// The TTL of stored points as the server has it, if the index exists.
    pub async fn stored_retention(&self) -> Result<Option<Duration>, StoreError> {
        let indexes: Vec<mongodb::IndexModel> = self
            .connection()
            .await
            .map_err(store_error)?
            .points
            .list_indexes()
            .await
            .map_err(store_error)?
            .try_collect()
            .await
            .map_err(store_error)?;
        Ok(indexes
            .into_iter()
            .find(|index| index.keys == doc! { "at": 1 })
            .and_then(|index| index.options?.expire_after))
    }

    /// Inserts each configured asset if its id is free, then checks that every
    /// configured (id, name) is what the database holds.
    async fn seed_assets(&self, connection: &Connection) -> Result<(), SetupError> {
        let collection = &connection.assets;
        for asset in self.inner.assets.iter() {
            let id = i64::from(asset.id.0);
            let seeded = collection
                .update_one(
                    doc! { "_id": id },
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
            .filter_map(|d| Some((stored_id(d)?, d.get_str("name").ok()?.to_owned())))
            .collect();
        check_assets(&self.inner.assets, &stored).map_err(SetupError::AssetConflict)
    }
}

/// An asset document's `_id`, whichever integer type a writer used.
fn stored_id(document: &Document) -> Option<i64> {
    document
        .get_i64("_id")
        .ok()
        .or_else(|| document.get_i32("_id").ok().map(i64::from))
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

/// Whether ratecast runs on the server that answered `hello` (MongoDB 5.0 or
/// later: see [`documents::MIN_WIRE_VERSION`]).
fn supported(hello: &documents::Hello) -> Result<(), SetupError> {
    if hello.max_wire_version < documents::MIN_WIRE_VERSION {
        return Err(SetupError::ServerTooOld {
            found: hello.max_wire_version,
        });
    }
    Ok(())
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

    #[test]
    fn only_unreachability_and_transient_server_errors_are_retried() {
        let io = || mongodb::error::Error::from(std::io::Error::other("down"));
        assert!(SetupError::Unreachable(io()).is_transient());
        assert!(SetupError::Seed(io()).is_transient());
        assert!(!SetupError::AssetConflict("x".into()).is_transient());
        assert!(!SetupError::Uri(io()).is_transient());
    }

    #[test]
    fn a_server_older_than_5_0_is_refused_at_start_with_one_line_naming_the_minimum() {
        let hello = |max_wire_version| documents::Hello {
            local_time_ms: 0,
            max_wire_version,
        };
        // 12 is MongoDB 4.4, 13 is 5.0.
        let error = supported(&hello(12)).expect_err("4.4 is refused");
        assert!(!error.is_transient(), "not retried forever");
        assert_eq!(
            error.to_string(),
            "MongoDB 5.0 or later is required (wire version 13); this server speaks wire \
             version 12"
        );
        assert!(supported(&hello(13)).is_ok());
        assert!(supported(&hello(25)).is_ok());
    }
}
