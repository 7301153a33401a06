//! The websocket protocol over real sockets: the API on a memory store the test
//! writes into, and real websocket clients.

use std::{collections::HashSet, time::Duration};

use ratecast_core::time::unix_now_secs;
use ratecast_testkit::{ApiServer, Client, http_get, point};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

fn times(points: &[Value]) -> Vec<i64> {
    points
        .iter()
        .map(|p| p["time"].as_i64().expect("integer time"))
        .collect()
}

#[tokio::test]
async fn assets_lists_every_asset_with_ids_in_list_order() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"assets","message":{"assets":[
            {"id":1,"name":"EURUSD"},{"id":2,"name":"USDJPY"},{"id":3,"name":"GBPUSD"}
        ]}})
    );
}

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
async fn every_bad_input_gets_an_error_frame_and_the_connection_stays_open() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::text("not json"), "invalid_json"),
        (Message::text(""), "invalid_json"),
        (Message::text("[]"), "invalid_request"),
        (Message::text("null"), "invalid_request"),
        (Message::text(r#"{"message":{}}"#), "invalid_request"),
        (Message::text(r#"{"action":"assets"}"#), "invalid_request"),
        (
            Message::text(r#"{"action":["assets"],"message":{}}"#),
            "invalid_request",
        ),
        (
            Message::text(r#"{"action":"assets","message":"{}"}"#),
            "invalid_request",
        ),
        (
            Message::text(r#"{"action":"delete","message":{}}"#),
            "unknown_action",
        ),
        (
            Message::text(r#"{"action":"subscribe","message":{"assetId":1.5}}"#),
            "invalid_asset_id",
        ),
        (
            Message::text(r#"{"action":"subscribe","message":{"assetId":-1}}"#),
            "invalid_asset_id",
        ),
        (
            Message::text(r#"{"action":"subscribe","message":{"assetId":4}}"#),
            "unknown_asset",
        ),
        (
            Message::binary(vec![0u8, 159, 146, 150]),
            "binary_not_supported",
        ),
    ];
    for (message, code) in cases {
        let sent = format!("{message:?}");
        client.send(message).await;
        let frame = client.next_json().await;
        assert_eq!(frame["action"], "error", "{sent} -> {frame}");
        assert_eq!(frame["message"]["code"], code, "{sent} -> {frame}");
        assert!(
            frame["message"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
}

#[tokio::test]
async fn a_message_over_4_kib_closes_with_1009_and_others_keep_being_served() {
    let server = ApiServer::start(ASSETS).await;
    let mut bystander = server.client().await;
    let mut client = server.client().await;
    client
        .send_text(&format!(
            r#"{{"action":"assets","message":{{"pad":"{}"}}}}"#,
            "x".repeat(5000)
        ))
        .await;
    let close = client.expect_close().await;
    assert_eq!(close.map(|(code, _)| code), Some(CloseCode::Size));
    bystander
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    bystander.expect("assets").await;
}

#[tokio::test]
async fn client_pings_are_answered() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    client.send(Message::Ping(b"hi".to_vec().into())).await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    // tungstenite queues the pong reply itself; the session stays healthy.
    client.expect("assets").await;
}

#[tokio::test]
async fn plain_http_gets_the_page_and_health_endpoints_answer() {
    let server = ApiServer::start(ASSETS).await;
    let (status, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<html") && body.contains("ratecast"),
        "{body}"
    );
    assert_eq!(
        http_get(server.addr, "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);
    assert_eq!(http_get(server.addr, "/nope").await.0, 404);
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001_and_the_server_returns() {
    let server = ApiServer::start(ASSETS).await;
    let mut clients = Vec::new();
    for i in 0..5u32 {
        let mut client = server.client().await;
        client.subscribe(i % 3 + 1).await;
        clients.push(client);
    }
    server.shutdown.cancel();
    for client in &mut clients {
        let close = client.expect_close().await;
        assert_eq!(
            close.as_ref().map(|(code, _)| *code),
            Some(CloseCode::Away),
            "{close:?}"
        );
    }
    tokio::time::timeout(ratecast_testkit::WAIT, server.task)
        .await
        .expect("server returned in time")
        .expect("server task")
        .expect("server ran cleanly");
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
async fn fragments_adding_up_to_over_4_kib_close_with_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    let chunk = vec![b'x'; 1500];
    let first = Frame::message(chunk.clone(), OpCode::Data(Data::Text), false);
    client.send(Message::Frame(first)).await;
    for _ in 0..3 {
        let more = Frame::message(chunk.clone(), OpCode::Data(Data::Continue), false);
        client.send(Message::Frame(more)).await;
    }
    let close = client.expect_close().await;
    assert_eq!(close.map(|(code, _)| code), Some(CloseCode::Size));
}

#[tokio::test]
async fn history_returns_the_stored_points_of_a_range_and_refuses_bad_ranges() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    // Older than the 30-minute window, but within the store's retention.
    let old = now - 7200;
    for t in old..old + 5 {
        server
            .insert(&[point(2, "USDJPY", t, 150.0), point(1, "EURUSD", t, 1.1)])
            .await;
    }
    let mut client = server.client().await;
    client
        .send_text(&format!(
            r#"{{"action":"history","message":{{"assetId":2,"from":{},"to":{}}}}}"#,
            old + 1,
            old + 3
        ))
        .await;
    let history = client.expect("history").await;
    assert_eq!(
        (
            history["assetId"].as_i64(),
            history["from"].as_i64(),
            history["to"].as_i64()
        ),
        (Some(2), Some(old + 1), Some(old + 3))
    );
    let points = history["points"].as_array().expect("points").clone();
    assert_eq!(times(&points), vec![old + 1, old + 2, old + 3]);
    assert_eq!(
        points[0],
        json!({"assetName":"USDJPY","time":old + 1,"assetId":2,"value":150.0})
    );
    for bad in [
        format!(r#"{{"assetId":2,"from":{},"to":{}}}"#, old + 3, old + 1),
        format!(r#"{{"assetId":2,"from":{},"to":{}}}"#, old, old + 86_400),
    ] {
        client
            .send_text(&format!(r#"{{"action":"history","message":{bad}}}"#))
            .await;
        assert_eq!(
            client.expect("error").await["code"],
            "invalid_range",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn until_the_store_is_connected_readyz_and_upgrades_answer_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = tokio_util::sync::CancellationToken::new();
    // A start-up that never completes, like MongoDB being unreachable.
    let assets: ratecast_core::AssetList = ASSETS.parse().expect("assets");
    let store = ratecast_core::MemoryStore::new(assets.clone(), 3600);
    let never = std::future::pending::<Result<(), ratecast_api::StartupError>>();
    let server = tokio::spawn(ratecast_api::run(
        listener,
        assets,
        store,
        never,
        ratecast_api::ServerConfig::default(),
        shutdown.clone(),
    ));
    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        http_get(addr, "/healthz").await.0,
        200,
        "alive while not ready"
    );
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("the upgrade was not refused: {other:?}"),
    }
    shutdown.cancel();
    server.await.expect("task").expect("clean stop");
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
        json!({"action":"unsubscribed","message":{"assetId":1}})
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
        json!({"action":"unsubscribed","message":{"assetId":null}})
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
