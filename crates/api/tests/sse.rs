//! `GET /v1/stream` (Server-Sent Events) over real sockets: point and
//! `asset_history` events and their ids, several assets on one stream, resume
//! with `Last-Event-ID` (on the same server and on another one over the same
//! store after the first was shut down), the 400s, the connection limit, the
//! slow-consumer rule, keep-alive comments, and no compression.

mod support;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use ratecast_api::{ServerConfig, SessionConfig};
use ratecast_core::{AssetList, time::unix_now_secs};
use ratecast_testkit::{WAIT, http_get, metric, point, wait_for_metric_above};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use support::{ApiServer, memory_store};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

/// One event of a stream, as an `EventSource` would dispatch it.
#[derive(Debug, Clone)]
struct Event {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A client of one stream, reading it block by block (a block ends with a
/// blank line).
struct Stream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// The `id:` of the last event read, as a browser remembers it.
    last_id: Option<String>,
}

impl Stream {
    async fn open(addr: SocketAddr, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new()
            .get(format!("http://{addr}/v1/stream?{query}"))
            .header("accept-encoding", "gzip");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = tokio::time::timeout(WAIT, request.send())
            .await
            .expect("answered in time")
            .expect("a response");
        assert_eq!(response.status(), 200, "{query}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-accel-buffering"], "no");
        assert!(
            headers.get("content-encoding").is_none(),
            "a stream is never compressed"
        );
        let mut stream = Self {
            response,
            buffer: Vec::new(),
            last_id: None,
        };
        assert_eq!(stream.block().await, "retry: 1000");
        stream
    }

    /// The next block, without its blank line; `None` when the stream ended.
    async fn try_block(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(String::from_utf8(block[..end].to_vec()).expect("UTF-8"));
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("the stream moved in time");
            match chunk {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    async fn block(&mut self) -> String {
        self.try_block().await.expect("the stream goes on")
    }

    /// The next event, skipping comments.
    async fn next(&mut self) -> Event {
        loop {
            let block = self.block().await;
            if block.starts_with(':') {
                continue;
            }
            return self.parse(&block);
        }
    }

    fn parse(&mut self, block: &str) -> Event {
        let (mut id, mut event, mut data) = (None, None, None);
        for line in block.lines() {
            let (field, value) = line.split_once(": ").expect("field: value");
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => {
                    assert!(data.is_none(), "one data line: {block}");
                    data = Some(serde_json::from_str(value).expect("JSON data"));
                }
                other => panic!("unexpected field {other} in {block}"),
            }
        }
        if id.is_some() {
            self.last_id = id.clone();
        }
        Event {
            id,
            event: event.expect("named"),
            data: data.expect("data"),
        }
    }

    /// Points (of `point` and `asset_history` events) received until `until`
    /// says every asset has what the test waits for.
    async fn collect(
        &mut self,
        got: &mut BTreeMap<u64, Vec<i64>>,
        until: impl Fn(&BTreeMap<u64, Vec<i64>>) -> bool,
    ) {
        while !until(got) {
            let event = self.next().await;
            record(&event, got);
        }
    }
}

/// Adds the points of `event` to `got`, per asset id.
fn record(event: &Event, got: &mut BTreeMap<u64, Vec<i64>>) {
    match event.event.as_str() {
        "point" => got
            .entry(event.data["assetId"].as_u64().expect("assetId"))
            .or_default()
            .push(event.data["time"].as_i64().expect("time")),
        "asset_history" => {
            let asset = event.data["assetId"].as_u64().expect("assetId");
            let points = event.data["points"].as_array().expect("points");
            got.entry(asset).or_default().extend(support::times(points));
        }
        other => panic!("unexpected event {other}"),
    }
}

fn name(asset: u32) -> &'static str {
    ["", "EURUSD", "USDJPY", "GBPUSD"][asset as usize]
}

async fn insert(server: &ApiServer, asset: u32, times: impl IntoIterator<Item = i64>) {
    let points: Vec<_> = times
        .into_iter()
        .map(|t| point(asset, name(asset), t, 1.0 + t as f64 % 100.0 / 1e4))
        .collect();
    server.insert(&points).await;
}

