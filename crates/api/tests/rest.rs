//! The HTTP API under `/v1` over real sockets: the same assets and points as
//! the websocket, pages and their `next`, an asset by name or id, every error
//! with its status and body, gzip, `ETag`/304, the latest points, and 503 while
//! the window is not loaded or the store cannot answer.

mod support;

use std::{io::Read as _, sync::atomic::Ordering, time::Duration};

use ratecast_api::{ServerConfig, rest::SETTLED_AFTER_SECS};
use ratecast_core::{AssetList, Point, time::unix_now_secs};
use ratecast_testkit::{Client, WAIT, point};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use support::{ApiServer, hanging::start_hanging, memory_store, times};

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

/// A request's answer: status, headers and the body as sent (not decoded).
struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "{error}: a JSON body, got {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the one error shape, its status and code; returns the message.
    fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.json());
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            Some("application/json"),
            "every error is JSON"
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only `error`: {body}"
        );
        assert_eq!(
            body["error"].as_object().map(|o| o.len()),
            Some(2),
            "{body}"
        );
        body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_owned()
    }
}

async fn request(
    addr: std::net::SocketAddr,
    method: Method,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("an HTTP client");
    let mut request = client.request(method, format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(name.clone(), *value);
    }
    let response = request.send().await.expect("an answer");
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.bytes().await.expect("a body").to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Answer {
    request(addr, Method::GET, path, &[]).await
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(body, 4096)
        .read_to_end(&mut out)
        .expect("a brotli body");
    out
}

/// One point a second of EURUSD and USDJPY in `[from, to)`.
async fn insert_seconds(server: &ApiServer, from: i64, to: i64) {
    let points: Vec<Point> = (from..to)
        .flat_map(|t| {
            [
                point(1, "EURUSD", t, 1.1 + (t % 100) as f64 / 1e5),
                point(2, "USDJPY", t, 150.0),
            ]
        })
        .collect();
    for chunk in points.chunks(1000) {
        server.insert(chunk).await;
    }
}

#[tokio::test]
async fn assets_are_the_websocket_assets_reply_with_a_tag_and_head_has_no_body() {
    let server = ApiServer::start(ASSETS).await;
    let answer = get(server.addr, "/v1/assets").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        Some("application/json")
    );
    assert_eq!(answer.header(header::CACHE_CONTROL), Some("no-cache"));
    assert_eq!(answer.header(header::VARY), Some("accept-encoding"));
    let mut client = server.client().await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    assert_eq!(answer.json(), client.expect("assets").await);
    assert_eq!(
        answer.json()["assets"][1],
        json!({"id": 2, "name": "USDJPY"})
    );

    let head = request(server.addr, Method::HEAD, "/v1/assets", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header(header::ETAG), answer.header(header::ETAG));
    server.stop().await;
}

