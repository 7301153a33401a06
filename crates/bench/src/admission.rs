//! The admission probe of `ratecast-bench hostile`: can a fresh client still get
//! in while the server is under attack, and how long until it does?
//!
//! From a given moment (the start of the subscribers' hold) until the end of
//! the phase, the probe opens a TCP connection and asks for the websocket
//! upgrade, by hand (see [`super::raw_ws`]), every [`RETRY`]: a `101` is an
//! admission, anything else (a `503` of a full server, a timeout, a reset) is a
//! refusal, retried. Once admitted it sends a Close and leaves; it never takes
//! part in the fan-out. Against a server whose connection slots attackers hold
//! (`zero-window` with `MAX_CONNECTIONS` = subscribers + attackers), the time
//! to admission is the time until the server freed an attacker's slot.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt, net::TcpStream, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    attack::Target,
    raw_ws::{self, OP_CLOSE, Upgrade},
};

/// Time between two attempts.
const RETRY: Duration = Duration::from_millis(250);

/// Time allowed for one attempt's connect plus upgrade.
const ATTEMPT: Duration = Duration::from_secs(2);

/// What the probe saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmissionReport {
    /// Whether the probe ran at all (the phase reached its hold).
    pub ran: bool,
    pub attempts: u64,
    /// From the probe's first attempt to the `101` it got, if it got one.
    pub admitted_after_ms: Option<f64>,
    /// How long the probe tried, admitted or not.
    pub tried_ms: f64,
    /// The last refusal: an HTTP status line or a connection error.
    pub last_refusal: Option<String>,
}

/// Probes from when `begin` is cancelled until admitted or `end` is cancelled.
pub async fn probe_admission(
    target: &Target,
    begin: CancellationToken,
    end: CancellationToken,
) -> AdmissionReport {
    let mut report = AdmissionReport::default();
    tokio::select! {
        () = end.cancelled() => return report,
        () = begin.cancelled() => {}
    }
    report.ran = true;
    let start = Instant::now();
    loop {
        report.attempts += 1;
        let attempt = tokio::select! {
            () = end.cancelled() => break,
            attempt = tokio::time::timeout(ATTEMPT, try_once(target)) => attempt,
        };
        match attempt {
            Ok(Ok(())) => {
                report.admitted_after_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            Ok(Err(refusal)) => report.last_refusal = Some(refusal),
            Err(_) => report.last_refusal = Some(format!("no upgrade within {ATTEMPT:?}")),
        }
        tokio::select! {
            () = end.cancelled() => break,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
    report.tried_ms = start.elapsed().as_secs_f64() * 1000.0;
    report
}

/// One attempt: `Ok` when the upgrade was accepted.
async fn try_once(target: &Target) -> Result<(), String> {
    let mut stream = TcpStream::connect(target.server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match raw_ws::handshake(&mut stream, &target.host, &target.path, ATTEMPT).await? {
        (Upgrade::Accepted, _) => {
            let close = raw_ws::frame(true, OP_CLOSE, &1000u16.to_be_bytes());
            // Leaving politely is a courtesy: the admission is what counts.
            let _ = stream.write_all(&close).await;
            Ok(())
        }
        (Upgrade::Refused { line, .. }, _) => Err(line),
    }
}
