//! The API at its edges, over real sockets: clients that flood `history` and read
//! nothing, a store that never answers, long ranges answered page by page,
//! readiness through shutdown and feed interruptions.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ratecast_api::{ServerConfig, SessionConfig};
use ratecast_core::{
    AssetId, AssetList, LiveFeed, MemoryStore, Point, PointSink, PointStore, SnapshotFeed,
    StoreError,
    memory::DEFAULT_RETENTION_SECS,
    store::{FeedError, FeedEvent},
    time::unix_now_secs,
};
use ratecast_testkit::{
    ApiServer, Client, WAIT, point,
    rigged::{Rig, Rigged},
    wait_ready,
};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use tokio_util::sync::CancellationToken;

const ASSETS: &str = "EURUSD,USDJPY";

fn history_request(asset: u32, from: i64, to: i64) -> String {
    format!(r#"{{"action":"history","message":{{"assetId":{asset},"from":{from},"to":{to}}}}}"#)
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

/// A store whose `history` reads never answer; everything else is the memory store's.
#[derive(Clone)]
struct HangingHistory {
    inner: MemoryStore,
    calls: Arc<AtomicUsize>,
}

impl PointStore for HangingHistory {
    type Feed = <MemoryStore as PointStore>::Feed;

    async fn assets(&self) -> Result<Vec<ratecast_core::Asset>, StoreError> {
        self.inner.assets().await
    }

    async fn history(&self, _: AssetId, _: i64, _: i64) -> Result<Vec<Point>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }

    async fn follow(&self, since: i64) -> Result<SnapshotFeed<Self::Feed>, StoreError> {
        self.inner.follow(since).await
    }
}

struct Hanging {
    addr: std::net::SocketAddr,
    store: MemoryStore,
    calls: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ratecast_api::ApiError>>,
}

async fn start_hanging(config: ServerConfig) -> Hanging {
    let assets: AssetList = ASSETS.parse().expect("assets");
    let store = MemoryStore::new(assets.clone(), DEFAULT_RETENTION_SECS);
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let hanging = HangingHistory {
        inner: store.clone(),
        calls: calls.clone(),
    };
    let task = tokio::spawn(ratecast_api::run(
        listener,
        assets,
        hanging,
        std::future::ready(Ok(())),
        config,
        shutdown.clone(),
    ));
    wait_ready(addr).await;
    Hanging {
        addr,
        store,
        calls,
        shutdown,
        task,
    }
}

#[tokio::test]
async fn while_a_history_query_hangs_points_pings_and_shutdown_keep_flowing() {
    let server = start_hanging(ServerConfig {
        session: SessionConfig {
            ping_interval: Duration::from_millis(200),
            ..SessionConfig::default()
        },
        history_timeout: Duration::from_secs(3600),
        shutdown_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    })
    .await;
    let now = unix_now_secs();
    let mut client = Client::connect(server.addr).await;
    client.subscribe(1).await;
    client.send_text(&history_request(1, now - 100, now)).await;
    tokio::time::timeout(WAIT, async {
        while server.calls.load(Ordering::SeqCst) == 0 {
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
    let server = start_hanging(ServerConfig {
        history_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let now = unix_now_secs();
    let mut client = Client::connect(server.addr).await;
    for _ in 0..2 {
        client.send_text(&history_request(2, now - 10, now)).await;
        assert_eq!(client.expect("error").await["code"], "unavailable");
    }
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        2,
        "one query at a time, each answered"
    );
    server.shutdown.cancel();
}

#[tokio::test]
async fn beyond_the_process_limit_history_requests_are_answered_busy() {
    let server = start_hanging(ServerConfig {
        max_history_queries: 2,
        history_timeout: Duration::from_secs(3600),
        ..ServerConfig::default()
    })
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
        while server.calls.load(Ordering::SeqCst) < 2 {
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

#[tokio::test]
async fn from_the_moment_shutdown_starts_readyz_and_upgrades_answer_503_before_clients_are_closed()
{
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            shutdown_drain: Some(Duration::from_secs(2)),
            shutdown_timeout: Duration::from_secs(5),
            ..ServerConfig::default()
        },
    )
    .await;
    let now = unix_now_secs();
    let mut client = server.client().await;
    client.subscribe(1).await;
    server.shutdown.cancel();
    let (status, body) = ratecast_testkit::http_get(server.addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready: shutting down\n"));
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("the upgrade was not refused: {other:?}"),
    }
    // The existing client is still served during the drain, then closed with 1001.
    server.insert(&[point(1, "EURUSD", now, 1.1)]).await;
    assert_eq!(client.expect("point").await["time"], now);
    assert_eq!(
        client.expect_close().await.map(|(code, _)| code),
        Some(CloseCode::Away)
    );
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("the server stopped within its shutdown budget")
        .expect("task")
        .expect("clean stop");
}

/// A store whose live feed the test scripts: each event sent is what the next
/// `next()` returns.
struct ScriptedFeedStore {
    inner: MemoryStore,
    feed: std::sync::Mutex<Option<ScriptedFeed>>,
}

struct ScriptedFeed(tokio::sync::mpsc::Receiver<Result<FeedEvent, FeedError>>);

impl LiveFeed for ScriptedFeed {
    async fn next(&mut self) -> Result<FeedEvent, FeedError> {
        match self.0.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }
}

impl Rig for ScriptedFeedStore {
    type Feed = ScriptedFeed;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    async fn follow(&self, _since: i64) -> Result<SnapshotFeed<ScriptedFeed>, StoreError> {
        let feed = ratecast_core::sync::lock(&self.feed).take();
        match feed {
            Some(feed) => Ok(SnapshotFeed {
                snapshot: Vec::new(),
                feed,
            }),
            None => Err(StoreError::Other("followed twice".into())),
        }
    }
}

async fn readyz_until(addr: std::net::SocketAddr, status: u16) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            let (got, body) = ratecast_testkit::http_get(addr, "/readyz").await;
            if got == status {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("/readyz never answered {status}"))
}

/// The API over a [`ScriptedFeedStore`]; events sent go to its live feed.
struct Scripted {
    addr: std::net::SocketAddr,
    events: tokio::sync::mpsc::Sender<Result<FeedEvent, FeedError>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ratecast_api::ApiError>>,
}

async fn start_scripted() -> Scripted {
    let assets: AssetList = ASSETS.parse().expect("assets");
    let (events, rx) = tokio::sync::mpsc::channel(64);
    let store = Rigged(ScriptedFeedStore {
        inner: MemoryStore::new(assets.clone(), DEFAULT_RETENTION_SECS),
        feed: std::sync::Mutex::new(Some(ScriptedFeed(rx))),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ratecast_api::run(
        listener,
        assets,
        store,
        std::future::ready(Ok(())),
        ServerConfig::default(),
        shutdown.clone(),
    ));
    wait_ready(addr).await;
    Scripted {
        addr,
        events,
        shutdown,
        task,
    }
}

impl Scripted {
    async fn feed(&self, point: Point) {
        self.events
            .send(Ok(FeedEvent::Point(point)))
            .await
            .expect("feed open");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("task").expect("clean stop");
    }
}

#[tokio::test]
async fn a_late_point_enters_later_histories_but_not_the_live_stream_and_a_future_one_is_refused() {
    let server = start_scripted().await;
    let t = unix_now_secs() - 100;
    server.feed(point(1, "EURUSD", t, 1.0)).await;
    server.feed(point(1, "EURUSD", t + 2, 1.2)).await;
    let mut live = Client::connect(server.addr).await;
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
    let mut later = Client::connect(server.addr).await;
    assert_eq!(
        times(&later.subscribe(1).await),
        vec![t, t + 1, t + 2, t + 3]
    );
    let (_, scrape) = ratecast_testkit::http_get(server.addr, "/metrics").await;
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
async fn readiness_comes_back_when_the_feed_follows_the_store_again_without_waiting_for_a_point() {
    let server = start_scripted().await;
    let addr = server.addr;
    assert_eq!(readyz_until(addr, 200).await, "ready\n");
    // No point arrives at all (the fetcher is down): still ready.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ratecast_testkit::http_get(addr, "/readyz").await.0, 200);
    let blip = StoreError::Unavailable("connection reset".into());
    server
        .events
        .send(Err(FeedError::Interrupted(blip)))
        .await
        .expect("feed open");
    assert_eq!(
        readyz_until(addr, 503).await,
        "not ready: live feed interrupted; resuming\n"
    );
    // Upgrades are still accepted meanwhile: the window is loaded.
    Client::connect(addr).await.subscribe(1).await;
    server
        .events
        .send(Ok(FeedEvent::Resumed))
        .await
        .expect("feed open");
    assert_eq!(readyz_until(addr, 200).await, "ready\n");
    server.stop().await;
}
