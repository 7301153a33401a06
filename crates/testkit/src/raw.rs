//! A websocket client that sends what a polite library refuses to: a
//! hand-written upgrade over a plain TCP socket, then hand-built client frames
//! (giant declared lengths, floods of empty control frames, invalid UTF-8), and
//! a reader that reports how the server ended the connection.

use std::{io, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::WAIT;

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

const MASK: [u8; 4] = [0x1b, 0x2c, 0x3d, 0x4e];

/// The header of a masked client frame declaring `len` payload bytes.
pub fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

/// A whole masked client frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, opcode, payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// The upgrade request a browser would send.
pub fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Connects and upgrades; fails the test unless the server answers 101.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("TCP connect");
    upgrade(stream, addr).await.expect("upgraded")
}

/// Connects with a receive buffer of about `bytes` (set before connecting, so
/// the window the server sees stays that small) and upgrades.
pub async fn connect_with_receive_buffer(addr: SocketAddr, bytes: u32) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("TCP connect");
    upgrade(stream, addr).await.expect("upgraded")
}

/// Sends the upgrade request on `stream` and reads the response head; `Err`
/// with the status line unless it is 101.
pub async fn upgrade(mut stream: TcpStream, addr: SocketAddr) -> Result<TcpStream, String> {
    stream
        .write_all(upgrade_request(addr).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // Byte by byte, so nothing after the head (the first frames) is consumed.
    let mut head = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await?;
            head.push(byte);
        }
        Ok::<_, io::Error>(())
    })
    .await
    .map_err(|_| "no response head in time".to_owned())?
    .map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or_default().to_owned();
    if status.starts_with("HTTP/1.1 101") {
        Ok(stream)
    } else {
        Err(status)
    }
}

/// How the server ended a connection, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with this code and reason.
    Close(u16, String),
    /// The stream ended without a close frame.
    Eof,
    /// The connection was reset (or another read error).
    Reset,
    /// Nothing ended it within the wait.
    StillOpen,
}

/// What a server sent until it ended the connection.
#[derive(Debug, Default)]
pub struct Received {
    pub pongs: usize,
    pub texts: usize,
}

/// Reads server frames until the server ends the connection or `within`
/// passes; counts pongs and text frames on the way.
pub async fn read_until_end(
    reader: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> (Ending, Received) {
    let mut received = Received::default();
    let ending = tokio::time::timeout(within, async {
        loop {
            match read_frame(reader).await {
                Ok(Some((0x8, payload))) => {
                    let code = payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
                    return Ending::Close(code, reason.into_owned());
                }
                Ok(Some((0xA, _))) => received.pongs += 1,
                Ok(Some((0x1, _))) => received.texts += 1,
                Ok(Some(_)) => {}
                Ok(None) => return Ending::Eof,
                Err(_) => return Ending::Reset,
            }
        }
    })
    .await
    .unwrap_or(Ending::StillOpen);
    (ending, received)
}

/// One server frame (unmasked, unfragmented): opcode and payload; `None` at
/// the end of the stream.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut start = [0u8; 2];
    match reader.read_exact(&mut start).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = match start[1] & 0x7F {
        126 => u64::from(reader.read_u16().await?),
        127 => reader.read_u64().await?,
        short => u64::from(short),
    };
    let mut payload = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    reader.read_exact(&mut payload).await?;
    Ok(Some((start[0] & 0x0F, payload)))
}
