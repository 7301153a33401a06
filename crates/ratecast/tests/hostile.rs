//! Hostile clients below the message layer, against the `ratecast` binary as a
//! user runs it (its own process: its memory and `/metrics` are its own). Raw
//! sockets send what a websocket library would refuse to; each test asserts a
//! bound on memory or time, not only the close code.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use ratecast_testkit::{
    Client, metric,
    process::ServerProcess,
    raw::{self, CONTINUATION, Ending, PING, PONG, TEXT},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const BIN: &str = env!("CARGO_BIN_EXE_ratecast");

/// The most any connection's inbound side holds: the message limit (4 KiB),
/// one control frame and one header (crates/api/src/inbound.rs).
const INBOUND_BOUND: f64 = 4096.0 + 125.0 + 14.0;

const LARGEST_INBOUND: &str = "ratecast_ws_inbound_buffer_largest_bytes";

async fn server(args: &[&str]) -> ServerProcess {
    ServerProcess::start(BIN, args, &[]).await
}

/// Writes `chunk` again and again for `period` or until the server stops
/// taking it; returns the bytes written.
async fn stream_for(
    writer: &mut (impl AsyncWriteExt + Unpin),
    chunk: &[u8],
    period: Duration,
) -> u64 {
    let until = Instant::now() + period;
    let mut written = 0;
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(200), writer.write_all(chunk)).await {
            Ok(Ok(())) => written += chunk.len() as u64,
            Ok(Err(_)) => break,
            // The server stopped reading: its TCP window is full.
            Err(_) => {}
        }
    }
    written
}

/// One attacker: sends `opening`, then streams `flood` for `period`, while
/// reading what the server sends; returns how the server ended it and when,
/// counted from the opening.
async fn attack(
    addr: SocketAddr,
    opening: Vec<u8>,
    flood: Vec<u8>,
    period: Duration,
) -> (Ending, Duration, raw::Received) {
    let stream = raw::connect(addr).await;
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let read = tokio::spawn(async move {
        let (ending, received) =
            raw::read_until_end(&mut reader, period + Duration::from_secs(5)).await;
        (ending, started.elapsed(), received)
    });
    if writer.write_all(&opening).await.is_ok() {
        stream_for(&mut writer, &flood, period).await;
    }
    read.await.expect("reader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_declaring_terabyte_frames_are_closed_with_1009_and_cost_no_memory() {
    let server = server(&[]).await;
    let before = server.rss_bytes();
    let zeros = vec![0u8; 64 * 1024];
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(attack(
                server.addr,
                raw::header(true, TEXT, 1 << 40),
                zeros.clone(),
                Duration::from_secs(3),
            ))
        })
        .collect();
    let mut peak = before;
    for attacker in attackers {
        let (ending, after, _) = attacker.await.expect("attacker");
        assert_eq!(ending, Ending::Close(1009, "message too big".into()));
        assert!(
            after < Duration::from_secs(1),
            "refused at the header, after {after:?}"
        );
        peak = peak.max(server.rss_bytes());
    }
    let growth = peak.saturating_sub(before);
    // Unfixed, the same attack grew the server by ~400 MB a second.
    assert!(growth < 16 << 20, "RSS grew by {growth} bytes");
    assert!(metric(server.addr, LARGEST_INBOUND).await <= INBOUND_BOUND);
}

