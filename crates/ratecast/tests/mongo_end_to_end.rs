//! The all-in-one on MongoDB end to end: fetcher → insert_many → change stream →
//! hub → websocket clients. Runs only when `RATECAST_TEST_MONGODB_URI` names a
//! replica set; otherwise each test prints why it skipped.

mod support;

use support::start_service;

use ratecast_testkit::{
    Client, FakeUpstream, Reply,
    mongo::{fresh_database, test_uri},
    rates_body,
};
use serde_json::Value;

fn time_of(point: &Value) -> i64 {
    point["time"].as_i64().expect("integer time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_flow_through_the_change_stream_and_a_second_replica_serves_the_same_history() {
    let Some(uri) = test_uri() else { return };
    let database = fresh_database("ratecast_e2e");
    let upstream = FakeUpstream::start(Reply::Body(rates_body(&[("EURUSD", "1.1", "1.2")]))).await;
    let args = [
        "--mongo-uri",
        &uri,
        "--mongo-db",
        &database,
        "--rates-url",
        &upstream.url(),
        "--assets",
        "EURUSD",
    ];
    let first = start_service(&args).await;
    let mut client = Client::connect(first.addr).await;
    client.subscribe(1).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let point = client.expect("point").await;
        assert_eq!(point["value"], 1.15);
        seen.push(time_of(&point));
    }
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");

    // A second process on the same database (also fetching: duplicates are
    // ignored) loads its window from MongoDB: it holds every point seen live.
    let second = start_service(&args).await;
    let mut other = Client::connect(second.addr).await;
    let history: Vec<i64> = other.subscribe(1).await.iter().map(time_of).collect();
    for t in &seen {
        assert!(history.contains(t), "second replica lacks {t}: {history:?}");
    }
    let next = other.expect("point").await;
    assert!(time_of(&next) > *history.last().expect("non-empty history"));
    for service in [first, second] {
        service.shutdown.cancel();
        service.task.await.expect("task").expect("clean stop");
    }
}
