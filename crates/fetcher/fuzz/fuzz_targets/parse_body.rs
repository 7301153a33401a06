//! Fuzzes `ratecast_fetcher::emcont::parse_body`, the one place upstream bytes
//! become quotes. Beyond "never panics", it checks what the poller relies on: a
//! quote the parser accepts is a finite, positive mid price (the symbols checked
//! are those of the default asset list, which the seed fixtures contain).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecast_fetcher::emcont::parse_body;

const SYMBOLS: [&str; 5] = ["EURUSD", "USDJPY", "GBPUSD", "AUDUSD", "USDCAD"];

fuzz_target!(|data: &[u8]| {
    if let Ok(quotes) = parse_body(data) {
        for symbol in SYMBOLS {
            if let Ok(mid) = quotes.get(symbol) {
                assert!(mid.is_finite() && mid > 0.0, "{symbol} = {mid}");
            }
        }
    }
});
