//! One websocket connection: parse client frames, answer them, forward the points
//! of the subscribed asset, keep the connection alive and close it with a reason.
//!
//! The loop has one shape: `select!` over {client frame, point frame, heartbeat
//! tick, shutdown}; every way out is a `break` with a [`CloseReason`], and the close
//! frame is sent once, after the loop. Nothing a client sends can panic it: bad
//! input is answered with an `error` frame and the connection stays open.

use std::{future::Future, sync::Arc, task::Poll, time::Duration};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytestring::ByteString;
use futures_util::StreamExt;
use ratecast_core::{
    protocol::{
        ClientRequest, ErrorCode, RequestError, error_frame, parse_request, range_frame,
        unsubscribed_frame,
    },
    time::unix_now_secs,
};
use tokio::{sync::broadcast::error::RecvError, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{
    history::HistorySource,
    hub::{Hub, PointFrame, Subscription},
    limits::{RateLimiter, Verdict},
};

/// Per-connection limits and timers.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// Largest client message accepted; larger ones close the connection with 1009.
    pub max_message_bytes: usize,
    /// A frame the client does not take within this time marks it a slow
    /// consumer: the connection is closed rather than left holding memory.
    pub send_timeout: Duration,
    /// Inbound messages (text, binary, ping) allowed per second, sustained…
    pub rate_per_second: u32,
    /// …and in a burst. See [`RateLimiter`] for what happens beyond.
    pub rate_burst: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_message_bytes: 4096,
            send_timeout: Duration::from_secs(10),
            rate_per_second: 20,
            rate_burst: 40,
        }
    }
}

/// Why a session ended; the close frame, if any, is derived from it.
#[derive(Debug)]
enum Exit {
    /// The client sent Close or the TCP stream ended: answer with a normal close.
    ClientGone,
    Shutdown,
    Idle,
    SlowConsumer,
    TooBig,
    RateLimited,
    Protocol(String),
    /// The outbound side broke; no close frame can be sent.
    SendFailed,
}

impl Exit {
    /// The `reason` label of `ratecast_ws_closes_total`.
    fn label(&self) -> &'static str {
        match self {
            Self::ClientGone => "client",
            Self::Shutdown => "shutdown",
            Self::Idle => "idle",
            Self::SlowConsumer => "slow_consumer",
            Self::TooBig => "too_big",
            Self::RateLimited => "rate_limited",
            Self::Protocol(_) => "protocol",
            Self::SendFailed => "send_failed",
        }
    }

    fn close_reason(&self) -> Option<CloseReason> {
        let reason = |code, text: &str| {
            Some(CloseReason {
                code,
                description: Some(text.to_owned()),
            })
        };
        match self {
            Self::ClientGone => Some(CloseCode::Normal.into()),
            Self::Shutdown => reason(CloseCode::Away, "going away: server shutting down"),
            Self::Idle => reason(CloseCode::Normal, "idle timeout"),
            Self::SlowConsumer => reason(CloseCode::Policy, "slow consumer"),
            Self::TooBig => reason(CloseCode::Size, "message too big"),
            Self::RateLimited => reason(CloseCode::Policy, "rate limit exceeded"),
            Self::Protocol(text) => reason(CloseCode::Protocol, text),
            Self::SendFailed => None,
        }
    }
}

