//! A server's life over real sockets: not ready until the store is connected,
//! readiness through feed interruptions, and shutdown (readiness first, then
//! every client closed with 1001).

mod support;

use std::time::Duration;

use ratecast_api::ServerConfig;
use ratecast_core::{
    StoreError,
    store::{FeedError, FeedEvent},
    time::unix_now_secs,
};
use ratecast_testkit::{Client, WAIT, http_get, point};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use support::ApiServer;

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

#[tokio::test]
async fn until_the_store_is_connected_readyz_and_upgrades_answer_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = tokio_util::sync::CancellationToken::new();
    // A start-up that never completes, like MongoDB being unreachable.
    let assets: ratecast_core::AssetList = ASSETS.parse().expect("assets");
    let store = ratecast_core::MemoryStore::new(assets.clone(), 3600);
    let never = std::future::pending::<Result<Option<()>, ratecast_api::StartupError>>();
    let server = tokio::spawn(ratecast_api::run(
        listener,
        assets,
        store,
        never,
        ratecast_api::ServerConfig::default(),
        ratecast_process::metrics::install_recorder(),
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
async fn readiness_comes_back_when_the_feed_follows_the_store_again_without_waiting_for_a_point() {
    let server = support::scripted::start_scripted(ASSETS).await;
    let addr = server.server.addr;
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