#[tokio::test]
async fn history_takes_a_name_or_an_id_and_answers_what_the_websocket_answers() {
    let server = ApiServer::start(ASSETS).await;
    let old = unix_now_secs() - 3 * 3600;
    insert_seconds(&server, old, old + 10).await;
    let by_name = get(
        server.addr,
        &format!("/v1/history?asset=USDJPY&from={}&to={}", old + 2, old + 5),
    )
    .await;
    let by_id = get(
        server.addr,
        &format!("/v1/history?to={}&from={}&asset=2", old + 5, old + 2),
    )
    .await;
    assert_eq!(by_name.status, StatusCode::OK);
    assert_eq!(by_name.body, by_id.body);
    let page = by_name.json();
    assert_eq!(
        times(page["points"].as_array().expect("points")),
        (old + 2..=old + 5).collect::<Vec<_>>()
    );
    assert_eq!(page["points"][0]["assetName"], "USDJPY");
    assert!(page.get("next").is_none(), "{page}");
    assert!(by_name.header(header::LINK).is_none());

    let mut client = server.client().await;
    client
        .send_text(&format!(
            r#"{{"action":"history","message":{{"assetId":2,"from":{},"to":{}}}}}"#,
            old + 2,
            old + 5
        ))
        .await;
    assert_eq!(
        page,
        client.expect("history").await,
        "the websocket's reply"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_long_range_is_paged_with_next_and_a_link_that_fetches_the_rest() {
    let server = ApiServer::start(ASSETS).await;
    let old = unix_now_secs() - 5 * 3600;
    insert_seconds(&server, old, old + 5000).await;
    let first = get(
        server.addr,
        &format!("/v1/history?asset=EURUSD&from={old}&to={}", old + 4999),
    )
    .await;
    let page = first.json();
    assert_eq!(page["to"], old + 3599);
    assert_eq!(page["next"], old + 3600);
    assert_eq!(page["points"].as_array().map(Vec::len), Some(3600));
    let link = first.header(header::LINK).expect("a Link to the next page");
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .expect("<…>; rel=\"next\"");
    assert_eq!(
        target,
        format!(
            "/v1/history?asset=EURUSD&from={}&to={}",
            old + 3600,
            old + 4999
        )
    );
    let second = get(server.addr, target).await.json();
    assert_eq!(
        times(second["points"].as_array().expect("points")),
        (old + 3600..old + 5000).collect::<Vec<_>>()
    );
    assert!(second.get("next").is_none(), "the last page: {second}");
    server.stop().await;
}

#[tokio::test]
async fn candles_are_the_websocket_candles_paged_by_limit_with_a_link_to_the_rest() {
    let server = ApiServer::start(ASSETS).await;
    // Ten whole minutes, three hours ago: every candle closed, the page settled.
    let start = (unix_now_secs() - 3 * 3600) / 60 * 60;
    insert_seconds(&server, start, start + 600).await;
    let (from, to) = (start, start + 599);
    let first = get(
        server.addr,
        &format!("/v1/candles?asset=EURUSD&interval=1m&from={from}&to={to}&limit=4"),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let page = first.json();
    let candles = page["candles"].as_array().expect("candles");
    assert_eq!(candles.len(), 4);
    assert_eq!(page["to"], from + 239);
    assert_eq!(page["next"], from + 240);
    for (i, candle) in candles.iter().enumerate() {
        let minute = from + 60 * i as i64;
        let values: Vec<f64> = (minute..minute + 60)
            .map(|t| 1.1 + (t % 100) as f64 / 1e5)
            .collect();
        assert_eq!(candle["time"], minute);
        assert_eq!(candle["count"], 60);
        assert_eq!(candle["open"], values[0]);
        assert_eq!(candle["close"], values[59]);
        assert_eq!(
            candle["high"],
            values.iter().copied().fold(f64::MIN, f64::max)
        );
        assert_eq!(
            candle["low"],
            values.iter().copied().fold(f64::MAX, f64::min)
        );
        assert_eq!(candle["closed"], true);
    }
    assert_eq!(
        first.header(header::CACHE_CONTROL),
        Some("public, max-age=3600"),
        "a page that ended hours ago cannot change"
    );
    let link = first.header(header::LINK).expect("a Link to the next page");
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .expect("<…>; rel=\"next\"");
    let second = get(server.addr, target).await.json();
    assert_eq!(second["candles"].as_array().map(Vec::len), Some(4));
    assert_eq!(second["next"], from + 480);

    // The whole range in one page is what the websocket answers.
    let whole = get(
        server.addr,
        &format!("/v1/candles?asset=1&interval=1m&from={from}&to={to}"),
    )
    .await
    .json();
    let mut client = server.client().await;
    client
        .send_text(&format!(
            r#"{{"action":"candles","message":{{"assetId":1,"interval":"1m","from":{from},"to":{to}}}}}"#
        ))
        .await;
    assert_eq!(
        whole,
        client.expect("candles").await,
        "the websocket's reply"
    );
    assert_eq!(whole["candles"].as_array().map(Vec::len), Some(10));

    for (query, code) in [
        ("asset=EURUSD&from=0&to=60", "invalid_interval"),
        ("asset=EURUSD&interval=2m&from=0&to=60", "invalid_interval"),
        ("asset=EURUSD&interval=1m&from=0&to=604800", "invalid_range"),
        (
            "asset=EURUSD&interval=1m&from=0&to=60&limit=0",
            "invalid_request",
        ),
        ("asset=XAUUSD&interval=1m&from=0&to=60", "unknown_asset"),
    ] {
        let answer = get(server.addr, &format!("/v1/candles?{query}")).await;
        let status = if code == "unknown_asset" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(answer.status, status, "{query}");
        assert_eq!(answer.json()["error"]["code"], code, "{query}");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_the_one_error_body() {
    let server = ApiServer::start(ASSETS).await;
    for (path, status, code, says) in [
        (
            "/v1/history?from=1&to=2",
            400,
            "invalid_asset_id",
            "missing \"asset\"",
        ),
        (
            "/v1/history?asset=0&from=1&to=2",
            400,
            "invalid_asset_id",
            "out of range",
        ),
        (
            "/v1/history?asset=XAUUSD&from=1&to=2",
            404,
            "unknown_asset",
            "XAUUSD",
        ),
        (
            "/v1/history?asset=7&from=1&to=2",
            404,
            "unknown_asset",
            "\"7\"",
        ),
        (
            "/v1/history?asset=1&to=2",
            400,
            "invalid_range",
            "missing \"from\"",
        ),
        (
            "/v1/history?asset=1&from=-1&to=2",
            400,
            "invalid_range",
            "got -1",
        ),
        (
            "/v1/history?asset=1&from=a&to=2",
            400,
            "invalid_range",
            "the string \"a\"",
        ),
        (
            "/v1/history?asset=1&from=9&to=2",
            400,
            "invalid_range",
            "is after",
        ),
        (
            "/v1/history?asset=1&from=0&to=86400",
            400,
            "invalid_range",
            "86401 seconds",
        ),
        (
            "/v1/history?asset=1&asset=2&from=0&to=1",
            400,
            "invalid_request",
            "more than once",
        ),
        ("/v1/nothing", 404, "not_found", "/v1/nothing"),
        ("/v1/assets/", 404, "not_found", "/v1/assets/"),
        ("/v1", 404, "not_found", "/v1"),
    ] {
        let answer = get(server.addr, path).await;
        let message = answer.expect_error(status, code);
        assert!(message.contains(says), "{path}: {message:?} lacks {says:?}");
        assert_eq!(answer.header(header::CACHE_CONTROL), Some("no-store"));
    }
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let answer = request(server.addr, method.clone(), "/v1/latest", &[]).await;
        let message = answer.expect_error(405, "method_not_allowed");
        assert!(message.contains(method.as_str()), "{message}");
        assert_eq!(answer.header(header::ALLOW), Some("GET, HEAD"));
    }
    let answer = request(
        server.addr,
        Method::GET,
        "/v1/assets",
        &[(header::ACCEPT_ENCODING, "identity;q=0, *;q=0")],
    )
    .await;
    answer.expect_error(406, "not_acceptable");
    server.stop().await;
}

#[tokio::test]
async fn gzip_and_br_are_sent_when_asked_and_are_smaller_than_the_same_body_unencoded() {
    let server = ApiServer::start(ASSETS).await;
    let old = unix_now_secs() - 4 * 3600;
    insert_seconds(&server, old, old + 3600).await;
    let path = format!("/v1/history?asset=EURUSD&from={old}&to={}", old + 3599);
    let identity = get(server.addr, &path).await;
    let encoded = async |encoding| {
        let headers = [(header::ACCEPT_ENCODING, encoding)];
        request(server.addr, Method::GET, &path, &headers).await
    };
    let gzip = encoded("gzip").await;
    let br = encoded("br").await;
    // A browser's usual header: actix prefers br among equals.
    let browser = encoded("gzip, deflate, br, zstd").await;
    assert_eq!(identity.header(header::CONTENT_ENCODING), None);
    assert_eq!(gzip.header(header::CONTENT_ENCODING), Some("gzip"));
    assert_eq!(br.header(header::CONTENT_ENCODING), Some("br"));
    assert_eq!(browser.header(header::CONTENT_ENCODING), Some("br"));
    for answer in [&identity, &gzip, &br] {
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.header(header::VARY), Some("accept-encoding"));
    }
    assert_eq!(gunzip(&gzip.body), identity.body, "the same page");
    assert_eq!(unbrotli(&br.body), identity.body, "the same page");
    assert_eq!(
        identity.json()["points"].as_array().map(Vec::len),
        Some(3600)
    );
    println!(
        "a 3,600-point page: {} bytes, {} gzipped, {} with br",
        identity.body.len(),
        gzip.body.len(),
        br.body.len()
    );
    for (name, body) in [("gzip", &gzip.body), ("br", &br.body)] {
        assert!(
            body.len() * 4 < identity.body.len(),
            "{name} {} vs identity {}",
            body.len(),
            identity.body.len()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_settled_page_is_cacheable_a_recent_one_is_not_and_a_matching_tag_gets_304() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let settled_to = now - SETTLED_AFTER_SECS - 60;
    insert_seconds(&server, settled_to - 10, settled_to + 1).await;
    let path = format!(
        "/v1/history?asset=EURUSD&from={}&to={settled_to}",
        settled_to - 10
    );
    let first = get(server.addr, &path).await;
    assert_eq!(
        first.header(header::CACHE_CONTROL),
        Some("public, max-age=3600")
    );
    let tag = first.header(header::ETAG).expect("an ETag").to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = request(
        server.addr,
        Method::GET,
        &path,
        &[(header::IF_NONE_MATCH, &tag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header(header::ETAG), Some(tag.as_str()));
    let other = request(
        server.addr,
        Method::GET,
        &path,
        &[(header::IF_NONE_MATCH, "W/\"0000000000000000\"")],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);

    // A page reaching into the last two hours must be revalidated, and its tag
    // changes when a late point lands in it.
    let recent = format!("/v1/history?asset=EURUSD&from={}&to={now}", now - 100);
    insert_seconds(&server, now - 100, now - 90).await;
    let before = get(server.addr, &recent).await;
    assert_eq!(before.header(header::CACHE_CONTROL), Some("no-cache"));
    let before_tag = before.header(header::ETAG).expect("an ETag").to_owned();
    server.insert(&[point(1, "EURUSD", now - 50, 1.2)]).await;
    let after = request(
        server.addr,
        Method::GET,
        &recent,
        &[(header::IF_NONE_MATCH, &before_tag)],
    )
    .await;
    assert_eq!(after.status, StatusCode::OK, "the page changed");
    assert_ne!(after.header(header::ETAG), Some(before_tag.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn latest_holds_the_newest_point_of_every_asset_that_has_one() {
    let server = ApiServer::start(ASSETS).await;
    let empty = get(server.addr, "/v1/latest").await;
    assert_eq!(empty.json(), json!({"points": []}));
    let now = unix_now_secs();
    let mut client = server.client().await;
    client.subscribe(1).await;
    // USDJPY's newest is older than a minute: read from the whole window.
    server
        .insert(&[
            point(2, "USDJPY", now - 600, 150.0),
            point(2, "USDJPY", now - 500, 150.5),
        ])
        .await;
    server
        .insert(&[
            point(1, "EURUSD", now - 2, 1.1),
            point(1, "EURUSD", now - 1, 1.2),
        ])
        .await;
    // The feed applies points in order: once EURUSD's newest arrived, all did.
    client.expect("point").await;
    assert_eq!(client.expect("point").await["time"], now - 1);
    let latest = get(server.addr, "/v1/latest").await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.header(header::CACHE_CONTROL), Some("no-cache"));
    assert_eq!(
        latest.json(),
        json!({"points": [
            {"assetName": "EURUSD", "time": now - 1, "assetId": 1, "value": 1.2},
            {"assetName": "USDJPY", "time": now - 500, "assetId": 2, "value": 150.5},
        ]})
    );
    let tag = latest.header(header::ETAG).expect("an ETag");
    let unchanged = request(
        server.addr,
        Method::GET,
        "/v1/latest",
        &[(header::IF_NONE_MATCH, tag)],
    )
    .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    server.stop().await;
}

#[tokio::test]
async fn before_the_window_is_loaded_every_v1_request_is_503_not_ready() {
    let assets: AssetList = ASSETS.parse().expect("assets");
    let store = memory_store(&assets);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(ratecast_api::run(
        listener,
        assets,
        store,
        // Start-up never ends: the window is never loaded.
        std::future::pending(),
        ServerConfig::default(),
        ratecast_process::metrics::install_recorder(),
        shutdown.clone(),
    ));
    for path in [
        "/v1/assets",
        "/v1/latest",
        "/v1/history?asset=1&from=0&to=1",
    ] {
        let answer = get(addr, path).await;
        answer.expect_error(503, "not_ready");
        assert_eq!(answer.header(header::RETRY_AFTER), Some("1"), "{path}");
    }
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stopped in time")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn a_store_that_does_not_answer_in_time_gives_503_unavailable() {
    let (server, calls) = start_hanging(
        ASSETS,
        ServerConfig {
            history_timeout: Duration::from_millis(200),
            ..ServerConfig::default()
        },
    )
    .await;
    let answer = get(server.addr, "/v1/history?asset=1&from=0&to=10").await;
    answer.expect_error(503, "unavailable");
    assert_eq!(answer.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.shutdown.cancel();
}

#[tokio::test]
async fn beyond_the_process_limit_history_is_503_busy_for_http_as_for_websockets() {
    let (server, calls) = start_hanging(
        ASSETS,
        ServerConfig {
            max_history_queries: 1,
            history_timeout: Duration::from_secs(3600),
            ..ServerConfig::default()
        },
    )
    .await;
    // A websocket query takes the one slot…
    let mut client = Client::connect(server.addr).await;
    client
        .send_text(r#"{"action":"history","message":{"assetId":1,"from":0,"to":10}}"#)
        .await;
    tokio::time::timeout(WAIT, async {
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the query reached the store");
    // …so an HTTP one is refused at once, without reaching the store.
    let answer = get(server.addr, "/v1/history?asset=EURUSD&from=0&to=10").await;
    let message = answer.expect_error(503, "busy");
    assert!(message.contains("as many history requests"), "{message}");
    assert_eq!(answer.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.shutdown.cancel();
}

/// A validator of `docs/openapi.yaml`'s `components/schemas/{name}` (JSON
/// Schema 2020-12, as OpenAPI 3.1 has it), with every `$ref` resolved in place.
fn spec_schema(name: &str) -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml is readable");
    let doc: Value = serde_saphyr::from_str(&text).expect("docs/openapi.yaml is valid YAML");
    assert_eq!(doc["openapi"], "3.1.0");
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": {"schemas": doc["components"]["schemas"].clone()},
        "$ref": format!("#/components/schemas/{name}"),
    });
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|error| panic!("schema {name} is not valid 2020-12: {error}"))
}

fn assert_matches(schema: &str, body: &Value) {
    let errors: Vec<String> = spec_schema(schema)
        .iter_errors(body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{body} against {schema}: {errors:?}");
}

#[tokio::test]
async fn every_reply_matches_its_schema_in_openapi_yaml() {
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    let mut client = server.client().await;
    client.subscribe(1).await;
    insert_seconds(&server, now - 3700, now).await;
    // Wait for the newest point to reach the window.
    while client.expect("point").await["time"] != now - 1 {}
    assert_matches("AssetList", &get(server.addr, "/v1/assets").await.json());
    let paged = get(
        server.addr,
        &format!("/v1/history?asset=1&from={}&to={now}", now - 3700),
    )
    .await
    .json();
    assert!(paged.get("next").is_some(), "a page with next");
    assert_matches("HistoryPage", &paged);
    let latest = get(server.addr, "/v1/latest").await.json();
    assert_eq!(latest["points"].as_array().map(Vec::len), Some(2));
    assert_matches("PointList", &latest);
    let candles = get(
        server.addr,
        &format!(
            "/v1/candles?asset=1&interval=1m&from={}&to={now}&limit=10",
            now - 3700
        ),
    )
    .await
    .json();
    assert!(candles["next"].is_i64(), "a page with next: {candles}");
    assert_matches("CandlesPage", &candles);
    let last = get(
        server.addr,
        &format!(
            "/v1/candles?asset=1&interval=1h&from={}&to={now}",
            now - 3700
        ),
    )
    .await
    .json();
    assert!(last["next"].is_null(), "the last page: {last}");
    assert_matches("CandlesPage", &last);
    for path in [
        "/v1/history?asset=1",
        "/v1/history?asset=X&from=0&to=1",
        "/v1/candles?asset=1&interval=1y&from=0&to=1",
        "/v1/x",
    ] {
        assert_matches("Error", &get(server.addr, path).await.json());
    }
    // The schemas can fail: a point without its name is refused.
    let broken = json!({"points": [{"time": 1, "assetId": 1, "value": 1.0}]});
    assert!(!spec_schema("PointList").is_valid(&broken));
    server.stop().await;
}

#[tokio::test]
async fn from_the_moment_shutdown_starts_v1_answers_503_shutting_down_and_closes() {
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            // Keeps accepting while /readyz says 503, as a load balancer needs.
            shutdown_drain: Some(Duration::from_secs(2)),
            ..ServerConfig::default()
        },
    )
    .await;
    assert_eq!(get(server.addr, "/v1/latest").await.status, StatusCode::OK);
    server.shutdown.cancel();
    let answer = get(server.addr, "/v1/latest").await;
    answer.expect_error(503, "shutting_down");
    assert_eq!(answer.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(answer.header(header::CONNECTION), Some("close"));
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("stopped in time")
        .expect("task")
        .expect("clean stop");
}
