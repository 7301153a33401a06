//! A minimal HTTP/1.1 upstream on 127.0.0.1:0 that answers every GET with the
//! current scripted [`Reply`]: bodies, error statuses, hangs, oversized and
//! truncated bodies.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use ratecast_core::sync::lock;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

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
        *lock(&self.reply) = reply;
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
        let reply = lock(&reply).clone();
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
