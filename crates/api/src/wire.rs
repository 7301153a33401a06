//! Websocket frames as the server sends them: encoded once, shared by every
//! connection that sends them.
//!
//! A server frame (RFC 6455 §5.2) is a 2-, 4- or 10-byte header followed by the
//! unmasked payload. The hub encodes each `point` frame once, header included,
//! into one allocation that also holds the point's JSON object, so a live point,
//! a catch-up and an `asset_history` are all built from the same bytes: a
//! connection only takes a reference, never a copy or a serialization of its own.
//! The JSON shapes are the wire protocol's (`ratecast_core::protocol`); this
//! module only frames them.

use std::ops::Range;

use bytes::Bytes;
use ratecast_core::{
    AssetId, Point,
    protocol::{
        HISTORY_FRAME_SUFFIX, POINT_FRAME_PREFIX, POINT_FRAME_SUFFIX, history_frame_prefix,
        write_point_object,
    },
};

/// The longest server frame header: FIN/opcode, length 127, 64-bit length.
const MAX_HEADER: usize = 10;
/// FIN set, opcode 1 (text): every server message is one unfragmented text frame.
const FIN_TEXT: u8 = 0x81;
/// FIN set, opcodes 8, 9 and 10: close, ping, pong.
const FIN_CLOSE: u8 = 0x88;
const FIN_PING: u8 = 0x89;
const FIN_PONG: u8 = 0x8A;
/// The largest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// The header of a frame whose first byte is `first` and whose payload is `len`
/// bytes, and its length.
fn header(first: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0u8; MAX_HEADER];
    header[0] = first;
    let size = match len {
        0..=125 => {
            header[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            header[1] = 126;
            header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (header, size)
}

/// A text frame carrying `payload` (one copy of it).
pub fn text_frame(payload: &[u8]) -> Bytes {
    frame_of(FIN_TEXT, payload)
}

fn frame_of(first: u8, payload: &[u8]) -> Bytes {
    let (header, size) = header(first, payload.len());
    let mut frame = Vec::with_capacity(size + payload.len());
    frame.extend_from_slice(&header[..size]);
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}

/// The server's keep-alive ping, with an empty payload.
pub fn ping_frame() -> Bytes {
    Bytes::from_static(&[FIN_PING, 0])
}

/// The answer to a client's ping, carrying its payload (at most 125 bytes,
/// which the frame reader enforces for control frames).
pub fn pong_frame(payload: &[u8]) -> Bytes {
    frame_of(FIN_PONG, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// A close frame with `code` and `reason`, the reason cut at a character
/// boundary to fit the 125-byte control payload.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame_of(FIN_CLOSE, &payload)
}

/// A `point` frame, encoded once, and where its point object lies in it.
#[derive(Debug, Clone)]
pub struct PointBytes {
    pub time: i64,
    /// The point's value, which a candle subscription folds in.
    pub value: f64,
    /// The asset's broadcast sequence number (set by the hub when it pushes the
    /// point live), so a subscriber can tell a gap from a repeat.
    pub seq: u64,
    /// The whole websocket frame, header included.
    pub frame: Bytes,
    /// The point's JSON object within `frame`, for histories.
    object: Range<usize>,
}

impl PointBytes {
    /// Encodes `point`'s frame in one allocation.
    pub fn encode(point: &Point) -> Self {
        // Serialize after room for the longest header, then write the real one
        // just before the payload, so nothing is copied to make room for it.
        let mut buf = Vec::with_capacity(MAX_HEADER + 160);
        buf.resize(MAX_HEADER, 0);
        buf.extend_from_slice(POINT_FRAME_PREFIX.as_bytes());
        let object_start = buf.len();
        write_point_object(&mut buf, point);
        let object_end = buf.len();
        buf.extend_from_slice(POINT_FRAME_SUFFIX.as_bytes());
        let (header, size) = header(FIN_TEXT, buf.len() - MAX_HEADER);
        let start = MAX_HEADER - size;
        buf[start..MAX_HEADER].copy_from_slice(&header[..size]);
        let frame = Bytes::from(buf).slice(start..);
        Self {
            time: point.time,
            value: point.value,
            seq: 0,
            frame,
            object: object_start - start..object_end - start,
        }
    }

    /// The point's JSON object (`{"assetName":…,"time":…,"assetId":…,"value":…}`).
    pub fn object(&self) -> &[u8] {
        &self.frame[self.object.clone()]
    }
}

/// The `asset_history` frame of asset `id`'s `points` (ascending), copied from
/// their objects.
pub fn history_frame<'a>(
    id: AssetId,
    points: impl Iterator<Item = &'a PointBytes> + Clone,
) -> Bytes {
    let prefix = history_frame_prefix(id);
    let objects: usize = points.clone().map(|p| p.object.len() + 1).sum();
    let payload = prefix.len() + objects.saturating_sub(1) + HISTORY_FRAME_SUFFIX.len();
    let (header, size) = header(FIN_TEXT, payload);
    let mut frame = Vec::with_capacity(size + payload);
    frame.extend_from_slice(&header[..size]);
    frame.extend_from_slice(prefix.as_bytes());
    for (i, point) in points.enumerate() {
        if i > 0 {
            frame.push(b',');
        }
        frame.extend_from_slice(point.object());
    }
    frame.extend_from_slice(HISTORY_FRAME_SUFFIX.as_bytes());
    Bytes::from(frame)
}

/// The payload of an encoded server frame (tests read frames as JSON).
#[cfg(test)]
pub(crate) fn payload(frame: &[u8]) -> &[u8] {
    assert!(frame[0] & 0x80 != 0, "one unfragmented frame");
    let (len, start) = match frame[1] {
        126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
        127 => {
            let mut len = [0u8; 8];
            len.copy_from_slice(&frame[2..10]);
            (u64::from_be_bytes(len) as usize, 10)
        }
        len => (len as usize, 2),
    };
    assert_eq!(
        frame.len(),
        start + len,
        "the header gives the payload length"
    );
    &frame[start..]
}

#[cfg(test)]
mod tests {
    use ratecast_core::{
        AssetId,
        protocol::{history_frame as json_history, point_frame},
    };

    use super::*;

    fn point(time: i64, value: f64) -> Point {
        Point {
            asset_id: AssetId(1),
            asset_name: "EURUSD".into(),
            time,
            value,
        }
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        for (len, size) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (65_535, 4),
            (65_536, 10),
            (200_000, 10),
        ] {
            let frame = text_frame(&vec![b'x'; len]);
            assert_eq!(frame.len(), len + size, "{len}");
            assert_eq!(payload(&frame).len(), len);
        }
    }

    #[test]
    fn control_frames_have_their_opcodes_and_fit_125_bytes() {
        assert_eq!(&ping_frame()[..], &[0x89, 0]);
        assert_eq!(&pong_frame(b"abc")[..], &[0x8A, 3, b'a', b'b', b'c']);
        let close = close_frame(1001, "going away: server shutting down");
        assert_eq!(close[0], 0x88);
        assert_eq!(&payload(&close)[..2], &1001u16.to_be_bytes());
        assert_eq!(&payload(&close)[2..], b"going away: server shutting down");
        let long = "é".repeat(100);
        let cut = close_frame(1002, &long);
        assert_eq!(cut[1] as usize, payload(&cut).len());
        assert!(payload(&cut).len() <= 125);
        assert!(
            std::str::from_utf8(&payload(&cut)[2..]).is_ok(),
            "cut at a char boundary"
        );
        assert_eq!(pong_frame(&[7u8; 300]).len(), 2 + 125);
    }

    #[test]
    fn an_encoded_point_is_the_point_frame_and_holds_its_object() {
        let p = point(1_700_000_000, 1.091185);
        let encoded = PointBytes::encode(&p);
        assert_eq!(payload(&encoded.frame), point_frame(&p).as_bytes());
        assert_eq!(
            encoded.object(),
            br#"{"assetName":"EURUSD","time":1700000000,"assetId":1,"value":1.091185}"#
        );
        assert_eq!(encoded.time, 1_700_000_000);
    }

    #[test]
    fn a_history_built_from_encoded_points_equals_the_serialized_one() {
        let asset = "EURUSD".parse::<ratecast_core::AssetList>().expect("list");
        let asset = asset.get(AssetId(1)).expect("asset");
        for n in [0, 1, 2, 1800] {
            let points: Vec<PointBytes> = (0..n)
                .map(|t| PointBytes::encode(&point(1_700_000_000 + t, 1.0 + t as f64 / 1e5)))
                .collect();
            let pairs = (0..n).map(|t| (1_700_000_000 + t, 1.0 + t as f64 / 1e5));
            let frame = history_frame(AssetId(1), points.iter());
            assert_eq!(
                payload(&frame),
                json_history(asset, pairs).as_bytes(),
                "{n} points"
            );
        }
    }
}
