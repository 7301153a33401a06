//! Server-Sent Events (`GET /v1/stream`): the websocket's live points and
//! histories over a plain HTTP response, for clients that cannot or need not
//! open a websocket (`curl -N`, scripts, a browser's `EventSource` behind a
//! proxy that drops websockets).
//!
//! A stream is a websocket connection's outbound side ([`Outbound`]) with
//! [`Framing::Sse`]: the same per-asset subscriptions, relay, catch-up, reply
//! budget and slow-consumer check, writing the same shared point objects
//! between `id:`/`event:`/`data:` lines instead of a websocket header
//! (`docs/protocol.md`, "Server-Sent Events", has the exact bytes). This module
//! owns that framing, the start of a stream ([`open`]: joins, then the
//! histories it was asked for) and its loop ([`run_stream`]: keep-alive
//! comments, the stall check, shutdown). It does not parse the request (that
//! is `rest/stream.rs`) nor the event id ([`id`]).

pub mod id;

use std::{ops::Range, sync::Arc, time::Duration};

use bytes::Bytes;
use ratecast_core::protocol::{Follow, history_frame_prefix};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{
    hub::Hub,
    outbound::{Framing, Gone, Joined, Outbound},
    relay::Relay,
    session::on_the_grid,
    transport::{CLOSE_GRACE, ConnectionHandle},
    wire::PointBytes,
};

/// How often a stream with nothing else to send gets a comment line, so that
/// proxies and browsers do not time an idle stream out (nginx's default read
/// timeout is 60 s) and a client that left is noticed by a failing write.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// The reconnection delay the stream asks an `EventSource` for, in
/// milliseconds (its first line).
pub const RETRY_MS: u32 = 1000;

/// The comment sent every [`KEEPALIVE`].
const KEEPALIVE_COMMENT: &[u8] = b": keepalive\n\n";

/// The stream's first bytes: the `retry:` hint.
fn retry_hint() -> Bytes {
    Bytes::from(format!("retry: {RETRY_MS}\n\n"))
}

