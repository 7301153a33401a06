//! Client requests: one text frame in, a [`ClientRequest`] or a [`RequestError`] out.
//!
//! Every client frame is parsed here, once; the error's code and text go back to
//! the client verbatim in an `error` frame. Nothing downstream re-validates.

use serde_json::{Map, Value};

use crate::{
    asset::{Asset, AssetId, AssetList},
    candle::{Interval, MAX_CANDLE_RANGE_SECS},
};

/// One asset a connection follows, and the time its client already has it up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Follow {
    pub asset: Asset,
    /// With `since`, the asset's history holds only points after it (a
    /// reconnecting client gets exactly what it missed).
    pub since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientRequest {
    /// `{"action":"assets","message":{}}`
    Assets,
    /// `{"action":"subscribe","message":{"assetId":N}}`, N a tracked asset;
    /// with `"since":T` the history holds only points after T (a reconnecting
    /// client gets exactly what it missed).
    Subscribe { asset: Asset, since: Option<i64> },
    /// `{"action":"subscribe","message":{"assetIds":[N,…]}}`: follow exactly
    /// these assets (distinct, tracked, at least one, in the client's order),
    /// each with its own optional `since`: `"since":T` for all of them, or
    /// `"since":{"N":T,…}` per asset.
    SubscribeMany(Vec<Follow>),
    /// `{"action":"add","message":{"assetId":N}}`, with an optional `since`:
    /// follow N as well, the other followed assets untouched.
    Add(Follow),
    /// `subscribe` (with `assetId` or `assetIds`, and `since`) plus
    /// `"candles":"1m"`: follow exactly these assets as candles of `interval`
    /// (`since`: the time of the last closed candle the client holds).
    SubscribeCandles {
        follows: Vec<Follow>,
        interval: Interval,
    },
    /// `add` plus `"candles":"5s"`: follow one more asset as candles of `interval`.
    AddCandles { follow: Follow, interval: Interval },
    /// `{"action":"remove","message":{"assetId":N}}`: stop following N only.
    Remove(Asset),
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
    /// `candles` without an `interval` or with one not offered, or a
    /// subscription's `candles` option naming no offered interval.
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
pub const ACTIONS: &[&str] = &[
    "assets",
    "subscribe",
    "unsubscribe",
    "history",
    "candles",
    "add",
    "remove",
];

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
        "subscribe" | "add" if message.get("candles").is_some_and(|c| !c.is_null()) => {
            parse_candle_follow(&action, &message, assets)
        }
        "assets" => Ok(ClientRequest::Assets),
        "subscribe" if message.contains_key("assetIds") => {
            parse_follows(&message, assets).map(ClientRequest::SubscribeMany)
        }
        "subscribe" => Ok(ClientRequest::Subscribe {
            asset: parse_asset(&message, assets)?,
            since: optional_time(&message, "since")?,
        }),
        "add" => Ok(ClientRequest::Add(Follow {
            asset: parse_asset(&message, assets)?,
            since: optional_time(&message, "since")?,
        })),
        "remove" => Ok(ClientRequest::Remove(parse_asset(&message, assets)?)),
        "unsubscribe" => Ok(ClientRequest::Unsubscribe),
        "candles" => parse_candles(&message, assets),
        _ => parse_history(&message, assets),
    }
}

