//! Client requests: one text frame in, a [`ClientRequest`] or a [`RequestError`] out.
//!
//! Every client frame is parsed here, once; the error's code and text go back to
//! the client verbatim in an `error` frame. Nothing downstream re-validates.

use serde_json::{Map, Value};

use crate::{
    asset::{Asset, AssetId, AssetList},
    candle::{Interval, MAX_CANDLE_RANGE_SECS},
};

#[derive(Debug, Clone, PartialEq)]
pub enum ClientRequest {
    /// `{"action":"assets","message":{}}`
    Assets,
    /// `{"action":"subscribe","message":{"assetId":N}}`, N a tracked asset;
    /// with `"since":T` the history holds only points after T (a reconnecting
    /// client gets exactly what it missed).
    Subscribe { asset: Asset, since: Option<i64> },
    /// `{"action":"unsubscribe","message":{}}`: stop receiving points.
    Unsubscribe,
    /// `{"action":"history","message":{"assetId":N,"from":T1,"to":T2}}`: the
    /// stored points with `T1 <= time <= T2`, a range of at most
    /// [`MAX_HISTORY_SPAN_SECS`] (the server answers it a page at a time).
    History { asset: Asset, from: i64, to: i64 },
    /// `{"action":"candles","message":{"assetId":N,"interval":"1m","from":T1,"to":T2}}`:
    /// the candles of `interval` starting in `T1..=T2`, a range of at most
    /// [`MAX_CANDLE_RANGE_SECS`] (the server answers it a page at a time).
    Candles {
        asset: Asset,
        interval: Interval,
        from: i64,
        to: i64,
    },
}

/// The widest `history` range: one day of one-second points.
pub const MAX_HISTORY_SPAN_SECS: i64 = 86_400;

/// The machine-readable kind of a refused request, sent as `message.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame is not JSON.
    InvalidJson,
    /// JSON, but not `{"action": string, "message": object}`.
    InvalidRequest,
    /// `action` names no known request.
    UnknownAction,
    /// `assetId` is missing or not a positive integer.
    InvalidAssetId,
    /// `assetId` is well-formed but no asset has it.
    UnknownAsset,
    /// A binary frame; the protocol is JSON text only.
    BinaryNotSupported,
    /// `history` with `from > to`, a span over a day, or bad bounds (`candles`:
    /// a span over a week).
    InvalidRange,
    /// `candles` without an `interval` or with one not offered.
    InvalidInterval,
    /// The store could not answer right now; the request may be retried.
    Unavailable,
    /// The client sends faster than its message rate limit; the message was dropped.
    RateLimited,
    /// A `history` request while this connection's previous one is still being
    /// answered, or while the server runs as many history queries as it allows.
    Busy,
    /// The reply would not fit the bytes this connection may have waiting to be
    /// sent: the client is not reading fast enough. Read, then retry.
    Backpressure,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnknownAction => "unknown_action",
            Self::InvalidAssetId => "invalid_asset_id",
            Self::UnknownAsset => "unknown_asset",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::InvalidRange => "invalid_range",
            Self::InvalidInterval => "invalid_interval",
            Self::Unavailable => "unavailable",
            Self::RateLimited => "rate_limited",
            Self::Busy => "busy",
            Self::Backpressure => "backpressure",
        }
    }
}

/// A refused client frame: what the client gets back in an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The actions a client may send, listed in `unknown_action` errors.
pub const ACTIONS: &[&str] = &["assets", "subscribe", "unsubscribe", "history", "candles"];

/// Parses one client text frame against the tracked `assets`.
pub fn parse_request(text: &str, assets: &AssetList) -> Result<ClientRequest, RequestError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        RequestError::new(
            ErrorCode::InvalidJson,
            format!("frame is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut envelope) = value else {
        return Err(RequestError::new(
            ErrorCode::InvalidRequest,
            format!(
                "expected a JSON object {{\"action\":…,\"message\":{{…}}}}, got {}",
                json_type(&value)
            ),
        ));
    };
    let action = match envelope.remove("action") {
        Some(Value::String(action)) => action,
        Some(other) => {
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                format!("\"action\" must be a string, got {}", json_type(&other)),
            ));
        }
        None => {
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                "missing \"action\"",
            ));
        }
    };
    if !ACTIONS.contains(&action.as_str()) {
        return Err(RequestError::new(
            ErrorCode::UnknownAction,
            format!(
                "unknown action {action:?}; expected one of {}",
                ACTIONS.join(", ")
            ),
        ));
    }
    let message = match envelope.remove("message") {
        Some(Value::Object(message)) => message,
        Some(other) => {
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                format!("\"message\" must be an object, got {}", json_type(&other)),
            ));
        }
        None => {
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                "missing \"message\" (an object; send {} when the action takes no arguments)"
                    .to_owned(),
            ));
        }
    };
    match action.as_str() {
        "assets" => Ok(ClientRequest::Assets),
        "subscribe" => Ok(ClientRequest::Subscribe {
            asset: parse_asset(&message, assets)?,
            since: optional_time(&message, "since")?,
        }),
        "unsubscribe" => Ok(ClientRequest::Unsubscribe),
        "candles" => parse_candles(&message, assets),
        _ => parse_history(&message, assets),
    }
}