/// An `event: point` with the point's object as its data and `positions` (every
/// followed asset's, this point's included) as its id.
pub fn point_event(
    point: &PointBytes,
    positions: impl Iterator<Item = (ratecast_core::AssetId, Option<i64>)>,
) -> Bytes {
    let object = point.object();
    let mut ids = String::new();
    id::write_id(&mut ids, positions);
    let mut event = Vec::with_capacity(ids.len() + object.len() + 32);
    write_head(&mut event, &ids, "point");
    event.extend_from_slice(object);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// An `event: candle` of a `candle` message's websocket frame: its `message`
/// object as the data, no id (a stream's id names point positions). Empty if
/// `frame` is not a `candle` frame.
pub fn candle_event(frame: &[u8]) -> Bytes {
    const PREFIX: &[u8] = br#"{"action":"candle","message":"#;
    let header = match frame.get(1) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    let Some(object) = frame
        .get(header..)
        .and_then(|payload| payload.strip_prefix(PREFIX))
        .and_then(|rest| rest.strip_suffix(b"}"))
    else {
        return Bytes::new();
    };
    let mut event = Vec::with_capacity(object.len() + 32);
    write_head(&mut event, "", "candle");
    event.extend_from_slice(object);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// `id: …` (when there is one), `event: …` and the start of the `data:` line.
fn write_head(out: &mut Vec<u8>, ids: &str, event: &str) {
    if !ids.is_empty() {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(ids.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
}

/// The `asset_history` event of `history` (the hub's websocket frame of it) as
/// three pieces: its `id:`/`event:` head, the frame's `message` object (a
/// slice of the shared frame, not a copy) and the blank line that ends it.
/// `None` if `history` is not an `asset_history` frame (never, from the hub).
fn history_event(history: &Bytes, asset: ratecast_core::AssetId, ids: &str) -> Option<[Bytes; 3]> {
    let message = history_message(history, asset)?;
    let mut head = Vec::with_capacity(ids.len() + 40);
    write_head(&mut head, ids, "asset_history");
    Some([
        Bytes::from(head),
        history.slice(message),
        Bytes::from_static(b"\n\n"),
    ])
}

/// Where the `message` object of an `asset_history` websocket frame of
/// `asset` lies in it: after the frame header and `{"action":…,"message":`,
/// before the closing `}`.
fn history_message(frame: &[u8], asset: ratecast_core::AssetId) -> Option<Range<usize>> {
    let header = match *frame.get(1)? {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let prefix = history_frame_prefix(asset);
    let envelope = prefix.find(r#"{"assetId""#)?;
    let payload = frame.get(header..)?;
    (payload.starts_with(prefix.as_bytes()) && payload.ends_with(b"}"))
        .then(|| header + envelope..frame.len() - 1)
}

/// Starts a stream of `follows`, framed as SSE, whose reply queue holds at
/// most `budget` bytes: the `retry:` hint, then (when `histories`) one
/// `asset_history` per asset (after its `since`, when it has one), then the
/// live points of every asset. Each asset is joined as a websocket subscriber
/// is (its relay first, then its history: the sequence invariant, `crate::hub`).
/// `None` if the hub does not track an asset (the caller parsed them already).
pub fn open(
    hub: &Arc<Hub>,
    follows: &[Follow],
    histories: bool,
    budget: usize,
) -> Option<Outbound> {
    let relay = Relay::for_this_thread(hub);
    let now = hub.now_secs();
    let mut joined = Vec::with_capacity(follows.len());
    for follow in follows {
        let points = relay.subscribe(hub, follow.asset.id)?;
        let sub = hub.subscribe(follow.asset.id, now, follow.since)?;
        joined.push(Joined {
            points,
            sub,
            candles: None,
        });
    }
    let outbound = Outbound::with_framing(budget, hub.clone(), Framing::Sse);
    outbound.push(retry_hint()).ok()?;
    for k in 0..joined.len() {
        let history = std::mem::take(&mut joined[k].sub.history);
        if !histories {
            continue;
        }
        // The assets before this one (and this one) are where their
        // histories end; those after it are still where they started.
        let mut ids = String::new();
        id::write_id(
            &mut ids,
            joined
                .iter()
                .zip(follows)
                .enumerate()
                .map(|(j, (joined, follow))| {
                    let position = if j <= k {
                        joined.sub.last_time
                    } else {
                        follow.since
                    };
                    (follow.asset.id, position)
                }),
        );
        for piece in history_event(&history, follows[k].asset.id, &ids)? {
            outbound.push(piece).ok()?;
        }
        crate::metrics::history_served(&joined[k].sub.asset.name);
    }
    outbound.subscribe(joined).ok()?;
    Some(outbound)
}

/// Why a stream ended; the last comment it gets, if any, says so.
#[derive(Debug)]
enum Exit {
    /// The client went away (its socket closed, or a write found it gone).
    ClientGone,
    Shutdown,
    SlowConsumer,
}

impl Exit {
    /// The `reason` label of `ratecast_sse_closes_total`.
    fn label(&self) -> &'static str {
        match self {
            Self::ClientGone => "client",
            Self::Shutdown => "shutdown",
            Self::SlowConsumer => "slow_consumer",
        }
    }

    /// The comment that ends the stream (an `EventSource` then reconnects,
    /// with its `Last-Event-ID`, after the `retry:` delay).
    fn last_words(&self) -> Bytes {
        let words: &'static [u8] = match self {
            Self::ClientGone => b": closing\n\n",
            Self::Shutdown => b": closing: server shutting down\n\n",
            Self::SlowConsumer => b": closing: slow consumer\n\n",
        };
        Bytes::from_static(words)
    }
}

/// Counts a stream in `ratecast_sse_connections` while it lasts.
struct Counted;

impl Counted {
    fn new() -> Self {
        crate::metrics::sse_connections(1.0);
        Self
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        crate::metrics::sse_connections(-1.0);
    }
}

/// Drives one stream until it ends: a keep-alive comment every `keepalive`,
/// the slow-consumer check against `send_timeout` (as a websocket's), and
/// shutdown (`closing`). The last comment is queued once, after the loop, and
/// the response ends after it; the connection is torn down if it has not
/// ended [`CLOSE_GRACE`] later.
pub async fn run_stream(
    outbound: Outbound,
    connection: ConnectionHandle,
    keepalive: Duration,
    send_timeout: Duration,
    closing: CancellationToken,
) {
    let _counted = Counted::new();
    let mut ticks = tokio::time::interval_at(
        on_the_grid(Instant::now() + keepalive, keepalive),
        keepalive,
    );
    let mut closing = std::pin::pin!(closing.cancelled());
    let mut ended = std::pin::pin!(connection.ended());
    let mut stall = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut stall_armed = false;
    let gone = |_: Gone| Exit::ClientGone;
    let exit = loop {
        // Armed from the start: a stream's histories and points can wait for
        // the socket before anything else happens on it.
        if !stall_armed && let Some(deadline) = outbound.next_check(send_timeout) {
            stall.as_mut().reset(on_the_grid(deadline, send_timeout));
            stall_armed = true;
        }
        let step = tokio::select! {
            biased;
            () = &mut closing => Err(Exit::Shutdown),
            () = &mut ended => Err(Exit::ClientGone),
            () = &mut stall, if stall_armed => {
                stall_armed = false;
                if outbound.stalled(send_timeout) {
                    Err(Exit::SlowConsumer)
                } else {
                    Ok(())
                }
            }
            _ = ticks.tick() => outbound.push(Bytes::from_static(KEEPALIVE_COMMENT)).map_err(gone),
        };
        if let Err(exit) = step {
            break exit;
        }
    };
    debug!(?exit, "stream ended");
    crate::metrics::sse_closed(exit.label());
    // `Gone`: the client left already, nothing is left to send.
    let _ = outbound.close(exit.last_words());
    connection.linger(CLOSE_GRACE).await;
}

#[cfg(test)]
mod tests {
    use ratecast_core::AssetId;

    use super::*;

    fn point(time: i64) -> PointBytes {
        PointBytes::encode(&ratecast_testkit::point(1, "EURUSD", time, 1.5))
    }

    #[test]
    fn a_point_event_is_its_id_its_name_and_the_point_object_on_one_data_line() {
        let event = point_event(
            &point(1_700_000_000),
            [
                (AssetId(1), Some(1_700_000_000)),
                (AssetId(2), Some(1_699_999_990)),
            ]
            .into_iter(),
        );
        assert_eq!(
            &event[..],
            &b"id: 1:1700000000,2:1699999990\nevent: point\ndata: \
               {\"assetName\":\"EURUSD\",\"time\":1700000000,\"assetId\":1,\"value\":1.5}\n\n"[..]
        );
        let no_id = point_event(&point(5), [(AssetId(1), None)].into_iter());
        assert!(no_id.starts_with(b"event: point\ndata: {"));
    }

    #[test]
    fn a_candle_event_is_the_candle_message_object_and_anything_else_is_nothing() {
        let message = r#"{"assetId":1,"interval":"1m","time":60,"open":1.5,"high":1.5,"low":1.5,"close":1.5,"count":1,"closed":false}"#;
        let frame = crate::wire::text_frame(
            format!(r#"{{"action":"candle","message":{message}}}"#).as_bytes(),
        );
        assert_eq!(
            candle_event(&frame),
            Bytes::from(format!("event: candle\ndata: {message}\n\n"))
        );
        assert!(candle_event(&point(5).frame).is_empty());
        assert!(candle_event(b"").is_empty());
    }

    #[test]
    fn a_history_event_carries_the_websocket_message_object_unchanged() {
        let points: Vec<PointBytes> = (0..3).map(|t| point(1_700_000_000 + t)).collect();
        for n in [0, 1, 3, 2000] {
            let many: Vec<PointBytes> = points.iter().cycle().take(n).cloned().collect();
            let frame = crate::wire::history_frame(AssetId(1), many.iter());
            let [head, data, end] = history_event(&frame, AssetId(1), "1:5").expect("a history");
            assert_eq!(&head[..], b"id: 1:5\nevent: asset_history\ndata: ");
            assert_eq!(&end[..], b"\n\n");
            let message: serde_json::Value = serde_json::from_slice(&data).expect("json");
            let whole: serde_json::Value =
                serde_json::from_slice(crate::wire::payload(&frame)).expect("json");
            assert_eq!(message, whole["message"], "{n} points");
            assert!(!data.contains(&b'\n'), "one data line");
        }
        let other = crate::wire::history_frame(AssetId(2), points.iter());
        assert!(history_event(&other, AssetId(1), "").is_none());
        assert!(history_event(&Bytes::from_static(b"\x81"), AssetId(1), "").is_none());
    }
}
