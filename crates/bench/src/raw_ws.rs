//! The websocket wire written by hand, for clients that break its rules on
//! purpose (`ratecast-bench hostile`): the HTTP upgrade request and the status
//! of its response, masked client frames of any declared length, fragmented or
//! not, and a streaming reader of server frames that keeps only the first Close.
//!
//! A websocket library refuses to send most of what the attacks send (a header
//! declaring 2^40 bytes, endless continuations), so nothing written here is
//! checked. It does not check the server either: a `101` is taken as accepted
//! without verifying `Sec-WebSocket-Accept`, and the reader skips every frame
//! but Close without looking at it. Parsing the server's bytes happens here and
//! only here; the attacks get typed values ([`Upgrade`], [`CloseFrame`]).

use std::{io, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The mask key of every frame written here. RFC 6455 wants it unpredictable,
/// which a server cannot check; a fixed key lets a payload be masked once and
/// sent many times.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The longest response head read before the upgrade counts as failed.
const MAX_HEAD: usize = 16 * 1024;

/// The upgrade request for `path` on `host` (the `Host` header, e.g.
/// `127.0.0.1:8080`), with the RFC's sample key: the server does not care
/// which key it gets.
pub fn upgrade_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// The server's answer to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// `101 Switching Protocols`: frames may follow.
    Accepted,
    /// Any other status, with its status line (e.g. `HTTP/1.1 503 Service Unavailable`).
    Refused { status: u16, line: String },
}

/// Where the response head ends (the index after its blank line), if it is complete.
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The status of a response head (`HTTP/1.1 101 Switching Protocols\r\n…`).
pub fn parse_status(head: &[u8]) -> Result<Upgrade, String> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default().trim().to_owned();
    let mut parts = line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code
            .parse::<u16>()
            .map_err(|_| format!("not an HTTP status line: {line:?}"))?,
        _ => return Err(format!("not an HTTP status line: {line:?}")),
    };
    Ok(if status == 101 {
        Upgrade::Accepted
    } else {
        Upgrade::Refused { status, line }
    })
}

/// Sends the upgrade request and reads the response head (within `deadline`).
/// Returns the answer and the bytes read past the head (frames that already
/// came), so a reader can start from them.
pub async fn handshake(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
    deadline: Duration,
) -> Result<(Upgrade, Vec<u8>), String> {
    let exchange = async {
        stream
            .write_all(upgrade_request(host, path).as_bytes())
            .await
            .map_err(|e| format!("upgrade request not sent: {e}"))?;
        let mut head = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("upgrade response not read: {e}"))?;
            if n == 0 {
                return Err("connection ended before the upgrade response".to_owned());
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(end) = head_end(&head) {
                let rest = head.split_off(end);
                return Ok((parse_status(&head)?, rest));
            }
            if head.len() > MAX_HEAD {
                return Err(format!("upgrade response head over {MAX_HEAD} bytes"));
            }
        }
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| format!("no upgrade response within {deadline:?}"))?
}

/// The header of a masked client frame declaring `len` payload bytes (which
/// must follow, masked with [`MASK`] from payload offset 0).
pub fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(14);
    header.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    match len {
        0..=125 => header.push(0x80 | len as u8),
        126..=0xFFFF => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&len.to_be_bytes());
        }
    }
    header.extend_from_slice(&MASK);
    header
}

/// A whole masked client frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = frame_header(fin, opcode, payload.len() as u64);
    let start = frame.len();
    frame.extend_from_slice(payload);
    mask(&mut frame[start..], 0);
    frame
}

/// Masks (or unmasks) `payload` in place with [`MASK`], as the bytes at
/// `offset` and after of a frame's payload.
pub fn mask(payload: &mut [u8], offset: usize) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= MASK[(offset + i) % 4];
    }
}

/// A Close frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseFrame {
    /// The status code, if the frame carried one.
    pub code: Option<u16>,
    pub reason: String,
}

