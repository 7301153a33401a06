use std::time::Duration;

use proptest::prelude::*;

use super::*;

const LIMIT: usize = 4096;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn new_decoder() -> (Decoder, Instant) {
    let now = Instant::now();
    let limiter = RateLimiter::new(20, 40, LIMIT + MAX_HEADER, now);
    (Decoder::new(LIMIT, limiter), now)
}

/// The header of a masked client frame declaring `len` payload bytes.
fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
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
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, opcode, payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Everything `bytes` decode into, fed at once; stops at the first refusal.
fn decode_all(decoder: &mut Decoder, now: Instant, bytes: &[u8]) -> Result<Vec<Inbound>, Refusal> {
    let mut input = Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    while let Some(inbound) = decoder.decode(&mut input, now)? {
        out.push(inbound);
    }
    assert!(input.is_empty(), "`None` means every byte was taken");
    Ok(out)
}

fn decoded(bytes: &[u8]) -> Result<Vec<Inbound>, Refusal> {
    let (mut decoder, now) = new_decoder();
    decode_all(&mut decoder, now, bytes)
}

#[test]
fn a_text_message_in_one_frame_is_one_message() {
    let json = r#"{"action":"assets","message":{}}"#;
    assert_eq!(
        decoded(&frame(true, TEXT, json.as_bytes())),
        Ok(vec![Inbound::Text(json.into())])
    );
}

#[test]
fn fragments_with_a_ping_between_them_make_one_message_after_the_ping() {
    let mut bytes = frame(false, TEXT, "{\"act".as_bytes());
    bytes.extend(frame(true, PING, b"hi"));
    bytes.extend(frame(false, CONTINUATION, b""));
    bytes.extend(frame(true, CONTINUATION, "ion\":\"é\"}".as_bytes()));
    assert_eq!(
        decoded(&bytes),
        Ok(vec![
            Inbound::Ping(Bytes::from_static(b"hi")),
            Inbound::Text("{\"action\":\"é\"}".into()),
        ])
    );
}

#[test]
fn control_frames_and_binary_messages_are_reported_without_their_payload_kept() {
    let mut bytes = frame(true, PONG, b"x");
    bytes.extend(frame(true, BINARY, &[0, 1, 2, 3]));
    bytes.extend(frame(true, CLOSE, &[0x03, 0xE8, b'o', b'k']));
    assert_eq!(
        decoded(&bytes),
        Ok(vec![
            Inbound::Pong,
            Inbound::Binary,
            Inbound::Close(Some(1000))
        ])
    );
    assert_eq!(
        decoded(&frame(true, CLOSE, b"")),
        Ok(vec![Inbound::Close(None)])
    );
}

#[test]
fn a_header_declaring_2_pow_40_bytes_is_refused_before_any_payload() {
    let (mut decoder, now) = new_decoder();
    let header = header(true, TEXT, 1 << 40);
    let mut input = Bytes::copy_from_slice(&header);
    assert_eq!(decoder.decode(&mut input, now), Err(Refusal::TooBig));
    assert!(
        decoder.held() <= MAX_HEADER,
        "nothing of the payload was reserved"
    );
}

#[test]
fn a_message_grown_past_the_limit_by_continuations_is_refused_at_the_crossing_header() {
    let (mut decoder, now) = new_decoder();
    let mut bytes = frame(false, TEXT, &[b'x'; 1000]);
    for _ in 0..3 {
        bytes.extend(frame(false, CONTINUATION, &[b'x'; 1000]));
    }
    assert_eq!(decode_all(&mut decoder, now, &bytes), Ok(vec![]));
    assert!(decoder.held() <= decoder.bound());
    // 4,000 so far: a header declaring 97 more is refused, its payload unread.
    let crossing = header(false, CONTINUATION, 97);
    assert_eq!(
        decode_all(&mut decoder, now, &crossing),
        Err(Refusal::TooBig)
    );
    // Exactly the limit is fine.
    let (mut decoder, now) = new_decoder();
    let mut bytes = frame(false, TEXT, &[b'x'; 4000]);
    bytes.extend(frame(true, CONTINUATION, &[b'x'; 96]));
    assert_eq!(
        decode_all(&mut decoder, now, &bytes),
        Ok(vec![Inbound::Text("x".repeat(4096))])
    );
}

