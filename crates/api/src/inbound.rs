//! A connection's inbound side: the client's websocket frames, decoded here from
//! the upgraded connection's bytes, every limit applied at each frame's header,
//! before any of its payload is read.
//!
//! Why not actix-ws's `MessageStream`: actix-http's frame codec compares a
//! frame's length with its limit only once the whole frame is buffered, and the
//! stream appends payload chunks without a cap, so one header declaring 2^40
//! bytes grew the server by gigabytes. Here ([`Decoder`]):
//! - a data frame that would take its message past `max_message_bytes` is
//!   refused at its header with 1009: none of its payload is buffered;
//! - every frame (data, continuation, ping, pong, empty or not) is charged to
//!   the connection's [`RateLimiter`] at its header, frames and bytes;
//! - only a text message's bytes are kept (at most the limit), with one control
//!   frame's payload (at most 125 bytes) and one header (at most 14): what
//!   [`Decoder::held`] reports never exceeds [`Decoder::bound`], whatever
//!   arrives. Binary messages and refused frames are skipped, not buffered;
//! - a text message or close reason that is not UTF-8 closes with 1007 (RFC 6455
//!   §8.1); a frame that breaks §5 (unmasked, reserved bits, unknown opcode,
//!   fragmented or oversized control frame, a continuation of nothing, a close
//!   code no endpoint may send) closes with 1002.
//!
//! Reading is pulled ([`InboundStream`]): the request's payload is asked for
//! more bytes only when the decoder has used up the last chunk, so while the
//! session handles a message actix-http stops reading the socket (its payload
//! buffer pauses at 32 KiB) and a client that sends faster than it is read fills
//! its own TCP window instead of the server's memory.

use std::str;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use crate::{
    limits::{RateLimiter, Verdict},
    metrics::{BufferGauges, HeldBytes},
};

/// The longest client frame header: 2 bytes, a 64-bit length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;
/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// What a client sent, once a message or a control frame is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A whole text message, valid UTF-8.
    Text(String),
    /// A whole binary message (not kept: the protocol has none).
    Binary,
    /// A ping, with its payload for the pong.
    Ping(Bytes),
    Pong,
    /// The client's close frame, with its code if it gave one.
    Close(Option<u16>),
    /// A data message dropped because a frame of it was over the rate limit.
    RateLimited,
}

/// Why the connection must close, decided at a frame's header or end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A message over `max_message_bytes` (1009).
    TooBig,
    /// A text message or close reason that is not UTF-8 (1007).
    InvalidUtf8,
    /// Over the rate limit for too long (1008).
    Flood,
    /// A frame RFC 6455 does not allow (1002).
    Protocol(&'static str),
}

/// How a stream of inbound frames ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The client broke a limit or the protocol: close with the matching code.
    Refused(Refusal),
    /// The TCP stream ended or failed: the client is gone.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    opcode: Opcode,
    fin: bool,
    remaining: u64,
    mask: [u8; 4],
    /// Payload bytes unmasked so far, modulo 4: where the mask continues.
    offset: usize,
    /// Whether the payload is kept (a text message's or a control frame's within
    /// the rate limit) or skipped.
    keep: bool,
}

/// The data message being received, across its frames.
#[derive(Debug, Clone, Copy)]
struct Message {
    text: bool,
    /// Payload bytes declared so far, kept or not.
    len: usize,
    /// A frame of it was over the rate limit: it is dropped when it ends.
    limited: bool,
}

/// Decodes client frames from bytes (sans I/O: [`InboundStream`] feeds it).
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    limiter: RateLimiter,
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// `None` while a header is being read.
    frame: Option<Frame>,
    message: Option<Message>,
    /// The text message so far (unmasked).
    text: Vec<u8>,
    /// The control frame's payload so far (unmasked).
    control: Vec<u8>,
}

impl Decoder {
    /// A decoder that refuses messages over `max_message` bytes and charges
    /// every frame to `limiter`.
    pub fn new(max_message: usize, limiter: RateLimiter) -> Self {
        Self {
            max_message,
            limiter,
            header: [0; MAX_HEADER],
            header_len: 0,
            frame: None,
            message: None,
            text: Vec::new(),
            control: Vec::new(),
        }
    }

    /// The most [`held`](Self::held) can ever be: the message limit, one
    /// control frame and one header.
    pub fn bound(&self) -> usize {
        self.max_message + MAX_CONTROL_PAYLOAD + MAX_HEADER
    }

    /// Bytes this decoder holds for the connection (allocated, not only used).
    pub fn held(&self) -> usize {
        self.text.capacity() + self.control.capacity() + MAX_HEADER
    }

