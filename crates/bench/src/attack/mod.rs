//! The attacks of `ratecast-bench hostile` (issue 15): clients that break the
//! transport below the websocket message layer, each one raw TCP socket
//! speaking [`super::raw_ws`], and what each saw of the server's answer.
//!
//! An attacker connects, upgrades by hand (except `slow-headers` and
//! `no-request`, which never finish a request), and from then on (the start of
//! its attack) writes its script as fast as the socket takes it. Beside the
//! writes it watches for the server's answer: a Close frame or an HTTP
//! response (*closed*), and EOF, a reset or a failed write (*torn down*); an
//! attacker that never reads polls its socket's pending error instead, and
//! [`watch_server_ends`] reads the kernel's TCP table for every attacker. A
//! failed write is the expected end of an attack, never a panic. Everything is
//! timed from the start of the attack and kept in an [`AttackerLog`], which the
//! attacker and the watcher share; evidence that comes after the attack phase
//! was stopped is not recorded. What the attacks do to the server's memory and
//! to other subscribers is measured by [`super::hostile`], not here.
//!
//! Here: the attacks ([`Attack`]) and one attacker's run ([`run_attacker`]);
//! the bytes each attack writes in [`script`], how the server's answer is
//! seen in [`answer`], the record of it in [`evidence`].

mod answer;
mod evidence;
mod script;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};

use self::{answer::watch_answer, evidence::Sent, script::write_script};
pub use self::{
    answer::watch_server_ends,
    evidence::{AttackerLog, AttackerOutcome},
};
use super::raw_ws::{self, FrameReader, Upgrade};

/// One kind of hostile client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// One text frame header declaring 2^40 bytes, then zeros as fast as possible.
    GiantFrame,
    /// A non-final text frame, then 1 KiB continuation frames without end.
    Continuations,
    /// Masked empty Pong frames as fast as possible.
    PongFlood,
    /// Masked Ping frames with an 8-byte payload as fast as possible, never reading.
    PingFlood,
    /// An empty non-final text frame, then empty continuation frames as fast as possible.
    EmptyFrames,
    /// Empty (complete) text frames as fast as possible.
    EmptyTexts,
    /// A 2 KB receive buffer, a `subscribe` to every asset, and never a read.
    ZeroWindow,
    /// The HTTP request head, one byte a second.
    SlowHeaders,
    /// A TCP connection that never sends a byte.
    NoRequest,
}

impl Attack {
    pub const ALL: [Self; 9] = [
        Self::GiantFrame,
        Self::Continuations,
        Self::PongFlood,
        Self::PingFlood,
        Self::EmptyFrames,
        Self::EmptyTexts,
        Self::ZeroWindow,
        Self::SlowHeaders,
        Self::NoRequest,
    ];

    /// The name on the command line, e.g. `giant-frame`.
    pub fn name(self) -> &'static str {
        match self {
            Self::GiantFrame => "giant-frame",
            Self::Continuations => "continuations",
            Self::PongFlood => "pong-flood",
            Self::PingFlood => "ping-flood",
            Self::EmptyFrames => "empty-frames",
            Self::EmptyTexts => "empty-texts",
            Self::ZeroWindow => "zero-window",
            Self::SlowHeaders => "slow-headers",
            Self::NoRequest => "no-request",
        }
    }

    /// What the attacker does, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::GiantFrame => {
                "a text frame header declaring 2^40 bytes, then zeros as fast as possible"
            }
            Self::Continuations => {
                "a non-final text frame, then 1 KiB continuation frames without end"
            }
            Self::PongFlood => "masked empty Pong frames as fast as possible",
            Self::PingFlood => {
                "masked Ping frames (8-byte payload) as fast as possible, never reading"
            }
            Self::EmptyFrames => {
                "an empty non-final text frame, then empty continuation frames as fast as possible"
            }
            Self::EmptyTexts => "empty text frames as fast as possible",
            Self::ZeroWindow => "a 2 KB receive buffer, one subscribe per asset, never a read",
            Self::SlowHeaders => "the HTTP request head, one byte a second",
            Self::NoRequest => "a TCP connection that never sends a byte",
        }
    }

    /// The attacker completes the websocket upgrade before its attack.
    fn upgrades(self) -> bool {
        !matches!(self, Self::SlowHeaders | Self::NoRequest)
    }

    /// The attacker reads what the server sends (those that do not would
    /// undo their attack by reading, and need [`watch_server_ends`] to see a
    /// teardown that is not a reset).
    pub fn reads(self) -> bool {
        !matches!(self, Self::PingFlood | Self::ZeroWindow)
    }
}

