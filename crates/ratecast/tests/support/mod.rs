//! Shared harness of the black-box tests: a scriptable HTTP upstream on loopback,
//! the real servers on port 0, and a websocket client that waits with deadlines.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use ratecast_api::ServerConfig;
use ratecast_core::{AssetList, MemoryStore, Point, PointSink, memory::DEFAULT_RETENTION_SECS};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};
use tokio_util::sync::CancellationToken;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the fake upstream answers to the next requests.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(String),
    /// This status, empty body.
    Status(u16),
    /// Headers never come.
    Hang,
    /// 200 declaring this many bytes and streaming them.
    Huge(usize),
    /// 200 declaring a longer body than it sends, then closing.
    Truncated(String),
    /// 200 without a length, streaming this many bytes, then closing.
    Unbounded(usize),
}

/// A minimal HTTP/1.1 server on 127.0.0.1:0 answering every GET with the current [`Reply`].
pub struct FakeUpstream {
    pub addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeUpstream {
    pub async fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (reply, requests) = (reply.clone(), requests.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(stream, reply.clone(), requests.clone()));
                }
            }
        });
        Self {
            addr,
            reply,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/DataDisplayer", self.addr)
    }

    pub fn set(&self, reply: Reply) {
        *self.reply.lock().expect("reply lock") = reply;
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head; GETs carry no body.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head end")
            + 4;
        buf.drain(..end);
        requests.fetch_add(1, Ordering::SeqCst);
        let reply = reply.lock().expect("reply lock").clone();
        let ok = match reply {
            Reply::Body(body) => {
                write_response(&mut stream, 200, body.len(), body.as_bytes()).await
            }
            Reply::Status(code) => write_response(&mut stream, code, 0, b"").await,
            Reply::Hang => {
                std::future::pending::<()>().await;
                false
            }
            Reply::Huge(len) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                write_spaces(&mut stream, &head, len).await
            }
            Reply::Unbounded(len) => {
                let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                write_spaces(&mut stream, head, len).await;
                return;
            }
            Reply::Truncated(body) => {
                let _ = write_response(&mut stream, 200, body.len() + 100, body.as_bytes()).await;
                return;
            }
        };
        if !ok {
            return;
        }
    }
}

/// Writes `head`, then `len` spaces in 64 KiB chunks; `false` once the peer is gone.
async fn write_spaces(stream: &mut TcpStream, head: &str, len: usize) -> bool {
    let chunk = vec![b' '; 64 * 1024];
    let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
    let mut sent = 0;
    while ok && sent < len {
        let n = chunk.len().min(len - sent);
        ok = stream.write_all(&chunk[..n]).await.is_ok();
        sent += n;
    }
    ok
}

