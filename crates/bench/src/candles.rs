//! The candles benchmark (issue 18): one asset's day as raw points (`history`,
//! 24 pages of an hour) against the same day as 1-minute candles (`candles`, 2
//! pages), asked of the real API (`ratecast_api::run`, the product's library)
//! over a memory store holding that full day, over one websocket on loopback,
//! in one run. For each way it measures the time from the first request to the
//! last page and the bytes of the replies' text, and judges them against the
//! issue's targets (at least 20× fewer bytes, a faster answer).
//!
//! It owns nothing but the measurement: the server, store and simulated points
//! are the product's.

use std::{fmt, time::Duration};

use futures_util::{SinkExt, StreamExt};
use ratecast_api::{ApiError, ServerConfig};
use ratecast_core::{AssetList, Interval, MemoryStore, PointSink, StoreError, time::unix_now_secs};
use ratecast_fetcher::SimulatedSource;
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// `ratecast-bench candles`: the flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "candles")]
pub struct CandlesBenchConfig {
    /// Rounds, each asking for the day both ways (alternating which goes first);
    /// the report gives the median and the fastest round.
    #[arg(long, env = "CANDLES_ROUNDS", default_value_t = 7)]
    pub rounds: u32,
}

/// Why the benchmark could not measure.
#[derive(Debug, thiserror::Error)]
pub enum CandlesBenchError {
    #[error("the simulated day could not be stored")]
    Store(#[source] StoreError),
    #[error("cannot bind the API's listener")]
    Bind(#[source] std::io::Error),
    #[error("the API stopped")]
    Api(#[source] ApiError),
    #[error("websocket: {0}")]
    Socket(String),
    #[error("unexpected reply: {0}")]
    Reply(String),
}

/// Every wait of the run: a reply slower than this is a failure, not a figure.
const REPLY_WAIT: Duration = Duration::from_secs(30);

/// One way of asking for the day, measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Way {
    /// Replies (pages) received.
    pub pages: u32,
    /// Points or candles received.
    pub items: u64,
    /// Bytes of the replies' text frames.
    pub bytes: u64,
    /// Per round, from the first request sent to the last page received.
    pub median: Duration,
    pub fastest: Duration,
}

/// The run's figures, both ways.
#[derive(Debug, Clone, Copy)]
pub struct CandlesReport {
    pub rounds: u32,
    pub points: Way,
    pub candles: Way,
}

impl CandlesReport {
    /// How many times fewer bytes the candles took.
    pub fn byte_ratio(&self) -> f64 {
        self.points.bytes as f64 / self.candles.bytes.max(1) as f64
    }
}

impl fmt::Display for CandlesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "one asset, one day held (memory store), one websocket, {} rounds",
            self.rounds
        )?;
        writeln!(
            f,
            "| way | pages | items | bytes | median ms | fastest ms |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for (name, way) in [
            ("history (raw points)", self.points),
            ("candles 1m", self.candles),
        ] {
            writeln!(
                f,
                "| {name} | {} | {} | {} | {:.1} | {:.1} |",
                way.pages,
                way.items,
                way.bytes,
                ms(way.median),
                ms(way.fastest)
            )?;
        }
        let ratio = self.byte_ratio();
        let faster = self.candles.median < self.points.median;
        writeln!(
            f,
            "bytes: {ratio:.1}x fewer ({}; target >= 20x); time: {:.1}x faster by the median ({})",
            if ratio >= 20.0 { "PASS" } else { "FAIL" },
            ms(self.points.median) / ms(self.candles.median).max(f64::MIN_POSITIVE),
            if faster { "PASS" } else { "FAIL" }
        )
    }
}