#[test]
fn invalid_utf8_closes_with_1007_and_a_character_split_across_frames_does_not() {
    assert_eq!(
        decoded(&frame(true, TEXT, &[b'a', 0xFF, b'b'])),
        Err(Refusal::InvalidUtf8)
    );
    let e_acute = "é".as_bytes();
    let mut bytes = frame(false, TEXT, &e_acute[..1]);
    bytes.extend(frame(true, CONTINUATION, &e_acute[1..]));
    assert_eq!(decoded(&bytes), Ok(vec![Inbound::Text("é".into())]));
    assert_eq!(
        decoded(&frame(true, CLOSE, &[0x03, 0xE8, 0xC3])),
        Err(Refusal::InvalidUtf8)
    );
}

#[test]
fn frames_rfc_6455_forbids_close_with_1002() {
    let mut unmasked = frame(true, TEXT, b"{}");
    unmasked[1] &= 0x7F;
    let mut reserved = frame(true, TEXT, b"{}");
    reserved[0] |= 0x40;
    let mut oversized_ping = header(true, PING, 126);
    oversized_ping.extend([0u8; 126]);
    let mut text_in_text = frame(false, TEXT, b"a");
    text_in_text.extend(frame(true, TEXT, b"b"));
    let mut top_bit = vec![0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    top_bit.extend(MASK);
    for (name, bytes) in [
        ("unmasked", unmasked),
        ("reserved bit", reserved),
        ("opcode 3", frame(true, 0x3, b"")),
        ("fragmented ping", frame(false, PING, b"")),
        ("126-byte ping", oversized_ping),
        ("continuation of nothing", frame(true, CONTINUATION, b"a")),
        ("text inside text", text_in_text),
        ("close with one byte", frame(true, CLOSE, &[3])),
        (
            "close code 1005",
            frame(true, CLOSE, &1005u16.to_be_bytes()),
        ),
        (
            "close code 2999",
            frame(true, CLOSE, &2999u16.to_be_bytes()),
        ),
        ("64-bit length with its top bit", top_bit),
    ] {
        assert!(
            matches!(decoded(&bytes), Err(Refusal::Protocol(_))),
            "{name}: {:?}",
            decoded(&bytes)
        );
    }
}

#[test]
fn an_unmasked_frame_is_refused_at_its_second_byte() {
    let (mut decoder, now) = new_decoder();
    let mut input = Bytes::from_static(&[0x81, 0x05]);
    assert!(matches!(
        decoder.decode(&mut input, now),
        Err(Refusal::Protocol(_))
    ));
}

#[test]
fn an_empty_pong_flood_is_closed_within_2_s_and_pings_over_the_rate_get_no_pong() {
    let (mut decoder, start) = new_decoder();
    let mut pongs = 0;
    let mut closed_at = None;
    // 1,000 empty pongs a second.
    for i in 0..2_000u64 {
        let now = start + Duration::from_millis(i);
        match decode_all(&mut decoder, now, &frame(true, PONG, b"")) {
            Ok(events) => pongs += events.len(),
            Err(refusal) => {
                assert_eq!(refusal, Refusal::Flood);
                closed_at = Some(i);
                break;
            }
        }
    }
    let closed_at = closed_at.expect("the flood was closed within 2 s");
    assert!(
        pongs <= 40 + closed_at as usize / 50,
        "{pongs} pongs got through"
    );

    let (mut decoder, now) = new_decoder();
    let pings: Vec<Inbound> = (0..60)
        .flat_map(|_| decode_all(&mut decoder, now, &frame(true, PING, b"p")).expect("open"))
        .collect();
    assert_eq!(
        pings.len(),
        40,
        "the burst gets its pongs, the rest nothing"
    );
}

#[test]
fn a_data_message_over_the_rate_is_reported_rate_limited_and_not_kept() {
    let (mut decoder, now) = new_decoder();
    for _ in 0..40 {
        assert!(matches!(
            decode_all(&mut decoder, now, &frame(true, TEXT, b"{}")).expect("open")[..],
            [Inbound::Text(_)]
        ));
    }
    let mut bytes = frame(false, TEXT, &[b'x'; 300]);
    bytes.extend(frame(true, CONTINUATION, &[b'x'; 300]));
    assert_eq!(
        decode_all(&mut decoder, now, &bytes),
        Ok(vec![Inbound::RateLimited])
    );
    assert_eq!(decoder.held(), MAX_HEADER, "nothing of it was kept");
}

#[test]
fn a_close_over_the_rate_is_still_seen() {
    let (mut decoder, now) = new_decoder();
    for _ in 0..40 {
        decode_all(&mut decoder, now, &frame(true, PONG, b"")).expect("open");
    }
    assert_eq!(
        decode_all(&mut decoder, now, &frame(true, CLOSE, b"")),
        Ok(vec![Inbound::Close(None)])
    );
}

/// Client frames, valid ones and anything else, for the properties below.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        any::<bool>(),
        prop::sample::select(vec![TEXT, BINARY, CONTINUATION, PING, PONG]),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(fin, opcode, payload)| frame(fin, opcode, &payload));
    let declared = (any::<bool>(), any::<u8>(), any::<u64>())
        .prop_map(|(fin, opcode, len)| header(fin, opcode & 0x0F, len));
    let noise = prop::collection::vec(any::<u8>(), 0..64);
    prop::collection::vec(prop_oneof![4 => valid, 1 => declared, 1 => noise], 0..40)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn whatever_arrives_in_whatever_chunks_the_decoder_holds_at_most_its_bound(
        bytes in frames(),
        cuts in prop::collection::vec(1usize..700, 1..20),
        millis in 0u64..50,
    ) {
        let (mut decoder, start) = new_decoder();
        let mut rest = &bytes[..];
        let mut turn = 0u64;
        'chunks: for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, after) = rest.split_at((*cut).min(rest.len()));
            rest = after;
            turn += 1;
            let now = start + Duration::from_millis(turn * millis);
            let mut input = Bytes::copy_from_slice(chunk);
            loop {
                let decoded = decoder.decode(&mut input, now);
                prop_assert!(decoder.held() <= decoder.bound(), "held {}", decoder.held());
                match decoded {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        prop_assert!(input.is_empty());
                        break;
                    }
                    Err(_) => break 'chunks,
                }
            }
        }
    }

    #[test]
    fn any_split_of_the_input_decodes_to_the_same_events(
        bytes in frames(),
        cut in 1usize..64,
    ) {
        let whole = decoded(&bytes);
        let (mut decoder, now) = new_decoder();
        let mut split = Vec::new();
        let mut refused = None;
        'chunks: for chunk in bytes.chunks(cut) {
            let mut input = Bytes::copy_from_slice(chunk);
            loop {
                match decoder.decode(&mut input, now) {
                    Ok(Some(inbound)) => split.push(inbound),
                    Ok(None) => break,
                    Err(refusal) => {
                        refused = Some(refusal);
                        break 'chunks;
                    }
                }
            }
        }
        match (whole, refused) {
            (Ok(events), None) => prop_assert_eq!(events, split),
            (Err(a), Some(b)) => prop_assert_eq!(a, b),
            (whole, refused) => prop_assert!(false, "{:?} vs {:?} / {:?}", whole, split, refused),
        }
    }
}

#[tokio::test]
async fn the_stream_reads_the_payload_a_chunk_at_a_time_and_ends_when_it_does() {
    let mut bytes = frame(true, TEXT, b"{}");
    bytes.extend(frame(true, PING, b"p"));
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(3)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let (decoder, _) = new_decoder();
    let mut stream = InboundStream::new(futures_util::stream::iter(chunks), decoder);
    assert_eq!(stream.next().await, Ok(Inbound::Text("{}".into())));
    assert_eq!(
        stream.next().await,
        Ok(Inbound::Ping(Bytes::from_static(b"p")))
    );
    assert_eq!(stream.next().await, Err(Ended::Gone));
}
