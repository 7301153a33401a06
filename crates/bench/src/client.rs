//! One simulated subscriber: connect from its own source address, subscribe,
//! check the history, then take live points until the generator stops it. An
//! idle client (`--idle`) skips the subscribe and only reads (answering pings).
//!
//! A client is one lightweight task holding its websocket and a
//! [`ClientOutcome`] (a few words). It reads only what the checks need (see
//! [`super::frames`]), reports each live point's arrival to the shared
//! [`Arrivals`] table and bumps shared counters for the progress lines; it keeps
//! no per-point state of its own. Websocket pings are answered by tungstenite
//! while the client reads.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use ratecast_core::{sync::lock, time::unix_now_secs};
use tokio::{
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};
use tokio_util::sync::CancellationToken;

use super::{
    arrivals::Arrivals,
    catchup::CatchUp,
    frames::{self, Kind},
    latency::Latency,
    verdict::{ClientOutcome, End},
};

/// Distinct error messages kept for the report; further ones are only counted.
const MAX_ERROR_KINDS: usize = 32;

/// A client's read buffer. tungstenite grows it for a large message (a 125 KB
/// history) and keeps that capacity, so this only sets the floor.
const READ_BUFFER: usize = 4096;

/// What every client of a run shares.
pub struct Shared {
    pub server: SocketAddr,
    /// The request URL, e.g. `ws://127.0.0.1:8080/`.
    pub url: String,
    pub connect_timeout: Duration,
    pub history_timeout: Duration,
    /// Cancelled at the end of the hold: every client closes and returns.
    pub stop: CancellationToken,
    pub arrivals: Arrivals,
    pub counters: Counters,
    /// From `subscribe` sent to the complete `asset_history` received.
    pub time_to_history: Mutex<Latency>,
    /// Error messages and how often each was seen.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Clients connect and never subscribe (`--idle`).
    pub idle: bool,
    /// The backlog flush being measured (`--expect-backlog`).
    pub catch_up: Option<CatchUp>,
}

/// Running totals, read by the progress lines and the report.
#[derive(Debug, Default)]
pub struct Counters {
    pub spawned: AtomicU64,
    pub connected: AtomicU64,
    pub connect_errors: AtomicU64,
    pub histories: AtomicU64,
    pub history_failures: AtomicU64,
    /// Clients done with their subscribe phase, with or without a history.
    pub settled: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    pub live_points: AtomicU64,
    /// Connections lost after their history, before the stop.
    pub dropped: AtomicU64,
    pub error_frames: AtomicU64,
}

impl Shared {
    fn note_error(&self, kind: &str, error: impl std::fmt::Display) {
        let mut errors = lock(&self.errors);
        let key = format!("{kind}: {error}");
        if errors.len() < MAX_ERROR_KINDS || errors.contains_key(&key) {
            *errors.entry(key).or_default() += 1;
        } else {
            *errors.entry(format!("{kind}: (other)")).or_default() += 1;
        }
    }
}

/// Which socket a client opens and what it subscribes to.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Index of the asset in the `assets` reply.
    pub asset: usize,
    pub asset_id: u32,
    /// Source address to bind, or `None` to let the kernel choose.
    pub source: Option<Ipv4Addr>,
}

/// Runs one client to its end and returns what it saw.
pub async fn run_client(plan: Plan, shared: Arc<Shared>) -> ClientOutcome {
    let mut outcome = ClientOutcome::new(plan.asset);
    let ws = match tokio::time::timeout(shared.connect_timeout, connect(&plan, &shared)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => return connect_failed(outcome, &shared, error),
        Err(_) => return connect_failed(outcome, &shared, "timed out".to_owned()),
    };
    shared.counters.connected.fetch_add(1, Ordering::Relaxed);
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    outcome.end = drive(ws, &plan, &shared, &mut outcome).await;
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    outcome
}

fn connect_failed(mut outcome: ClientOutcome, shared: &Shared, error: String) -> ClientOutcome {
    shared
        .counters
        .connect_errors
        .fetch_add(1, Ordering::Relaxed);
    shared.counters.settled.fetch_add(1, Ordering::Relaxed);
    shared.note_error("connect", &error);
    outcome.end = End::Failed(error);
    outcome
}

