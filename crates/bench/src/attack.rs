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

use std::{
    net::{SocketAddr, SocketAddrV4},
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::ValueEnum;
use ratecast_core::sync::lock;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpSocket, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{
    raw_ws::{self, CloseFrame, FrameReader, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, Upgrade},
    tcp_table::{self, End},
};

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

/// Bytes handed to one write of a flood: many frames at once.
const BATCH_BYTES: usize = 64 * 1024;

/// Payload of each continuation frame of `continuations`.
const CONTINUATION_BYTES: usize = 1024;

/// The receive buffer a zero-window attacker asks for before it connects (the
/// kernel doubles it and keeps a floor of about 2 KB).
const ZERO_WINDOW_RCVBUF: u32 = 2048;

/// Payload of each Ping of `ping-flood`.
const PING_PAYLOAD: &[u8] = b"hostile!";

/// How often an attacker that does not read looks at its socket's pending error.
const ERROR_POLL: Duration = Duration::from_millis(100);

/// How often the kernel's TCP table is read for the attackers' connections:
/// the resolution of a teardown only the table shows.
const TABLE_POLL: Duration = Duration::from_millis(250);

/// Time between two bytes of `slow-headers`.
const TRICKLE: Duration = Duration::from_secs(1);

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

/// One piece of evidence of how a connection ended, timed from the start of
/// the attack.
#[derive(Debug, Clone, PartialEq)]
struct Evidence {
    after: Duration,
    what: String,
}

/// What one attacker saw, shared with the TCP-table watcher.
#[derive(Debug)]
pub struct AttackerLog {
    /// Cancelled when the attack phase ends: nothing seen after it counts
    /// (the attacker's own close would look like a teardown).
    stop: CancellationToken,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// The attacker's address: the key of its connection in the TCP table.
    local: Option<SocketAddr>,
    /// The start of the attack (after the upgrade, or after the connect).
    started: Option<Instant>,
    /// Why the attack never began.
    refused: Option<String>,
    /// The server said it is done: a Close frame or an HTTP response.
    closed: Option<Evidence>,
    close_frame: Option<CloseFrame>,
    /// The TCP connection ended or the server shut its end down.
    torn_down: Option<Evidence>,
    /// The server's end was found in the TCP table at least once, so its
    /// absence later means it is gone (not that the table cannot see it).
    server_end_seen: bool,
    /// A Close frame found after the attack in data the attacker never read.
    unread_close: Option<CloseFrame>,
}

impl AttackerLog {
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            stop,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Whether the attack began (or was refused): the phase may go on.
    pub fn is_settled(&self) -> bool {
        let seen = lock(&self.seen);
        seen.started.is_some() || seen.refused.is_some()
    }

    /// When the attack began, if it did.
    pub fn started(&self) -> Option<Instant> {
        lock(&self.seen).started
    }

    /// The server is done with this attacker: it refused, closed or tore
    /// down the connection.
    pub fn is_over(&self) -> bool {
        let seen = lock(&self.seen);
        seen.refused.is_some() || seen.closed.is_some() || seen.torn_down.is_some()
    }

    fn start(&self, local: Option<SocketAddr>) {
        let mut seen = lock(&self.seen);
        seen.local = local;
        seen.started = Some(Instant::now());
    }

    fn refuse(&self, why: String) {
        lock(&self.seen).refused = Some(why);
    }

    fn evidence(&self, seen: &Seen, what: String) -> Option<Evidence> {
        let started = seen.started?;
        (!self.stop.is_cancelled()).then(|| Evidence {
            after: started.elapsed(),
            what,
        })
    }

    fn note_close(&self, what: String, frame: Option<CloseFrame>) {
        let mut seen = lock(&self.seen);
        if seen.closed.is_none() {
            seen.closed = self.evidence(&seen, what);
            if seen.closed.is_some() {
                seen.close_frame = frame;
            }
        }
    }

    fn note_teardown(&self, what: String) {
        let mut seen = lock(&self.seen);
        if seen.torn_down.is_none() {
            seen.torn_down = self.evidence(&seen, what);
        }
    }

    /// The attacker's IPv4 address while its connection is not known to be
    /// torn down: what the watcher looks for.
    fn watched_peer(&self) -> Option<SocketAddrV4> {
        let seen = lock(&self.seen);
        match (seen.started, seen.torn_down.as_ref(), seen.local) {
            (Some(_), None, Some(SocketAddr::V4(local))) => Some(local),
            _ => None,
        }
    }

    /// The server's end in the TCP table, or `None` if absent.
    fn note_server_end(&self, end: Option<End>) {
        let what = {
            let mut seen = lock(&self.seen);
            match end {
                Some(end) => {
                    seen.server_end_seen = true;
                    (!end.state.is_open()).then(|| {
                        format!(
                            "the server's end went to {}{}",
                            end.state,
                            if end.orphaned {
                                " (released by the server)"
                            } else {
                                ""
                            }
                        )
                    })
                }
                None if seen.server_end_seen => {
                    Some("the server's end is gone (aborted or reset)".to_owned())
                }
                None => None,
            }
        };
        if let Some(what) = what {
            self.note_teardown(what);
        }
    }

    /// The attacker's outcome at the end of the attack phase.
    fn outcome(&self, index: usize, sent: Sent) -> AttackerOutcome {
        let seen = lock(&self.seen);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let attacked = match (&seen.torn_down, seen.started) {
            (Some(end), _) => end.after,
            (None, Some(started)) => started.elapsed(),
            (None, None) => Duration::ZERO,
        };
        AttackerOutcome {
            index,
            refused: seen.refused.clone(),
            bytes_sent: sent.bytes,
            frames_sent: sent.frames,
            closed_after_ms: seen.closed.as_ref().map(|e| ms(e.after)),
            closed_by: seen.closed.as_ref().map(|e| e.what.clone()),
            close_frame: seen.close_frame.clone(),
            torn_down_after_ms: seen.torn_down.as_ref().map(|e| ms(e.after)),
            torn_down_by: seen.torn_down.as_ref().map(|e| e.what.clone()),
            unread_close: seen.unread_close.clone(),
            attacked_ms: ms(attacked),
        }
    }
}

/// What one attacker did and how its connection ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackerOutcome {
    pub index: usize,
    /// Why the attack never began (connect or upgrade failed), if it did not.
    pub refused: Option<String>,
    pub bytes_sent: u64,
    pub frames_sent: u64,
    /// From the start of the attack to the server's Close frame (or HTTP
    /// response), and what it was.
    pub closed_after_ms: Option<f64>,
    pub closed_by: Option<String>,
    pub close_frame: Option<CloseFrame>,
    /// From the start of the attack to the end of the TCP connection (EOF,
    /// reset, failed write, the server's end shut down or gone), and how.
    pub torn_down_after_ms: Option<f64>,
    pub torn_down_by: Option<String>,
    /// An attacker that never read: a Close frame found after the attack in
    /// what the server had sent (when it came is not known).
    pub unread_close: Option<CloseFrame>,
    /// How long the attack ran: until torn down, or until the phase ended.
    pub attacked_ms: f64,
}

