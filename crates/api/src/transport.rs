//! The server's TCP layer: every connection from accept to its end, below
//! actix-http, with a slot, deadlines and a way to end it from our side.
//!
//! actix-web's `HttpServer` hands actix-http a bare `TcpStream`, and actix-http
//! has no write deadline: a peer that stops reading (a zero TCP window) keeps
//! its connection, slot and buffers for as long as it likes, even after the
//! session decided to close it. So the server is assembled here from the parts
//! `HttpServer` uses (actix-server's accept loop and workers, actix-http's
//! HTTP/1 service, the actix-web `App`), over [`Conn`], a `TcpStream` wrapper
//! that:
//! - holds the connection's slot in `MAX_CONNECTIONS` ([`Connections`]) from
//!   accept until the socket is closed, so a client that trickles its request
//!   head, sends nothing at all, or never reads its close frame counts while it
//!   lasts (upgrades beyond the limit are answered 503);
//! - lets the kernel hold at most [`UNSENT_LIMIT`] of its output unsent, so a
//!   peer that stops reading makes writes wait soon, and
//! - fails the connection when writes have made no progress for the
//!   `write_stall` deadline, whatever the response is (a websocket, a page);
//! - is torn down from the session ([`ConnectionHandle::linger`]) when a close
//!   frame was queued and the connection is still there [`CLOSE_GRACE`] later.
//!
//! A torn-down connection is closed with `SO_LINGER` 0: the kernel answers RST
//! and frees the send buffer at once, instead of keeping an orphaned socket that
//! probes a zero window. Both teardowns are counted in
//! `ratecast_connections_torn_down_total{reason}`. Before a request head is
//! whole, actix-http's own deadline applies ([`REQUEST_HEAD_TIMEOUT`]: 408 and
//! close); between requests, its keep-alive ([`KEEP_ALIVE`]).
//!
//! Why not `TCP_USER_TIMEOUT`: it sees unacknowledged bytes and zero-window
//! probes only (how it treats the latter has changed across Linux versions),
//! cannot say "a close was decided", and its aborts cannot be counted. Why not a
//! duplicate of the socket's descriptor kept for `shutdown(2)`: it doubles the
//! descriptors of the process, and 20,000 connections already meet the limit of
//! the machines this runs on.

use std::{
    cell::{Cell, RefCell},
    fmt, io,
    net::TcpListener,
    pin::Pin,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use actix_http::{HttpService, KeepAlive, Request, Response, body::MessageBody};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt as _, fn_service, map_config,
};
use actix_web::dev::AppConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};
use tokio_util::sync::CancellationToken;

/// How long a client has to send its whole request head (the upgrade request
/// included) after connecting; then actix-http answers 408 and closes.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle keep-alive HTTP connection stays open between requests.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// After a response that ends its connection (a websocket's included), how long
/// actix-http reads and discards what the client still sends before closing:
/// closing a socket with unread input makes the kernel send RST, which can
/// destroy the close frame the client has not read yet.
const DISCONNECT_LINGER: Duration = Duration::from_secs(1);

/// How long a connection may last after its close frame was queued (1000,
/// 1001, 1008, …) before it is torn down: time for a client that reads to take
/// the close frame, not enough for one that does not to hold its slot.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The most output a connection may have in the kernel not yet sent; beyond it
/// writes wait (`TCP_NOTSENT_LOWAT`). Without it, the kernel takes up to
/// `tcp_wmem`'s maximum (4 MiB on these machines) from a peer that stopped
/// reading before the server sees a write wait: minutes of live points, and
/// gigabytes of kernel memory for 20,000 such peers. With it, a peer that stops
/// reading shows within `SEND_TIMEOUT` once 64 KiB wait for it.
pub const UNSENT_LIMIT: u32 = 64 * 1024;

/// Settings of the TCP layer.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// actix worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Connections each worker accepts at once.
    pub max_connections_per_worker: usize,
    /// A connection whose writes make no progress for this long is torn down.
    pub write_stall: Duration,
    /// What actix's own stop may take (whole seconds).
    pub stop_budget: Duration,
}

/// The process's open TCP connections, counted from accept until the socket is
/// closed: what `MAX_CONNECTIONS` limits.
#[derive(Debug, Clone, Default)]
pub struct Connections(Arc<AtomicUsize>);

impl Connections {
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn take_slot(&self) -> Slot {
        crate::metrics::tcp_connections(1.0);
        self.0.fetch_add(1, Ordering::AcqRel);
        Slot(self.clone())
    }
}

/// One connection's place in [`Connections`], given back when it is dropped.
struct Slot(Connections);