/// Waits until `server`'s window holds `time` as the newest point of `asset`.
async fn until_latest(addr: SocketAddr, asset: u32, time: i64) {
    tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = http_get(addr, "/v1/latest").await;
            if status == 200 {
                let latest: Value = serde_json::from_str(&body).expect("JSON");
                let has = latest["points"]
                    .as_array()
                    .expect("points")
                    .iter()
                    .any(|p| p["assetId"] == asset && p["time"] == time);
                if has {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub took the point");
}

#[tokio::test]
async fn points_of_several_assets_arrive_as_point_events_whose_ids_name_every_asset() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    insert(&server, 1, [now - 20]).await;
    insert(&server, 2, [now - 19]).await;
    until_latest(server.addr, 2, now - 19).await;
    until_latest(server.addr, 1, now - 20).await;
    let mut stream = Stream::open(server.addr, "assets=EURUSD,2", None).await;
    insert(&server, 2, [now - 10]).await;
    let first = stream.next().await;
    assert_eq!(first.event, "point");
    assert_eq!(
        first.data,
        serde_json::json!({"assetName":"USDJPY","time":now - 10,"assetId":2,"value":first.data["value"]})
    );
    assert_eq!(
        first.id.as_deref(),
        Some(format!("1:{},2:{}", now - 20, now - 10).as_str()),
        "without a history, each asset starts where the window ended"
    );
    insert(&server, 3, [now - 9]).await; // not followed
    insert(&server, 1, [now - 8]).await;
    let second = stream.next().await;
    assert_eq!(
        (second.data["assetId"].clone(), second.data["time"].clone()),
        (1.into(), (now - 8).into())
    );
    assert_eq!(
        second.id.as_deref(),
        Some(format!("1:{},2:{}", now - 8, now - 10).as_str())
    );
}

#[tokio::test]
async fn history_1_starts_with_one_asset_history_per_asset_in_the_order_asked() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    insert(&server, 1, now - 30..now - 20).await;
    insert(&server, 2, now - 25..now - 15).await;
    until_latest(server.addr, 1, now - 21).await;
    until_latest(server.addr, 2, now - 16).await;
    let mut stream = Stream::open(server.addr, "assets=USDJPY,EURUSD,GBPUSD&history=1", None).await;
    let jpy = stream.next().await;
    assert_eq!(jpy.event, "asset_history");
    assert_eq!(jpy.data["assetId"], 2);
    assert_eq!(
        support::times(jpy.data["points"].as_array().expect("points")),
        (now - 25..now - 15).collect::<Vec<_>>()
    );
    assert_eq!(jpy.id.as_deref(), Some(format!("2:{}", now - 16).as_str()));
    let eur = stream.next().await;
    assert_eq!(
        (eur.event.as_str(), eur.data["assetId"].as_u64()),
        ("asset_history", Some(1))
    );
    assert_eq!(eur.data["points"].as_array().map(Vec::len), Some(10));
    let gbp = stream.next().await;
    assert_eq!(
        (gbp.event.as_str(), gbp.data["assetId"].as_u64()),
        ("asset_history", Some(3))
    );
    assert_eq!(gbp.data["points"], serde_json::json!([]));
    assert_eq!(
        gbp.id.as_deref(),
        Some(format!("2:{},1:{}", now - 16, now - 21).as_str()),
        "an asset with no position yet is left out"
    );
    insert(&server, 3, [now - 5]).await;
    let live = stream.next().await;
    assert_eq!(live.event, "point");
    assert_eq!(
        live.id.as_deref(),
        Some(format!("2:{},1:{},3:{}", now - 16, now - 21, now - 5).as_str())
    );
}

/// Every point of `assets` stored at `times`, per asset id.
fn stored(assets: &[u32], times: &[i64]) -> BTreeMap<u64, Vec<i64>> {
    assets
        .iter()
        .map(|&a| (u64::from(a), times.to_vec()))
        .collect()
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_every_missed_point_once() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let times: Vec<i64> = (now - 60..now - 30).collect();
    let (before, rest) = times.split_at(10);
    let (during, after) = rest.split_at(10);
    for &t in before {
        insert(&server, 1, [t]).await;
        insert(&server, 3, [t]).await;
    }
    until_latest(server.addr, 3, before[9]).await;
    let mut got = BTreeMap::new();
    let mut first = Stream::open(server.addr, "assets=1,3&history=1", None).await;
    first
        .collect(&mut got, |got| {
            got.values().map(Vec::len).sum::<usize>() == 20
        })
        .await;
    for &t in &during[..5] {
        insert(&server, 1, [t]).await;
        insert(&server, 3, [t]).await;
    }
    first
        .collect(&mut got, |got| got.get(&3).is_some_and(|t| t.len() == 15))
        .await;
    let id = first.last_id.clone().expect("an id");
    drop(first);
    // Missed while disconnected.
    for &t in &during[5..] {
        insert(&server, 1, [t]).await;
        insert(&server, 3, [t]).await;
    }
    until_latest(server.addr, 3, during[9]).await;
    let mut second = Stream::open(server.addr, "assets=1,3&history=1", Some(&id)).await;
    for &t in after {
        insert(&server, 1, [t]).await;
        insert(&server, 3, [t]).await;
    }
    let last = *after.last().expect("a time");
    second
        .collect(&mut got, |got| {
            got.values().all(|t| t.last() == Some(&last))
        })
        .await;
    assert_eq!(got, stored(&[1, 3], &times), "no hole, no duplicate");
}

