//! How an attacker learns that the server is done with it: it reads and
//! decodes the server's answer (a Close frame, an HTTP response, EOF, a
//! reset), or, when it must not read, polls its socket's pending error; and
//! [`watch_server_ends`] reads the kernel's TCP table for every attacker.

use std::{
    net::{SocketAddr, SocketAddrV4},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::AsyncReadExt,
    net::{TcpStream, tcp::OwnedReadHalf},
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Attack, AttackerLog, script::BATCH_BYTES};
use crate::{raw_ws::FrameReader, tcp_table};

/// How often an attacker that does not read looks at its socket's pending error.
const ERROR_POLL: Duration = Duration::from_millis(100);

/// How often the kernel's TCP table is read for the attackers' connections:
/// the resolution of a teardown only the table shows.
const TABLE_POLL: Duration = Duration::from_millis(250);

/// Watches for the server's answer until the phase ends: reads and decodes
/// it, or, for an attacker that must not read, polls the socket's error.
pub(super) async fn watch_answer(
    attack: Attack,
    reader: &mut OwnedReadHalf,
    early: &[u8],
    log: &AttackerLog,
) {
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
