//! The Emcont / FXCM "DataDisplayer" body parser: JSONP bytes in, [`Quotes`] out.
//!
//! The body is `callback({"Rates":[{"Symbol":…,"Bid":…,"Ask":…,…},…]});` with
//! optional trailing whitespace. Two eras exist: numbers (rates.emcont.com) and
//! strings with a trailing comma before each `}` (ratesjson.fxcm.com). Unknown
//! fields and symbols are ignored. A broken body is a [`ParseError`]; a broken quote
//! only costs its own symbol a [`QuoteError`].

use serde_json::Value;

use crate::source::{QuoteError, Quotes};
use ratecast_core::mid_price;

/// Why a body is not a rates document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is empty")]
    Empty,
    #[error("body is not JSONP `callback({{…}});` nor a JSON object (starts with {start:?})")]
    NotJsonp { start: String },
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("JSON has no \"Rates\" array")]
    NoRates,
}

/// Parses one upstream body.
pub fn parse_body(body: &[u8]) -> Result<Quotes, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
    let json = strip_trailing_commas(unwrap_jsonp(text)?);
    let document: Value =
        serde_json::from_str(&json).map_err(|e| ParseError::Json(e.to_string()))?;
    let rates = document
        .get("Rates")
        .and_then(Value::as_array)
        .ok_or(ParseError::NoRates)?;
    Ok(rates.iter().filter_map(parse_rate).collect())
}

/// The JSON inside `callback( … );`, or the body itself if it is bare JSON.
fn unwrap_jsonp(text: &str) -> Result<&str, ParseError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text.starts_with('{') {
        return Ok(text);
    }
    let not_jsonp = || ParseError::NotJsonp {
        start: text.chars().take(24).collect(),
    };
    let open = text.find('(').ok_or_else(not_jsonp)?;
    let callback = text[..open].trim();
    let is_identifier = callback
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'));
    if !is_identifier {
        return Err(not_jsonp());
    }
    let close = text
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
        .strip_suffix(')')
        .ok_or_else(not_jsonp)?;
    Ok(&close[open + 1..])
}

/// Removes commas that directly precede `}` or `]` (ignoring whitespace), outside
/// strings: the FXCM era writes `"ProductType":"1",}` which strict JSON refuses.
fn strip_trailing_commas(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut pending_comma: Option<usize> = None;
    for c in json.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '}' | ']' => {
                if let Some(at) = pending_comma.take() {
                    out.remove(at);
                }
            }
            ',' => {
                pending_comma = Some(out.len());
                out.push(c);
                continue;
            }
            c if c.is_whitespace() => {
                out.push(c);
                continue;
            }
            '"' => in_string = true,
            _ => {}
        }
        pending_comma = None;
        out.push(c);
    }
    out
}

/// One `Rates` entry as `(symbol, mid or why not)`; entries without a string
/// `Symbol` name no asset and are dropped.
fn parse_rate(rate: &Value) -> Option<(String, Result<f64, QuoteError>)> {
    let symbol = rate.get("Symbol")?.as_str()?.trim().to_owned();
    let quote = number_field(rate, "Bid").and_then(|(bid, bid_raw)| {
        let (ask, ask_raw) = number_field(rate, "Ask")?;
        mid_price(bid, ask).ok_or(QuoteError::Unusable {
            bid: bid_raw,
            ask: ask_raw,
        })
    });
    Some((symbol, quote))
}