fn parse_candles(
    message: &Map<String, Value>,
    assets: &AssetList,
) -> Result<ClientRequest, RequestError> {
    let asset = parse_asset(message, assets)?;
    let interval = parse_interval(message)?;
    let (from, to) = parse_bounds(message, MAX_CANDLE_RANGE_SECS)?;
    Ok(ClientRequest::Candles {
        asset,
        interval,
        from,
        to,
    })
}

fn parse_interval(message: &Map<String, Value>) -> Result<Interval, RequestError> {
    let invalid = |detail: String| RequestError::new(ErrorCode::InvalidInterval, detail);
    match message.get("interval") {
        None => Err(invalid(
            "missing \"interval\" (one of 5s, 1m, 5m, 15m, 1h, 4h, 1d)".into(),
        )),
        Some(Value::String(name)) => name
            .parse()
            .map_err(|unknown: crate::candle::UnknownInterval| invalid(unknown.to_string())),
        Some(other) => Err(invalid(format!(
            "\"interval\" must be a string such as \"1m\", got {}",
            describe(other)
        ))),
    }
}

/// `from` and `to`, both required, `from <= to`, spanning fewer than `max_span` seconds.
fn parse_bounds(message: &Map<String, Value>, max_span: i64) -> Result<(i64, i64), RequestError> {
    let bound = |field: &str| -> Result<i64, RequestError> {
        optional_time(message, field)?.ok_or_else(|| {
            RequestError::new(ErrorCode::InvalidRange, format!("missing \"{field}\""))
        })
    };
    let (from, to) = (bound("from")?, bound("to")?);
    if from > to {
        return Err(RequestError::new(
            ErrorCode::InvalidRange,
            format!("\"from\" ({from}) is after \"to\" ({to})"),
        ));
    }
    if to - from >= max_span {
        return Err(RequestError::new(
            ErrorCode::InvalidRange,
            format!(
                "the range holds {} seconds; at most {max_span} per request",
                to.saturating_sub(from).saturating_add(1)
            ),
        ));
    }
    Ok((from, to))
}

fn parse_history(
    message: &Map<String, Value>,
    assets: &AssetList,
) -> Result<ClientRequest, RequestError> {
    let asset = parse_asset(message, assets)?;
    let (from, to) = parse_bounds(message, MAX_HISTORY_SPAN_SECS)?;
    Ok(ClientRequest::History { asset, from, to })
}

/// An optional Unix-seconds field: absent or `null` is `None`.
fn optional_time(message: &Map<String, Value>, field: &str) -> Result<Option<i64>, RequestError> {
    match message.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().filter(|t| *t >= 0).map(Some).ok_or_else(|| {
            RequestError::new(
                ErrorCode::InvalidRange,
                format!(
                    "\"{field}\" must be Unix seconds (a non-negative integer), got {}",
                    describe(value)
                ),
            )
        }),
    }
}

fn parse_asset(message: &Map<String, Value>, assets: &AssetList) -> Result<Asset, RequestError> {
    let id = parse_asset_id(message)?;
    let asset = assets.get(id).ok_or_else(|| {
        RequestError::new(
            ErrorCode::UnknownAsset,
            format!(
                "no asset has id {id}; valid ids are 1..={} (see the \"assets\" action)",
                assets.len()
            ),
        )
    })?;
    Ok(asset.clone())
}

