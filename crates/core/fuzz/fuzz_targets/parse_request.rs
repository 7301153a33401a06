//! Fuzzes `ratecast_core::protocol::parse_request` with raw bytes. The websocket
//! layer only hands over valid UTF-8 text, so other bytes are mapped to U+FFFD
//! first rather than discarded (every input is exercised).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ratecast_core_fuzz::check_frame(&String::from_utf8_lossy(data));
});
