//! Fuzzes the inbound side of a session after the upgrade
//! (`ratecast_api::inbound::Decoder`): arbitrary bytes, delivered in arbitrary
//! chunks at arbitrary times. Beyond "never panics": after every call the bytes
//! the decoder holds stay within its bound (the message limit, one control
//! frame and one header), every call either takes all its input or returns an
//! event, and a refusal ends the connection (nothing is decoded after it).

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ratecast_api::{
    inbound::{Decoder, MAX_HEADER},
    limits::RateLimiter,
};
use tokio::time::Instant;

/// The default limits: `MAX_MESSAGE_BYTES`, `RATE_LIMIT`, `RATE_BURST`.
const MAX_MESSAGE: usize = 4096;

#[derive(Debug, Arbitrary)]
struct Chunk {
    /// Milliseconds since the previous chunk.
    after_ms: u16,
    bytes: Vec<u8>,
}

fuzz_target!(|chunks: Vec<Chunk>| {
    let mut now = Instant::now();
    let limiter = RateLimiter::new(20, 40, MAX_MESSAGE + MAX_HEADER, now);
    let mut decoder = Decoder::new(MAX_MESSAGE, limiter);
    for chunk in chunks {
        now += Duration::from_millis(u64::from(chunk.after_ms));
        let mut input = Bytes::from(chunk.bytes);
        loop {
            let decoded = decoder.decode(&mut input, now);
            assert!(
                decoder.held() <= decoder.bound(),
                "held {} > bound {}",
                decoder.held(),
                decoder.bound()
            );
            match decoded {
                Ok(Some(_)) => {}
                Ok(None) => {
                    assert!(input.is_empty(), "None leaves no input behind");
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
