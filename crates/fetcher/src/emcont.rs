//! The Emcont / FXCM "DataDisplayer" body parser: JSONP bytes in, [`Quotes`] out.
//!
//! The body is `callback({"Rates":[{"Symbol":…,"Bid":…,"Ask":…,…},…]});` with
//! optional trailing whitespace. Two eras exist: numbers (rates.emcont.com) and
//! strings with a trailing comma before each `}` (ratesjson.fxcm.com). Unknown
//! fields and symbols are ignored. A broken body is a [`ParseError`]; a broken quote
//! only costs its own symbol a [`QuoteError`], including a bare number token strict
//! JSON refuses (`NaN`, `Infinity`, `-Infinity`, `1e400`): [`normalize`] quotes it
//! before the JSON parser sees it, so that quote alone is `not_numeric`.

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
    let json = normalize(unwrap_jsonp(text)?);
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

/// Rewrites, outside strings, the departures from strict JSON the upstream is known
/// for, in one pass:
/// - a comma directly before `}` or `]` (whitespace between is kept) is removed:
///   the FXCM era writes `"ProductType":"1",}`;
/// - a bare token that is a non-finite number ([`is_non_finite_number`]) is put in
///   quotes, so it reaches its quote as a string that [`number_field`] refuses,
///   instead of making the JSON parser refuse the whole body.
///
/// Anything else is copied unchanged, so every other error stays the parser's.
fn normalize(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    // Where a comma waits to learn what follows it (past its whitespace).
    let mut pending: Option<usize> = None;
    let mut chars = json.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if pending.is_some() && c.is_whitespace() {
            continue;
        }
        if let Some(comma) = pending.take() {
            // Before a closing bracket the comma goes and its whitespace stays.
            let from = comma + usize::from(matches!(c, '}' | ']'));
            out.push_str(&json[from..at]);
        }
        match c {
            ',' => pending = Some(at),
            '"' => copy_string(&mut out, &mut chars),
            c if is_token_char(c) => {
                let end = token_end(json, at);
                push_token(&mut out, &json[at..end]);
                while chars.next_if(|&(i, _)| i < end).is_some() {}
            }
            c => out.push(c),
        }
    }
    if let Some(comma) = pending {
        out.push_str(&json[comma..]);
    }
    out
}

/// Copies a string whose opening quote was just read, up to and including its
/// closing quote (or the end of the text).
fn copy_string(out: &mut String, chars: &mut impl Iterator<Item = (usize, char)>) {
    out.push('"');
    let mut escaped = false;
    for (_, c) in chars {
        out.push(c);
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return,
            _ => {}
        }
    }
}

/// Characters of a bare token: literals, numbers and what lenient writers use
/// instead (`NaN`, `-Infinity`).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// The byte index where the bare token starting at `start` ends.
fn token_end(json: &str, start: usize) -> usize {
    json[start..]
        .find(|c: char| !is_token_char(c))
        .map_or(json.len(), |len| start + len)
}

fn push_token(out: &mut String, token: &str) {
    if is_non_finite_number(token) {
        out.push('"');
        out.push_str(token);
        out.push('"');
    } else {
        out.push_str(token);
    }
}

/// `NaN` or `Infinity` with an optional sign (as JavaScript and Python write
/// them), or a number in JSON syntax too large for an `f64` (`1e400`).
fn is_non_finite_number(token: &str) -> bool {
    let unsigned = token.strip_prefix(['-', '+']).unwrap_or(token);
    matches!(unsigned, "NaN" | "Infinity")
        || (is_json_number(token) && token.parse::<f64>().is_ok_and(|x| !x.is_finite()))
}

