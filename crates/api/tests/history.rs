//! `history` over real sockets: ranges and their pages, bad ranges, the query
//! limit, a store that does not answer, and clients that flood requests and read
//! nothing.

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use ratecast_api::{ServerConfig, SessionConfig};
use ratecast_core::{Point, PointSink, time::unix_now_secs};
use ratecast_testkit::{Client, WAIT, point};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use support::{ApiServer, hanging::start_hanging, times};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

fn history_request(asset: u32, from: i64, to: i64) -> String {
    format!(r#"{{"action":"history","message":{{"assetId":{asset},"from":{from},"to":{to}}}}}"#)
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
async fn a_range_longer_than_an_hour_is_answered_a_page_at_a_time() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let from = now - 5000;
    let points: Vec<Point> = (from..now - 100)
        .map(|t| point(2, "USDJPY", t, 150.0))
        .collect();
    server.insert(&points).await;
    let mut client = server.client().await;
    client.send_text(&history_request(2, from, now)).await;
    let first = client.expect("history").await;
    assert_eq!(first["from"], from);
    assert_eq!(first["to"], from + 3599);
    assert_eq!(first["next"], from + 3600);
    assert_eq!(first["points"].as_array().expect("points").len(), 3600);
    client
        .send_text(&history_request(2, from + 3600, now))
        .await;
    let second = client.expect("history").await;
    assert_eq!(second["to"], now);
    assert!(second.get("next").is_none(), "{second}");
    let times: Vec<i64> = second["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["time"].as_i64().expect("time"))
        .collect();
    assert_eq!(times, (from + 3600..now - 100).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_flooding_day_long_history_requests_without_reading_are_refused_and_100_subscribers_get_every_point()
 {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    // A day of EURUSD, up to 70 s ago: every day-long request has 24 full pages.
    let day: Vec<Point> = (now - 86_400..now - 70)
        .map(|t| point(1, "EURUSD", t, 1.085))
        .collect();
    server.insert(&day).await;
    // The hub applies stored points asynchronously: wait until it has the last one.
    tokio::time::timeout(WAIT, async {
        loop {
            let history = server.client().await.subscribe(1).await;
            if history.last().and_then(|p| p["time"].as_i64()) == Some(now - 71) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub applied the day");
    let mut readers = Vec::new();
    for _ in 0..100 {
        let mut client = server.client().await;
        client.subscribe(1).await;
        readers.push(client);
    }
    // Five clients ask for the whole day again and again and never read.
    let mut hostile = Vec::new();
    for _ in 0..5 {
        hostile.push(server.client().await);
    }
    // Forty ticks: each hostile client asks once more, one point is stored.
    let live: Vec<i64> = (now - 70..now - 30).collect();
    for t in &live {
        for client in &mut hostile {
            // The server may close a client it judges too slow; that is fine.
            let _ = client
                .try_send_text(&history_request(1, now - 86_399, now))
                .await;
        }
        server.insert(&[point(1, "EURUSD", *t, 1.086)]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for reader in &mut readers {
        for t in &live {
            assert_eq!(reader.expect("point").await["time"], *t);
        }
    }
    // What the server held for them meanwhile: no connection's reply queue
    // (the gauge is the largest any held since start, in this process) went
    // past the budget by more than the small frames queued whatever the budget
    // (one error per refused request, pings), although 40 pages of ~270 KB
    // were asked of each of five connections that read nothing.
    let budget = ServerConfig::default().session.max_queued_bytes as f64;
    let largest =
        ratecast_testkit::metric(server.addr, "ratecast_ws_reply_queue_largest_bytes").await;
    assert!(
        largest > 0.0 && largest <= budget + 40.0 * 1024.0,
        "largest reply queue {largest} B, budget {budget} B"
    );
    // What a hostile client was sent: pages of at most an hour while its queue
    // had room, then refusals; one answer per request.
    let (mut pages, mut refused, mut busy) = (0, 0, 0);
    let client = &mut hostile[0];
    let drained = tokio::time::timeout(WAIT, async {
        loop {
            match client.raw_next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON");
                    match frame["action"].as_str() {
                        Some("history") => {
                            let message = &frame["message"];
                            assert!(message["points"].as_array().expect("points").len() <= 3600);
                            assert_eq!(message["next"], message["to"].as_i64().expect("to") + 1);
                            pages += 1;
                        }
                        Some("error") => match frame["message"]["code"].as_str() {
                            Some("backpressure") => refused += 1,
                            // A query still running when the next request came.
                            Some("busy") => busy += 1,
                            _ => panic!("unexpected {frame}"),
                        },
                        _ => {}
                    }
                    if pages + refused + busy == 40 {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended early: {other:?}"),
            }
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "{pages} pages, {refused} backpressure, {busy} busy"
    );
    assert!(pages >= 1, "a page was sent");
    // Which refusal a request gets depends on the machine: with queries fast
    // enough to fill the socket buffers (about 20 pages of 270 KB on loopback)
    // and the 1 MiB budget, `backpressure`; on a loaded machine most requests
    // arrive while the connection's previous query still runs, `busy`. The
    // budget itself is `the_budget_counts_queued_bytes_until_the_socket_takes_them`.
    assert!(
        refused + busy >= 1,
        "requests beyond what a connection is given were refused: \
         {pages} pages, {refused} backpressure, {busy} busy"
    );
}

#[tokio::test]
async fn while_a_history_query_hangs_points_pings_and_shutdown_keep_flowing() {
    let (server, calls) = start_hanging(
        ASSETS,
        ServerConfig {
            session: SessionConfig {
                ping_interval: Duration::from_millis(200),
                ..SessionConfig::default()
            },
            history_timeout: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(3),
            ..ServerConfig::default()
        },
    )
    .await;
    let now = unix_now_secs();
    let mut client = Client::connect(server.addr).await;
    client.subscribe(1).await;
    client.send_text(&history_request(1, now - 100, now)).await;
    tokio::time::timeout(WAIT, async {
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the query reached the store");
    // The session still answers, forwards points and pings while it hangs.
    client.send_text(&history_request(1, now - 100, now)).await;
    assert_eq!(client.expect("error").await["code"], "busy");
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
    for t in now - 5..now {
        server
            .store
            .insert(&[point(1, "EURUSD", t, 1.1)])
            .await
            .expect("insert");
        assert_eq!(client.expect("point").await["time"], t);
    }
    let pinged = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Ping(_))) = client.raw_next().await {
                return;
            }
        }
    })
    .await;
    assert!(pinged.is_ok(), "the server kept pinging");
    // Shutdown closes the client with 1001 although its query never returned.
    server.shutdown.cancel();
    assert_eq!(
        client.expect_close().await.map(|(code, _)| code),
        Some(CloseCode::Away)
    );
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("the server stopped")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn a_store_that_does_not_answer_in_time_gives_unavailable_and_the_next_request_runs() {
    let (server, calls) = start_hanging(
        ASSETS,
        ServerConfig {
            history_timeout: Duration::from_millis(200),
            ..ServerConfig::default()
        },
    )
    .await;
    let now = unix_now_secs();
    let mut client = Client::connect(server.addr).await;
    for _ in 0..2 {
        client.send_text(&history_request(2, now - 10, now)).await;
        assert_eq!(client.expect("error").await["code"], "unavailable");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one query at a time, each answered"
    );
    server.shutdown.cancel();
}

#[tokio::test]
async fn beyond_the_process_limit_history_requests_are_answered_busy() {
    let (server, calls) = start_hanging(
        ASSETS,
        ServerConfig {
            max_history_queries: 2,
            history_timeout: Duration::from_secs(3600),
            ..ServerConfig::default()
        },
    )
    .await;
    let now = unix_now_secs();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = Client::connect(server.addr).await;
        client.send_text(&history_request(1, now - 10, now)).await;
        clients.push(client);
    }
    // Sessions run on several workers: the third asks once both hold a slot.
    tokio::time::timeout(WAIT, async {
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("both queries reached the store");
    let mut third = Client::connect(server.addr).await;
    third.send_text(&history_request(1, now - 10, now)).await;
    let refused = third.expect("error").await;
    assert_eq!(refused["code"], "busy", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("as many history requests as it allows")),
        "{refused}"
    );
    server.shutdown.cancel();
}
