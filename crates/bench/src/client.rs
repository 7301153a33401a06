//! One simulated subscriber: connect from its own source address, subscribe,
//! check the history, then take live points until the generator stops it. An
//! idle client (`--idle`) skips the subscribe and only reads (answering pings).
//! A client follows one asset (the seed's `subscribe` with `assetId`) or
//! several on its one connection (`subscribe` with `assetIds`, for
//! `ratecast-bench multi`); it then waits for one history per asset.
//!
//! A client is one lightweight task holding its websocket and one
//! [`ClientOutcome`] (a few words) per asset it follows, so the verdict judges
//! each asset's stream on its own. It reads only what the checks need (see
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
    /// The ids of the `assets` reply, in its order: a [`Plan`] names assets by
    /// their index in it.
    pub asset_ids: Vec<u32>,
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
    /// Live points received (of every asset, on every connection).
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
    /// Index in the `assets` reply of the (first) asset followed.
    pub asset: usize,
    /// Assets followed on the one connection: `asset` and the ones after it in
    /// the `assets` reply (wrapping round), at least 1 and at most all. One is
    /// subscribed with `assetId` (the seed's message), several with `assetIds`.
    pub count: usize,
    /// Source address to bind, or `None` to let the kernel choose.
    pub source: Option<Ipv4Addr>,
}

impl Plan {
    /// The indices (in the `assets` reply of `assets` assets) of the assets
    /// followed, in the order they are subscribed.
    pub fn assets(&self, assets: usize) -> impl Iterator<Item = usize> + use<> {
        let (first, count) = (self.asset, self.count.clamp(1, assets.max(1)));
        (0..count).map(move |i| (first + i) % assets.max(1))
    }
}

/// Runs one client to its end and returns what it saw: one outcome per asset
/// followed, in the order of [`Plan::assets`].
pub async fn run_client(plan: Plan, shared: Arc<Shared>) -> Vec<ClientOutcome> {
    let mut outcomes: Vec<ClientOutcome> = plan
        .assets(shared.asset_ids.len())
        .map(ClientOutcome::new)
        .collect();
    let ws = match tokio::time::timeout(shared.connect_timeout, connect(&plan, &shared)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => return connect_failed(outcomes, &shared, error),
        Err(_) => return connect_failed(outcomes, &shared, "timed out".to_owned()),
    };
    shared.counters.connected.fetch_add(1, Ordering::Relaxed);
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    let end = drive(ws, &shared, &mut outcomes).await;
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    for outcome in &mut outcomes {
        outcome.end = end.clone();
    }
    outcomes
}