    /// Decodes from `input` until one message or control frame is complete
    /// (`Some`) or `input` is used up (`None`: every byte of it was taken).
    /// `now` is when the bytes arrived, for the rate limit.
    pub fn decode(&mut self, input: &mut Bytes, now: Instant) -> Result<Option<Inbound>, Refusal> {
        loop {
            let frame = match self.frame {
                Some(frame) => frame,
                None => match self.read_header(input, now)? {
                    Some(frame) => frame,
                    None => return Ok(None),
                },
            };
            let frame = self.read_payload(frame, input);
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return Ok(None);
            }
            self.frame = None;
            if let Some(inbound) = self.finish(frame)? {
                return Ok(Some(inbound));
            }
        }
    }

    /// Reads header bytes from `input`; once the header is whole, checks it and
    /// starts its frame.
    fn read_header(&mut self, input: &mut Bytes, now: Instant) -> Result<Option<Frame>, Refusal> {
        while self.header_len < self.header_size() {
            if input.is_empty() {
                return Ok(None);
            }
            let need = self.header_size() - self.header_len;
            let take = need.min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            input.advance(take);
            self.header_len += take;
            if self.header_len == 2 {
                // Everything the first two bytes tell is checked before the rest.
                self.check_start()?;
            }
        }
        let size = self.header_len;
        self.header_len = 0;
        self.start_frame(size, now).map(Some)
    }

    /// The size of the header being read, as far as its first two bytes tell
    /// (2 until they are in).
    fn header_size(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let length = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + length + mask
    }

    /// The checks of the first two header bytes.
    fn check_start(&self) -> Result<(), Refusal> {
        let (first, second) = (self.header[0], self.header[1]);
        if first & 0x70 != 0 {
            return Err(Refusal::Protocol(
                "reserved bits set (no extension was agreed)",
            ));
        }
        let opcode = Opcode::from_bits(first & 0x0F).ok_or(Refusal::Protocol("unknown opcode"))?;
        if second & 0x80 == 0 {
            return Err(Refusal::Protocol("client frames must be masked"));
        }
        if opcode.is_control() {
            if first & 0x80 == 0 {
                return Err(Refusal::Protocol("fragmented control frame"));
            }
            if usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
                return Err(Refusal::Protocol("control frame over 125 bytes"));
            }
        }
        Ok(())
    }

    /// Checks a whole header of `size` bytes against the limits and the
    /// message in progress, charges the frame, and says what its payload is for.
    fn start_frame(&mut self, size: usize, now: Instant) -> Result<Frame, Refusal> {
        let header = &self.header[..size];
        let fin = header[0] & 0x80 != 0;
        let opcode =
            Opcode::from_bits(header[0] & 0x0F).ok_or(Refusal::Protocol("unknown opcode"))?;
        let (len, mask_at) = match header[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([header[2], header[3]])), 4),
            127 => {
                let mut length = [0u8; 8];
                length.copy_from_slice(&header[2..10]);
                let len = u64::from_be_bytes(length);
                if len >> 63 != 0 {
                    return Err(Refusal::Protocol("frame length with its top bit set"));
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&header[mask_at..mask_at + 4]);
        let keep = match opcode {
            Opcode::Text | Opcode::Binary if self.message.is_some() => {
                return Err(Refusal::Protocol("a new message before the last one ended"));
            }
            Opcode::Continuation if self.message.is_none() => {
                return Err(Refusal::Protocol(
                    "a continuation frame with no message to continue",
                ));
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                self.start_data(opcode, len, size, now)?
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                // At most 125 (checked with the first two bytes).
                let len = len as usize;
                let verdict = self.limiter.check(now, size + len);
                // A close is kept whatever the rate: the connection ends either way.
                let keep = match verdict {
                    Verdict::Close => return Err(Refusal::Flood),
                    Verdict::Accept => true,
                    Verdict::Reject => opcode == Opcode::Close,
                };
                if keep {
                    self.control.clear();
                    self.control.reserve_exact(len);
                }
                keep
            }
        };
        Ok(Frame {
            opcode,
            fin,
            remaining: len,
            mask,
            offset: 0,
            keep,
        })
    }

    /// A data frame of `len` payload bytes: the message limit, then the rate
    /// limit; whether its payload is kept.
    fn start_data(
        &mut self,
        opcode: Opcode,
        len: u64,
        header: usize,
        now: Instant,
    ) -> Result<bool, Refusal> {
        let so_far = self.message.map_or(0, |m| m.len);
        let total = (so_far as u64).saturating_add(len);
        if total > self.max_message as u64 {
            return Err(Refusal::TooBig);
        }
        // Within the limit, so it fits a usize.
        let len = len as usize;
        let verdict = self.limiter.check(now, header + len);
        if verdict == Verdict::Close {
            return Err(Refusal::Flood);
        }
        let message = self.message.get_or_insert(Message {
            text: opcode == Opcode::Text,
            len: 0,
            limited: false,
        });
        message.len += len;
        message.limited |= verdict == Verdict::Reject;
        let keep = message.text && !message.limited;
        if keep {
            self.text.reserve_exact(len);
        }
        Ok(keep)
    }

    /// Takes what `input` holds of `frame`'s payload, unmasking what is kept.
    fn read_payload(&mut self, mut frame: Frame, input: &mut Bytes) -> Frame {
        let take = usize::try_from(frame.remaining).map_or(input.len(), |r| r.min(input.len()));
        if frame.keep {
            let target = if frame.opcode.is_control() {
                &mut self.control
            } else {
                &mut self.text
            };
            let mask = frame.mask;
            let offset = frame.offset;
            target.extend(
                input[..take]
                    .iter()
                    .enumerate()
                    .map(|(i, byte)| byte ^ mask[(offset + i) % 4]),
            );
        }
        frame.offset = (frame.offset + take) % 4;
        frame.remaining -= take as u64;
        input.advance(take);
        frame
    }

    /// A frame's payload is complete: what it makes, if anything.
    fn finish(&mut self, frame: Frame) -> Result<Option<Inbound>, Refusal> {
        match frame.opcode {
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                if !frame.fin {
                    return Ok(None);
                }
                let Some(message) = self.message.take() else {
                    return Ok(None);
                };
                let text = std::mem::take(&mut self.text);
                if message.limited {
                    return Ok(Some(Inbound::RateLimited));
                }
                if !message.text {
                    return Ok(Some(Inbound::Binary));
                }
                String::from_utf8(text)
                    .map(|text| Some(Inbound::Text(text)))
                    .map_err(|_| Refusal::InvalidUtf8)
            }
            _ if !frame.keep => Ok(None),
            Opcode::Ping => Ok(Some(Inbound::Ping(Bytes::from(std::mem::take(
                &mut self.control,
            ))))),
            Opcode::Pong => {
                self.control.clear();
                Ok(Some(Inbound::Pong))
            }
            Opcode::Close => {
                close_code(&std::mem::take(&mut self.control)).map(|c| Some(Inbound::Close(c)))
            }
        }
    }
}

