//! The Mongo store against a real replica set: the shared store conformance suite
//! plus Mongo-specific behaviour. Runs only when `RATECAST_TEST_MONGODB_URI` names a
//! replica set (e.g. `mongodb://localhost:27017/?replicaSet=rs0`); otherwise every
//! test prints why it skipped and passes without checking anything.

use ratecast_core::{AssetList, PointSink, PointStore, conformance};
use ratecast_mongo::{DEFAULT_RETENTION, MongoStore, SetupError};
use ratecast_testkit::mongo::test_uri;

/// A database name no other test (or test run) uses.
fn fresh_database() -> String {
    ratecast_testkit::mongo::fresh_database("ratecast_test")
}

async fn connect(uri: &str, database: &str, assets: AssetList) -> Result<MongoStore, SetupError> {
    let store = MongoStore::new(uri, database, assets)?;
    store.prepare(Some(DEFAULT_RETENTION)).await?;
    Ok(store)
}

async fn fresh_store() -> Option<MongoStore> {
    let uri = test_uri()?;
    Some(
        connect(&uri, &fresh_database(), conformance::assets())
            .await
            .expect("the test replica set accepts a new store"),
    )
}

ratecast_core::store_conformance_tests!(fresh_store);

#[tokio::test]
async fn two_fetchers_storing_the_same_seconds_keep_one_point_each() {
    let Some(uri) = test_uri() else { return };
    let database = fresh_database();
    let a = connect(&uri, &database, conformance::assets())
        .await
        .expect("store a");
    let b = connect(&uri, &database, conformance::assets())
        .await
        .expect("store b");
    let t = ratecast_core::time::unix_now_secs() - 60;
    let batch: Vec<_> = (0..10).map(|i| conformance::point(1, t + i, 1.0)).collect();
    let first = a.insert(&batch).await.expect("first fetcher");
    let second = b.insert(&batch).await.expect("duplicates are success");
    assert_eq!(
        (first.inserted, second.inserted, second.duplicates),
        (10, 0, 10)
    );
    assert_eq!(
        a.history(ratecast_core::AssetId(1), t, t + 10)
            .await
            .expect("history")
            .len(),
        10
    );
}

#[tokio::test]
async fn a_renumbered_asset_list_is_refused_at_start_up() {
    let Some(uri) = test_uri() else { return };
    let database = fresh_database();
    connect(&uri, &database, "EURUSD,USDJPY".parse().expect("list"))
        .await
        .expect("seeded");
    let error = connect(&uri, &database, "USDJPY,EURUSD".parse().expect("list"))
        .await
        .err()
        .expect("renumbering is refused");
    assert!(matches!(error, SetupError::AssetConflict(_)), "{error:?}");
    // Appending an asset keeps the existing ids and is accepted.
    connect(
        &uri,
        &database,
        "EURUSD,USDJPY,GBPUSD".parse().expect("list"),
    )
    .await
    .expect("appending is fine");
}

#[tokio::test]
async fn a_new_ttl_retention_replaces_the_old_one() {
    let Some(uri) = test_uri() else { return };
    let store = connect(&uri, &fresh_database(), conformance::assets())
        .await
        .expect("store");
    assert_eq!(
        store.stored_retention().await.expect("indexes"),
        Some(DEFAULT_RETENTION)
    );
    store
        .prepare(Some(std::time::Duration::from_secs(3600)))
        .await
        .expect("changing the TTL is not an error");
    assert_eq!(
        store.stored_retention().await.expect("indexes"),
        Some(std::time::Duration::from_secs(3600)),
        "the TTL index now expires points after an hour"
    );
}