fn connect_failed(
    mut outcomes: Vec<ClientOutcome>,
    shared: &Shared,
    error: String,
) -> Vec<ClientOutcome> {
    shared
        .counters
        .connect_errors
        .fetch_add(1, Ordering::Relaxed);
    shared.counters.settled.fetch_add(1, Ordering::Relaxed);
    shared.note_error("connect", &error);
    for outcome in &mut outcomes {
        outcome.end = End::Failed(error.clone());
    }
    outcomes
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

/// Subscribes, waits for the histories, then takes live points until stopped.
/// `outcomes` holds one outcome per asset followed (at least one).
async fn drive(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    outcomes: &mut [ClientOutcome],
) -> End {
    let counters = &shared.counters;
    if shared.idle {
        counters.settled.fetch_add(1, Ordering::Relaxed);
    } else {
        let histories = receive_histories(&mut ws, shared, outcomes).await;
        counters.settled.fetch_add(1, Ordering::Relaxed);
        if let Err(reason) = histories {
            counters.history_failures.fetch_add(1, Ordering::Relaxed);
            shared.note_error("history", &reason);
            return End::Failed(reason);
        }
        counters.histories.fetch_add(1, Ordering::Relaxed);
        for outcome in outcomes.iter_mut() {
            if let (Some(catch_up), Some(last)) =
                (&shared.catch_up, outcome.history.and_then(|h| h.last))
            {
                catch_up.on_history(last);
                let age = unix_now_secs().saturating_sub(last);
                outcome.history_allowance = usize::try_from(age).unwrap_or(0);
            }
        }
    }
    let end = loop {
        let message = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break End::Stopped,
            message = ws.next() => message,
        };
        let at = shared.arrivals.now_us();
        match message {
            Some(Ok(Message::Text(text))) => match frames::kind(&text) {
                Kind::Point => take_point(shared, outcomes, &text, at),
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
            for outcome in outcomes.iter() {
                if let (Some(catch_up), Some(last)) =
                    (&shared.catch_up, outcome.history.and_then(|h| h.last))
                {
                    catch_up.on_dropped(last, &outcome.catch_up);
                }
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

/// One live `point` frame, received at `at`: it goes to the outcome of its
/// asset; a point of an asset not followed (or of any asset on an idle
/// client) is foreign.
fn take_point(shared: &Shared, outcomes: &mut [ClientOutcome], text: &str, at: u64) {
    let followed = frames::live_point(text)
        .filter(|_| !shared.idle)
        .and_then(|point| {
            let index = outcomes
                .iter()
                .position(|o| shared.asset_ids.get(o.asset) == Some(&point.asset_id))?;
            Some((point, index))
        });
    let Some((point, index)) = followed else {
        if let Some(first) = outcomes.first_mut() {
            first.foreign += 1;
        }
        return;
    };
    let outcome = &mut outcomes[index];
    shared.counters.live_points.fetch_add(1, Ordering::Relaxed);
    outcome.take_live(point.time);
    if let (Some(catch_up), Some(last)) = (&shared.catch_up, outcome.history.and_then(|h| h.last)) {
        catch_up.on_live(last, &mut outcome.catch_up, point.time, at);
    }
    shared.arrivals.record(outcome.asset, point.time, at);
}

/// The `subscribe` of the assets of `outcomes`: the seed's (`assetId`) for
/// one, `assetIds` for several.
pub fn subscribe_frame(asset_ids: &[u32]) -> String {
    match asset_ids {
        [one] => format!(r#"{{"action":"subscribe","message":{{"assetId":{one}}}}}"#),
        many => {
            let ids: Vec<String> = many.iter().map(u32::to_string).collect();
            format!(
                r#"{{"action":"subscribe","message":{{"assetIds":[{}]}}}}"#,
                ids.join(",")
            )
        }
    }
}

/// Sends `subscribe` and waits for one complete `asset_history` per asset, in
/// the order subscribed (as the protocol promises); each goes to its asset's
/// outcome. The time to history is to the last of them.
async fn receive_histories(
    ws: &mut WebSocketStream<TcpStream>,
    shared: &Shared,
    outcomes: &mut [ClientOutcome],
) -> Result<(), String> {
    let ids: Vec<u32> = outcomes
        .iter()
        .map(|o| shared.asset_ids.get(o.asset).copied().unwrap_or_default())
        .collect();
    ws.send(Message::text(subscribe_frame(&ids)))
        .await
        .map_err(|e| format!("subscribe not sent: {e}"))?;
    let sent = Instant::now();
    let deadline = sent + shared.history_timeout;
    let mut received = 0;
    while received < outcomes.len() {
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
                    let scan = frames::scan_history(&text);
                    let expected = ids[received];
                    if let Some(other) = scan.asset_id.filter(|&id| id != expected) {
                        return Err(format!(
                            "an asset_history of asset {other} where asset {expected}'s was due"
                        ));
                    }
                    outcomes[received].history = Some(scan);
                    received += 1;
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
    let took = sent.elapsed();
    lock(&shared.time_to_history).record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_asset_is_subscribed_with_the_seeds_message_and_several_with_asset_ids() {
        assert_eq!(
            subscribe_frame(&[3]),
            r#"{"action":"subscribe","message":{"assetId":3}}"#
        );
        assert_eq!(
            subscribe_frame(&[1, 2, 5]),
            r#"{"action":"subscribe","message":{"assetIds":[1,2,5]}}"#
        );
    }

    #[test]
    fn a_plan_follows_its_asset_and_the_ones_after_it_wrapping_round() {
        let plan = |asset, count| Plan {
            asset,
            count,
            source: None,
        };
        assert_eq!(plan(3, 1).assets(5).collect::<Vec<_>>(), [3]);
        assert_eq!(plan(0, 5).assets(5).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert_eq!(plan(3, 3).assets(5).collect::<Vec<_>>(), [3, 4, 0]);
        assert_eq!(plan(0, 9).assets(5).count(), 5, "at most every asset");
        assert_eq!(plan(0, 0).assets(5).count(), 1, "at least one");
    }
}
