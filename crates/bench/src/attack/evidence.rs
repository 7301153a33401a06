//! What one attacker saw of the server's answer, timed from the start of its
//! attack: an [`AttackerLog`] the attacker and the TCP-table watcher both
//! write, and the [`AttackerOutcome`] it becomes at the end of the phase.
//! Evidence that comes after the phase was stopped is not recorded (the
//! attacker's own close would look like a teardown).

use std::{
    net::{SocketAddr, SocketAddrV4},
    sync::Mutex,
    time::Duration,
};

use ratecast_core::sync::lock;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{raw_ws::CloseFrame, tcp_table::End};

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
    pub(super) stop: CancellationToken,
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

    pub(super) fn start(&self, local: Option<SocketAddr>) {
        let mut seen = lock(&self.seen);
        seen.local = local;
        seen.started = Some(Instant::now());
    }

    pub(super) fn refuse(&self, why: String) {
        lock(&self.seen).refused = Some(why);
    }

    fn evidence(&self, seen: &Seen, what: String) -> Option<Evidence> {
        let started = seen.started?;
        (!self.stop.is_cancelled()).then(|| Evidence {
            after: started.elapsed(),
            what,
        })
    }

    pub(super) fn note_close(&self, what: String, frame: Option<CloseFrame>) {
        let mut seen = lock(&self.seen);
        if seen.closed.is_none() {
            seen.closed = self.evidence(&seen, what);
            if seen.closed.is_some() {
                seen.close_frame = frame;
            }
        }
    }

    pub(super) fn note_teardown(&self, what: String) {
        let mut seen = lock(&self.seen);
        if seen.torn_down.is_none() {
            seen.torn_down = self.evidence(&seen, what);
        }
    }

    /// The attacker's IPv4 address while its connection is not known to be
    /// torn down: what the watcher looks for.
    pub(super) fn watched_peer(&self) -> Option<SocketAddrV4> {
        let seen = lock(&self.seen);
        match (seen.started, seen.torn_down.as_ref(), seen.local) {
            (Some(_), None, Some(SocketAddr::V4(local))) => Some(local),
            _ => None,
        }
    }

    /// The server's end in the TCP table, or `None` if absent.
    pub(super) fn note_server_end(&self, end: Option<End>) {
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

    /// A Close frame found after the attack in data the attacker never read.
    pub(super) fn note_unread_close(&self, close: CloseFrame) {
        lock(&self.seen).unread_close = Some(close);
    }

    /// The attacker's outcome at the end of the attack phase.
    pub(super) fn outcome(&self, index: usize, sent: Sent) -> AttackerOutcome {
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
pub(super) struct Sent {
    pub(super) bytes: u64,
    pub(super) frames: u64,
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
}