/// A numeric field given as a JSON number or a numeric string, with its raw text.
fn number_field(rate: &Value, field: &'static str) -> Result<(f64, String), QuoteError> {
    let value = rate
        .get(field)
        .filter(|v| !v.is_null())
        .ok_or(QuoteError::MissingField { field })?;
    let not_numeric = || QuoteError::NotNumeric {
        field,
        raw: value.to_string().chars().take(32).collect(),
    };
    match value {
        Value::Number(n) => n
            .as_f64()
            .map(|x| (x, n.to_string()))
            .ok_or_else(not_numeric),
        Value::String(s) => {
            let s = s.trim();
            // Rust also parses "inf" and "NaN"; upstream numbers are plain decimals.
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
            plain
                .then(|| s.parse::<f64>().ok())
                .flatten()
                .map(|x| (x, s.to_owned()))
                .ok_or_else(not_numeric)
        }
        _ => Err(not_numeric()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Real upstream bodies of both eras, copied from the project's shared fixtures
    /// so the repository's tests stand alone.
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream");

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{FIXTURES}/{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
    }

    #[test]
    fn emcont_numbers_fixture_parses() {
        let quotes = parse_body(&fixture("emcont-numbers.txt")).expect("parses");
        assert_eq!(quotes.get("EURUSD"), Ok(162.5075));
        assert_eq!(quotes.len(), 1);
    }

    #[test]
    fn fxcm_strings_with_trailing_commas_fixture_parses() {
        let body = fixture("fxcm-strings-trailing-commas.txt");
        assert!(
            body.ends_with(b"); "),
            "the fixture ends with a space, no newline"
        );
        let quotes = parse_body(&body).expect("parses");
        assert_eq!(quotes.len(), 7);
        assert_eq!(quotes.get("EURUSD"), Ok(1.091185));
        assert_eq!(quotes.get("AUDCAD"), Ok(0.929775));
        assert_eq!(quotes.get("US.ECOMM"), Ok(1807.325));
        assert_eq!(quotes.get("USDJPY"), Err(QuoteError::Missing));
    }

    #[test]
    fn fxcm_single_fixture_parses() {
        let quotes = parse_body(&fixture("fxcm-single.txt")).expect("parses");
        assert_eq!(quotes.get("EURUSD"), Ok(1.09394));
    }

    #[test]
    fn live_emcont_shape_with_extra_fields_parses() {
        let body = br#"null({"Rates":[{"Symbol":"EURUSD","Bid":"1.08512","Ask":"1.08524","Spread":"1.2","ProductType":"1","LastClose":"1.0849","PriceChange":"0.0002","PercentChange":"0.02","52WeekHigh":"1.1276","52WeekLow":"1.0448"}]});"#;
        assert_eq!(parse_body(body).expect("parses").get("EURUSD"), Ok(1.08518));
    }

    #[test]
    fn bare_json_and_other_callbacks_are_accepted() {
        let json = br#"{"Rates":[{"Symbol":"EURUSD","Bid":1,"Ask":2}]}"#;
        assert_eq!(parse_body(json).expect("bare").get("EURUSD"), Ok(1.5));
        let named = br#"  cb_1.x ( {"Rates":[{"Symbol":"EURUSD","Bid":1,"Ask":2}]} ) ;  "#;
        assert_eq!(parse_body(named).expect("named").get("EURUSD"), Ok(1.5));
    }

    #[test]
    fn broken_bodies_are_parse_errors() {
        assert_eq!(parse_body(b""), Err(ParseError::Empty));
        assert_eq!(parse_body(b"  \n"), Err(ParseError::Empty));
        assert_eq!(parse_body(&[0xff, 0xfe]), Err(ParseError::NotUtf8));
        assert!(matches!(
            parse_body(b"<html>502</html>"),
            Err(ParseError::NotJsonp { .. })
        ));
        assert!(matches!(
            parse_body(b"alert(1)+x({})"),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            parse_body(b"null({\"Rates\":[{\"Sym"),
            Err(ParseError::NotJsonp { .. })
        ));
        assert!(matches!(
            parse_body(b"null({\"Rates\":[}]});"),
            Err(ParseError::Json(_))
        ));
        assert_eq!(
            parse_body(b"null({\"Other\":[]});"),
            Err(ParseError::NoRates)
        );
        assert_eq!(
            parse_body(b"null({\"Rates\":{}});"),
            Err(ParseError::NoRates)
        );
        assert_eq!(parse_body(b"null([1,2]);"), Err(ParseError::NoRates));
    }

    #[test]
    fn every_truncation_of_every_fixture_is_an_error_or_a_subset() {
        for name in [
            "emcont-numbers.txt",
            "fxcm-strings-trailing-commas.txt",
            "fxcm-single.txt",
        ] {
            let body = fixture(name);
            let full = parse_body(&body).expect("full fixture parses");
            // Cutting the closing `)` or anything before it must never yield quotes.
            let close = body.iter().rposition(|&b| b == b')').expect("has a )");
            for cut in 0..=close {
                assert!(parse_body(&body[..cut]).is_err(), "{name} cut at {cut}");
            }
            assert_eq!(parse_body(&body[..=close]).expect("up to )"), full);
        }
    }

    #[test]
    fn bad_quotes_skip_only_their_symbol() {
        let body = br#"null({"Rates":[
            {"Symbol":"A","Bid":"1.1","Ask":"1.2"},
            {"Symbol":"B","Bid":"n/a","Ask":"1.2"},
            {"Symbol":"C","Ask":"1.2"},
            {"Symbol":"D","Bid":"0","Ask":"0"},
            {"Symbol":"E","Bid":"-1.5","Ask":"1.2"},
            {"Symbol":"F","Bid":"NaN","Ask":"inf"},
            {"Symbol":"G","Bid":{"x":1},"Ask":"1.2"},
            {"Symbol":"H","Bid":null,"Ask":"1.2"},
            {"Bid":"1","Ask":"2"},
            {"Symbol":5,"Bid":"1","Ask":"2"},
            7,
            {"Symbol":"A","Bid":"9","Ask":"9"},
        ]});"#;
        let quotes = parse_body(body).expect("the document parses");
        assert_eq!(
            quotes.get("A"),
            Ok(1.15),
            "the first quote of a symbol wins"
        );
        assert!(matches!(
            quotes.get("B"),
            Err(QuoteError::NotNumeric { field: "Bid", .. })
        ));
        assert_eq!(
            quotes.get("C"),
            Err(QuoteError::MissingField { field: "Bid" })
        );
        assert!(matches!(quotes.get("D"), Err(QuoteError::Unusable { .. })));
        assert!(matches!(quotes.get("E"), Err(QuoteError::Unusable { .. })));
        assert!(matches!(
            quotes.get("F"),
            Err(QuoteError::NotNumeric { .. })
        ));
        assert!(matches!(
            quotes.get("G"),
            Err(QuoteError::NotNumeric { .. })
        ));
        assert_eq!(
            quotes.get("H"),
            Err(QuoteError::MissingField { field: "Bid" })
        );
        assert_eq!(quotes.len(), 8);
    }

    #[test]
    fn trailing_commas_inside_strings_are_kept() {
        assert_eq!(strip_trailing_commas(r#"{"a":",}",}"#), r#"{"a":",}"}"#);
        assert_eq!(strip_trailing_commas(r#"{"a":"\",}",}"#), r#"{"a":"\",}"}"#);
        assert_eq!(strip_trailing_commas("[1, 2 ,\n ]"), "[1, 2 \n ]");
        assert_eq!(strip_trailing_commas("[1,,]"), "[1,]");
    }

    proptest! {
        #[test]
        fn no_string_makes_the_parser_panic(body in ".*") {
            let _ = parse_body(body.as_bytes());
        }

        #[test]
        fn no_byte_string_makes_the_parser_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_body(&body);
        }

        #[test]
        fn no_mutation_of_a_fixture_makes_the_parser_panic(
            index in 0usize..3,
            at in any::<proptest::sample::Index>(),
            insert in "[\\[\\]{}(),;:\"\\\\0-9a-zA-Z .-]{0,8}",
            delete in 0usize..8,
        ) {
            let name = ["emcont-numbers.txt", "fxcm-strings-trailing-commas.txt", "fxcm-single.txt"][index];
            let mut body = String::from_utf8(fixture(name)).expect("fixtures are UTF-8");
            let mut at = at.index(body.len() + 1);
            while !body.is_char_boundary(at) { at -= 1; }
            let end = (at + delete).min(body.len());
            body.replace_range(at..end, &insert);
            let _ = parse_body(body.as_bytes());
        }

        #[test]
        fn numeric_quotes_round_trip_as_strings_or_numbers(bid in 0.0001f64..100_000.0, spread in 0.0f64..10.0) {
            let ask = bid + spread;
            let as_numbers = format!(r#"null({{"Rates":[{{"Symbol":"X","Bid":{bid},"Ask":{ask}}}]}});"#);
            let as_strings = format!(r#"null({{"Rates":[{{"Symbol":"X","Bid":"{bid}","Ask":"{ask}",}},]}}); "#);
            let a = parse_body(as_numbers.as_bytes()).expect("numbers parse").get("X");
            let b = parse_body(as_strings.as_bytes()).expect("strings parse").get("X");
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a, Ok(ratecast_core::point::round_value(bid / 2.0 + ask / 2.0)));
        }
    }
}