async fn connect(plan: &Plan, shared: &Shared) -> Result<WebSocketStream<TcpStream>, String> {
    let socket = match shared.server {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    if let (Some(source), SocketAddr::V4(_)) = (plan.source, shared.server) {
        socket
            .bind(SocketAddr::new(IpAddr::V4(source), 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let stream = socket
        .connect(shared.server)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(shared.url.as_str(), stream, Some(config))
            .await
            .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Subscribes, waits for the history, then takes live points until stopped.
async fn drive(
    mut ws: WebSocketStream<TcpStream>,
    plan: &Plan,
    shared: &Shared,
    outcome: &mut ClientOutcome,
) -> End {
    let counters = &shared.counters;
    if shared.idle {
        counters.settled.fetch_add(1, Ordering::Relaxed);
    } else {
        let history = receive_history(&mut ws, plan, shared).await;
        counters.settled.fetch_add(1, Ordering::Relaxed);
        match history {
            Ok(scan) => {
                counters.histories.fetch_add(1, Ordering::Relaxed);
                if let (Some(catch_up), Some(last)) = (&shared.catch_up, scan.last) {
                    catch_up.on_history(last);
                    let age = unix_now_secs().saturating_sub(last);
                    outcome.history_allowance = usize::try_from(age).unwrap_or(0);
                }
                outcome.history = Some(scan);
            }
            Err(reason) => {
                counters.history_failures.fetch_add(1, Ordering::Relaxed);
                shared.note_error("history", &reason);
                return End::Failed(reason);
            }
        }
    }
    let history_last = outcome.history.and_then(|h| h.last);
    let end = loop {
        let message = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break End::Stopped,
            message = ws.next() => message,
        };
        let at = shared.arrivals.now_us();
        match message {
            Some(Ok(Message::Text(text))) => match frames::kind(&text) {
                Kind::Point => match frames::live_point(&text) {
                    Some(point) if !shared.idle && point.asset_id == plan.asset_id => {
                        counters.live_points.fetch_add(1, Ordering::Relaxed);
                        outcome.take_live(point.time);
                        if let (Some(catch_up), Some(last)) = (&shared.catch_up, history_last) {
                            catch_up.on_live(last, &mut outcome.catch_up, point.time, at);
                        }
                        shared.arrivals.record(plan.asset, point.time, at);
                    }
                    _ => outcome.foreign += 1,
                },
                Kind::Error => {
                    counters.error_frames.fetch_add(1, Ordering::Relaxed);
                    shared.note_error("error frame", text.as_str());
                }
                Kind::AssetHistory | Kind::Other => {}
            },
            Some(Ok(Message::Close(frame))) => {
                let reason = match frame {
                    Some(frame) => format!("closed by the server: {} {}", frame.code, frame.reason),
                    None => "closed by the server".to_owned(),
                };
                break End::Dropped(reason);
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => break End::Dropped(error.to_string()),
            None => break End::Dropped("connection ended".to_owned()),
        }
    };
    match &end {
        End::Dropped(reason) => {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            shared.note_error("dropped", reason);
            if let (Some(catch_up), Some(last)) = (&shared.catch_up, history_last) {
                catch_up.on_dropped(last, &outcome.catch_up);
            }
        }
        End::Stopped => {
            // Say goodbye, but do not wait on a server that stopped reading.
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        }
        End::Failed(_) => {}
    }
    end
}

/// Sends `subscribe` and waits for the complete `asset_history`.
async fn receive_history(
    ws: &mut WebSocketStream<TcpStream>,
    plan: &Plan,
    shared: &Shared,
) -> Result<frames::HistoryScan, String> {
    let subscribe = format!(
        r#"{{"action":"subscribe","message":{{"assetId":{}}}}}"#,
        plan.asset_id
    );
    ws.send(Message::text(subscribe))
        .await
        .map_err(|e| format!("subscribe not sent: {e}"))?;
    let sent = Instant::now();
    let deadline = sent + shared.history_timeout;
    loop {
        let message = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return Err("stopped before the history came".into()),
            () = tokio::time::sleep_until(deadline) => {
                return Err(format!("no asset_history within {:?}", shared.history_timeout));
            }
            message = ws.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => match frames::kind(&text) {
                Kind::AssetHistory => {
                    let took = sent.elapsed();
                    lock(&shared.time_to_history)
                        .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                    return Ok(frames::scan_history(&text));
                }
                Kind::Error => {
                    shared.counters.error_frames.fetch_add(1, Ordering::Relaxed);
                    shared.note_error("error frame", text.as_str());
                }
                Kind::Point | Kind::Other => {}
            },
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(frame) => format!("closed by the server: {} {}", frame.code, frame.reason),
                    None => "closed by the server".to_owned(),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
            None => return Err("connection ended".to_owned()),
        }
    }
}
