//! The Mongo store against a real replica set: the shared store conformance suite
//! plus Mongo-specific behaviour (the start seam under a fast writer, the snapshot
//! start, per-document write errors). Runs only when `RATECAST_TEST_MONGODB_URI`
//! names a replica set (e.g. `mongodb://localhost:27017/?replicaSet=rs0`); otherwise
//! every test prints why it skipped and passes without checking anything.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mongodb::bson::doc;
use ratecast_core::{
    AssetList, LiveFeed, PointSink, PointStore, SnapshotFeed, conformance, store::FeedEvent,
};
use ratecast_mongo::{MongoStore, SetupError, StreamStart, feed::MongoFeed};
use ratecast_testkit::{TEST_RETENTION_SECS, mongo::test_uri};

/// The TTL of the test databases' points.
const RETENTION: Duration = Duration::from_secs(TEST_RETENTION_SECS.unsigned_abs());

/// How long a feed may take to deliver its next point before a test fails.
const FEED_WAIT: Duration = Duration::from_secs(10);

/// A database name no other test (or test run) uses.
fn fresh_database() -> String {
    ratecast_testkit::mongo::fresh_database("ratecast_test")
}

async fn connect(uri: &str, database: &str, assets: AssetList) -> Result<MongoStore, SetupError> {
    let store = MongoStore::new(uri, database, assets)?;
    store.prepare_writer(RETENTION).await?;
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

proptest::proptest! {
    // Each case is a fresh database on the test replica set: a few are enough
    // to tell the aggregation from the offline recomputation.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    #[test]
    fn candles_equal_an_offline_recomputation_of_random_points_with_gaps(
        case in conformance::candle_cases()
    ) {
        if std::env::var(ratecast_testkit::mongo::URI_VAR).is_err() {
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let Some(store) = fresh_store().await else { return };
            case.check(&store).await;
        });
    }
}

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
        Some(RETENTION)
    );
    store
        .prepare_writer(std::time::Duration::from_secs(3600))
        .await
        .expect("changing the TTL is not an error");
    assert_eq!(
        store.stored_retention().await.expect("indexes"),
        Some(std::time::Duration::from_secs(3600)),
        "the TTL index now expires points after an hour"
    );
}

/// Adds every point `follow` delivers to `seen` until it holds `total` points;
/// fails on a point seen twice.
async fn drain(follow: &mut SnapshotFeed<MongoFeed>, total: usize) -> BTreeSet<(u32, i64)> {
    let mut seen = BTreeSet::new();
    for p in &follow.snapshot {
        assert!(
            seen.insert((p.asset_id.0, p.time)),
            "snapshot repeats {p:?}"
        );
    }
    while seen.len() < total {
        let event = tokio::time::timeout(FEED_WAIT, follow.feed.next())
            .await
            .expect("the feed delivers within the deadline")
            .expect("the feed stays open");
        let FeedEvent::Point(p) = event else { continue };
        assert!(seen.insert((p.asset_id.0, p.time)), "feed repeats {p:?}");
    }
    seen
}

#[tokio::test]
async fn follow_starts_its_stream_at_the_snapshot_time_of_the_window_read() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let t = ratecast_core::time::unix_now_secs() - 60;
    store
        .insert(&[conformance::point(1, t, 1.0)])
        .await
        .expect("insert");
    let follow = store.follow(t).await.expect("follow");
    assert!(
        matches!(follow.feed.start(), StreamStart::Snapshot(_)),
        "a replica set answers the snapshot read with atClusterTime: {:?}",
        follow.feed.start()
    );
    assert_eq!(follow.snapshot, vec![conformance::point(1, t, 1.0)]);
}

/// Sharper than the conformance case: many follows, each started while a writer
/// inserts as fast as the replica set takes single seconds, and each must end up
/// with every point exactly once. A follow whose stream started after its
/// snapshot's time would miss the points committed in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_started_while_points_stream_in_each_see_every_point_exactly_once() {
    const FOLLOWS: usize = 16;
    const MAX_SECONDS: i64 = 3000;
    let Some(store) = fresh_store().await else {
        return;
    };
    let t = ratecast_core::time::unix_now_secs() - 3600;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut written = 0;
            while written < MAX_SECONDS && !stop.load(Ordering::SeqCst) {
                let batch = [
                    conformance::point(1, t + written, 1.0),
                    conformance::point(2, t + written, 2.0),
                ];
                store.insert(&batch).await.expect("insert");
                written += 1;
            }
            written
        })
    };
    let mut follows = Vec::with_capacity(FOLLOWS);
    for _ in 0..FOLLOWS {
        // Every follow starts while the writer runs: it stops only after the last.
        follows.push(store.follow(t).await.expect("follow"));
    }
    stop.store(true, Ordering::SeqCst);
    let written = writer.await.expect("the writer finished");
    assert!(
        written < MAX_SECONDS,
        "the writer ran until every follow had started"
    );
    let expected: BTreeSet<(u32, i64)> = (0..written)
        .flat_map(|i| [(1, t + i), (2, t + i)])
        .collect();
    for (n, follow) in follows.iter_mut().enumerate() {
        assert!(
            matches!(follow.feed.start(), StreamStart::Snapshot(_)),
            "follow {n}"
        );
        assert_eq!(drain(follow, expected.len()).await, expected, "follow {n}");
    }
}

#[tokio::test]
async fn a_point_the_server_refuses_is_counted_rejected_and_the_others_are_stored() {
    let Some(uri) = test_uri() else { return };
    let database = fresh_database();
    let store = connect(&uri, &database, conformance::assets())
        .await
        .expect("store");
    let client = mongodb::Client::with_uri_str(&uri).await.expect("client");
    client
        .database(&database)
        .run_command(doc! {
            "collMod": "points",
            "validator": { "assetName": { "$ne": "USDJPY" } },
            "validationLevel": "strict",
            "validationAction": "error",
        })
        .await
        .expect("a validator that refuses every USDJPY point");
    let t = ratecast_core::time::unix_now_secs() - 60;
    let batch: Vec<_> = (0..5)
        .flat_map(|i| {
            [
                conformance::point(1, t + i, 1.0),
                conformance::point(2, t + i, 2.0),
            ]
        })
        .collect();
    let report = store
        .insert(&batch)
        .await
        .expect("refusals are not an error");
    assert_eq!(
        (report.inserted, report.rejected, report.duplicates),
        (5, 5, 0)
    );
    let again = store.insert(&batch).await.expect("a retry is idempotent");
    assert_eq!(
        (again.inserted, again.rejected, again.duplicates),
        (0, 5, 5)
    );
    let eurusd = store
        .history(ratecast_core::AssetId(1), t, t + 4)
        .await
        .expect("history");
    assert_eq!(eurusd.len(), 5);
}
