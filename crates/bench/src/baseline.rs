//! The baseline: a minimal tokio + tokio-tungstenite broadcast server speaking
//! the protocol subset the load generator uses, so ratecast's numbers can be
//! compared with what a straightforward implementation gets on the same machine.
//!
//! It is what a competent engineer writes in an afternoon, and no more: one task
//! per connection; per asset a mutex over the last 1800 points, the cached
//! `asset_history` frame and a `tokio::sync::broadcast` of point frames, each
//! serialized once (with ratecast's own frame builders, so the bytes on the wire
//! are identical). Subscribing takes the history and the receiver under the same
//! lock that publishing takes, so history and live points meet without a hole.
//! It answers `assets` and `subscribe` only (other requests get no answer), has
//! no heartbeat, no idle timeout and no connection limit; a client that lags more
//! than [`POINT_BUFFER`] points behind is closed with 1008. Rates are the same
//! simulated random walk as ratecast's, pre-filled with a full window.

use std::{
    collections::VecDeque,
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use ratecast_core::{
    Asset, AssetList, Point,
    protocol::{ClientRequest, assets_frame, history_frame, parse_request, point_frame},
    sync::lock,
    time::{HISTORY_SPAN_SECS, unix_now, unix_now_secs},
};
use ratecast_fetcher::SimulatedSource;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::broadcast::{self, error::RecvError},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message, Utf8Bytes,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, info, warn};

/// Point frames buffered per asset; a subscriber further behind is closed.
pub const POINT_BUFFER: usize = 64;

/// Points kept per asset: 30 minutes at one a second.
const WINDOW: usize = HISTORY_SPAN_SECS as usize;

/// Client messages are requests of a few dozen bytes.
const MAX_CLIENT_MESSAGE: usize = 4096;

struct Shared {
    assets: AssetList,
    assets_frame: Utf8Bytes,
    /// One per asset, in id order.
    channels: Vec<Channel>,
}

struct Channel {
    asset: Asset,
    state: Mutex<State>,
}

struct State {
    points: VecDeque<(i64, f64)>,
    /// The `asset_history` frame of `points`, built on demand, reset by a new point.
    history: Option<Utf8Bytes>,
    live: broadcast::Sender<Utf8Bytes>,
}

impl Shared {
    fn channel(&self, asset: &Asset) -> Option<&Channel> {
        self.channels.get(self.assets.index_of(asset.id)?)
    }
}

/// Serves the baseline on `listener` until `shutdown` is cancelled.
pub async fn serve_baseline(
    listener: TcpListener,
    assets: AssetList,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        assets_frame: Utf8Bytes::from(assets_frame(&assets).to_string()),
        channels: assets
            .iter()
            .map(|asset| Channel {
                asset: asset.clone(),
                state: Mutex::new(State {
                    points: VecDeque::with_capacity(WINDOW + 1),
                    history: None,
                    live: broadcast::channel(POINT_BUFFER).0,
                }),
            })
            .collect(),
        assets,
    });
    // A full window before the first client can connect.
    let source = SimulatedSource::new(&shared.assets);
    let now = unix_now_secs();
    for point in source.backfill(&shared.assets, now - HISTORY_SPAN_SECS + 1, now) {
        publish(&shared, &point);
    }
    let tasks = TaskTracker::new();
    tasks.spawn(tick(shared.clone(), source, now, shutdown.clone()));
    info!(addr = %listener.local_addr()?, "baseline server listening");
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tasks.spawn(connection(stream, shared.clone(), shutdown.clone()));
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Publishes one simulated point per asset at every wall-clock second after `last`.
async fn tick(
    shared: Arc<Shared>,
    source: SimulatedSource,
    mut last: i64,
    shutdown: CancellationToken,
) {
    loop {
        let into_second = unix_now().subsec_nanos();
        let wait = Duration::from_nanos(u64::from(1_000_000_000 - into_second));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let second = unix_now_secs().max(last + 1);
        for point in source.backfill(&shared.assets, second, second) {
            publish(&shared, &point);
        }
        last = second;
    }
}

fn publish(shared: &Shared, point: &Point) {
    let Some(channel) = shared
        .assets
        .get(point.asset_id)
        .and_then(|asset| shared.channel(asset))
    else {
        return;
    };
    let frame = Utf8Bytes::from(point_frame(point).to_string());
    let mut state = lock(&channel.state);
    state.points.push_back((point.time, point.value));
    while state.points.len() > WINDOW {
        state.points.pop_front();
    }
    state.history = None;
    // An error only means nobody is subscribed.
    let _ = state.live.send(frame);
}

/// The history frame and a receiver of every later point, taken atomically.
fn subscribe(channel: &Channel) -> (Utf8Bytes, broadcast::Receiver<Utf8Bytes>) {
    let mut state = lock(&channel.state);
    let history = match &state.history {
        Some(frame) => frame.clone(),
        None => {
            let frame = history_frame(&channel.asset, state.points.iter().copied());
            let frame = Utf8Bytes::from(frame.to_string());
            state.history = Some(frame.clone());
            frame
        }
    };
    (history, state.live.subscribe())
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    // Small read buffers, as tungstenite's docs advise for many connections.
    let config = WebSocketConfig::default()
        .read_buffer_size(MAX_CLIENT_MESSAGE)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(ws) => ws,
        Err(error) => {
            debug!(%error, "handshake failed");
            return;
        }
    };
    if let Err(error) = session(ws, &shared, &shutdown).await {
        debug!(%error, "connection ended");
    }
}

async fn session(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Result<(), tungstenite::Error> {
    let mut live: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                close(&mut ws, CloseCode::Away, "going away").await;
                return Ok(());
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => match parse_request(&text, &shared.assets) {
                    Ok(ClientRequest::Assets) => {
                        ws.send(Message::Text(shared.assets_frame.clone())).await?;
                    }
                    Ok(ClientRequest::Subscribe { asset, .. }) => {
                        if let Some(channel) = shared.channel(&asset) {
                            let (history, receiver) = subscribe(channel);
                            live = Some(receiver);
                            ws.send(Message::Text(history)).await?;
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
            },
            frame = next_point(&mut live) => match frame {
                Ok(frame) => ws.send(Message::Text(frame)).await?,
                Err(RecvError::Lagged(_)) => {
                    close(&mut ws, CloseCode::Policy, "slow consumer").await;
                    return Ok(());
                }
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// The next point frame; pending forever before the first subscribe.
async fn next_point(
    live: &mut Option<broadcast::Receiver<Utf8Bytes>>,
) -> Result<Utf8Bytes, RecvError> {
    match live {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn close(ws: &mut WebSocketStream<TcpStream>, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}