/// The code of a client's close frame payload, checked (RFC 6455 §5.5.1, §7.4).
fn close_code(payload: &[u8]) -> Result<Option<u16>, Refusal> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(Refusal::Protocol("a close frame with a one-byte payload"))
        };
    };
    let code = u16::from_be_bytes(*code);
    // 1004-1006 and 1015 are reserved for reports, never sent; 1000-2999 are the
    // protocol's (those defined so far), 3000-4999 registered and private.
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !sendable {
        return Err(Refusal::Protocol("a close code no endpoint may send"));
    }
    str::from_utf8(reason).map_err(|_| Refusal::InvalidUtf8)?;
    Ok(Some(code))
}

/// What connections hold of incomplete inbound messages.
static INBOUND_BUFFER: BufferGauges = BufferGauges::new(
    "ratecast_ws_inbound_buffered_bytes",
    "ratecast_ws_inbound_buffer_largest_bytes",
);

/// The client's frames as a stream of [`Inbound`], read from the upgraded
/// request's payload (any stream of byte chunks) one chunk at a time.
pub struct InboundStream<S> {
    payload: S,
    decoder: Decoder,
    /// The rest of the last chunk read: decoded before anything more is read.
    pending: Bytes,
    /// What the decoder holds, as reported to the gauges.
    held: HeldBytes,
}

impl<S, E> InboundStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    pub fn new(payload: S, decoder: Decoder) -> Self {
        Self {
            payload,
            decoder,
            pending: Bytes::new(),
            held: HeldBytes::new(&INBOUND_BUFFER),
        }
    }

    /// The next message or control frame. Cancel-safe: nothing read is lost if
    /// the future is dropped (used in the session's `select!`).
    pub async fn next(&mut self) -> Result<Inbound, Ended> {
        loop {
            if !self.pending.is_empty() {
                let decoded = self.decoder.decode(&mut self.pending, Instant::now());
                self.report();
                match decoded {
                    Ok(Some(inbound)) => return Ok(inbound),
                    Ok(None) => self.pending = Bytes::new(),
                    Err(refusal) => return Err(Ended::Refused(refusal)),
                }
            }
            match self.payload.next().await {
                Some(Ok(chunk)) => self.pending = chunk,
                Some(Err(_)) | None => return Err(Ended::Gone),
            }
        }
    }

    /// Keeps `ratecast_ws_inbound_buffered_bytes` (all connections) and the
    /// largest any connection held since start up to date.
    fn report(&mut self) {
        self.held.report(self.decoder.held());
    }
}

#[cfg(test)]
mod tests;
