//! Subscriptions over real sockets: the history, then every new point once and in
//! order; the seam between them, switching, resuming with `since`, unsubscribing,
//! late and future points, bursts larger than the point ring.

mod support;

use std::{collections::HashSet, time::Duration};

use ratecast_core::time::unix_now_secs;
use ratecast_testkit::{Client, WAIT, point};
use serde_json::{Value, json};

use support::{ApiServer, times};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

#[tokio::test]
async fn subscribe_sends_the_last_30_minutes_ascending_then_each_new_point() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    // Out of the window (older than 1800 s), in it, and another asset.
    server.insert(&[point(1, "EURUSD", now - 1810, 1.0)]).await;
    server
        .insert(&[
            point(1, "EURUSD", now - 1790, 1.05),
            point(2, "USDJPY", now - 5, 150.0),
        ])
        .await;
    server
        .insert(&[
            point(1, "EURUSD", now - 3, 1.1),
            point(1, "EURUSD", now - 2, 1.2),
        ])
        .await;
    let mut client = server.client().await;
    let history = client.subscribe(1).await;
    assert_eq!(times(&history), vec![now - 1790, now - 3, now - 2]);
    assert_eq!(
        history[1],
        json!({"assetName":"EURUSD","time":now - 3,"assetId":1,"value":1.1}),
        "exactly the documented fields"
    );
    server
        .insert(&[
            point(2, "USDJPY", now - 1, 151.0),
            point(1, "EURUSD", now - 1, 1.25),
        ])
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"point","message":{"assetName":"EURUSD","time":now - 1,"assetId":1,"value":1.25}}),
        "only the subscribed asset's points are pushed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_live_points_meet_without_hole_or_duplicate_under_a_stream_of_points() {
    const POINTS: i64 = 600;
    const CLIENTS: usize = 20;
    let server = ApiServer::start(ASSETS).await;
    let start = unix_now_secs() - 1000;
    server.insert(&[point(1, "EURUSD", start, 1.0)]).await;
    let last = start + POINTS;
    // Subscribers join at different moments while points stream in.
    let writer = {
        let store = server.store.clone();
        tokio::spawn(async move {
            for t in start + 1..=last {
                ratecast_core::PointSink::insert(
                    &store,
                    &[point(1, "EURUSD", t, 1.0 + t as f64 * 1e-6)],
                )
                .await
                .expect("insert");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        })
    };
    let mut readers = Vec::new();
    for i in 0..CLIENTS {
        let addr = server.addr;
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i as u64 * 10)).await;
            let mut client = Client::connect(addr).await;
            let mut seen = times(&client.subscribe(1).await);
            let joined_at = *seen.last().expect("history is never empty here");
            while *seen.last().expect("non-empty") < last {
                let point = client.expect("point").await;
                seen.push(point["time"].as_i64().expect("time"));
            }
            (joined_at, seen)
        }));
    }
    writer.await.expect("writer");
    for reader in readers {
        let (joined_at, seen) = reader.await.expect("reader");
        let expected: Vec<i64> = (start..=last).collect();
        assert_eq!(
            seen, expected,
            "client that joined at {joined_at} saw a hole or a duplicate"
        );
    }
}

#[tokio::test]
async fn a_new_subscribe_switches_asset_and_no_old_point_follows_the_new_history() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    server
        .insert(&[
            point(1, "EURUSD", now - 10, 1.0),
            point(2, "USDJPY", now - 10, 150.0),
        ])
        .await;
    let mut client = server.client().await;
    client.subscribe(1).await;
    // Queue EURUSD points the client has not read yet, then switch.
    for t in now - 9..now - 4 {
        server.insert(&[point(1, "EURUSD", t, 1.0)]).await;
    }
    client
        .send_text(r#"{"action":"subscribe","message":{"assetId":2}}"#)
        .await;
    loop {
        let frame = client.next_json().await;
        if frame["action"] == "asset_history" {
            assert_eq!(frame["message"]["points"][0]["assetName"], "USDJPY");
            break;
        }
        assert_eq!(frame["message"]["assetName"], "EURUSD", "{frame}");
    }
    server
        .insert(&[
            point(1, "EURUSD", now - 3, 1.0),
            point(2, "USDJPY", now - 3, 150.5),
        ])
        .await;
    let next = client.expect("point").await;
    assert_eq!(
        (next["assetName"].as_str(), next["time"].as_i64()),
        (Some("USDJPY"), Some(now - 3))
    );
}

#[tokio::test]
async fn an_invalid_subscribe_gets_an_error_and_keeps_the_current_subscription() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let mut client = server.client().await;
    client.subscribe(3).await;
    for bad in [r#"{"assetId":99}"#, r#"{"assetId":"3"}"#, r#"{}"#] {
        client
            .send_text(&format!(r#"{{"action":"subscribe","message":{bad}}}"#))
            .await;
        let error = client.expect("error").await;
        assert!(
            ["unknown_asset", "invalid_asset_id"].contains(&error["code"].as_str().expect("code")),
            "{error}"
        );
    }
    server.insert(&[point(3, "GBPUSD", now, 1.27)]).await;
    assert_eq!(client.expect("point").await["assetId"], 3);
}

#[tokio::test]
async fn many_clients_on_one_asset_each_get_every_point_once() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut client = server.client().await;
        assert!(client.subscribe(2).await.is_empty());
        clients.push(client);
    }
    for t in now - 20..now {
        server
            .insert(&[point(2, "USDJPY", t, 150.0 + t as f64 * 1e-3)])
            .await;
    }
    for client in &mut clients {
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let point = client.expect("point").await;
            assert!(seen.insert(point["time"].as_i64().expect("time")));
        }
        assert_eq!(seen.len(), 20);
    }
}