impl AttackerOutcome {
    /// When the server was first done with this attacker (closed or torn
    /// down), from the start of the attack; 0 for a refused attacker, which the
    /// server never let in.
    pub fn ended_after_ms(&self) -> Option<f64> {
        if self.refused.is_some() {
            return Some(0.0);
        }
        match (self.closed_after_ms, self.torn_down_after_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Bytes and frames an attacker wrote.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    bytes: u64,
    frames: u64,
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
                    lock(&log.seen).unread_close = Some(close);
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

/// Writes the attack until the phase ends or a write fails (recorded as the
/// teardown it is).
async fn write_script(
    attack: Attack,
    writer: &mut OwnedWriteHalf,
    target: &Target,
    log: &AttackerLog,
    sent: &mut Sent,
) {
    let result = tokio::select! {
        () = log.stop.cancelled() => Ok(()),
        result = script(attack, writer, target, sent) => result,
    };
    if let Err(error) = result {
        log.note_teardown(format!("write failed: {error}"));
    }
}

/// The bytes of each attack. Returns when a script that ends is done (the
/// caller then waits for the end of the phase) or when a write fails.
async fn script(
    attack: Attack,
    writer: &mut OwnedWriteHalf,
    target: &Target,
    sent: &mut Sent,
) -> std::io::Result<()> {
    let text = |fin, payload: &[u8]| raw_ws::frame(fin, OP_TEXT, payload);
    match attack {
        Attack::GiantFrame => {
            let header = raw_ws::frame_header(true, OP_TEXT, 1 << 40);
            // Masked zeros: the key repeated. BATCH_BYTES is a multiple of 4,
            // so every batch lines up with the mask.
            let mut zeros = vec![0u8; BATCH_BYTES];
            raw_ws::mask(&mut zeros, 0);
            flood(writer, &header, 1, &zeros, 0, sent).await
        }
        Attack::Continuations => {
            let chunk = [b'a'; CONTINUATION_BYTES];
            let each = raw_ws::frame(false, OP_CONTINUATION, &chunk);
            let (batch, count) = batch_of(&each);
            flood(writer, &text(false, &chunk), 1, &batch, count, sent).await
        }
        Attack::PongFlood => {
            let (batch, count) = batch_of(&raw_ws::frame(true, OP_PONG, b""));
            flood(writer, &[], 0, &batch, count, sent).await
        }
        Attack::PingFlood => {
            let (batch, count) = batch_of(&raw_ws::frame(true, OP_PING, PING_PAYLOAD));
            flood(writer, &[], 0, &batch, count, sent).await
        }
        Attack::EmptyFrames => {
            let (batch, count) = batch_of(&raw_ws::frame(false, OP_CONTINUATION, b""));
            flood(writer, &text(false, b""), 1, &batch, count, sent).await
        }
        Attack::EmptyTexts => {
            let (batch, count) = batch_of(&text(true, b""));
            flood(writer, &[], 0, &batch, count, sent).await
        }
        Attack::ZeroWindow => {
            for id in &target.asset_ids {
                let subscribe = format!(r#"{{"action":"subscribe","message":{{"assetId":{id}}}}}"#);
                let frame = text(true, subscribe.as_bytes());
                writer.write_all(&frame).await?;
                sent.bytes += frame.len() as u64;
                sent.frames += 1;
            }
            Ok(())
        }
        Attack::SlowHeaders => {
            for byte in raw_ws::upgrade_request(&target.host, &target.path).bytes() {
                writer.write_all(&[byte]).await?;
                sent.bytes += 1;
                tokio::time::sleep(TRICKLE).await;
            }
            Ok(())
        }
        Attack::NoRequest => Ok(()),
    }
}

/// As many copies of `frame` as fit in [`BATCH_BYTES`], and how many.
fn batch_of(frame: &[u8]) -> (Vec<u8>, u64) {
    let count = (BATCH_BYTES / frame.len()).max(1);
    (frame.repeat(count), count as u64)
}

/// Writes `first` once, then `batch` again and again, counting.
async fn flood(
    writer: &mut OwnedWriteHalf,
    first: &[u8],
    first_frames: u64,
    batch: &[u8],
    batch_frames: u64,
    sent: &mut Sent,
) -> std::io::Result<()> {
    writer.write_all(first).await?;
    sent.bytes += first.len() as u64;
    sent.frames += first_frames;
    loop {
        writer.write_all(batch).await?;
        sent.bytes += batch.len() as u64;
        sent.frames += batch_frames;
    }
}

/// Watches for the server's answer until the phase ends: reads and decodes
/// it, or, for an attacker that must not read, polls the socket's error.
async fn watch_answer(attack: Attack, reader: &mut OwnedReadHalf, early: &[u8], log: &AttackerLog) {
    if !attack.reads() {
        poll_error(reader, log).await;
        return;
    }
    let mut frames = FrameReader::default();
    let mut answer = AnswerReader {
        upgraded: attack.upgrades(),
        frames: &mut frames,
        log,
    };
    answer.take(early);
    let mut buf = vec![0u8; BATCH_BYTES];
    loop {
        let read = tokio::select! {
            () = log.stop.cancelled() => return,
            read = reader.read(&mut buf) => read,
        };
        match read {
            Ok(0) => {
                log.note_teardown("EOF (the server closed the connection)".to_owned());
                return;
            }
            Ok(n) => answer.take(&buf[..n]),
            Err(error) => {
                log.note_teardown(format!("read failed: {error}"));
                return;
            }
        }
    }
}

/// Turns what the server sent into evidence: a Close frame on an upgraded
/// connection, the status line of an HTTP answer on one that never upgraded.
struct AnswerReader<'a> {
    upgraded: bool,
    frames: &'a mut FrameReader,
    log: &'a AttackerLog,
}

impl AnswerReader<'_> {
    fn take(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.upgraded {
            if let Some(close) = self.frames.feed(bytes) {
                self.log
                    .note_close(format!("close frame {close}"), Some(close));
            }
        } else {
            let text = String::from_utf8_lossy(bytes);
            let line = text.lines().next().unwrap_or_default().trim();
            self.log.note_close(format!("HTTP answer {line:?}"), None);
        }
    }
}

/// For an attacker that does not read: a reset shows as the socket's pending
/// error (a FIN behind unread data does not show; the watcher sees it).
async fn poll_error(reader: &mut OwnedReadHalf, log: &AttackerLog) {
    loop {
        tokio::select! {
            () = log.stop.cancelled() => return,
            () = tokio::time::sleep(ERROR_POLL) => {}
        }
        let stream: &TcpStream = reader.as_ref();
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(error)) => {
                log.note_teardown(format!("reset: {error}"));
                return;
            }
            Err(error) => {
                log.note_teardown(format!("socket error unreadable: {error}"));
                return;
            }
        }
    }
}