impl Drop for Slot {
    fn drop(&mut self) {
        crate::metrics::tcp_connections(-1.0);
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a connection's [`Conn`] and its [`ConnectionHandle`]s share.
struct ConnState {
    /// Cancelled when the socket is closed.
    ended: CancellationToken,
    /// Why the connection is being torn down, once it is.
    torn_down: Cell<Option<&'static str>>,
    /// The dispatcher's task, woken to see a teardown.
    waker: RefCell<Option<Waker>>,
    /// The connection was upgraded to a websocket: it counts in
    /// `ratecast_ws_connections` until it ends.
    websocket: Cell<bool>,
}

impl ConnState {
    fn tear_down(&self, reason: &'static str) {
        if self.ended.is_cancelled() || self.torn_down.get().is_some() {
            return;
        }
        tracing::debug!(reason, "tearing the connection down");
        crate::metrics::torn_down(reason);
        self.torn_down.set(Some(reason));
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// A request handler's (and its session's) hold on the connection it came on.
/// It holds no socket: only the connection's [`Conn`] does.
#[derive(Clone)]
pub struct ConnectionHandle(Rc<ConnState>);

impl ConnectionHandle {
    /// Counts the connection in `ratecast_ws_connections` until it ends.
    pub fn upgraded(&self) {
        if !self.0.websocket.replace(true) {
            crate::metrics::connections(1.0);
        }
    }

    /// Resolves when the connection has ended (its socket is closed).
    pub async fn ended(&self) {
        self.0.ended.cancelled().await;
    }

    /// Waits until the connection has ended, and tears it down if it has not
    /// within `grace`. Called once a close frame is queued.
    pub async fn linger(&self, grace: Duration) {
        tokio::select! {
            () = self.0.ended.cancelled() => {}
            () = tokio::time::sleep(grace) => self.0.tear_down("close_timeout"),
        }
    }
}

/// A client's TCP stream as actix-http sees it; see the module documentation.
pub struct Conn {
    io: TcpStream,
    state: Rc<ConnState>,
    /// Fires when writes have found the socket full for `write_stall`; armed
    /// at the first write that found it full after the last progress.
    stall: Pin<Box<Sleep>>,
    stall_armed: bool,
    write_stall: Duration,
    /// Whether `SO_LINGER` 0 was set (once torn down).
    abortive: bool,
    _slot: Slot,
}

impl Conn {
    fn accept(io: TcpStream, connections: &Connections, write_stall: Duration) -> Self {
        // A history frame goes out in several writes: without TCP_NODELAY its last
        // segment can wait for the client's delayed ACK (40 ms on Linux).
        if let Err(error) = io.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        if let Err(error) = socket2::SockRef::from(&io).set_tcp_notsent_lowat(UNSENT_LIMIT) {
            tracing::debug!(%error, "cannot set TCP_NOTSENT_LOWAT");
        }
        Self {
            io,
            state: Rc::new(ConnState {
                ended: CancellationToken::new(),
                torn_down: Cell::new(None),
                waker: RefCell::new(None),
                websocket: Cell::new(false),
            }),
            stall: Box::pin(tokio::time::sleep(Duration::ZERO)),
            stall_armed: false,
            write_stall,
            abortive: false,
            _slot: connections.take_slot(),
        }
    }

    fn handle(&self) -> ConnectionHandle {
        ConnectionHandle(self.state.clone())
    }

    /// The error every operation returns once the connection is torn down; the
    /// first time, the socket is set to close with RST.
    fn torn_down(&mut self) -> Option<io::Error> {
        let reason = self.state.torn_down.get()?;
        if !self.abortive {
            self.abortive = true;
            if let Err(error) = socket2::SockRef::from(&self.io).set_linger(Some(Duration::ZERO)) {
                tracing::debug!(%error, "cannot set SO_LINGER");
            }
        }
        Some(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connection torn down: {reason}"),
        ))
    }

    fn keep_waker(&self, cx: &Context<'_>) {
        let mut waker = self.state.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(error) = self.torn_down() {
            return Poll::Ready(Err(error));
        }
        self.keep_waker(cx);
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.torn_down() {
            return Poll::Ready(Err(error));
        }
        self.keep_waker(cx);
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => {
                if !this.stall_armed {
                    this.stall_armed = true;
                    let deadline = Instant::now() + this.write_stall;
                    this.stall.as_mut().reset(deadline);
                }
                if this.stall.as_mut().poll(cx).is_ready() {
                    this.state.tear_down("write_stalled");
                    if let Some(error) = this.torn_down() {
                        return Poll::Ready(Err(error));
                    }
                }
                Poll::Pending
            }
            written => {
                this.stall_armed = false;
                written
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.torn_down() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state.ended.cancel();
        if self.state.websocket.get() {
            crate::metrics::connections(-1.0);
        }
    }
}

/// Builds the server over `listener`: actix-server's workers accept, each
/// connection becomes a [`Conn`] with a slot in `connections`, and the app
/// `factory` makes is served over it with HTTP/1. Handlers find their connection's
/// [`ConnectionHandle`] with `req.conn_data()`.
pub fn build<F, I, S, B>(
    listener: TcpListener,
    connections: Connections,
    config: &TransportConfig,
    factory: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let mut builder = Server::build()
        .disable_signals()
        .max_concurrent_connections(config.max_connections_per_worker)
        .shutdown_timeout(config.stop_budget.as_secs());
    if config.workers > 0 {
        builder = builder.workers(config.workers);
    }
    let shutdown_signal = builder.graceful_shutdown_signal();
    let write_stall = config.write_stall;
    let local_addr = listener.local_addr()?;
    let builder = builder.listen("ratecast-api", listener, move || {
        let connections = connections.clone();
        let shutdown_signal = shutdown_signal.clone();
        let app = factory()
            .into_factory()
            .map_err(|error| error.into().error_response());
        let http = HttpService::build()
            .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
            .client_request_timeout(REQUEST_HEAD_TIMEOUT)
            .client_disconnect_timeout(DISCONNECT_LINGER)
            .local_addr(local_addr)
            // Body chunks are at most CHUNK (see `outbound`), so each
            // connection's write buffer stays under 2 × CHUNK instead of
            // growing to its largest frame.
            .h1_write_buffer_size(crate::outbound::CHUNK)
            .graceful_shutdown_signal(move || {
                let signal = shutdown_signal.clone();
                async move { signal.notified().await }
            })
            .on_connect_ext(|conn: &Conn, data| {
                data.insert(conn.handle());
            })
            // The app's config only serves URL generation, which the API does not use.
            .h1(map_config(app, |()| AppConfig::default()));
        fn_service(move |io: TcpStream| {
            let peer = io.peer_addr().ok();
            let conn = Conn::accept(io, &connections, write_stall);
            std::future::ready(Ok((conn, peer)))
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}