async fn write_response(stream: &mut TcpStream, status: u16, declared: usize, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/javascript\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

/// An upstream body quoting each `(symbol, bid, ask)`, in the FXCM string style.
pub fn rates_body(quotes: &[(&str, &str, &str)]) -> String {
    let rates: Vec<String> = quotes
        .iter()
        .map(|(s, b, a)| {
            format!(
                r#"{{"Symbol":"{s}","Bid":"{b}","Ask":"{a}","Spread":"1.0","ProductType":"1",}}"#
            )
        })
        .collect();
    format!("null({{\"Rates\":[{}]}}); ", rates.join(","))
}

/// `GET path` on `addr`; returns the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect for GET");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send GET");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("GET answered in time")
        .expect("GET response readable");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Waits until `GET /readyz` answers 200.
pub async fn wait_ready(addr: SocketAddr) {
    tokio::time::timeout(WAIT, async {
        loop {
            if http_get(addr, "/readyz").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("server became ready");
}

/// The API alone on a memory store the test writes into.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub store: MemoryStore,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ratecast_api::ApiError>>,
}

impl ApiServer {
    pub async fn start(assets: &str) -> Self {
        Self::start_with(assets, ServerConfig::default()).await
    }

    pub async fn start_with(assets: &str, config: ServerConfig) -> Self {
        let assets: AssetList = assets.parse().expect("valid asset list");
        let store = MemoryStore::new(assets.clone(), DEFAULT_RETENTION_SECS);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind api");
        let addr = listener.local_addr().expect("api addr");
        let shutdown = CancellationToken::new();
        let connect = std::future::ready(Ok(store.clone()));
        let task = tokio::spawn(ratecast_api::run(
            listener,
            assets,
            connect,
            config,
            shutdown.clone(),
        ));
        wait_ready(addr).await;
        Self {
            addr,
            store,
            shutdown,
            task,
        }
    }

    pub async fn insert(&self, points: &[Point]) {
        self.store.insert(points).await.expect("memory insert");
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// The all-in-one service, as `cargo run` starts it, with the given flags.
pub struct Service {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ratecast::RunError>>,
}

impl Service {
    pub async fn start(args: &[&str]) -> Self {
        let argv = std::iter::once("ratecast").chain(args.iter().copied());
        let config = <ratecast::Config as clap::Parser>::try_parse_from(argv).expect("valid flags");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind service");
        let addr = listener.local_addr().expect("service addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ratecast::run(config, listener, shutdown.clone()));
        wait_ready(addr).await;
        Self {
            addr,
            shutdown,
            task,
        }
    }
}

pub fn point(asset_id: u32, asset_name: &str, time: i64, value: f64) -> Point {
    Point {
        asset_id: ratecast_core::AssetId(asset_id),
        asset_name: asset_name.into(),
        time,
        value,
    }
}

/// A websocket client that answers with what the server sent, within [`WAIT`].
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the next frame from the server was.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<(CloseCode, String)>),
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{addr}/")),
        )
        .await
        .expect("connected in time")
        .expect("websocket handshake");
        Self { ws }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send text");
    }

    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send frame");
    }

    /// Sends, reporting a failure instead of failing the test (the server may
    /// already have closed the connection).
    pub async fn try_send_text(
        &mut self,
        text: &str,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(Message::text(text)).await
    }

    /// Starts a normal close from the client side.
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The next raw frame, without a deadline or filtering.
    pub async fn raw_next(
        &mut self,
    ) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.ws.next().await
    }

    /// The next data or close frame; pings and pongs are skipped.
    pub async fn receive(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrived in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Json(serde_json::from_str(&text).expect("server sends JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f| (f.code, f.reason.to_string())));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next JSON message; fails the test on a close.
    pub async fn next_json(&mut self) -> Value {
        match self.receive().await {
            Received::Json(value) => value,
            Received::Closed(close) => panic!("connection closed: {close:?}"),
        }
    }

    /// The next message, which must have this `action`; returns its `message`.
    pub async fn expect(&mut self, action: &str) -> Value {
        let frame = self.next_json().await;
        assert_eq!(frame["action"], action, "unexpected frame {frame}");
        frame["message"].clone()
    }

    /// Subscribes and returns the history's points.
    pub async fn subscribe(&mut self, asset_id: u32) -> Vec<Value> {
        self.send_text(&format!(
            r#"{{"action":"subscribe","message":{{"assetId":{asset_id}}}}}"#
        ))
        .await;
        let history = self.expect("asset_history").await;
        history["points"].as_array().expect("points array").clone()
    }

    /// Waits for a pong carrying `payload`, skipping other frames.
    pub async fn expect_pong(&mut self, payload: &[u8]) {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrived in time");
            match frame {
                Some(Ok(Message::Pong(data))) if data.as_ref() == payload => return,
                Some(Ok(_)) => continue,
                other => panic!("connection ended before the pong: {other:?}"),
            }
        }
    }

    /// The next close frame's code and reason, skipping data frames.
    pub async fn expect_close(&mut self) -> Option<(CloseCode, String)> {
        loop {
            if let Received::Closed(close) = self.receive().await {
                return close;
            }
        }
    }
}