#[tokio::test]
async fn a_stream_resumes_on_another_server_over_the_same_store_after_the_first_shut_down() {
    let assets: AssetList = ASSETS.parse().expect("assets");
    let memory = memory_store(&assets);
    let start = || {
        ApiServer::start_over(
            assets.clone(),
            memory.clone(),
            memory.clone(),
            ServerConfig::default(),
        )
    };
    let first_server = start().await;
    let second_server = start().await;
    let now = unix_now_secs();
    let times: Vec<i64> = (now - 40..now - 10).collect();
    let mut got = BTreeMap::new();
    let mut first = Stream::open(first_server.addr, "assets=EURUSD,USDJPY", None).await;
    for &t in &times[..10] {
        insert(&first_server, 1, [t]).await;
        insert(&first_server, 2, [t]).await;
    }
    first
        .collect(&mut got, |got| got.get(&2).is_some_and(|t| t.len() == 10))
        .await;
    let id = first.last_id.clone().expect("an id");
    // The first server goes away; its stream ends with a comment saying why.
    first_server.shutdown.cancel();
    let mut ended = Vec::new();
    while let Some(block) = first.try_block().await {
        ended.push(block);
    }
    assert_eq!(
        ended.last().map(String::as_str),
        Some(": closing: server shutting down")
    );
    for &t in &times[10..20] {
        insert(&second_server, 1, [t]).await;
        insert(&second_server, 2, [t]).await;
    }
    until_latest(second_server.addr, 2, times[19]).await;
    let mut second = Stream::open(second_server.addr, "assets=EURUSD,USDJPY", Some(&id)).await;
    for &t in &times[20..] {
        insert(&second_server, 1, [t]).await;
        insert(&second_server, 2, [t]).await;
    }
    let last = *times.last().expect("a time");
    second
        .collect(&mut got, |got| {
            got.len() == 2 && got.values().all(|t| t.last() == Some(&last))
        })
        .await;
    assert_eq!(got, stored(&[1, 2], &times), "no hole, no duplicate");
    second_server.stop().await;
}

/// The status and JSON error body of `GET path`, with `headers`.
async fn refused(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(WAIT, request.send())
        .await
        .expect("answered in time")
        .expect("a response");
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&body).expect("a JSON body");
    (status, body)
}

#[tokio::test]
async fn bad_assets_and_a_malformed_last_event_id_are_answered_400_in_the_error_shape() {
    let server = ApiServer::start(ASSETS).await;
    let addr = server.addr;
    for path in [
        "/v1/stream",
        "/v1/stream?assets=",
        "/v1/stream?assets=EURUSD,EURUSD",
        "/v1/stream?assets=1&since=x",
    ] {
        let (status, body) = refused(addr, path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let (status, body) = refused(addr, "/v1/stream?assets=XAUUSD", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_asset"))
    );
    for id in ["garbage", "1:5,1:6", "9:5", "2:5", "1:-1"] {
        let (status, body) =
            refused(addr, "/v1/stream?assets=EURUSD", &[("last-event-id", id)]).await;
        assert_eq!(status, 400, "{id}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Last-Event-ID")),
            "{body}"
        );
    }
    // The server still streams.
    Stream::open(addr, "assets=1", None).await;
}

#[tokio::test]
async fn streams_count_against_the_connection_limit_with_websockets() {
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            max_connections: 2,
            ..ServerConfig::default()
        },
    )
    .await;
    let _stream = Stream::open(server.addr, "assets=EURUSD", None).await;
    let _client = server.client().await;
    let (status, body) = refused(server.addr, "/v1/stream?assets=EURUSD", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("connection_limit"))
    );
    let upgrade = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr)).await;
    assert!(
        matches!(&upgrade, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503),
        "{upgrade:?}"
    );
    assert!(metric(server.addr, "ratecast_sse_connections").await >= 1.0);
}

#[tokio::test]
async fn a_stream_gets_keepalive_comments() {
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            session: SessionConfig {
                sse_keepalive: Duration::from_millis(50),
                ..SessionConfig::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    let mut stream = Stream::open(server.addr, "assets=EURUSD", None).await;
    assert_eq!(stream.block().await, ": keepalive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_stream_is_closed_as_a_slow_consumer() {
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            session: SessionConfig {
                send_timeout: Duration::from_millis(500),
                ..SessionConfig::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    let now = unix_now_secs();
    // Three ~120 KB histories: more than the socket buffers take.
    for asset in 1..=3 {
        insert(&server, asset, now - 1790..now - 100).await;
    }
    for asset in 1..=3 {
        until_latest(server.addr, asset, now - 101).await;
    }
    let slow_closes = r#"ratecast_sse_closes_total{reason="slow_consumer"}"#;
    let closed_before = metric(server.addr, slow_closes).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut slow = socket.connect(server.addr).await.expect("connect");
    let request = format!(
        "GET /v1/stream?assets=1,2,3&history=1 HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    slow.write_all(request.as_bytes())
        .await
        .expect("request sent");
    // It reads nothing: the histories wait for it until the send timeout.
    wait_for_metric_above(server.addr, slow_closes, closed_before).await;
    // A reader beside it is served as usual.
    let mut reader = Stream::open(server.addr, "assets=1", None).await;
    insert(&server, 1, [now - 50]).await;
    assert_eq!(reader.next().await.data["time"], now - 50);
}