/// Reads the kernel's TCP table until the phase ends and records, for each
/// attacker, when the server's end of its connection left `ESTABLISHED` or
/// disappeared. IPv4 only: on another address family it only logs that. A
/// read costs tens of milliseconds of kernel time with thousands of
/// connections open, on a machine the subscribers being measured share, so it
/// runs on a blocking thread, only while a watched connection is open, and
/// only for attackers that do not read ([`Attack::reads`]); the others see
/// their teardown themselves.
pub async fn watch_server_ends(
    server: SocketAddr,
    logs: Vec<Arc<AttackerLog>>,
    stop: CancellationToken,
) {
    let SocketAddr::V4(server) = server else {
        warn!(%server, "the TCP table is only read for IPv4 servers: teardowns are seen by the attackers alone");
        return;
    };
    let mut tick = tokio::time::interval(TABLE_POLL);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let peers: Vec<SocketAddrV4> = logs.iter().filter_map(|log| log.watched_peer()).collect();
        if peers.is_empty() {
            continue;
        }
        // Off the runtime's workers: a read takes tens of milliseconds of
        // kernel time with thousands of sockets, which would delay the
        // subscribers' tasks and read as fan-out delay.
        let read = tokio::task::spawn_blocking(move || tcp_table::server_ends(server, &peers));
        let ends = match read.await {
            Ok(Ok(ends)) => ends,
            Ok(Err(error)) => {
                warn!(%error, "cannot read /proc/net/tcp: teardowns are seen by the attackers alone");
                return;
            }
            Err(error) => {
                warn!(%error, "the TCP table reader failed: teardowns are seen by the attackers alone");
                return;
            }
        };
        if stop.is_cancelled() {
            return;
        }
        for log in &logs {
            if let Some(peer) = log.watched_peer() {
                log.note_server_end(ends.get(&peer).copied());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_table::TcpState;

    fn started_log() -> AttackerLog {
        let log = AttackerLog::new(CancellationToken::new());
        log.start(Some("127.0.0.1:40000".parse().expect("addr")));
        log
    }

    #[test]
    fn the_first_evidence_of_each_kind_is_kept() {
        let log = started_log();
        log.note_close("close frame 1009".into(), None);
        log.note_close("close frame 1000".into(), None);
        log.note_teardown("EOF".into());
        log.note_teardown("write failed".into());
        let outcome = log.outcome(0, Sent::default());
        assert_eq!(outcome.closed_by.as_deref(), Some("close frame 1009"));
        assert_eq!(outcome.torn_down_by.as_deref(), Some("EOF"));
        assert!(outcome.ended_after_ms().is_some());
    }

    #[test]
    fn nothing_counts_after_the_phase_ended() {
        let stop = CancellationToken::new();
        let log = AttackerLog::new(stop.clone());
        log.start(None);
        stop.cancel();
        log.note_teardown("EOF".into());
        let outcome = log.outcome(0, Sent::default());
        assert_eq!(outcome.torn_down_after_ms, None);
        assert_eq!(outcome.ended_after_ms(), None, "not closed");
    }

    fn end(state: TcpState, orphaned: bool) -> Option<End> {
        Some(End { state, orphaned })
    }

    #[test]
    fn a_server_end_that_vanishes_counts_only_once_it_was_seen() {
        let log = started_log();
        log.note_server_end(None);
        assert!(log.watched_peer().is_some(), "never seen: not evidence");
        log.note_server_end(end(TcpState::Established, false));
        log.note_server_end(None);
        assert!(log.watched_peer().is_none());
        let outcome = log.outcome(0, Sent::default());
        assert_eq!(
            outcome.torn_down_by.as_deref(),
            Some("the server's end is gone (aborted or reset)")
        );
    }

    #[test]
    fn a_server_end_shut_down_is_a_teardown() {
        let log = started_log();
        log.note_server_end(end(TcpState::FinWait1, true));
        let outcome = log.outcome(0, Sent::default());
        assert_eq!(
            outcome.torn_down_by.as_deref(),
            Some("the server's end went to FIN_WAIT1 (released by the server)")
        );
    }

    #[test]
    fn a_refused_attacker_ended_at_once() {
        let log = AttackerLog::new(CancellationToken::new());
        log.refuse("upgrade refused: HTTP/1.1 503".into());
        assert!(log.is_settled());
        assert_eq!(log.outcome(3, Sent::default()).ended_after_ms(), Some(0.0));
    }

    #[test]
    fn every_attack_has_a_name_that_parses_back() {
        for attack in Attack::ALL {
            assert_eq!(Attack::from_str(attack.name(), false), Ok(attack));
            let json = serde_json::to_string(&attack).expect("serializes");
            assert_eq!(json, format!("\"{}\"", attack.name()));
        }
    }

    #[test]
    fn a_flood_batch_is_whole_frames() {
        let frame = raw_ws::frame(true, OP_PONG, b"");
        let (batch, count) = batch_of(&frame);
        assert_eq!(batch.len(), frame.len() * count as usize);
        assert!(batch.len() <= BATCH_BYTES);
    }
}
