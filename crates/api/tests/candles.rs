//! `candles` over real sockets: a range summarised by the store, its pages,
//! bad requests, and the limits it shares with `history` (one query per
//! connection, the process-wide slots, the deadline).

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use ratecast_api::ServerConfig;
use ratecast_core::{Interval, Point, time::unix_now_secs};
use ratecast_testkit::{Client, point};
use serde_json::{Value, json};

use support::{
    ApiServer,
    hanging::{start_hanging, wait_for_calls},
};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

fn candles_request(asset: u32, interval: &str, from: i64, to: i64) -> String {
    format!(
        r#"{{"action":"candles","message":{{"assetId":{asset},"interval":"{interval}","from":{from},"to":{to}}}}}"#
    )
}

fn candle_times(message: &Value) -> Vec<i64> {
    message["candles"]
        .as_array()
        .expect("candles")
        .iter()
        .map(|c| c["time"].as_i64().expect("time"))
        .collect()
}

#[tokio::test]
async fn candles_summarise_the_stored_points_of_a_range_and_omit_empty_intervals() {
    let server = ApiServer::start(ASSETS).await;
    // Two hours back, on a whole hour: every minute is closed.
    let t = Interval::H1.start_of(unix_now_secs() - 7200);
    server
        .insert(&[
            point(2, "USDJPY", t + 60, 150.5),
            point(2, "USDJPY", t + 75, 151.25),
            point(2, "USDJPY", t + 80, 149.75),
            point(2, "USDJPY", t + 119, 150.0),
            point(1, "EURUSD", t + 100, 1.1),   // another asset
            point(2, "USDJPY", t + 240, 152.0), // 180..239 is empty
        ])
        .await;
    let mut client = server.client().await;
    client
        .send_text(&candles_request(2, "1m", t + 30, t + 299))
        .await;
    let reply = client.expect("candles").await;
    assert_eq!(
        reply,
        json!({
            "assetId": 2,
            "interval": "1m",
            "from": t + 30,
            "to": t + 299,
            "candles": [
                {"time": t + 60, "open": 150.5, "high": 151.25, "low": 149.75, "close": 150.0, "count": 4, "closed": true},
                {"time": t + 240, "open": 152.0, "high": 152.0, "low": 152.0, "close": 152.0, "count": 1, "closed": true},
            ],
            "next": null,
        })
    );
    client
        .send_text(&candles_request(2, "1h", t, t + 3599))
        .await;
    let hour = client.expect("candles").await;
    assert_eq!(
        hour["candles"],
        json!([{"time": t, "open": 150.5, "high": 152.0, "low": 149.75, "close": 152.0, "count": 5, "closed": true}])
    );
}

#[tokio::test]
async fn the_running_interval_is_sent_open() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    server.insert(&[point(1, "EURUSD", now, 1.2)]).await;
    let day = Interval::D1.start_of(now);
    let mut client = server.client().await;
    client
        .send_text(&candles_request(1, "1d", day, day + 86_399))
        .await;
    let reply = client.expect("candles").await;
    let still_today = Interval::D1.start_of(unix_now_secs()) == day;
    assert_eq!(reply["candles"][0]["time"], day, "{reply}");
    assert_eq!(reply["candles"][0]["closed"], !still_today, "{reply}");
}

#[tokio::test]
async fn bad_candles_requests_are_refused_and_the_connection_stays_open() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    for (message, code) in [
        (r#"{"assetId":1,"from":0,"to":60}"#, "invalid_interval"),
        (
            r#"{"assetId":1,"interval":"1M","from":0,"to":60}"#,
            "invalid_interval",
        ),
        (
            r#"{"assetId":1,"interval":"1m","from":60,"to":0}"#,
            "invalid_range",
        ),
        (
            r#"{"assetId":1,"interval":"1d","from":0,"to":604800}"#,
            "invalid_range",
        ),
        (
            r#"{"assetId":7,"interval":"1m","from":0,"to":60}"#,
            "unknown_asset",
        ),
    ] {
        client
            .send_text(&format!(r#"{{"action":"candles","message":{message}}}"#))
            .await;
        assert_eq!(client.expect("error").await["code"], code, "{message}");
    }
    client
        .send_text(&candles_request(1, "1d", 0, 604_799))
        .await;
    let week = client.expect("candles").await;
    assert_eq!(week["candles"], json!([]), "nothing stored");
    assert_eq!(week["next"], Value::Null);
}

#[tokio::test]
async fn a_day_of_one_minute_candles_is_answered_a_thousand_at_a_time() {
    let server = ApiServer::start(ASSETS).await;
    let day = Interval::D1.start_of(unix_now_secs()) - 86_400;
    // Yesterday, a point every 30 s: 1,440 minutes of two points each.
    let points: Vec<Point> = (0..2_880)
        .map(|i| point(1, "EURUSD", day + 30 * i, 1.0 + i as f64 * 0.25))
        .collect();
    server.insert(&points).await;
    let mut client = server.client().await;
    client
        .send_text(&candles_request(1, "1m", day, day + 86_399))
        .await;
    let first = client.expect("candles").await;
    assert_eq!(first["to"], day + 59_999);
    assert_eq!(first["next"], day + 60_000);
    assert_eq!(
        candle_times(&first),
        (0..1_000).map(|i| day + 60 * i).collect::<Vec<_>>()
    );
    assert_eq!(
        first["candles"][999],
        json!({"time": day + 59_940, "open": 500.5, "high": 500.75, "low": 500.5, "close": 500.75, "count": 2, "closed": true})
    );
    client
        .send_text(&candles_request(1, "1m", day + 60_000, day + 86_399))
        .await;
    let second = client.expect("candles").await;
    assert_eq!(
        (second["to"].as_i64(), second["next"].clone()),
        (Some(day + 86_399), Value::Null)
    );
    assert_eq!(
        candle_times(&second),
        (1_000..1_440).map(|i| day + 60 * i).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_connection_runs_one_query_at_a_time_of_either_kind() {
    let (server, calls) = start_hanging(
        ASSETS,
        ServerConfig {
            history_timeout: Duration::from_secs(3600),
            ..ServerConfig::default()
        },
    )
    .await;
    let now = unix_now_secs();
    let mut client = Client::connect(server.addr).await;
    client
        .send_text(&candles_request(1, "5s", now - 60, now))
        .await;
    wait_for_calls(&calls, 1).await;
    client
        .send_text(&format!(
            r#"{{"action":"history","message":{{"assetId":1,"from":{},"to":{now}}}}}"#,
            now - 60
        ))
        .await;
    assert_eq!(client.expect("error").await["code"], "busy");
    client
        .send_text(&candles_request(1, "5s", now - 60, now))
        .await;
    assert_eq!(client.expect("error").await["code"], "busy");
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "refused before the store");
    server.shutdown.cancel();
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
        client
            .send_text(&candles_request(2, "1m", now - 600, now))
            .await;
        assert_eq!(client.expect("error").await["code"], "unavailable");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one query at a time, each answered"
    );
    server.stop().await;
}

#[tokio::test]
async fn beyond_the_process_limit_candles_requests_are_answered_busy() {
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
        client
            .send_text(&candles_request(1, "1m", now - 600, now))
            .await;
        clients.push(client);
    }
    wait_for_calls(&calls, 2).await;
    let mut third = Client::connect(server.addr).await;
    third
        .send_text(&candles_request(1, "1m", now - 600, now))
        .await;
    let error = third.expect("error").await;
    assert_eq!(error["code"], "busy", "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "refused before the store");
    server.shutdown.cancel();
}