impl std::fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) if self.reason.is_empty() => write!(f, "{code}"),
            Some(code) => write!(f, "{code} {:?}", self.reason),
            None => f.write_str("(no code)"),
        }
    }
}

/// Reads the server's frames from a byte stream fed in chunks, skipping every
/// payload but a Close frame's. Holds at most one header and one Close payload
/// between chunks, whatever the frames declare.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes of an incomplete header (at most 14).
    header: Vec<u8>,
    /// Payload bytes of a skipped frame still to come.
    skip: u64,
    /// A Close frame whose payload is being read.
    close: Option<PendingClose>,
    /// Frames whose header was read.
    pub frames: u64,
}

#[derive(Debug)]
struct PendingClose {
    masked: bool,
    /// Payload bytes kept: the declared length, at most 125 (the RFC's limit
    /// for a control frame).
    want: usize,
    payload: Vec<u8>,
}

/// A frame header as the reader sees it.
struct Head {
    opcode: u8,
    masked: bool,
    len: u64,
    /// Header bytes, mask key included.
    size: usize,
}

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask key.
const MAX_HEADER: usize = 14;

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let (&b0, rest) = bytes.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let masked = b1 & 0x80 != 0;
    let (len, ext) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        short => (u64::from(short), 0),
    };
    let size = 2 + ext + if masked { 4 } else { 0 };
    (bytes.len() >= size).then_some(Head {
        opcode: b0 & 0x0F,
        masked,
        len,
        size,
    })
}

impl FrameReader {
    /// Takes the next bytes of the stream; returns the first Close frame they
    /// complete, if any (bytes after it are not read).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Option<CloseFrame> {
        loop {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[n..];
                self.skip -= n as u64;
                if self.skip > 0 {
                    return None;
                }
            }
            if let Some(close) = &mut self.close {
                let n = (close.want - close.payload.len()).min(bytes.len());
                close.payload.extend_from_slice(&bytes[..n]);
                if close.payload.len() < close.want {
                    return None;
                }
                return self.close.take().map(PendingClose::finish);
            }
            if bytes.is_empty() {
                return None;
            }
            let before = self.header.len();
            let take = (MAX_HEADER - before).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            let Some(head) = parse_head(&self.header) else {
                bytes = &bytes[take..];
                continue;
            };
            bytes = &bytes[head.size - before..];
            self.header.clear();
            self.frames += 1;
            if head.opcode == OP_CLOSE {
                self.close = Some(PendingClose {
                    masked: head.masked,
                    want: head.len.min(125) as usize,
                    payload: Vec::new(),
                });
            } else {
                self.skip = head.len;
            }
        }
    }
}

impl PendingClose {
    fn finish(mut self) -> CloseFrame {
        if self.masked {
            mask(&mut self.payload, 0);
        }
        match self.payload.as_slice() {
            [hi, lo, reason @ ..] => CloseFrame {
                code: Some(u16::from_be_bytes([*hi, *lo])),
                reason: String::from_utf8_lossy(reason).into_owned(),
            },
            _ => CloseFrame {
                code: None,
                reason: String::new(),
            },
        }
    }
}

