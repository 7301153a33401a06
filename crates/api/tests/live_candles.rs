//! Live candles over real sockets: a subscription with `candles` against the
//! candles the store answers afterwards (websocket `candles` and `GET /v1/candles`), across a reconnect with `since`, a
//! running candle seeded from stored points, closing by the clock, and bad
//! intervals. The store's shared clock is pinned by the test
//! ([`support::clocked`]), so intervals close when the test says, not after
//! real seconds; it is pinned a few seconds behind the points it inserts
//! (within what the hub accepts as not future), so a running candle cannot be
//! closed by the clock between two of its points.

mod support;

use std::collections::BTreeMap;

use ratecast_core::{Interval, time::unix_now_secs};
use ratecast_testkit::{Client, point};
use serde_json::{Value, json};

use support::{ApiServer, clocked::Clocked};

const ASSETS: &str = "EURUSD,USDJPY";

/// How far behind a point the clock is pinned as it is inserted (less than
/// the 5 s a point may be ahead of the clock).
const BEHIND: i64 = 4;

fn subscribe_candles(asset: u32, interval: &str, since: Option<i64>) -> String {
    let since = since.map_or(String::new(), |s| format!(r#","since":{s}"#));
    format!(
        r#"{{"action":"subscribe","message":{{"assetId":{asset},"candles":"{interval}"{since}}}}}"#
    )
}

/// Inserts EURUSD's point `(time, value)` with the clock pinned just behind it.
async fn feed(clocked: &Clocked, time: i64, value: f64) {
    clocked.set_now(time - BEHIND);
    clocked
        .server
        .insert(&[point(1, "EURUSD", time, value)])
        .await;
}

/// The next `candle` message's candle, checked to be EURUSD's of `interval`.
async fn next_candle(client: &mut Client, interval: &str) -> Value {
    let mut candle = client.expect("candle").await;
    assert_eq!(candle["assetId"], 1, "{candle}");
    assert_eq!(candle["interval"], interval, "{candle}");
    let object = candle.as_object_mut().expect("an object");
    object.remove("assetId");
    object.remove("interval");
    candle
}

/// The store's candles of EURUSD starting in `[from, to]`, by the `candles` request.
async fn stored_candles(server: &ApiServer, interval: &str, from: i64, to: i64) -> Vec<Value> {
    let mut client = server.client().await;
    client
        .send_text(&format!(
            r#"{{"action":"candles","message":{{"assetId":1,"interval":"{interval}","from":{from},"to":{to}}}}}"#
        ))
        .await;
    let reply = client.expect("candles").await;
    reply["candles"].as_array().expect("candles").clone()
}

/// The same candles by `GET /v1/candles`, the HTTP answer.
async fn http_candles(server: &ApiServer, interval: &str, from: i64, to: i64) -> Vec<Value> {
    let url = format!(
        "http://{}/v1/candles?asset=EURUSD&interval={interval}&from={from}&to={to}",
        server.addr
    );
    let response = reqwest::get(&url).await.expect("GET /v1/candles");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
    let body = response.bytes().await.expect("a body");
    let page: Value = serde_json::from_slice(&body).expect("a JSON page");
    page["candles"].as_array().expect("candles").clone()
}

/// Counts each closed candle by time: each must be there once.
fn closed_once(candles: &[Value]) -> Vec<Value> {
    let mut seen = BTreeMap::new();
    for candle in candles.iter().filter(|c| c["closed"] == true) {
        let time = candle["time"].as_i64().expect("time");
        assert!(
            seen.insert(time, candle.clone()).is_none(),
            "{time} closed twice: {candles:?}"
        );
    }
    seen.into_values().collect()
}

#[tokio::test]
async fn closed_candles_pushed_live_and_across_a_reconnect_equal_the_stored_candles() {
    let clocked = Clocked::start(ASSETS).await;
    // Three 5-second intervals, ten minutes ago by the wall clock; the
    // server's clock is pinned there.
    let t = Interval::S5.start_of(unix_now_secs()) - 600;
    clocked.set_now(t - BEHIND);
    let mut client = clocked.server.client().await;
    client.send_text(&subscribe_candles(1, "5s", None)).await;
    let history = client.expect("candle_history").await;
    assert_eq!(
        history,
        json!({"assetId": 1, "interval": "5s", "candles": []})
    );
    let mut received = Vec::new();
    // The first interval: its running candle grows with each point.
    for (i, value) in [1.5, 1.75, 1.25, 1.5].into_iter().enumerate() {
        feed(&clocked, t + i as i64, value).await;
        let running = next_candle(&mut client, "5s").await;
        assert_eq!(running["time"], t);
        assert_eq!(running["count"], i + 1, "{running}");
        assert_eq!(running["closed"], false);
        received.push(running);
    }
    // The first point of the second interval closes the first, then runs.
    feed(&clocked, t + 5, 2.0).await;
    let closed = next_candle(&mut client, "5s").await;
    assert_eq!(
        closed,
        json!({"time": t, "open": 1.5, "high": 1.75, "low": 1.25, "close": 1.5, "count": 4, "closed": true})
    );
    let running = next_candle(&mut client, "5s").await;
    assert_eq!(
        (running["time"].as_i64(), &running["closed"]),
        (Some(t + 5), &json!(false))
    );
    received.extend([closed, running]);
    // The client goes away; points come meanwhile.
    drop(client);
    for (time, value) in [(t + 6, 2.5), (t + 8, 1.75), (t + 10, 3.0), (t + 11, 3.25)] {
        feed(&clocked, time, value).await;
    }
    // It comes back with the time of the last closed candle it holds.
    let mut client = clocked.server.client().await;
    client.send_text(&subscribe_candles(1, "5s", Some(t))).await;
    let history = client.expect("candle_history").await;
    let candles = history["candles"].as_array().expect("candles").clone();
    assert_eq!(
        candles,
        vec![
            json!({"time": t + 5, "open": 2.0, "high": 2.5, "low": 1.75, "close": 1.75, "count": 3, "closed": true}),
            json!({"time": t + 10, "open": 3.0, "high": 3.25, "low": 3.0, "close": 3.25, "count": 2, "closed": false}),
        ],
        "closed after since, then the running one"
    );
    received.extend(candles);
    feed(&clocked, t + 14, 2.75).await;
    let running = next_candle(&mut client, "5s").await;
    assert_eq!(
        (running["count"].as_u64(), &running["closed"]),
        (Some(3), &json!(false))
    );
    received.push(running);
    // No later point: the clock closes the last one, past its end and the grace.
    clocked.set_now(t + 30);
    let last = next_candle(&mut client, "5s").await;
    assert_eq!(last["closed"], true, "{last}");
    received.push(last);
    let stored = stored_candles(&clocked.server, "5s", t, t + 14).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(closed_once(&received), stored, "none missing, none twice");
    assert_eq!(
        http_candles(&clocked.server, "5s", t, t + 14).await,
        stored,
        "the HTTP answer is the same"
    );
    clocked.server.stop().await;
}

#[tokio::test]
async fn the_running_candle_of_a_long_interval_is_seeded_from_the_stored_points() {
    let clocked = Clocked::start(ASSETS).await;
    // Forty minutes into an hour, three hours ago: the hour's first points
    // are older than the hub's 30-minute window, so only the store has them.
    let hour = Interval::H1.start_of(unix_now_secs()) - 3 * 3_600;
    let now = hour + 2_400;
    clocked.set_now(now);
    let early = [(hour + 10, 1.25), (hour + 20, 1.75), (hour + 30, 1.5)];
    let recent = [(now - 20, 1.0), (now - 10, 1.5)];
    for (time, value) in early.into_iter().chain(recent) {
        clocked
            .server
            .insert(&[point(1, "EURUSD", time, value)])
            .await;
    }
    let mut client = clocked.server.client().await;
    client.send_text(&subscribe_candles(1, "1h", None)).await;
    let history = client.expect("candle_history").await;
    assert_eq!(
        history["candles"],
        json!([{"time": hour, "open": 1.25, "high": 1.75, "low": 1.0, "close": 1.5, "count": 5, "closed": false}])
    );
    feed(&clocked, now + 1, 2.0).await;
    let running = next_candle(&mut client, "1h").await;
    assert_eq!(
        running,
        json!({"time": hour, "open": 1.25, "high": 2.0, "low": 1.0, "close": 2.0, "count": 6, "closed": false})
    );
    let stored = stored_candles(&clocked.server, "1h", hour, hour).await;
    assert_eq!(stored[0]["count"], running["count"], "the store's candle");
    assert_eq!(stored[0]["open"], running["open"]);
    clocked.server.stop().await;
}

#[tokio::test]
async fn when_points_stop_the_clock_closes_the_last_candle_after_its_end_and_the_grace() {
    let clocked = Clocked::start(ASSETS).await;
    let t = Interval::S5.start_of(unix_now_secs()) - 600;
    let mut client = clocked.server.client().await;
    clocked.set_now(t - BEHIND);
    client.send_text(&subscribe_candles(1, "5s", None)).await;
    client.expect("candle_history").await;
    feed(&clocked, t + 1, 1.5).await;
    assert_eq!(next_candle(&mut client, "5s").await["closed"], false);
    // Its end (t + 4) and the grace passed; no point will come.
    clocked.set_now(t + 4 + 3);
    assert_eq!(
        next_candle(&mut client, "5s").await,
        json!({"time": t, "open": 1.5, "high": 1.5, "low": 1.5, "close": 1.5, "count": 1, "closed": true})
    );
    // Nothing more: the next frame is the answer to a request sent after.
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
    clocked.server.stop().await;
}

#[tokio::test]
async fn an_invalid_interval_is_refused_and_the_subscription_stays() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    client.subscribe(1).await;
    for text in [
        r#"{"action":"subscribe","message":{"assetId":1,"candles":"2m"}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1,2],"candles":60}}"#,
        r#"{"action":"add","message":{"assetId":2,"candles":"1M"}}"#,
    ] {
        client.send_text(text).await;
        assert_eq!(
            client.expect("error").await["code"],
            "invalid_interval",
            "{text}"
        );
    }
    let now = unix_now_secs();
    server.insert(&[point(1, "EURUSD", now, 1.25)]).await;
    let live = client.expect("point").await;
    assert_eq!(live["time"], now, "still EURUSD's points");
    server.stop().await;
}

#[tokio::test]
async fn add_with_candles_follows_one_more_asset_as_candles_beside_its_points() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    client.subscribe(1).await;
    client
        .send_text(r#"{"action":"add","message":{"assetId":2,"candles":"1d"}}"#)
        .await;
    let history = client.expect("candle_history").await;
    assert_eq!(
        history,
        json!({"assetId": 2, "interval": "1d", "candles": []})
    );
    let now = unix_now_secs();
    server
        .insert(&[
            point(2, "USDJPY", now, 150.5),
            point(1, "EURUSD", now, 1.25),
        ])
        .await;
    let mut got = [client.next_json().await, client.next_json().await];
    got.sort_by_key(|frame| frame["action"].as_str().map(str::to_owned));
    assert_eq!(got[0]["action"], "candle", "{got:?}");
    assert_eq!(got[0]["message"]["assetId"], 2);
    assert_eq!(got[0]["message"]["count"], 1);
    assert_eq!(got[1]["action"], "point", "{got:?}");
    assert_eq!(got[1]["message"]["assetId"], 1);
    server.stop().await;
}
