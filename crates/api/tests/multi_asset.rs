//! Several assets on one connection over real sockets: `subscribe` with
//! `assetIds`, a plain `subscribe` switching back to one, `add` and `remove`,
//! a reconnect with a `since` per asset, each asset's stream without hole or
//! duplicate under a stream of points, and one reply budget for the connection.

mod support;

use std::{collections::BTreeMap, time::Duration};

use futures_util::{SinkExt, StreamExt};
use ratecast_api::ServerConfig;
use ratecast_core::time::unix_now_secs;
use ratecast_testkit::{Client, WAIT, point};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use support::{ApiServer, times};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

/// The asset names of the points ids `1..=3`.
fn name(id: u32) -> &'static str {
    ["EURUSD", "USDJPY", "GBPUSD"][id as usize - 1]
}

/// Sends `message` as a `subscribe`.
async fn subscribe(client: &mut Client, message: Value) {
    client
        .send_text(&json!({"action":"subscribe","message":message}).to_string())
        .await;
}

/// Reads `count` histories: `assetId` → its points' times, in arrival order.
async fn histories(client: &mut Client, count: usize) -> Vec<(u64, Vec<i64>)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let history = client.expect("asset_history").await;
        let id = history["assetId"]
            .as_u64()
            .expect("an asset_history names its asset");
        let points = history["points"].as_array().expect("points");
        assert!(
            points.iter().all(|p| p["assetId"] == id),
            "a history holds its own asset's points only: {history}"
        );
        out.push((id, times(points)));
    }
    out
}