/// Reads what the server already sent on a connection that was not read, for
/// at most `budget` bytes and `deadline`, and returns the first Close frame in it.
pub async fn find_close(
    stream: &mut (impl AsyncRead + Unpin),
    reader: &mut FrameReader,
    budget: usize,
    deadline: Duration,
) -> io::Result<Option<CloseFrame>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut read = 0;
    let scan = async {
        while read < budget {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            read += n;
            if let Some(close) = reader.feed(&chunk[..n]) {
                return Ok(Some(close));
            }
        }
        Ok(None)
    };
    tokio::time::timeout(deadline, scan)
        .await
        .unwrap_or(Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unmasked server frame.
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = frame_header(true, opcode, payload.len() as u64);
        frame[1] &= 0x7F;
        frame.truncate(frame.len() - 4);
        frame.extend_from_slice(payload);
        frame
    }

    fn close(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        server_frame(OP_CLOSE, &payload)
    }

    #[test]
    fn a_giant_header_declares_its_length_in_eight_bytes_and_is_masked() {
        let header = frame_header(false, OP_TEXT, 1 << 40);
        assert_eq!(header[0], 0x01, "not final, text");
        assert_eq!(header[1], 0x80 | 127);
        assert_eq!(&header[2..10], &(1u64 << 40).to_be_bytes());
        assert_eq!(&header[10..], &MASK);
    }

    #[test]
    fn small_and_medium_lengths_use_the_short_forms() {
        assert_eq!(
            frame_header(true, OP_PONG, 0),
            vec![0x8A, 0x80, 0x37, 0xfa, 0x21, 0x3d]
        );
        let medium = frame_header(true, OP_CONTINUATION, 1024);
        assert_eq!(&medium[..4], &[0x80, 0x80 | 126, 0x04, 0x00]);
    }

    #[test]
    fn a_masked_payload_unmasks_to_the_original() {
        let frame = frame(true, OP_TEXT, b"hello");
        let mut payload = frame[6..].to_vec();
        assert_ne!(payload, b"hello");
        mask(&mut payload, 0);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn the_status_of_the_response_head_says_whether_the_upgrade_was_accepted() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x89\x00";
        let end = head_end(head).expect("complete head");
        assert_eq!(&head[end..], b"\x89\x00");
        assert_eq!(parse_status(&head[..end]), Ok(Upgrade::Accepted));
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Ok(Upgrade::Refused {
                status: 503,
                line: "HTTP/1.1 503 Service Unavailable".into()
            })
        );
        assert!(parse_status(b"SSH-2.0\r\n\r\n").is_err());
        assert_eq!(head_end(b"HTTP/1.1 101 Switching\r\n"), None);
    }

    #[test]
    fn the_reader_skips_data_and_pings_and_returns_the_close() {
        let mut stream = server_frame(OP_PING, b"");
        stream.extend(server_frame(OP_TEXT, &[b'x'; 70_000]));
        stream.extend(close(1009, "message too big"));
        stream.extend(server_frame(OP_TEXT, b"after"));
        let mut reader = FrameReader::default();
        let close = reader.feed(&stream).expect("a close frame");
        assert_eq!(close.code, Some(1009));
        assert_eq!(close.reason, "message too big");
        assert_eq!(close.to_string(), "1009 \"message too big\"");
    }

    #[test]
    fn frames_split_at_every_byte_are_read_the_same() {
        let mut stream = server_frame(OP_TEXT, &[b'y'; 300]);
        stream.extend(close(1008, "slow consumer"));
        let mut reader = FrameReader::default();
        let mut found = None;
        for byte in &stream {
            if let Some(close) = reader.feed(std::slice::from_ref(byte)) {
                found = Some(close);
            }
        }
        assert_eq!(
            found,
            Some(CloseFrame {
                code: Some(1008),
                reason: "slow consumer".into()
            })
        );
        assert!(reader.header.is_empty() && reader.close.is_none());
    }

    #[test]
    fn a_close_without_a_code_is_still_a_close() {
        let mut reader = FrameReader::default();
        let close = reader.feed(&server_frame(OP_CLOSE, b"")).expect("a close");
        assert_eq!(close.code, None);
        assert_eq!(close.to_string(), "(no code)");
    }

    #[test]
    fn a_declared_terabyte_is_skipped_without_being_held() {
        let mut header = frame_header(true, OP_TEXT, 1 << 40);
        header[1] &= 0x7F;
        header.truncate(10);
        let mut reader = FrameReader::default();
        assert_eq!(reader.feed(&header), None);
        assert_eq!(reader.feed(&vec![0; 1 << 20]), None);
        assert_eq!(reader.skip, (1 << 40) - (1 << 20));
        assert!(reader.header.is_empty());
    }
}
