//! The per-connection limits over real sockets: idle timeout, rate limit, message
//! size (1009), connection limit, allowed origins, and a client that stops
//! reading. Attacks below the message layer (raw frames, zero windows, slow
//! request heads) are in `crates/ratecast/tests/hostile.rs`, against the binary.

mod support;

use std::time::Duration;

use ratecast_api::{ServerConfig, SessionConfig};
use ratecast_core::time::unix_now_secs;
use ratecast_testkit::{Client, WAIT, metric, point, wait_for_metric_above};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue, protocol::frame::coding::CloseCode,
};

use support::ApiServer;

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

fn config(session: SessionConfig) -> ServerConfig {
    ServerConfig {
        session,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout_while_a_live_one_stays() {
    let server = ApiServer::start_with(
        ASSETS,
        config(SessionConfig {
            ping_interval: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(500),
            ..SessionConfig::default()
        }),
    )
    .await;
    let mut silent = server.client().await;
    let mut live = server.client().await;
    // The live client keeps reading, so its websocket library answers pings.
    let live_task = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_millis(1500), live.expect_close())
            .await
            .is_err()
    });
    // The silent one reads nothing: no pong goes back. Reading afterwards finds the close.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let close = silent.expect_close().await;
    assert_eq!(close, Some((CloseCode::Normal, "idle timeout".into())));
    assert!(
        live_task.await.expect("live task"),
        "the client answering pings stayed open"
    );
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_is_answered_rate_limited_and_a_flood_is_closed_with_1008() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    for _ in 0..45 {
        client
            .send_text(r#"{"action":"assets","message":{}}"#)
            .await;
    }
    let mut answers = Vec::new();
    for _ in 0..45 {
        let frame = client.next_json().await;
        // An error counts as "rate_limited" only with exactly that code.
        let code = frame["message"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        answers.push(frame["action"].as_str().map(|action| {
            if action == "error" {
                format!("error:{code}")
            } else {
                action.to_owned()
            }
        }));
    }
    let accepted = answers
        .iter()
        .filter(|a| a.as_deref() == Some("assets"))
        .count();
    let limited = answers
        .iter()
        .filter(|a| a.as_deref() == Some("error:rate_limited"))
        .count();
    assert_eq!(accepted + limited, 45);
    assert!(
        (40..45).contains(&accepted),
        "the burst of 40 passes, then the limit: {answers:?}"
    );
    // Keep flooding: the connection is closed for abuse.
    for _ in 0..200 {
        if client
            .try_send_text(r#"{"action":"assets","message":{}}"#)
            .await
            .is_err()
        {
            break;
        }
    }
    let close = client.expect_close().await;
    assert_eq!(close.map(|(code, _)| code), Some(CloseCode::Policy));
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
async fn an_oversized_frame_closes_with_1009_and_the_server_keeps_serving() {
    let server = ApiServer::start(ASSETS).await;
    let mut big = server.client().await;
    big.send(Message::binary(vec![0u8; 64 * 1024])).await;
    assert_eq!(
        big.expect_close().await.map(|(c, _)| c),
        Some(CloseCode::Size)
    );
    let mut next = Client::connect(server.addr).await;
    next.send_text(r#"{"action":"assets","message":{}}"#).await;
    next.expect("assets").await;
}

#[tokio::test]
async fn beyond_max_connections_upgrades_get_503_until_a_slot_frees() {
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            max_connections: 3,
            ..ServerConfig::default()
        },
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.client().await);
    }
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr)).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503),
        "{refused:?}"
    );
    let mut leaving = clients.pop().expect("a client");
    leaving.close().await;
    // The slot frees when the session ends; retry until it does.
    let reconnected = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok((ws, _)) =
                tokio_tungstenite::connect_async(format!("ws://{}/", server.addr)).await
            {
                return ws;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reconnected.is_ok(), "a freed slot is usable again");
}

#[tokio::test]
async fn only_allowed_browser_origins_may_connect() {
    let server = ApiServer::start_with(
        ASSETS,
        ServerConfig {
            allowed_origins: Some(vec!["https://rates.example".into()]),
            ..ServerConfig::default()
        },
    )
    .await;
    let connect = |origin: Option<&'static str>| {
        let url = format!("ws://{}/", server.addr);
        async move {
            let mut request = url.into_client_request().expect("request");
            if let Some(origin) = origin {
                request
                    .headers_mut()
                    .insert("Origin", HeaderValue::from_static(origin));
            }
            tokio_tungstenite::connect_async(request).await
        }
    };
    assert!(connect(Some("https://rates.example")).await.is_ok());
    assert!(
        connect(None).await.is_ok(),
        "non-browser clients send no Origin"
    );
    let refused = connect(Some("https://evil.example")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_100_others_get_every_point() {
    let server = ApiServer::start_with(
        ASSETS,
        config(SessionConfig {
            send_timeout: Duration::from_millis(500),
            rate_per_second: 1000,
            rate_burst: 1000,
            ..SessionConfig::default()
        }),
    )
    .await;
    let now = unix_now_secs();
    // A nearly full window makes every history frame ~120 KB; it starts 10 s inside
    // the 30 minutes so no point expires while the test waits for it.
    let window: Vec<_> = (now - 1790..now - 100)
        .map(|t| point(1, "EURUSD", t, 1.085))
        .collect();
    server.insert(&window).await;
    // The hub applies stored points asynchronously: wait until it holds the window.
    tokio::time::timeout(WAIT, async {
        while server.client().await.subscribe(1).await.len() < window.len() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub loaded the window");
    let mut readers = Vec::new();
    for _ in 0..100 {
        let mut client = server.client().await;
        client.subscribe(1).await;
        readers.push(client);
    }
    // The slow client asks for history again and again, for longer than the
    // socket buffers can absorb, and never reads...
    let slow_closes = r#"ratecast_ws_closes_total{reason="slow_consumer"}"#;
    let closed_before = metric(server.addr, slow_closes).await;
    let mut slow = server.client().await;
    for _ in 0..400 {
        if slow
            .try_send_text(r#"{"action":"subscribe","message":{"assetId":1}}"#)
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...until the server has decided to close it (counted as a slow consumer):
    // then it reads its backlog. It finds the close at the end, the replies
    // queued when it stalled discarded, if it got there within the 2 s the server
    // gives a close frame; on a loaded machine it may find the reset that follows.
    let addr = server.addr;
    let slow_reader = tokio::spawn(async move {
        wait_for_metric_above(addr, slow_closes, closed_before).await;
        tokio::time::timeout(WAIT, async {
            loop {
                match slow.raw_next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return frame.map(|f| (f.code, f.reason.to_string()));
                    }
                    None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("the slow client's connection ended")
    });
    let live: Vec<i64> = (now - 99..now - 49).collect();
    for t in &live {
        server.insert(&[point(1, "EURUSD", *t, 1.086)]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for reader in &mut readers {
        for t in &live {
            assert_eq!(reader.expect("point").await["time"], *t);
        }
    }
    let close = slow_reader.await.expect("slow reader");
    assert!(
        close.is_none() || close == Some((CloseCode::Policy, "slow consumer".to_owned())),
        "the slow consumer was closed as one: {close:?}"
    );
}
