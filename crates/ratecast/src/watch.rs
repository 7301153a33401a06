//! `ratecast watch`: live rates in a terminal, from any ratecast deployment.
//!
//! One websocket connection follows every watched asset (`subscribe` with
//! `assetIds`). Each asset prints a summary of its history, then one line per
//! point: time, asset, value, change, coloured up/down when stdout is a
//! terminal and plain otherwise, so it can be piped. A dropped connection is
//! retried with backoff and resubscribed with each asset's own `since`, so no
//! point is printed twice or skipped; Ctrl-C ends it cleanly.
//!
//! With `--candles 1m` it follows candles of that interval instead (the
//! subscription's `candles` option) and prints each closed candle once, as it
//! closes: time, asset, open, high, low, close and how many points it holds.
//! A reconnect resumes each asset from its last closed candle (`since`).

use std::{
    io::{IsTerminal, Write},
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use ratecast_core::{
    Interval,
    protocol::{ServerMessage, WireCandle, WirePoint},
    retry::Backoff,
    sync::lock,
};
use ratecast_process::ErrorChain;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The first wait before reconnecting a dropped connection; it doubles up to 10 s.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(800);

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Assets to watch by name (e.g. EURUSD USDJPY); all of them when none is given.
    pub assets: Vec<String>,

    /// The websocket URL of a ratecast API.
    #[arg(long, env = "RATECAST_URL", default_value = "ws://localhost:8080/")]
    pub url: String,

    /// Colour up/down moves: auto (when stdout is a terminal), always or never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    /// Print closed candles of this interval (5s, 1m, 5m, 15m, 1h, 4h, 1d) as
    /// they close, instead of every point.
    #[arg(long, value_parser = parse_interval)]
    pub candles: Option<Interval>,
}

fn parse_interval(text: &str) -> Result<Interval, String> {
    text.parse()
        .map_err(|error: ratecast_core::candle::UnknownInterval| error.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Why watching could not start, or one connection failed (then it is retried).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot reach {url}")]
    Connect {
        url: String,
        #[source]
        source: Box<tungstenite::Error>,
    },
    #[error("cannot send the {action} request")]
    Send {
        action: &'static str,
        #[source]
        source: Box<tungstenite::Error>,
    },
    #[error("the connection failed before the server answered the assets request")]
    Receive(#[source] Box<tungstenite::Error>),
    #[error("the server closed the connection before answering the assets request")]
    ClosedBeforeAssets,
    #[error("the server refused the assets request: {code}: {error}")]
    AssetsRefused { code: String, error: String },
    #[error("the server answered the assets request with another message")]
    UnexpectedAnswer,
    #[error("unknown asset {0:?}; the server has: {1}")]
    UnknownAsset(String, String),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Watches until `shutdown`, writing lines to `out`.
pub async fn run<W: Write + Send + 'static>(
    args: WatchArgs,
    out: W,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let colour = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal(),
    };
    let mut socket = connect(&args.url).await?;
    let assets = list_assets(&mut socket).await?;
    let chosen = choose(&assets, &args.assets)?;
    drop(socket);
    let out = Arc::new(Mutex::new(out));
    let assets = chosen
        .into_iter()
        .map(|(id, name)| AssetWatch {
            id,
            name,
            colour,
            out: out.clone(),
            last: None,
            closed: None,
        })
        .collect();
    Watcher {
        url: args.url,
        assets,
        candles: args.candles,
    }
    .run(shutdown)
    .await;
    Ok(())
}

async fn connect(url: &str) -> Result<Socket, WatchError> {
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|source| WatchError::Connect {
            url: url.to_owned(),
            source: Box::new(source),
        })?;
    Ok(socket)
}

/// Sends the request `{"action": action, "message": message}`.
async fn send(
    socket: &mut Socket,
    action: &'static str,
    message: serde_json::Value,
) -> Result<(), WatchError> {
    let request = json!({"action": action, "message": message}).to_string();
    socket
        .send(Message::text(request))
        .await
        .map_err(|source| WatchError::Send {
            action,
            source: Box::new(source),
        })
}

/// `(id, name)` of every asset the server tracks.
async fn list_assets(socket: &mut Socket) -> Result<Vec<(u32, String)>, WatchError> {
    send(socket, "assets", json!({})).await?;
    let reply = next_message(socket)
        .await
        .map_err(|source| WatchError::Receive(Box::new(source)))?
        .ok_or(WatchError::ClosedBeforeAssets)?;
    match reply {
        ServerMessage::Assets(message) => Ok(message
            .assets
            .into_iter()
            .map(|asset| (asset.id, asset.name.into_owned()))
            .collect()),
        ServerMessage::Error(refusal) => Err(WatchError::AssetsRefused {
            code: refusal.code.into_owned(),
            error: refusal.error.into_owned(),
        }),
        _ => Err(WatchError::UnexpectedAnswer),
    }
}