#[tokio::test]
async fn a_message_grown_by_continuation_frames_is_closed_with_1009_at_the_crossing_header() {
    let server = server(&[]).await;
    let mut stream = raw::connect(server.addr).await;
    let mut frames = raw::frame(false, TEXT, &[b'x'; 1000]);
    for _ in 0..3 {
        frames.extend(raw::frame(false, CONTINUATION, &[b'x'; 1000]));
    }
    // 4,000 bytes so far; this header declares 1,000 more, and is followed by
    // nothing: the refusal cannot wait for the payload.
    frames.extend(raw::header(false, CONTINUATION, 1000));
    stream.write_all(&frames).await.expect("send");
    let (ending, _) = raw::read_until_end(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(ending, Ending::Close(1009, "message too big".into()));
    let largest = metric(server.addr, LARGEST_INBOUND).await;
    assert!(
        (4000.0..=INBOUND_BOUND).contains(&largest),
        "the 4,000 bytes were held, never more than the bound: {largest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pong_flood_is_closed_with_1008_within_2_s_while_a_subscriber_keeps_getting_points() {
    let server = server(&[]).await;
    let mut subscriber = Client::connect(server.addr).await;
    subscriber.subscribe(1).await;
    let (ending, after, _) = attack(
        server.addr,
        Vec::new(),
        raw::frame(true, PONG, b"").repeat(512),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(ending, Ending::Close(1008, "rate limit exceeded".into()));
    assert!(after < Duration::from_secs(2), "closed after {after:?}");
    // The simulated source stores a point a second.
    subscriber.expect("point").await;
}

#[tokio::test]
async fn every_ping_within_the_budget_gets_its_pong() {
    let server = server(&[]).await;
    let stream = raw::connect(server.addr).await;
    let (mut reader, mut writer) = stream.into_split();
    // RATE_BURST (40) at once, then one more a second later.
    writer
        .write_all(&raw::frame(true, PING, b"are you there").repeat(40))
        .await
        .expect("send pings");
    tokio::time::sleep(Duration::from_secs(1)).await;
    writer
        .write_all(&raw::frame(true, PING, b"are you there"))
        .await
        .expect("send a ping");
    let (ending, received) = raw::read_until_end(&mut reader, Duration::from_secs(2)).await;
    assert_eq!(received.pongs, 41);
    assert_eq!(ending, Ending::StillOpen);
}

#[tokio::test]
async fn a_ping_flood_is_closed_with_1008_within_2_s() {
    let server = server(&[]).await;
    let (ending, after, _) = attack(
        server.addr,
        Vec::new(),
        raw::frame(true, PING, b"are you there").repeat(256),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(ending, Ending::Close(1008, "rate limit exceeded".into()));
    assert!(after < Duration::from_secs(2), "closed after {after:?}");
}

#[tokio::test]
async fn floods_of_empty_frames_are_closed_with_1008_within_2_s() {
    let server = server(&[]).await;
    let empty_continuations = attack(
        server.addr,
        raw::frame(false, TEXT, b""),
        raw::frame(false, CONTINUATION, b"").repeat(512),
        Duration::from_secs(3),
    );
    let empty_texts = attack(
        server.addr,
        Vec::new(),
        raw::frame(true, TEXT, b"").repeat(512),
        Duration::from_secs(3),
    );
    for (ending, after, _) in [empty_continuations.await, empty_texts.await] {
        assert_eq!(ending, Ending::Close(1008, "rate limit exceeded".into()));
        assert!(after < Duration::from_secs(2), "closed after {after:?}");
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_closes_with_1007() {
    let server = server(&[]).await;
    let mut stream = raw::connect(server.addr).await;
    let mut frames = raw::frame(false, TEXT, b"{\"action\":\"");
    frames.extend(raw::frame(true, CONTINUATION, &[0xC3, 0x28, b'"', b'}']));
    stream.write_all(&frames).await.expect("send");
    let (ending, _) = raw::read_until_end(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(ending, Ending::Close(1007, "invalid UTF-8".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_with_a_zero_window_cannot_hold_the_connection_limit() {
    let send_timeout = Duration::from_secs(1);
    let server = server(&[
        "--max-connections",
        "3",
        "--send-timeout",
        "1s",
        "--idle-timeout",
        "300s",
    ])
    .await;
    // Three clients with a 2 KB receive buffer subscribe again and again (each
    // answer is a 30-minute history, ~120 KB) and never read.
    let mut stuck = Vec::new();
    for _ in 0..3 {
        let mut stream = raw::connect_with_receive_buffer(server.addr, 2048).await;
        let subscribe = raw::frame(
            true,
            TEXT,
            br#"{"action":"subscribe","message":{"assetId":1}}"#,
        );
        for _ in 0..5 {
            let _ = stream.write_all(&subscribe).await;
        }
        stuck.push(stream);
    }
    let full_at = Instant::now();
    // A fourth client gets in once the server has torn one of them down: within
    // two slow-consumer checks (the stall is seen at the second), the 1 s timer
    // grid and the 2 s grace a close frame gets.
    let bound = 2 * send_timeout + Duration::from_secs(1) + Duration::from_secs(2);
    let admitted = tokio::time::timeout(bound + Duration::from_secs(2), async {
        loop {
            let tcp = TcpStream::connect(server.addr).await.expect("TCP connect");
            if raw::upgrade(tcp, server.addr).await.is_ok() {
                return full_at.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a new client was admitted");
    assert!(
        admitted <= bound + Duration::from_secs(1),
        "admitted after {admitted:?}"
    );
    let torn_down = metric(
        server.addr,
        r#"ratecast_connections_torn_down_total{reason="close_timeout"}"#,
    )
    .await
        + metric(
            server.addr,
            r#"ratecast_connections_torn_down_total{reason="write_stalled"}"#,
        )
        .await;
    assert!(torn_down >= 1.0, "counted: {torn_down}");
    // The stuck clients find their connections reset, not open.
    for mut stream in stuck {
        let mut sink = vec![0u8; 1 << 20];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a stuck client's connection stayed open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_trickle_their_request_head_or_send_nothing_hold_a_slot_for_at_most_5_s() {
    let server = server(&["--max-connections", "2"]).await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let trickler = TcpStream::connect(server.addr).await.expect("connect");
    let opened = Instant::now();
    let (mut trickle_reader, mut trickle_writer) = trickler.into_split();
    let request = raw::upgrade_request(server.addr).into_bytes();
    let trickling = tokio::spawn(async move {
        for byte in request {
            if trickle_writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Meanwhile both count: a websocket client is refused with 503. A loaded
    // machine may not have handed the first two to their workers yet when the
    // third arrives, so it is tried until refused, well before their deadline.
    let refused = loop {
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let answer = raw::upgrade(tcp, server.addr).await;
        if answer.as_ref().is_err_and(|status| status.contains("503"))
            || opened.elapsed() > Duration::from_secs(3)
        {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused.as_ref().is_err_and(|status| status.contains("503")),
        "{refused:?}"
    );
    // Both are cut off at REQUEST_HEAD_TIMEOUT (5 s): 408, then the end.
    for (name, reader) in [
        (
            "silent",
            &mut silent as &mut (dyn tokio::io::AsyncRead + Unpin + Send),
        ),
        ("trickling", &mut trickle_reader),
    ] {
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(8), reader.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the {name} client was not cut off");
        let after = opened.elapsed();
        assert!(
            after < Duration::from_secs(7),
            "the {name} client lasted {after:?}"
        );
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
            "the {name} client got {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    trickling.abort();
    // Their slots are free again.
    Client::connect(server.addr).await;
}