/// Stores yesterday (UTC) of one simulated asset, serves the API and asks for
/// the day both ways, `rounds` times.
pub async fn run_candles_bench(
    config: CandlesBenchConfig,
) -> Result<CandlesReport, CandlesBenchError> {
    let assets = AssetList::new(["EURUSD"]).expect("a valid literal list");
    let day = Interval::D1.start_of(unix_now_secs()) - 86_400;
    let last = day + 86_399;
    let store = MemoryStore::new(assets.clone(), 86_400);
    let points = SimulatedSource::new(&assets).backfill(&assets, day, last);
    store
        .insert(&points)
        .await
        .map_err(CandlesBenchError::Store)?;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(CandlesBenchError::Bind)?;
    let addr = listener.local_addr().map_err(CandlesBenchError::Bind)?;
    let shutdown = CancellationToken::new();
    let api = tokio::spawn(ratecast_api::run(
        listener,
        assets,
        store,
        std::future::ready(Ok(Some(()))),
        server_config(),
        ratecast_process::metrics::install_recorder(),
        shutdown.clone(),
    ));
    let measured = measure(addr, day, last, config.rounds.max(1)).await;
    shutdown.cancel();
    match api.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(CandlesBenchError::Api(error)),
        Err(join) => return Err(CandlesBenchError::Socket(join.to_string())),
    }
    measured
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn measure(
    addr: std::net::SocketAddr,
    day: i64,
    last: i64,
    rounds: u32,
) -> Result<CandlesReport, CandlesBenchError> {
    let mut ws = connect(addr).await?;
    let (mut points, mut candles) = (Vec::new(), Vec::new());
    let (mut raw, mut summarised) = (Way::default(), Way::default());
    for round in 0..rounds {
        let ways: [bool; 2] = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for as_candles in ways {
            let (way, took) = ask_for_the_day(&mut ws, day, last, as_candles).await?;
            if as_candles {
                summarised = way;
                candles.push(took);
            } else {
                raw = way;
                points.push(took);
            }
        }
    }
    let summary = |mut way: Way, mut times: Vec<Duration>| {
        times.sort_unstable();
        way.median = times[times.len() / 2];
        way.fastest = times[0];
        way
    };
    Ok(CandlesReport {
        rounds,
        points: summary(raw, points),
        candles: summary(summarised, candles),
    })
}

/// Connects, retrying while the API is still loading its window (503).
async fn connect(addr: std::net::SocketAddr) -> Result<Socket, CandlesBenchError> {
    let url = format!("ws://{addr}/");
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => return Ok(ws),
            Err(error) if Instant::now() >= deadline => {
                return Err(CandlesBenchError::Socket(error.to_string()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Asks for `[day, last]` page by page, as raw points or 1-minute candles.
async fn ask_for_the_day(
    ws: &mut Socket,
    day: i64,
    last: i64,
    as_candles: bool,
) -> Result<(Way, Duration), CandlesBenchError> {
    let (action, items) = if as_candles {
        ("candles", "candles")
    } else {
        ("history", "points")
    };
    let mut way = Way::default();
    let started = Instant::now();
    let mut from = Some(day);
    while let Some(page_from) = from {
        let request = if as_candles {
            format!(
                r#"{{"action":"candles","message":{{"assetId":1,"interval":"1m","from":{page_from},"to":{last}}}}}"#
            )
        } else {
            format!(
                r#"{{"action":"history","message":{{"assetId":1,"from":{page_from},"to":{last}}}}}"#
            )
        };
        ws.send(Message::text(request))
            .await
            .map_err(|e| CandlesBenchError::Socket(e.to_string()))?;
        let text = next_reply(ws, action).await?;
        way.pages += 1;
        way.bytes += text.len() as u64;
        let reply: Value =
            serde_json::from_str(&text).map_err(|e| CandlesBenchError::Reply(e.to_string()))?;
        let message = &reply["message"];
        way.items += message[items].as_array().map_or(0, Vec::len) as u64;
        from = message["next"].as_i64();
    }
    Ok((way, started.elapsed()))
}

/// The next text frame whose action is `action`; an `error` fails the run.
async fn next_reply(ws: &mut Socket, action: &str) -> Result<String, CandlesBenchError> {
    loop {
        let frame = tokio::time::timeout(REPLY_WAIT, ws.next())
            .await
            .map_err(|_| CandlesBenchError::Reply(format!("no {action} reply in time")))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let text = text.to_string();
                if text.contains(r#""action":"error""#) {
                    return Err(CandlesBenchError::Reply(text));
                }
                if text.starts_with(&format!(r#"{{"action":"{action}""#)) {
                    return Ok(text);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(CandlesBenchError::Socket(error.to_string())),
            None => return Err(CandlesBenchError::Socket("the connection ended".into())),
        }
    }
}

/// The binary's defaults, but a rate limit no round reaches: a round asks for 24
/// pages as fast as they are answered, and the benchmark measures the answers,
/// not the limiter (a release build asks faster than the default 20 frames a second).
fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.session.rate_per_second = 10_000;
    config.session.rate_burst = 10_000;
    config
}