/// Drives one connection until it ends.
pub async fn run_session(
    hub: Arc<Hub>,
    history: Arc<dyn HistorySource>,
    mut session: Session,
    stream: AggregatedMessageStream,
    config: SessionConfig,
    shutdown: CancellationToken,
) {
    let mut stream = stream.max_continuation_size(config.max_message_bytes);
    let mut subscription: Option<Subscription> = None;
    let mut limiter = RateLimiter::new(config.rate_per_second, config.rate_burst, Instant::now());
    let mut last_heard = Instant::now();
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let exit = loop {
        let step = tokio::select! {
            biased;
            () = shutdown.cancelled() => Err(Exit::Shutdown),
            message = stream.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(message)) => match rate_check(&mut limiter, &message) {
                        Verdict::Accept => {
                            on_message(&hub, &*history, &mut session, &mut subscription, message, &config).await
                        }
                        Verdict::Reject => {
                            crate::metrics::rate_limited();
                            let error = RequestError::new(
                                ErrorCode::RateLimited,
                                format!(
                                    "more than {} messages a second; this one was dropped",
                                    config.rate_per_second
                                ),
                            );
                            send(&mut session, error_frame(&error), &config).await
                        }
                        Verdict::Close => Err(Exit::RateLimited),
                    },
                    Some(Err(error)) if is_too_big(&error) => Err(Exit::TooBig),
                    Some(Err(error)) => Err(Exit::Protocol(error.to_string())),
                    None => Err(Exit::ClientGone),
                }
            }
            frame = next_point(&mut subscription) => match frame {
                Ok(point) => forward(&mut session, &mut subscription, point, &config).await,
                Err(RecvError::Lagged(_)) => {
                    catch_up(&hub, &mut session, &mut subscription, &config).await
                }
                // The hub never drops a sender while running; treat it as shutdown.
                Err(RecvError::Closed) => Err(Exit::Shutdown),
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= config.idle_timeout {
                    Err(Exit::Idle)
                } else {
                    session.ping(b"").await.map_err(|_| Exit::SendFailed)
                }
            }
        };
        if let Err(exit) = step {
            break exit;
        }
    };
    debug!(?exit, "session ended");
    crate::metrics::closed(exit.label());
    drop(subscription);
    if let Some(reason) = exit.close_reason() {
        // A client that stopped reading must not hold the task: bound the close.
        let _ = tokio::time::timeout(config.send_timeout, session.close(Some(reason))).await;
    }
}

/// A frame over the limit, or fragments adding up to more than it. actix-ws
/// reports the latter only as an I/O error with this text; a black-box test
/// pins the behaviour so a library change cannot silently turn 1009 into 1002.
fn is_too_big(error: &actix_ws::ProtocolError) -> bool {
    match error {
        actix_ws::ProtocolError::Overflow => true,
        actix_ws::ProtocolError::Io(io) => io.to_string().contains("maximum continuation size"),
        _ => false,
    }
}

/// Sends one live point newer than what the client has, and remembers it.
async fn forward(
    session: &mut Session,
    subscription: &mut Option<Subscription>,
    point: PointFrame,
    config: &SessionConfig,
) -> Result<(), Exit> {
    let Some(current) = subscription.as_mut() else {
        return Ok(());
    };
    // Live points only move forward: one the client already has is not resent.
    if current.last_time.is_some_and(|last| point.time <= last) {
        return Ok(());
    }
    current.last_time = Some(point.time);
    send(session, point.frame, config).await
}

/// The subscriber fell behind the shared ring: send it what it missed from the
/// window, one `point` frame each, and continue live from there. A client that
/// cannot take them in time is closed by `send`.
async fn catch_up(
    hub: &Hub,
    session: &mut Session,
    subscription: &mut Option<Subscription>,
    config: &SessionConfig,
) -> Result<(), Exit> {
    let Some(current) = subscription.as_mut() else {
        return Ok(());
    };
    let Some((frames, points)) = hub.catch_up(current.asset.id, current.last_time) else {
        return Ok(());
    };
    debug!(
        missed = frames.len(),
        "subscriber lagged; catching up from the window"
    );
    crate::metrics::lag_catch_up(frames.len());
    current.points = points;
    for point in frames {
        forward(session, subscription, point, config).await?;
    }
    Ok(())
}

/// The next point frame of the subscription; pending forever when there is none.
async fn next_point(subscription: &mut Option<Subscription>) -> Result<PointFrame, RecvError> {
    match subscription {
        Some(subscription) => subscription.points.recv().await,
        None => std::future::pending().await,
    }
}