/// Waits until the hub holds `len` points of asset `id` (an insert returns
/// before the feed applied it).
async fn wait_applied(server: &ApiServer, id: u32, len: usize) {
    tokio::time::timeout(WAIT, async {
        while server.client().await.subscribe(id).await.len() < len {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the hub never held {len} points of asset {id}"));
}

/// Reads points into `seen` until each asset of `until` reached its time.
async fn read_until(client: &mut Client, seen: &mut BTreeMap<u64, Vec<i64>>, until: &[(u64, i64)]) {
    while until
        .iter()
        .any(|(id, time)| seen.get(id).and_then(|t| t.last()) < Some(time))
    {
        let (id, time) = next_point(client).await;
        seen.entry(id).or_default().push(time);
    }
}

/// The next `point` message: `(assetId, time)`.
async fn next_point(client: &mut Client) -> (u64, i64) {
    let point = client.expect("point").await;
    (
        point["assetId"].as_u64().expect("id"),
        point["time"].as_i64().expect("time"),
    )
}

#[tokio::test]
async fn subscribe_with_asset_ids_sends_a_history_for_each_then_the_points_of_exactly_those() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    server
        .insert(&[
            point(1, "EURUSD", now - 5, 1.0),
            point(2, "USDJPY", now - 5, 150.0),
        ])
        .await;
    wait_applied(&server, 1, 1).await;
    let mut client = server.client().await;
    subscribe(&mut client, json!({"assetIds":[3,1]})).await;
    assert_eq!(
        histories(&mut client, 2).await,
        vec![(3, vec![]), (1, vec![now - 5])],
        "a history per asset, in the order asked, an empty one naming its asset"
    );
    server
        .insert(&[
            point(2, "USDJPY", now - 1, 151.0),
            point(1, "EURUSD", now - 1, 1.1),
            point(3, "GBPUSD", now - 1, 1.3),
        ])
        .await;
    let mut got = vec![next_point(&mut client).await, next_point(&mut client).await];
    got.sort_unstable();
    assert_eq!(got, vec![(1, now - 1), (3, now - 1)]);
    // The next frame answers this request: no USDJPY point was queued.
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
}

#[tokio::test]
async fn a_plain_subscribe_after_several_follows_exactly_that_one_asset() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let mut client = server.client().await;
    subscribe(&mut client, json!({"assetIds":[1,2]})).await;
    histories(&mut client, 2).await;
    // Points the client has not read yet, then the switch.
    for t in now - 9..now - 4 {
        server
            .insert(&[point(1, "EURUSD", t, 1.0), point(2, "USDJPY", t, 150.0)])
            .await;
    }
    client
        .send_text(r#"{"action":"subscribe","message":{"assetId":3}}"#)
        .await;
    loop {
        let frame = client.next_json().await;
        if frame["action"] == "asset_history" {
            assert_eq!(frame["message"]["assetId"], 3);
            break;
        }
        assert_eq!(frame["action"], "point", "{frame}");
    }
    server
        .insert(&[
            point(1, "EURUSD", now - 3, 1.0),
            point(2, "USDJPY", now - 3, 150.0),
            point(3, "GBPUSD", now - 3, 1.3),
        ])
        .await;
    assert_eq!(next_point(&mut client).await, (3, now - 3));
    client
        .send_text(r#"{"action":"unsubscribe","message":{}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"unsubscribed","message":{"assetId":3,"assetIds":[3]}}),
        "only GBPUSD was followed"
    );
}

#[tokio::test]
async fn add_and_remove_change_one_asset_and_the_others_stream_on_without_a_gap() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let mut client = server.client().await;
    subscribe(&mut client, json!({"assetIds":[1]})).await;
    histories(&mut client, 1).await;
    // The feed applies points in order: once the EURUSD point arrived, the
    // hub holds the USDJPY one before it.
    server
        .insert(&[
            point(2, "USDJPY", now - 10, 150.0),
            point(1, "EURUSD", now - 10, 1.0),
        ])
        .await;
    assert_eq!(next_point(&mut client).await, (1, now - 10));

    client
        .send_text(r#"{"action":"add","message":{"assetId":2}}"#)
        .await;
    assert_eq!(histories(&mut client, 1).await, vec![(2, vec![now - 10])]);
    server
        .insert(&[
            point(1, "EURUSD", now - 9, 1.0),
            point(2, "USDJPY", now - 9, 150.0),
        ])
        .await;
    let mut got = vec![next_point(&mut client).await, next_point(&mut client).await];
    got.sort_unstable();
    assert_eq!(got, vec![(1, now - 9), (2, now - 9)], "EURUSD went on");

    client
        .send_text(r#"{"action":"remove","message":{"assetId":1}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"unsubscribed","message":{"assetId":1,"assetIds":[1]}})
    );
    server
        .insert(&[
            point(1, "EURUSD", now - 8, 1.0),
            point(2, "USDJPY", now - 8, 150.0),
        ])
        .await;
    assert_eq!(
        next_point(&mut client).await,
        (2, now - 8),
        "USDJPY went on, EURUSD stopped"
    );
    client
        .send_text(r#"{"action":"remove","message":{"assetId":3}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"unsubscribed","message":{"assetId":null,"assetIds":[]}}),
        "GBPUSD was not followed: nothing stopped"
    );
    client
        .send_text(r#"{"action":"subscribe","message":{"assetIds":[2,3]}}"#)
        .await;
    histories(&mut client, 2).await;
    client
        .send_text(r#"{"action":"unsubscribe","message":{}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"unsubscribed","message":{"assetId":2,"assetIds":[2,3]}}),
        "every asset that was followed, the first as assetId"
    );
}

#[tokio::test]
async fn a_reconnect_with_a_since_per_asset_loses_nothing_and_repeats_nothing() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let start = now - 30;
    for t in start..start + 5 {
        server
            .insert(&[point(1, "EURUSD", t, 1.0), point(3, "GBPUSD", t, 1.3)])
            .await;
    }
    let mut seen: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    let mut first = server.client().await;
    subscribe(&mut first, json!({"assetIds":[1,3]})).await;
    for (id, times) in histories(&mut first, 2).await {
        seen.entry(id).or_default().extend(times);
    }
    // EURUSD moves on further than GBPUSD before the connection drops.
    for t in start + 5..start + 8 {
        server.insert(&[point(1, "EURUSD", t, 1.0)]).await;
    }
    server.insert(&[point(3, "GBPUSD", start + 5, 1.3)]).await;
    read_until(&mut first, &mut seen, &[(1, start + 7), (3, start + 5)]).await;
    first.close().await;
    drop(first);
    // Missed while away.
    for t in start + 8..start + 12 {
        server
            .insert(&[point(1, "EURUSD", t, 1.0), point(3, "GBPUSD", t, 1.3)])
            .await;
    }
    for t in start + 6..start + 8 {
        server.insert(&[point(3, "GBPUSD", t, 1.3)]).await;
    }
    let since: BTreeMap<String, i64> = seen
        .iter()
        .map(|(id, times)| (id.to_string(), *times.last().expect("points")))
        .collect();
    let mut second = server.client().await;
    subscribe(&mut second, json!({"assetIds":[1,3],"since":since})).await;
    for (id, times) in histories(&mut second, 2).await {
        seen.entry(id).or_default().extend(times);
    }
    for t in start + 12..start + 14 {
        server
            .insert(&[point(1, "EURUSD", t, 1.0), point(3, "GBPUSD", t, 1.3)])
            .await;
    }
    read_until(&mut second, &mut seen, &[(1, start + 13), (3, start + 13)]).await;
    let every: Vec<i64> = (start..start + 14).collect();
    assert_eq!(seen.get(&1), Some(&every), "EURUSD: no hole, no repeat");
    assert_eq!(seen.get(&3), Some(&every), "GBPUSD: no hole, no repeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_followed_asset_arrives_once_and_in_order_under_a_stream_of_points() {
    const POINTS: i64 = 300;
    const CLIENTS: usize = 10;
    let server = ApiServer::start(ASSETS).await;
    let start = unix_now_secs() - 1000;
    server
        .insert(&[
            point(1, "EURUSD", start, 1.0),
            point(2, "USDJPY", start, 150.0),
        ])
        .await;
    let last = start + POINTS;
    // Subscribers join at different moments while points of both stream in.
    let writer = {
        let store = server.store.clone();
        tokio::spawn(async move {
            for t in start + 1..=last {
                let points = [point(1, "EURUSD", t, 1.0), point(2, "USDJPY", t, 150.0)];
                ratecast_core::PointSink::insert(&store, &points)
                    .await
                    .expect("insert");
                tokio::task::yield_now().await;
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..CLIENTS {
        let addr = server.addr;
        readers.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            subscribe(&mut client, json!({"assetIds":[2,1]})).await;
            let mut seen: BTreeMap<u64, Vec<i64>> =
                histories(&mut client, 2).await.into_iter().collect();
            while seen.values().any(|times| times.last() < Some(&last)) {
                let (id, time) = next_point(&mut client).await;
                seen.entry(id).or_default().push(time);
            }
            seen
        }));
    }
    writer.await.expect("writer");
    let expected: Vec<i64> = (start..=last).collect();
    for reader in readers {
        let seen = reader.await.expect("reader");
        for id in [1, 2] {
            assert_eq!(
                seen.get(&id),
                Some(&expected),
                "{} saw a hole or a duplicate",
                name(id as u32)
            );
        }
    }
}

#[tokio::test]
async fn the_reply_budget_counts_every_history_of_a_subscribe_together() {
    // A small budget, so the histories of one request nearly fill it.
    let mut config = ServerConfig::default();
    config.session.max_queued_bytes = 256 * 1024;
    config.session.send_timeout = Duration::from_secs(60);
    let server = ApiServer::start_with(ASSETS, config).await;
    let now = unix_now_secs();
    // 1,700 points of each (well inside the window however slow the test):
    // three histories of ~120 KB.
    const POINTS: usize = 1700;
    let first = now - POINTS as i64 + 1;
    for chunk in (first..=now).collect::<Vec<_>>().chunks(100) {
        let points: Vec<_> = chunk
            .iter()
            .flat_map(|&t| {
                [
                    point(1, "EURUSD", t, 1.0),
                    point(2, "USDJPY", t, 150.0),
                    point(3, "GBPUSD", t, 1.3),
                ]
            })
            .collect();
        server.insert(&points).await;
    }
    tokio::time::timeout(WAIT, async {
        while server.client().await.subscribe(3).await.len() < POINTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub applied every point");
    // A client that asks for three whole windows (~360 KB) again and again,
    // in one write (so the server reads the requests at once, not each after
    // the socket took the previous answer), and reads nothing until then.
    const REQUESTS: usize = 36;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr))
        .await
        .expect("handshake");
    let request = json!({"action":"subscribe","message":{"assetIds":[1,2,3]}}).to_string();
    for _ in 0..REQUESTS {
        ws.feed(Message::text(request.clone())).await.expect("send");
    }
    ws.flush().await.expect("send");
    let (mut histories, mut refused) = (0, 0);
    tokio::time::timeout(WAIT, async {
        while histories / 3 + refused < REQUESTS {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON");
                    match (frame["action"].as_str(), frame["message"]["code"].as_str()) {
                        (Some("asset_history"), _) => histories += 1,
                        (Some("error"), Some("backpressure")) => refused += 1,
                        (Some("point"), _) => {}
                        _ => panic!("unexpected {frame}"),
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended early: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{histories} histories, {refused} refused"));
    assert_eq!(
        histories % 3,
        0,
        "a subscribe is answered whole or refused whole"
    );
    assert!(histories >= 3, "the first one was answered");
    assert!(
        refused >= 1,
        "a client that does not read is refused: {histories} histories, {refused} refused"
    );
}