/// The requested assets (case-insensitive), or all when none is requested.
fn choose(assets: &[(u32, String)], wanted: &[String]) -> Result<Vec<(u32, String)>, WatchError> {
    if wanted.is_empty() {
        return Ok(assets.to_vec());
    }
    wanted
        .iter()
        .map(|name| {
            assets
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = assets.iter().map(|(_, n)| n.as_str()).collect();
                    WatchError::UnknownAsset(name.clone(), known.join(", "))
                })
        })
        .collect()
}

/// The next server message; `None` when the server closes the connection.
/// A text frame that is not a server message is logged and skipped.
async fn next_message(
    socket: &mut Socket,
) -> Result<Option<ServerMessage<'static>>, tungstenite::Error> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                Ok(message) => return Ok(Some(message)),
                Err(error) => warn!(%error, "ignoring a frame that is not a server message"),
            },
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error),
        }
    }
}

/// The one connection of every watched asset, reconnecting as needed.
struct Watcher<W> {
    url: String,
    /// The watched assets, in the order asked for (distinct: `choose` finds
    /// each name once, and the server refuses an id listed twice).
    assets: Vec<AssetWatch<W>>,
    /// `--candles`: follow closed candles of this interval instead of points.
    candles: Option<Interval>,
}

impl<W: Write> Watcher<W> {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Backoff::starting_at(FIRST_RECONNECT_DELAY);
        loop {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = self.session() => outcome,
            };
            match outcome {
                Ok(()) => backoff.reset(),
                Err(error) => warn!(error = %ErrorChain(&error), "connection failed"),
            }
            let delay = backoff.next_delay();
            info!(retry_in = ?delay, "disconnected; reconnecting");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The `subscribe` message: every watched asset, each with its own `since`
    /// (the newest point printed, or with `--candles` the newest closed
    /// candle) once it has printed one.
    fn subscribe_message(&self) -> serde_json::Value {
        let ids: Vec<u32> = self.assets.iter().map(|a| a.id).collect();
        let since: serde_json::Map<String, serde_json::Value> = self
            .assets
            .iter()
            .filter_map(|a| {
                let since = match self.candles {
                    Some(_) => a.closed?,
                    None => a.last?.0,
                };
                Some((a.id.to_string(), json!(since)))
            })
            .collect();
        let mut message = json!({ "assetIds": ids });
        if let Some(interval) = self.candles {
            message["candles"] = json!(interval.as_str());
        }
        if !since.is_empty() {
            message["since"] = serde_json::Value::Object(since);
        }
        message
    }

    /// The watched asset a message of `id` is for. A history without an id
    /// (a server older than several assets per connection, which then follows
    /// only one) is the only asset's.
    fn asset(&mut self, id: Option<u32>) -> Option<&mut AssetWatch<W>> {
        match id {
            Some(id) => self.assets.iter_mut().find(|a| a.id == id),
            None if self.assets.len() == 1 => self.assets.first_mut(),
            None => None,
        }
    }