async fn send(
    session: &mut Session,
    frame: ByteString,
    config: &SessionConfig,
) -> Result<(), Exit> {
    let bytes = frame.len();
    let mut sending = std::pin::pin!(session.text(frame));
    // Fast path: the session's queue has room and the frame is taken at once, so
    // no timer is armed (this runs once per point per subscriber). Only a frame
    // that has to wait gets the send timeout.
    let first = std::future::poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
    let sent = match first {
        Poll::Ready(sent) => sent,
        Poll::Pending => match tokio::time::timeout(config.send_timeout, sending).await {
            Ok(sent) => sent,
            Err(_elapsed) => return Err(Exit::SlowConsumer),
        },
    };
    match sent {
        Ok(()) => {
            crate::metrics::frame_sent(bytes);
            Ok(())
        }
        Err(_closed) => Err(Exit::SendFailed),
    }
}

/// Records a parsed request in `ratecast_ws_requests_total`, by action.
fn record_request(
    request: Result<ClientRequest, RequestError>,
) -> Result<ClientRequest, RequestError> {
    crate::metrics::request(match &request {
        Ok(ClientRequest::Assets) => "assets",
        Ok(ClientRequest::Subscribe { .. }) => "subscribe",
        Ok(ClientRequest::Unsubscribe) => "unsubscribe",
        Ok(ClientRequest::History { .. }) => "history",
        Err(_) => "invalid",
    });
    request
}

/// Data frames and pings count against the rate limit; pongs and closes do not.
fn rate_check(limiter: &mut RateLimiter, message: &AggregatedMessage) -> Verdict {
    match message {
        AggregatedMessage::Text(_) | AggregatedMessage::Binary(_) | AggregatedMessage::Ping(_) => {
            limiter.check(Instant::now())
        }
        AggregatedMessage::Pong(_) | AggregatedMessage::Close(_) => Verdict::Accept,
    }
}

async fn on_message(
    hub: &Hub,
    history: &dyn HistorySource,
    session: &mut Session,
    subscription: &mut Option<Subscription>,
    message: AggregatedMessage,
    config: &SessionConfig,
) -> Result<(), Exit> {
    match message {
        AggregatedMessage::Text(text) => match record_request(parse_request(&text, hub.assets())) {
            Ok(ClientRequest::Assets) => send(session, hub.assets_frame(), config).await,
            Ok(ClientRequest::Subscribe { asset, since }) => {
                match hub.subscribe(asset.id, unix_now_secs(), since) {
                    Some(new) => {
                        crate::metrics::history_served(&asset.name);
                        let history = new.history.clone();
                        // Replacing drops the old receiver before the new history is
                        // sent: no point of the old asset can follow `asset_history`.
                        *subscription = Some(new);
                        send(session, history, config).await
                    }
                    None => {
                        let error = RequestError::new(ErrorCode::UnknownAsset, "unknown asset");
                        send(session, error_frame(&error), config).await
                    }
                }
            }
            Ok(ClientRequest::Unsubscribe) => {
                let was = subscription.take().map(|s| s.asset.id);
                send(session, unsubscribed_frame(was), config).await
            }
            Ok(ClientRequest::History { asset, from, to }) => {
                let frame = match history.range(asset.id, from, to).await {
                    Ok(points) => range_frame(&asset, from, to, &points),
                    Err(error) => {
                        tracing::warn!(error = %ratecast_process::ErrorChain(&error), "history query failed");
                        let error = RequestError::new(
                            ErrorCode::Unavailable,
                            "history is unavailable right now; retry shortly",
                        );
                        error_frame(&error)
                    }
                };
                send(session, frame, config).await
            }
            Err(error) => send(session, error_frame(&error), config).await,
        },
        AggregatedMessage::Binary(_) => {
            let error = RequestError::new(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
            );
            send(session, error_frame(&error), config).await
        }
        AggregatedMessage::Ping(payload) => {
            session.pong(&payload).await.map_err(|_| Exit::SendFailed)
        }
        AggregatedMessage::Pong(_) => Ok(()),
        AggregatedMessage::Close(_) => Err(Exit::ClientGone),
    }
}
