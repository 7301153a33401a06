//! The HTTP side: actix-web routes, websocket upgrades and the server lifecycle.
//!
//! `GET /` upgrades websocket requests into sessions and serves the chart page
//! to plain requests; `/healthz` is liveness, `/readyz` readiness (the hub's
//! window is loaded and its feed is live), `/metrics` Prometheus. Sessions run
//! on the worker that accepted them and are tracked, so shutdown can wait for
//! every one to send its close frame. The TCP layer below (connection slots,
//! deadlines, teardown) is [`crate::transport`].

use std::{io, net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    App, HttpRequest, HttpResponse,
    body::MessageBody as _,
    dev::Server,
    http::header::{self, ContentType},
    web,
};
use ratecast_process::{http, metrics::PrometheusHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::info;

use crate::{
    history::{HistoryQueries, HistorySource},
    hub::Hub,
    inbound::{Decoder, InboundStream, MAX_HEADER},
    limits::RateLimiter,
    outbound::Outbound,
    session::{self, SessionConfig, run_session},
    transport::{self, CLOSE_GRACE, ConnectionHandle, Connections, TransportConfig},
};

/// The page served to browsers at `/`: self-contained, embedded at compile time.
const INDEX_PAGE: &str = include_str!("page/index.html");

/// What actix's own graceful stop may take once the sessions are gone; part of
/// [`ServerConfig::shutdown_timeout`], so the whole shutdown fits in that budget.
const ACTIX_STOP_BUDGET: Duration = Duration::from_secs(1);

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub session: SessionConfig,
    /// actix worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Connections each worker accepts at once.
    pub max_connections_per_worker: usize,
    /// The whole shutdown budget: the drain, sessions closing with 1001, then
    /// actix stopping.
    pub shutdown_timeout: Duration,
    /// How long to answer `/readyz` 503 (and refuse upgrades) before closing
    /// clients at shutdown, so a load balancer that probes it stops sending
    /// clients first; `None` closes them at once.
    pub shutdown_drain: Option<Duration>,
    /// TCP connections per process (websockets, and plain HTTP connections
    /// while they last); upgrades beyond it get 503 before upgrading.
    pub max_connections: usize,
    /// Browser origins allowed to open a websocket (`Origin` header, exact
    /// match such as `https://rates.example.com`); `None` allows any origin.
    /// Requests without `Origin` (non-browser clients) are always allowed.
    pub allowed_origins: Option<Vec<String>>,
    /// Extra lines for `/readyz` (e.g. the upstream's status in the all-in-one);
    /// informational, they do not change the status code.
    pub readiness_detail: Option<ReadinessDetail>,
    /// `history` queries the process runs at once; more are answered `busy`.
    pub max_history_queries: usize,
    /// How long a `history` query may take before it is answered `unavailable`.
    pub history_timeout: Duration,
}

/// A source of extra `/readyz` lines.
#[derive(Clone)]
pub struct ReadinessDetail(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for ReadinessDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadinessDetail(..)")
    }
}

/// Connections each actix worker accepts at once (`MAX_CONNECTIONS` is the
/// process-wide limit; this only keeps one worker from taking them all).
pub const MAX_CONNECTIONS_PER_WORKER: usize = 25_000;

/// How long a `history` query may take before it is answered `unavailable`.
pub const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for ServerConfig {
    /// The binary's defaults: those of [`ServerArgs`](crate::ServerArgs)'s flags,
    /// whatever the environment holds (one source for every default).
    fn default() -> Self {
        ratecast_process::defaults::<crate::ServerArgs>().server_config()
    }
}

/// What every request handler shares.
struct AppState {
    /// What every session shares: the hub, the `history` queries, the limits.
    sessions_shared: Arc<session::Shared>,
    /// Cancelled when shutdown starts: from then on `/readyz` answers 503 and
    /// upgrades are refused.
    shutdown: CancellationToken,
    /// Cancelled right after `shutdown`: every session watches it and closes
    /// with 1001. Two tokens, so the load balancer's view flips before any
    /// client is told to go.
    closing: CancellationToken,
    /// Every live session, so shutdown can wait for their close frames.
    sessions: TaskTracker,
    /// Connections now open, for `max_connections`.
    connections: Connections,
    max_connections: usize,
    allowed_origins: Option<Vec<String>>,
    readiness_detail: Option<ReadinessDetail>,
    /// Renders `/metrics`.
    metrics: PrometheusHandle,
}

/// Serves HTTP and websockets on `listener` until `shutdown` is cancelled, then
/// closes every session with 1001 and returns once they are gone (or the
/// shutdown timeout passed).
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    history: Arc<dyn HistorySource>,
    config: ServerConfig,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let sessions = TaskTracker::new();
    let closing = CancellationToken::new();
    let connections = Connections::default();
    let state = web::Data::new(AppState {
        sessions_shared: Arc::new(session::Shared {
            hub,
            history: HistoryQueries::new(
                history,
                config.max_history_queries,
                config.history_timeout,
            ),
            config: config.session.clone(),
        }),
        shutdown: shutdown.clone(),
        closing: closing.clone(),
        sessions: sessions.clone(),
        connections: connections.clone(),
        max_connections: config.max_connections,
        allowed_origins: config.allowed_origins.clone(),
        readiness_detail: config.readiness_detail.clone(),
        metrics,
    });
    let server = build_server(listener, state, connections, &config)?;
    let handle = server.handle();
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        () = shutdown.cancelled() => {}
    }
    // `shutdown` already flipped /readyz and refuses upgrades. A load balancer
    // that probes /readyz may be given time to notice before clients are told
    // to go; the drain fits in the shutdown budget.
    let mut session_budget = config.shutdown_timeout.saturating_sub(ACTIX_STOP_BUDGET);
    if let Some(drain) = config.shutdown_drain {
        // Sessions keep at least a second to close after the drain.
        let drain = drain.min(session_budget.saturating_sub(ACTIX_STOP_BUDGET));
        session_budget -= drain;
        info!(
            ?drain,
            "shutting down: /readyz answers 503; closing clients after the drain"
        );
        tokio::select! {
            served = &mut server => return served,
            () = tokio::time::sleep(drain) => {}
        }
    }
    info!("shutting down: closing websocket sessions");
    closing.cancel();
    sessions.close();
    // Sessions get what the drain left of the budget, minus the second actix
    // takes to stop afterwards.
    if tokio::time::timeout(session_budget, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(left = sessions.len(), "sessions did not close in time");
    }
    // The server future processes the stop command, so it must be polled meanwhile.
    let (served, ()) = tokio::join!(server, handle.stop(true));
    served
}