#[tokio::test]
async fn subscribe_with_since_sends_exactly_the_points_a_reconnecting_client_missed() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    for t in now - 10..now {
        server.insert(&[point(1, "EURUSD", t, 1.0)]).await;
    }
    let mut client = server.client().await;
    client
        .send_text(&format!(
            r#"{{"action":"subscribe","message":{{"assetId":1,"since":{}}}}}"#,
            now - 4
        ))
        .await;
    let history = client.expect("asset_history").await;
    let points = history["points"].as_array().expect("points").clone();
    assert_eq!(times(&points), vec![now - 3, now - 2, now - 1]);
    server.insert(&[point(1, "EURUSD", now, 1.0)]).await;
    assert_eq!(client.expect("point").await["time"], now);
}

#[tokio::test]
async fn unsubscribe_is_confirmed_and_no_point_follows_it() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let mut client = server.client().await;
    client.subscribe(1).await;
    client
        .send_text(r#"{"action":"unsubscribe","message":{}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"unsubscribed","message":{"assetId":1,"assetIds":[1]}})
    );
    server.insert(&[point(1, "EURUSD", now, 1.0)]).await;
    // The next frame is the answer to this request, not a point.
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
    client
        .send_text(r#"{"action":"unsubscribe","message":{}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"unsubscribed","message":{"assetId":null,"assetIds":[]}})
    );
}

#[tokio::test]
async fn a_client_resuming_ahead_of_this_server_gets_no_point_it_already_has() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    server.insert(&[point(1, "EURUSD", now - 10, 1.0)]).await;
    let mut client = server.client().await;
    // The client saw up to now-5 on another replica that was ahead of this one.
    client
        .send_text(&format!(
            r#"{{"action":"subscribe","message":{{"assetId":1,"since":{}}}}}"#,
            now - 5
        ))
        .await;
    assert!(
        client.expect("asset_history").await["points"]
            .as_array()
            .expect("points")
            .is_empty()
    );
    for t in now - 9..=now {
        server.insert(&[point(1, "EURUSD", t, 1.0)]).await;
    }
    for t in now - 4..=now {
        assert_eq!(client.expect("point").await["time"], t);
    }
}

#[tokio::test]
async fn a_late_point_enters_later_histories_but_not_the_live_stream_and_a_future_one_is_refused() {
    let server = support::scripted::start_scripted(ASSETS).await;
    let t = unix_now_secs() - 100;
    server.feed(point(1, "EURUSD", t, 1.0)).await;
    server.feed(point(1, "EURUSD", t + 2, 1.2)).await;
    let mut live = Client::connect(server.server.addr).await;
    let times = |points: &[Value]| -> Vec<i64> {
        points
            .iter()
            .map(|p| p["time"].as_i64().expect("time"))
            .collect()
    };
    tokio::time::timeout(WAIT, async {
        while times(&live.subscribe(1).await) != vec![t, t + 2] {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub applied both points");
    server.feed(point(1, "EURUSD", t + 1, 1.1)).await;
    let future = unix_now_secs() + 3600;
    server.feed(point(1, "EURUSD", future, 9.9)).await;
    server.feed(point(1, "EURUSD", t + 3, 1.3)).await;
    // Live: the next point after t + 2 is t + 3; the late and the future point never come.
    assert_eq!(live.expect("point").await["time"], t + 3);
    let mut later = Client::connect(server.server.addr).await;
    assert_eq!(
        times(&later.subscribe(1).await),
        vec![t, t + 1, t + 2, t + 3]
    );
    let (_, scrape) = ratecast_testkit::http_get(server.server.addr, "/metrics").await;
    for outcome in ["live", "late", "future"] {
        let series = format!("ratecast_feed_points_total{{outcome=\"{outcome}\"}}");
        assert!(scrape.contains(&series), "{series} missing:\n{scrape}");
    }
    // A real point still reaches subscribers after the future one was refused.
    server.feed(point(1, "EURUSD", t + 4, 1.4)).await;
    assert_eq!(live.expect("point").await["time"], t + 4);
    server.stop().await;
}

#[tokio::test]
async fn a_burst_larger_than_the_point_buffer_reaches_every_subscriber_once_and_in_order() {
    let server = ApiServer::start(ASSETS).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        let mut client = server.client().await;
        assert!(client.subscribe(2).await.is_empty());
        clients.push(client);
    }
    // Like a fetcher flushing a backlog after a store outage: 600 points at once.
    let now = unix_now_secs();
    let burst: Vec<_> = (now - 600..now)
        .map(|t| point(2, "USDJPY", t, 150.0))
        .collect();
    server.insert(&burst).await;
    for client in &mut clients {
        for t in now - 600..now {
            assert_eq!(client.expect("point").await["time"], t);
        }
    }
}