/// `subscribe` with `assetIds` (and no `assetId`), each with its `since`.
fn parse_follows(
    message: &Map<String, Value>,
    assets: &AssetList,
) -> Result<Vec<Follow>, RequestError> {
    let invalid = |detail: String| RequestError::new(ErrorCode::InvalidAssetId, detail);
    if message.contains_key("assetId") {
        return Err(invalid(
            "send either \"assetId\" (one asset) or \"assetIds\" (several), not both".into(),
        ));
    }
    let ids = match message.get("assetIds") {
        Some(Value::Array(ids)) if !ids.is_empty() => ids,
        Some(Value::Array(_)) => {
            return Err(invalid(
                "\"assetIds\" is empty; send \"unsubscribe\" to follow nothing".into(),
            ));
        }
        Some(other) => {
            return Err(invalid(format!(
                "\"assetIds\" must be an array of asset ids, got {}",
                describe(other)
            )));
        }
        None => return Err(invalid("missing \"assetIds\"".into())),
    };
    let mut follows: Vec<Follow> = Vec::with_capacity(ids.len().min(assets.len()));
    for id in ids {
        let asset = known_asset(asset_id(id, true)?, assets)?;
        if follows.iter().any(|f| f.asset.id == asset.id) {
            return Err(invalid(format!(
                "\"assetIds\" lists asset {} twice",
                asset.id.0
            )));
        }
        follows.push(Follow { asset, since: None });
    }
    match message.get("since") {
        Some(Value::Object(per_asset)) => {
            for (key, value) in per_asset {
                let follow = key
                    .parse::<u32>()
                    .ok()
                    .and_then(|id| follows.iter_mut().find(|f| f.asset.id.0 == id))
                    .ok_or_else(|| {
                        RequestError::new(
                            ErrorCode::InvalidRange,
                            format!(
                                "\"since\" names {}, which \"assetIds\" does not list",
                                describe(&Value::String(key.clone()))
                            ),
                        )
                    })?;
                follow.since = time_value(value, "since")?;
            }
        }
        _ => {
            let since = optional_time(message, "since")?;
            for follow in &mut follows {
                follow.since = since;
            }
        }
    }
    Ok(follows)
}

/// `subscribe` or `add` with a `candles` option (not `null`): the same
/// assets and `since` as without it, followed as candles of that interval.
fn parse_candle_follow(
    action: &str,
    message: &Map<String, Value>,
    assets: &AssetList,
) -> Result<ClientRequest, RequestError> {
    let interval = interval_field(message, "candles")?;
    if action == "add" {
        let follow = Follow {
            asset: parse_asset(message, assets)?,
            since: optional_time(message, "since")?,
        };
        return Ok(ClientRequest::AddCandles { follow, interval });
    }
    let follows = if message.contains_key("assetIds") {
        parse_follows(message, assets)?
    } else {
        vec![Follow {
            asset: parse_asset(message, assets)?,
            since: optional_time(message, "since")?,
        }]
    };
    Ok(ClientRequest::SubscribeCandles { follows, interval })
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
    interval_field(message, "interval")
}