/// Builds the actix server; a plain function because actix's builder is not
/// `Send` and must not live across an `.await` of [`serve`].
fn build_server(
    listener: TcpListener,
    state: web::Data<AppState>,
    connections: Connections,
    config: &ServerConfig,
) -> io::Result<Server> {
    let transport = TransportConfig {
        workers: config.workers,
        max_connections_per_worker: config.max_connections_per_worker,
        // Past the send timeout the session closes a slow consumer; the grace
        // is for its close frame.
        write_stall: config.session.send_timeout + CLOSE_GRACE,
        stop_budget: ACTIX_STOP_BUDGET,
    };
    transport::build(listener, connections, &transport, move || {
        App::new()
            .app_data(state.clone())
            .route("/", web::get().to(index))
            .route("/healthz", web::get().to(http::healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(crate::rest::routes(
                state.sessions_shared.clone(),
                state.shutdown.clone(),
                crate::rest::Streams {
                    closing: state.closing.clone(),
                    sessions: state.sessions.clone(),
                    connections: state.connections.clone(),
                    max_connections: state.max_connections,
                },
            ))
    })
}

async fn index(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    if !is_websocket_upgrade(&req) {
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::html())
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(INDEX_PAGE));
    }
    if state.shutdown.is_cancelled() {
        crate::metrics::refused("shutting_down");
        return Ok(HttpResponse::ServiceUnavailable().body("shutting down\n"));
    }
    let hub = &state.sessions_shared.hub;
    if !hub.has_loaded() {
        crate::metrics::refused("not_ready");
        return Ok(HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "1"))
            .body("starting: history window not loaded yet\n"));
    }
    if !origin_allowed(&req, state.allowed_origins.as_deref()) {
        crate::metrics::refused("origin");
        return Ok(HttpResponse::Forbidden().body("origin not allowed\n"));
    }
    // This connection holds a slot already (from accept): more than the limit
    // means others are open beside it.
    if state.connections.open() > state.max_connections {
        crate::metrics::refused("max_connections");
        tracing::debug!(max = state.max_connections, "connection limit reached");
        return Ok(HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .body("connection limit reached; try another server or later\n"));
    }
    let Some(connection) = req.conn_data::<ConnectionHandle>().cloned() else {
        // Every connection of `transport::build` has one.
        return Ok(HttpResponse::InternalServerError().body("no connection handle\n"));
    };
    let mut handshake = match actix_http::ws::handshake(req.head()) {
        Ok(handshake) => handshake,
        // 400 (or 405) naming what the upgrade request lacks.
        Err(error) => return Ok(actix_http::Response::from(error).into()),
    };
    let shared = state.sessions_shared.clone();
    let config = &shared.config;
    let limiter = RateLimiter::new(
        config.rate_per_second,
        config.rate_burst,
        config.max_message_bytes + MAX_HEADER,
        tokio::time::Instant::now(),
    );
    let inbound = InboundStream::new(body, Decoder::new(config.max_message_bytes, limiter));
    let outbound = Outbound::new(config.max_queued_bytes, shared.hub.clone());
    let response = handshake.message_body(outbound.body().boxed())?;
    connection.upgraded();
    let task = run_session(shared, outbound, inbound, connection, state.closing.clone());
    actix_web::rt::spawn(state.sessions.track_future(task));
    Ok(response.into())
}

/// Whether the request's `Origin` (if any) is on the allow-list (if any).
fn origin_allowed(req: &HttpRequest, allowed: Option<&[String]>) -> bool {
    let (Some(allowed), Some(origin)) = (allowed, req.headers().get(header::ORIGIN)) else {
        return true;
    };
    origin
        .to_str()
        .is_ok_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)))
}

fn is_websocket_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::metrics::record_hub(&state.sessions_shared.hub, readiness(&state).is_ok());
    http::metrics_page(&state.metrics)
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (mut response, mut body) = match readiness(&state) {
        Ok(()) => (HttpResponse::Ok(), "ready\n".to_owned()),
        Err(why) => (
            HttpResponse::ServiceUnavailable(),
            format!("not ready: {why}\n"),
        ),
    };
    if let Some(detail) = &state.readiness_detail {
        body.push_str(&(detail.0)());
        body.push('\n');
    }
    response.content_type(ContentType::plaintext()).body(body)
}

/// Whether this replica can serve a subscriber correctly now, or why not: it is
/// not shutting down, its window is loaded and its live feed is following.
/// Points need not arrive: a fetcher outage does not make the API unready.
fn readiness(state: &AppState) -> Result<(), &'static str> {
    let hub = &state.sessions_shared.hub;
    if state.shutdown.is_cancelled() {
        Err("shutting down")
    } else if !hub.has_loaded() {
        Err("history window not loaded yet")
    } else if !hub.is_ready() {
        Err("live feed interrupted; resuming")
    } else {
        Ok(())
    }
}