impl std::fmt::Display for Attack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The receive buffer a zero-window attacker asks for before it connects (the
/// kernel doubles it and keeps a floor of about 2 KB).
const ZERO_WINDOW_RCVBUF: u32 = 2048;

/// After the attack, an attacker that never read reads this much (at most,
/// for at most [`DRAIN_TIME`]) to look for a Close frame the server queued.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Where and how the attackers connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: SocketAddr,
    /// The `Host` header and the path of the upgrade request.
    pub host: String,
    pub path: String,
    /// What a zero-window attacker subscribes to.
    pub asset_ids: Vec<u32>,
    /// Connect plus upgrade, per attacker.
    pub connect_timeout: Duration,
}

/// Runs attacker `index` until `stop` (the end of the attack phase) and
/// returns its outcome; `log` is shared with the watcher.
pub async fn run_attacker(
    attack: Attack,
    index: usize,
    target: Arc<Target>,
    log: Arc<AttackerLog>,
) -> AttackerOutcome {
    let stop = log.stop.clone();
    let connected = tokio::select! {
        () = stop.cancelled() => Err("the phase ended before the attack began".to_owned()),
        connected = tokio::time::timeout(target.connect_timeout, begin(attack, &target)) => {
            connected.unwrap_or_else(|_| Err(format!("not connected within {:?}", target.connect_timeout)))
        }
    };
    let mut sent = Sent::default();
    match connected {
        Err(why) => log.refuse(why),
        Ok((stream, early)) => {
            log.start(stream.local_addr().ok());
            let (mut reader, mut writer) = stream.into_split();
            tokio::join!(
                write_script(attack, &mut writer, &target, &log, &mut sent),
                watch_answer(attack, &mut reader, &early, &log),
            );
            if !attack.reads() {
                let mut frames = FrameReader::default();
                frames.feed(&early);
                if let Ok(Some(close)) =
                    raw_ws::find_close(&mut reader, &mut frames, DRAIN_BYTES, DRAIN_TIME).await
                {
                    log.note_unread_close(close);
                }
            }
        }
    }
    log.outcome(index, sent)
}

/// Connects (and upgrades, for the attacks that do); returns the stream and
/// any bytes that came after the upgrade response.
async fn begin(attack: Attack, target: &Target) -> Result<(TcpStream, Vec<u8>), String> {
    let socket = match target.server {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    if attack == Attack::ZeroWindow {
        socket
            .set_recv_buffer_size(ZERO_WINDOW_RCVBUF)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
    }
    let mut stream = socket
        .connect(target.server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    if !attack.upgrades() {
        return Ok((stream, Vec::new()));
    }
    match raw_ws::handshake(
        &mut stream,
        &target.host,
        &target.path,
        target.connect_timeout,
    )
    .await?
    {
        (Upgrade::Accepted, early) => Ok((stream, early)),
        (Upgrade::Refused { line, .. }, _) => Err(format!("upgrade refused: {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attack_has_a_name_that_parses_back() {
        for attack in Attack::ALL {
            assert_eq!(Attack::from_str(attack.name(), false), Ok(attack));
            let json = serde_json::to_string(&attack).expect("serializes");
            assert_eq!(json, format!("\"{}\"", attack.name()));
        }
    }
}