/// Whether `token` is a number in JSON's grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(token: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = token.strip_prefix('-').unwrap_or(token);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.starts_with('0')) {
        return false;
    }
    let mut rest = &rest[int..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(['e', 'E']) {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        let n = digits(exponent);
        return n > 0 && n == exponent.len();
    }
    rest.is_empty()
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
                .filter(|x| x.is_finite())
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

    const FIXTURE_NAMES: [&str; 4] = [
        "emcont-numbers.txt",
        "fxcm-strings-trailing-commas.txt",
        "fxcm-single.txt",
        "emcont-non-finite.txt",
    ];

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
    fn non_finite_bare_numbers_fixture_skips_only_those_quotes() {
        let quotes = parse_body(&fixture("emcont-non-finite.txt")).expect("the body parses");
        assert_eq!(quotes.get("EURUSD"), Ok(1.08518));
        assert_eq!(
            quotes.get("EURGBP"),
            Ok(0.8536),
            "a NaN in a field that is not read costs nothing"
        );
        for (symbol, field, raw) in [
            ("USDJPY", "Bid", "NaN"),
            ("GBPUSD", "Ask", "Infinity"),
            ("AUDUSD", "Bid", "-Infinity"),
            ("USDCAD", "Bid", "1e400"),
        ] {
            let error = quotes.get(symbol).expect_err("skipped");
            assert_eq!(error.kind(), "not_numeric", "{symbol}");
            assert_eq!(
                error,
                QuoteError::NotNumeric {
                    field,
                    raw: format!("\"{raw}\"")
                }
            );
        }
        assert_eq!(quotes.len(), 6);
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
        for name in FIXTURE_NAMES {
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
        assert_eq!(normalize(r#"{"a":",}",}"#), r#"{"a":",}"}"#);
        assert_eq!(normalize(r#"{"a":"\",}",}"#), r#"{"a":"\",}"}"#);
        assert_eq!(normalize("[1, 2 ,\n ]"), "[1, 2 \n ]");
        assert_eq!(normalize("[1,,]"), "[1,]");
        assert_eq!(normalize("[1,"), "[1,", "an unclosed body stays broken");
    }

    #[test]
    fn only_non_finite_bare_numbers_are_quoted() {
        assert_eq!(
            normalize(r#"[NaN,-NaN,Infinity,+Infinity,-Infinity,1e400,-1E+309]"#),
            r#"["NaN","-NaN","Infinity","+Infinity","-Infinity","1e400","-1E+309"]"#
        );
        assert_eq!(
            normalize(r#"[1e308,1e-400,-0,0.5,true,null,nan,inf,01,1.,.5,1e]"#),
            r#"[1e308,1e-400,-0,0.5,true,null,nan,inf,01,1.,.5,1e]"#,
            "finite numbers, literals and non-JSON tokens are left to the parser"
        );
        assert_eq!(normalize(r#"{"NaN":"1e400"}"#), r#"{"NaN":"1e400"}"#);
        assert_eq!(normalize("[1e400,]"), r#"["1e400"]"#);
    }

    #[test]
    fn json_numbers_follow_the_json_grammar() {
        for good in ["0", "-0", "7", "12.5", "1e5", "1E+5", "-1.5e-7", "1e400"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.5.2", "NaN", "1e5x",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn a_bare_nan_in_one_quote_no_longer_costs_every_asset_its_second() {
        let body = br#"null({"Rates":[{"Symbol":"EURUSD","Bid":NaN,"Ask":1.2},{"Symbol":"USDJPY","Bid":150.1,"Ask":150.3}]});"#;
        let quotes = parse_body(body).expect("the body parses");
        assert_eq!(quotes.get("USDJPY"), Ok(150.2));
        assert!(matches!(
            quotes.get("EURUSD"),
            Err(QuoteError::NotNumeric { field: "Bid", .. })
        ));
    }

    /// Any JSON value, with strings that hold the characters [`normalize`] acts on.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            "[a-zA-Z0-9 ,:{}\\[\\]\"\\\\.+-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-zA-Z,}\\] ]{0,6}", inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
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
            index in 0usize..FIXTURE_NAMES.len(),
            at in any::<proptest::sample::Index>(),
            insert in "[\\[\\]{}(),;:\"\\\\0-9a-zA-Z .-]{0,8}",
            delete in 0usize..8,
        ) {
            let name = FIXTURE_NAMES[index];
            let mut body = String::from_utf8(fixture(name)).expect("fixtures are UTF-8");
            let mut at = at.index(body.len() + 1);
            while !body.is_char_boundary(at) { at -= 1; }
            let end = (at + delete).min(body.len());
            body.replace_range(at..end, &insert);
            let _ = parse_body(body.as_bytes());
        }

        #[test]
        fn strict_json_passes_through_normalize_unchanged(value in json_value(), pretty in any::<bool>()) {
            let json = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            }
            .expect("serializes");
            prop_assert_eq!(normalize(&json), json);
        }

        #[test]
        fn a_bare_non_finite_token_skips_only_its_quote(
            values in proptest::collection::vec((0.0001f64..100_000.0, 0.0f64..10.0), 1..6),
            bad in any::<proptest::sample::Index>(),
            bad_ask in any::<bool>(),
            token in proptest::sample::select(vec!["NaN", "Infinity", "-Infinity", "+Infinity", "1e400", "-1e400", "1E309"]),
            trailing_commas in any::<bool>(),
        ) {
            let bad = bad.index(values.len());
            let comma = if trailing_commas { "," } else { "" };
            let rates: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, (bid, spread))| {
                    let (mut bid, mut ask) = (bid.to_string(), (bid + spread).to_string());
                    if i == bad {
                        *(if bad_ask { &mut ask } else { &mut bid }) = token.to_owned();
                    }
                    format!(r#"{{"Symbol":"S{i}","Bid":{bid},"Ask":{ask}{comma}}}"#)
                })
                .collect();
            let body = format!(r#"null({{"Rates":[{}{comma}]}});"#, rates.join(","));
            let quotes = parse_body(body.as_bytes()).expect("one bad token never breaks the body");
            for (i, (bid, spread)) in values.iter().enumerate() {
                let quote = quotes.get(&format!("S{i}"));
                if i == bad {
                    let field = if bad_ask { "Ask" } else { "Bid" };
                    prop_assert_eq!(quote, Err(QuoteError::NotNumeric { field, raw: format!("\"{token}\"") }));
                } else {
                    let ask = bid + spread;
                    prop_assert_eq!(quote, Ok(ratecast_core::point::round_value(bid / 2.0 + ask / 2.0)));
                }
            }
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