/// The interval named by `field` (`interval`, or a subscription's `candles`).
fn interval_field(message: &Map<String, Value>, field: &str) -> Result<Interval, RequestError> {
    let invalid = |detail: String| RequestError::new(ErrorCode::InvalidInterval, detail);
    match message.get(field) {
        None => Err(invalid(format!(
            "missing \"{field}\" (one of 5s, 1m, 5m, 15m, 1h, 4h, 1d)"
        ))),
        Some(Value::String(name)) => name
            .parse()
            .map_err(|unknown: crate::candle::UnknownInterval| invalid(unknown.to_string())),
        Some(other) => Err(invalid(format!(
            "\"{field}\" must be a string such as \"1m\", got {}",
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
    message
        .get(field)
        .map_or(Ok(None), |value| time_value(value, field))
}

/// A Unix-seconds value: `null` is `None`.
fn time_value(value: &Value, field: &str) -> Result<Option<i64>, RequestError> {
    match value {
        Value::Null => Ok(None),
        value => value.as_i64().filter(|t| *t >= 0).map(Some).ok_or_else(|| {
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
    let value = message
        .get("assetId")
        .ok_or_else(|| RequestError::new(ErrorCode::InvalidAssetId, "missing \"assetId\""))?;
    known_asset(asset_id(value, false)?, assets)
}

/// The tracked asset with `id`, or `unknown_asset`.
fn known_asset(id: AssetId, assets: &AssetList) -> Result<Asset, RequestError> {
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

/// An asset id: the value of `assetId`, or (`in_list`) an element of `assetIds`.
fn asset_id(value: &Value, in_list: bool) -> Result<AssetId, RequestError> {
    let invalid = |detail: String| RequestError::new(ErrorCode::InvalidAssetId, detail);
    let what = if in_list {
        "each of \"assetIds\""
    } else {
        "\"assetId\""
    };
    let id = value
        .as_u64()
        .ok_or_else(|| {
            invalid(format!(
                "{what} must be a positive integer, got {}",
                describe(value)
            ))
        })
        .and_then(|id| {
            u32::try_from(id)
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid(format!("{what} {id} is out of range")))
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
            "unknown action \"sub\"; expected one of assets, subscribe, unsubscribe, history, candles, add, remove"
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

    fn three() -> AssetList {
        "EURUSD,USDJPY,GBPUSD".parse().expect("valid list")
    }

    /// The `(id, since)` of each followed asset of a many-asset `subscribe`.
    fn followed(text: &str) -> Result<Vec<(u32, Option<i64>)>, ErrorCode> {
        match parse_request(text, &three()) {
            Ok(ClientRequest::SubscribeMany(follows)) => {
                Ok(follows.iter().map(|f| (f.asset.id.0, f.since)).collect())
            }
            Ok(other) => panic!("{text}: {other:?}"),
            Err(error) => Err(error.code),
        }
    }

    #[test]
    fn subscribe_with_asset_ids_follows_each_in_order_with_its_own_since() {
        let many = |m: &str| followed(&format!(r#"{{"action":"subscribe","message":{m}}}"#));
        assert_eq!(
            many(r#"{"assetIds":[3,1]}"#),
            Ok(vec![(3, None), (1, None)])
        );
        assert_eq!(
            many(r#"{"assetIds":[1,3],"since":1700000000}"#),
            Ok(vec![(1, Some(1_700_000_000)), (3, Some(1_700_000_000))]),
            "one since for every asset"
        );
        assert_eq!(
            many(r#"{"assetIds":[1,2,3],"since":{"3":30,"1":10,"2":null}}"#),
            Ok(vec![(1, Some(10)), (2, None), (3, Some(30))]),
            "a since per asset, absent or null for none"
        );
        assert_eq!(
            many(r#"{"assetIds":[2],"since":null}"#),
            Ok(vec![(2, None)])
        );
    }

    #[test]
    fn a_bad_asset_ids_subscribe_gets_the_code_of_what_is_wrong() {
        let many = |m: &str| followed(&format!(r#"{{"action":"subscribe","message":{m}}}"#));
        for (bad, code) in [
            (r#"{"assetIds":[]}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":[1,1]}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":1}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":null}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":["1"]}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":[0]}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":[4294967296]}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":[1],"assetId":1}"#, ErrorCode::InvalidAssetId),
            (r#"{"assetIds":[1,4]}"#, ErrorCode::UnknownAsset),
            (r#"{"assetIds":[1],"since":-1}"#, ErrorCode::InvalidRange),
            (r#"{"assetIds":[1],"since":"5"}"#, ErrorCode::InvalidRange),
            (
                r#"{"assetIds":[1],"since":{"2":5}}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetIds":[1],"since":{"x":5}}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"assetIds":[1],"since":{"1":1.5}}"#,
                ErrorCode::InvalidRange,
            ),
        ] {
            assert_eq!(many(bad), Err(code), "{bad}");
        }
        let error = parse_request(
            r#"{"action":"subscribe","message":{"assetIds":[2,2]}}"#,
            &three(),
        )
        .expect_err("a duplicate");
        assert_eq!(error.message, "\"assetIds\" lists asset 2 twice");
    }

    #[test]
    fn add_and_remove_name_one_asset_and_a_plain_subscribe_keeps_its_meaning() {
        let parse = |text: &str| parse_request(text, &three());
        assert!(matches!(
            parse(r#"{"action":"add","message":{"assetId":3,"since":7}}"#),
            Ok(ClientRequest::Add(Follow { asset, since: Some(7) })) if asset.id == AssetId(3)
        ));
        assert!(matches!(
            parse(r#"{"action":"add","message":{"assetId":2}}"#),
            Ok(ClientRequest::Add(Follow { since: None, .. }))
        ));
        assert!(matches!(
            parse(r#"{"action":"remove","message":{"assetId":1}}"#),
            Ok(ClientRequest::Remove(asset)) if asset.id == AssetId(1)
        ));
        assert!(matches!(
            parse(r#"{"action":"subscribe","message":{"assetId":2,"since":9}}"#),
            Ok(ClientRequest::Subscribe { since: Some(9), .. })
        ));
        for (bad, code) in [
            (
                r#"{"action":"add","message":{}}"#,
                ErrorCode::InvalidAssetId,
            ),
            (
                r#"{"action":"add","message":{"assetId":9}}"#,
                ErrorCode::UnknownAsset,
            ),
            (
                r#"{"action":"add","message":{"assetId":1,"since":-3}}"#,
                ErrorCode::InvalidRange,
            ),
            (
                r#"{"action":"remove","message":{"assetId":"1"}}"#,
                ErrorCode::InvalidAssetId,
            ),
            (
                r#"{"action":"remove","message":{"assetId":4}}"#,
                ErrorCode::UnknownAsset,
            ),
        ] {
            assert_eq!(parse(bad).expect_err(bad).code, code, "{bad}");
        }
    }

    #[test]
    fn subscribe_and_add_with_candles_follow_the_same_assets_as_candles() {
        let parse = |text: &str| parse_request(text, &three());
        let one =
            parse(r#"{"action":"subscribe","message":{"assetId":2,"candles":"1m","since":60}}"#);
        assert!(
            matches!(&one, Ok(ClientRequest::SubscribeCandles { follows, interval: Interval::M1 })
                if follows.len() == 1 && follows[0].asset.id == AssetId(2) && follows[0].since == Some(60)),
            "{one:?}"
        );
        let many = parse(
            r#"{"action":"subscribe","message":{"assetIds":[3,1],"candles":"5s","since":{"1":10}}}"#,
        );
        assert!(
            matches!(&many, Ok(ClientRequest::SubscribeCandles { follows, interval: Interval::S5 })
                if follows.iter().map(|f| (f.asset.id.0, f.since)).collect::<Vec<_>>() == [(3, None), (1, Some(10))]),
            "{many:?}"
        );
        let add = parse(r#"{"action":"add","message":{"assetId":1,"candles":"1d"}}"#);
        assert!(
            matches!(&add, Ok(ClientRequest::AddCandles { follow, interval: Interval::D1 })
                if follow.asset.id == AssetId(1) && follow.since.is_none()),
            "{add:?}"
        );
        assert!(
            matches!(
                parse(r#"{"action":"subscribe","message":{"assetId":1,"candles":null}}"#),
                Ok(ClientRequest::Subscribe { .. })
            ),
            "null: points, as without it"
        );
        for (bad, code) in [
            (
                r#"{"action":"subscribe","message":{"assetId":1,"candles":"2m"}}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"action":"subscribe","message":{"assetIds":[1],"candles":60}}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"action":"add","message":{"assetId":1,"candles":"1M"}}"#,
                ErrorCode::InvalidInterval,
            ),
            (
                r#"{"action":"add","message":{"assetId":9,"candles":"1m"}}"#,
                ErrorCode::UnknownAsset,
            ),
            (
                r#"{"action":"subscribe","message":{"assetIds":[1,1],"candles":"1m"}}"#,
                ErrorCode::InvalidAssetId,
            ),
            (
                r#"{"action":"subscribe","message":{"assetId":1,"candles":"1m","since":-1}}"#,
                ErrorCode::InvalidRange,
            ),
        ] {
            assert_eq!(parse(bad).expect_err(bad).code, code, "{bad}");
        }
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

        #[test]
        fn no_asset_ids_or_since_make_the_parser_panic(
            ids in ".*",
            since in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), ".*"],
        ) {
            let text = format!(
                r#"{{"action":"subscribe","message":{{"assetIds":[{ids}],"since":{{"1":{since}}}}}}}"#
            );
            let _ = parse_request(&text, &assets());
        }
    }
}