    /// One connection: subscribe (with `since` after the first), print until it ends.
    /// A connection that ends, cleanly or not, after subscribing is `Ok`: it
    /// is simply reconnected.
    async fn session(&mut self) -> Result<(), WatchError> {
        let mut socket = connect(&self.url).await?;
        send(&mut socket, "subscribe", self.subscribe_message()).await?;
        loop {
            match next_message(&mut socket).await {
                Ok(Some(ServerMessage::AssetHistory(history))) => {
                    match self.asset(history.asset_id) {
                        Some(asset) => asset.on_history(&history.points),
                        None => warn!(asset = ?history.asset_id, "a history of no watched asset"),
                    }
                }
                Ok(Some(ServerMessage::Point(point))) => {
                    if let Some(asset) = self.asset(Some(point.asset_id)) {
                        asset.on_point(&point);
                    }
                }
                Ok(Some(ServerMessage::CandleHistory(history))) => {
                    if let Some(asset) = self.asset(Some(history.asset_id)) {
                        for candle in &history.candles {
                            asset.on_candle(candle);
                        }
                    }
                }
                Ok(Some(ServerMessage::Candle(live))) => {
                    if let Some(asset) = self.asset(Some(live.asset_id)) {
                        asset.on_candle(&WireCandle {
                            time: live.time,
                            open: live.open,
                            high: live.high,
                            low: live.low,
                            close: live.close,
                            count: live.count,
                            closed: live.closed,
                        });
                    }
                }
                Ok(Some(ServerMessage::Error(refusal))) => {
                    warn!(code = %refusal.code, error = %refusal.error, "server error");
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(error) => {
                    info!(error = %ErrorChain(&error), "connection lost");
                    return Ok(());
                }
            }
        }
    }
}

/// One watched asset: what it printed, and how.
struct AssetWatch<W> {
    id: u32,
    name: String,
    colour: bool,
    out: Arc<Mutex<W>>,
    /// The newest point printed: where a reconnect resumes (`since`) and the
    /// reference of the next change.
    last: Option<(i64, f64)>,
    /// The time of the newest closed candle printed (`--candles`): where a
    /// reconnect resumes.
    closed: Option<i64>,
}

impl<W: Write> AssetWatch<W> {
    fn on_history(&mut self, points: &[WirePoint<'_>]) {
        let points: Vec<(i64, f64)> = points.iter().map(time_value).collect();
        if self.last.is_some() {
            // A resumed subscription: these are the points missed while away.
            for point in points {
                self.print_point(point);
            }
            return;
        }
        let line = match (points.first(), points.last()) {
            (Some(&(t0, v0)), Some(&(t1, v1))) => format!(
                "{} {}: {} points from {} to {}, last {} ({})",
                format_time(t1),
                self.name,
                points.len(),
                format_time(t0),
                format_time(t1),
                v1,
                self.paint(change(v0, v1), v1 - v0),
            ),
            _ => format!("{}: no history yet", self.name),
        };
        self.write(&line);
        self.last = points.last().copied();
    }

    /// Prints a closed candle newer than the last printed (a running one,
    /// `closed:false`, is not printed).
    fn on_candle(&mut self, candle: &WireCandle) {
        if !candle.closed || self.closed.is_some_and(|closed| candle.time <= closed) {
            return;
        }
        let line = format!(
            "{} {} O {} H {} L {} C {} {} ({} points)",
            format_time(candle.time),
            self.name,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            self.paint(
                change(candle.open, candle.close),
                candle.close - candle.open
            ),
            candle.count,
        );
        self.write(&line);
        self.closed = Some(candle.time);
    }

    fn on_point(&mut self, point: &WirePoint<'_>) {
        self.print_point(time_value(point));
    }

    fn print_point(&mut self, (time, value): (i64, f64)) {
        if self.last.is_some_and(|(last, _)| time <= last) {
            return;
        }
        let line = match self.last {
            Some((_, previous)) => format!(
                "{} {} {} {}",
                format_time(time),
                self.name,
                value,
                self.paint(change(previous, value), value - previous)
            ),
            None => format!("{} {} {}", format_time(time), self.name, value),
        };
        self.write(&line);
        self.last = Some((time, value));
    }

    fn paint(&self, text: String, delta: f64) -> String {
        match (self.colour, delta.partial_cmp(&0.0)) {
            (true, Some(std::cmp::Ordering::Greater)) => format!("\x1b[32m{text}\x1b[0m"),
            (true, Some(std::cmp::Ordering::Less)) => format!("\x1b[31m{text}\x1b[0m"),
            _ => text,
        }
    }

    fn write(&self, line: &str) {
        let mut out = lock(&self.out);
        // A closed pipe (e.g. `| head`) is not worth a panic; the next write fails too.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

fn time_value(point: &WirePoint<'_>) -> (i64, f64) {
    (point.time, point.value)
}

/// `+0.00031 (+0.03%)`, `-1.2 (-0.80%)` or `0 (0.00%)`.
fn change(from: f64, to: f64) -> String {
    let delta = ratecast_core::point::round_value(to - from);
    let percent = if from != 0.0 {
        (to - from) / from * 100.0
    } else {
        0.0
    };
    let arrow = match delta.partial_cmp(&0.0) {
        Some(std::cmp::Ordering::Greater) => "▲ +",
        Some(std::cmp::Ordering::Less) => "▼ ",
        _ => "= ",
    };
    format!("{arrow}{delta} ({percent:+.2}%)")
}

/// `2026-11-28 02:00:01Z` for a Unix second (proleptic Gregorian, UTC).
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(format_time(1_795_831_408), "2026-11-28 02:03:28Z");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn changes_show_direction_amount_and_percent() {
        assert_eq!(change(1.0, 1.1), "▲ +0.1 (+10.00%)");
        assert_eq!(change(150.0, 148.5), "▼ -1.5 (-1.00%)");
        assert_eq!(change(2.0, 2.0), "= 0 (+0.00%)");
    }

    #[tokio::test]
    async fn a_failed_connection_reports_its_cause() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let url = format!("ws://{closed}/");
        let error = connect(&url).await.expect_err("nothing listens there");
        let chain = ErrorChain(&error).to_string();
        assert!(
            chain.starts_with(&format!("cannot reach {url}: ")) && chain.contains("refused"),
            "{chain}"
        );
    }

    #[test]
    fn assets_are_chosen_by_name_case_insensitively() {
        let assets = vec![(1, "EURUSD".to_owned()), (2, "USDJPY".to_owned())];
        assert_eq!(choose(&assets, &[]).expect("all"), assets);
        assert_eq!(
            choose(&assets, &["usdjpy".into()]).expect("one"),
            vec![(2, "USDJPY".to_owned())]
        );
        assert!(matches!(
            choose(&assets, &["XAUUSD".into()]),
            Err(WatchError::UnknownAsset(..))
        ));
    }
}