fn parse_asset_id(message: &Map<String, Value>) -> Result<AssetId, RequestError> {
    let invalid = |detail: String| RequestError::new(ErrorCode::InvalidAssetId, detail);
    let value = message
        .get("assetId")
        .ok_or_else(|| invalid("missing \"assetId\"".into()))?;
    let id = value
        .as_u64()
        .ok_or_else(|| {
            invalid(format!(
                "\"assetId\" must be a positive integer, got {}",
                describe(value)
            ))
        })
        .and_then(|id| {
            u32::try_from(id)
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid(format!("\"assetId\" {id} is out of range")))
        })?;
    Ok(AssetId(id))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a client value for an error text: scalars verbatim, containers by type.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.len() <= 32 => format!("the string {s:?}"),
        other => json_type(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn assets() -> AssetList {
        "EURUSD,USDJPY".parse().expect("valid list")
    }

    fn code_of(text: &str) -> ErrorCode {
        parse_request(text, &assets())
            .expect_err("must be refused")
            .code
    }

    #[test]
    fn valid_requests_parse() {
        assert_eq!(
            parse_request(r#"{"action":"assets","message":{}}"#, &assets()),
            Ok(ClientRequest::Assets)
        );
        let subscribe = parse_request(
            r#"{"message":{"assetId":2,"extra":true},"action":"subscribe"}"#,
            &assets(),
        );
        assert!(
            matches!(&subscribe, Ok(ClientRequest::Subscribe { asset, since: None }) if &*asset.name == "USDJPY"),
            "{subscribe:?}"
        );
    }

    #[test]
    fn every_kind_of_bad_frame_gets_its_code() {
        assert_eq!(code_of("hello"), ErrorCode::InvalidJson);
        assert_eq!(code_of(""), ErrorCode::InvalidJson);
        assert_eq!(code_of(r#"{"action":"assets""#), ErrorCode::InvalidJson);
        assert_eq!(code_of("[]"), ErrorCode::InvalidRequest);
        assert_eq!(code_of("null"), ErrorCode::InvalidRequest);
        assert_eq!(code_of("42"), ErrorCode::InvalidRequest);
        assert_eq!(code_of(r#"{"message":{}}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code_of(r#"{"action":7,"message":{}}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code_of(r#"{"action":"assets"}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code_of(r#"{"action":"assets","message":[]}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code_of(r#"{"action":"nope","message":{}}"#),
            ErrorCode::UnknownAction
        );
        assert_eq!(
            code_of(r#"{"action":"subscribe","message":{}}"#),
            ErrorCode::InvalidAssetId
        );
        for bad in [r#""1""#, "1.5", "-1", "0", "null", "[1]", "4294967296"] {
            let frame = format!(r#"{{"action":"subscribe","message":{{"assetId":{bad}}}}}"#);
            assert_eq!(code_of(&frame), ErrorCode::InvalidAssetId, "{frame}");
        }
        assert_eq!(
            code_of(r#"{"action":"subscribe","message":{"assetId":3}}"#),
            ErrorCode::UnknownAsset
        );
    }

    #[test]
    fn error_texts_tell_the_client_what_to_fix() {
        let err = parse_request(
            r#"{"action":"subscribe","message":{"assetId":9}}"#,
            &assets(),
        )
        .expect_err("unknown asset");
        assert_eq!(
            err.message,
            "no asset has id 9; valid ids are 1..=2 (see the \"assets\" action)"
        );
        let err = parse_request(r#"{"action":"sub","message":{}}"#, &assets())
            .expect_err("unknown action");
        assert_eq!(
            err.message,
            "unknown action \"sub\"; expected one of assets, subscribe, unsubscribe, history, candles"
        );
    }

    #[test]
    fn subscribe_takes_an_optional_since_and_unsubscribe_takes_nothing() {
        let parse = |text: &str| parse_request(text, &assets());
        assert!(matches!(
            parse(r#"{"action":"subscribe","message":{"assetId":1,"since":1700000000}}"#),
            Ok(ClientRequest::Subscribe {
                since: Some(1_700_000_000),
                ..
            })
        ));
        assert!(matches!(
            parse(r#"{"action":"subscribe","message":{"assetId":1,"since":null}}"#),
            Ok(ClientRequest::Subscribe { since: None, .. })
        ));
        for bad in [r#""1700000000""#, "-1", "1.5", "[]"] {
            let text =
                format!(r#"{{"action":"subscribe","message":{{"assetId":1,"since":{bad}}}}}"#);
            assert_eq!(
                parse(&text).expect_err(&text).code,
                ErrorCode::InvalidRange,
                "{text}"
            );
        }
        assert_eq!(
            parse(r#"{"action":"unsubscribe","message":{}}"#),
            Ok(ClientRequest::Unsubscribe)
        );
    }

    #[test]
    fn the_widest_history_range_is_refused_without_overflow() {
        // Found by fuzzing (parse_request_fields): the error text overflowed.
        let text =
            r#"{"action":"history","message":{"assetId":1,"from":0,"to":9223372036854775807}}"#;
        let error = parse_request(text, &assets()).expect_err("a range over a day");
        assert_eq!(error.code, ErrorCode::InvalidRange);
        assert!(!error.message.contains('-'), "{}", error.message);
    }

    #[test]
    fn history_requests_need_a_valid_range_of_at_most_a_day() {
        let request = |m: &str| {
            parse_request(
                &format!(r#"{{"action":"history","message":{m}}}"#),
                &assets(),
            )
        };
        let ok = request(r#"{"assetId":1,"from":100,"to":86499}"#).expect("a full day");
        assert!(matches!(
            ok,
            ClientRequest::History {
                from: 100,
                to: 86_499,
                ..
            }
        ));
        for (bad, code) in [
            (
                r#"{"assetId":1,"from":100,"to":86500}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"from":200,"to":100}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"from":-5,"to":100}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"from":"0","to":100}"#,
                ErrorCode::InvalidRange,
            ),
            (r#"{"assetId":1,"to":100}"#, ErrorCode::InvalidRange),
            (
                r#"{"assetId":9,"from":0,"to":100}"#,
                ErrorCode::UnknownAsset,
            ),
            (r#"{"from":0,"to":100}"#, ErrorCode::InvalidAssetId),
        ] {
            assert_eq!(request(bad).expect_err(bad).code, code, "{bad}");
        }
    }

    #[test]
    fn candles_requests_name_an_interval_and_a_range_of_at_most_a_week() {
        let request = |m: &str| {
            parse_request(
                &format!(r#"{{"action":"candles","message":{m}}}"#),
                &assets(),
            )
        };
        let ok =
            request(r#"{"assetId":2,"interval":"15m","from":0,"to":604799}"#).expect("a full week");
        assert!(
            matches!(
                &ok,
                ClientRequest::Candles { asset, interval: Interval::M15, from: 0, to: 604_799 }
                    if &*asset.name == "USDJPY"
            ),
            "{ok:?}"
        );
        for (bad, code) in [
            (
                r#"{"assetId":1,"from":0,"to":100}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"assetId":1,"interval":"2m","from":0,"to":100}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"assetId":1,"interval":60,"from":0,"to":100}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"assetId":1,"interval":null,"from":0,"to":100}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"assetId":1,"interval":"1m","from":0,"to":604800}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"interval":"1m","from":200,"to":100}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"interval":"1m","from":-60,"to":100}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"interval":"1m","to":100}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":1,"interval":"1m","from":0,"to":9223372036854775807}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetId":9,"interval":"1m","from":0,"to":100}"#,
                ErrorCode::UnknownAsset,
            ),
            (
                r#"{"interval":"1m","from":0,"to":100}"#,
                ErrorCode::InvalidAssetId,
            ),
        ] {
            assert_eq!(request(bad).expect_err(bad).code, code, "{bad}");
        }
        let error = request(r#"{"assetId":1,"interval":"1M","from":0,"to":1}"#)
            .expect_err("months are not offered");
        assert_eq!(
            error.message,
            "unknown interval \"1M\"; expected one of 5s, 1m, 5m, 15m, 1h, 4h, 1d"
        );
    }

    proptest! {
        #[test]
        fn no_candles_request_makes_the_parser_panic(
            interval in prop_oneof![Just("\"1m\"".to_owned()), ".*"],
            from in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), ".*"],
            to in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), ".*"],
        ) {
            let text = format!(
                r#"{{"action":"candles","message":{{"assetId":1,"interval":{interval},"from":{from},"to":{to}}}}}"#
            );
            let _ = parse_request(&text, &assets());
        }

        #[test]
        fn no_text_makes_the_parser_panic(text in ".*") {
            let _ = parse_request(&text, &assets());
        }

        #[test]
        fn no_json_value_makes_the_parser_panic(
            action in prop_oneof![Just("\"assets\"".to_owned()), Just("\"subscribe\"".to_owned()), ".*"],
            id in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), any::<f64>().prop_map(|n| n.to_string()), ".*"],
        ) {
            let text = format!(r#"{{"action":{action},"message":{{"assetId":{id}}}}}"#);
            let _ = parse_request(&text, &assets());
        }
    }
}
