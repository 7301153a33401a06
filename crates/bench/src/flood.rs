//! The `history` flood: clients that ask for long `history` ranges again and
//! again and never read, and what it does to the server's memory.
//!
//! Each client opens one websocket, sends `--requests` `history` requests for
//! the last `--span` seconds of one asset, `--interval` apart, and reads
//! nothing; all keep their sockets open for `--hold` after the last request,
//! then close. The server's RSS is sampled from `/proc` meanwhile (`--server-pid`),
//! so the report says how far one process's memory grew: the bound the API's
//! per-connection reply budget and history paging are meant to keep.

use std::time::Duration;

use futures_util::SinkExt;
use ratecast_core::time::unix_now_secs;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{BenchError, config::FloodConfig, procfs};

/// What a flood did to the server.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodReport {
    pub clients: usize,
    /// Requests that were sent (a server may close a client it finds too slow).
    pub requests_sent: u64,
    /// Server RSS before the first client connected, in KiB.
    pub idle_rss_kb: Option<u64>,
    /// The highest server RSS sampled during the flood, in KiB.
    pub peak_rss_kb: Option<u64>,
    /// Server RSS a few seconds after every client closed, in KiB.
    pub after_rss_kb: Option<u64>,
}

impl std::fmt::Display for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |kb: Option<u64>| {
            kb.map_or("-".to_owned(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
        };
        writeln!(
            f,
            "ratecast-bench flood: {} clients, {} history requests sent, none read",
            self.clients, self.requests_sent
        )?;
        writeln!(
            f,
            "  server RSS  idle {}, peak during the flood {}, after the clients closed {}",
            mb(self.idle_rss_kb),
            mb(self.peak_rss_kb),
            mb(self.after_rss_kb)
        )
    }
}

/// Runs the flood and reports the server's memory.
pub async fn run_flood(
    config: FloodConfig,
    shutdown: CancellationToken,
) -> Result<FloodReport, BenchError> {
    let rss = |pid: Option<u32>| {
        pid.and_then(|pid| procfs::sample(pid).ok())
            .map(|s| s.rss_kb)
    };
    let idle_rss_kb = rss(config.server_pid);
    let mut clients = JoinSet::new();
    let done = CancellationToken::new();
    for _ in 0..config.clients {
        clients.spawn(flood_one(config.clone(), done.clone()));
    }
    let mut peak_rss_kb = idle_rss_kb;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let flood_time = config.interval.saturating_mul(config.requests) + config.hold;
    let over = tokio::time::sleep(flood_time);
    tokio::pin!(over);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = &mut over => break,
            _ = tick.tick() => peak_rss_kb = peak_rss_kb.max(rss(config.server_pid)),
        }
    }
    done.cancel();
    let mut requests_sent = 0;
    while let Some(sent) = clients.join_next().await {
        requests_sent += sent.unwrap_or(0);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = FloodReport {
        clients: config.clients,
        requests_sent,
        idle_rss_kb,
        peak_rss_kb,
        after_rss_kb: rss(config.server_pid),
    };
    info!(?report, "flood over");
    Ok(report)
}

/// One flooding client: its requests, then an open socket until `done`.
/// Returns how many requests it sent.
async fn flood_one(config: FloodConfig, done: CancellationToken) -> u64 {
    let (mut ws, _) = match tokio_tungstenite::connect_async(config.url.as_str()).await {
        Ok(connected) => connected,
        Err(error) => {
            warn!(%error, "a flooding client could not connect");
            return 0;
        }
    };
    let mut sent = 0;
    for _ in 0..config.requests {
        let to = unix_now_secs();
        let from = to - i64::try_from(config.span.as_secs()).unwrap_or(i64::MAX) + 1;
        let request = format!(
            r#"{{"action":"history","message":{{"assetId":{},"from":{},"to":{to}}}}}"#,
            config.asset,
            from.max(0)
        );
        if ws.send(Message::text(request)).await.is_err() {
            break;
        }
        sent += 1;
        tokio::select! {
            () = done.cancelled() => break,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
    done.cancelled().await;
    sent
}
