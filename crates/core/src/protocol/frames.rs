//! Server frames: every message the server sends ([`ServerMessage`]),
//! serialized once into a [`ByteString`] that any number of connections can share.

use std::borrow::Cow;

use bytestring::ByteString;

use super::{
    messages::{
        AssetsMessage, CandleHistoryMessage, CandlesMessage, ErrorMessage, LiveCandle,
        PointsMessage, RangeMessage, ServerMessage, UnsubscribedMessage, WireAsset, WireCandle,
        WirePoint,
    },
    request::RequestError,
};
use crate::{
    asset::{Asset, AssetId, AssetList},
    candle::{Candle, Interval},
    point::Point,
};

fn frame(message: &ServerMessage<'_>) -> ByteString {
    let json = serde_json::to_string(message)
        .expect("plain structs of strings and finite numbers always serialize");
    ByteString::from(json)
}

/// `point` as its messages carry it, borrowing its name.
fn wire_point(point: &Point) -> WirePoint<'_> {
    WirePoint {
        asset_name: Cow::Borrowed(&point.asset_name),
        time: point.time,
        asset_id: point.asset_id.0,
        value: point.value,
    }
}

/// `asset`'s point `(time, value)` as its messages carry it.
fn asset_point(asset: &Asset, (time, value): (i64, f64)) -> WirePoint<'_> {
    WirePoint {
        asset_name: Cow::Borrowed(&asset.name),
        time,
        asset_id: asset.id.0,
        value,
    }
}

/// `{"action":"assets","message":{"assets":[{"id":1,"name":"EURUSD"},…]}}`
pub fn assets_frame(assets: &AssetList) -> ByteString {
    let assets = assets
        .iter()
        .map(|a| WireAsset {
            id: a.id.0,
            name: Cow::Borrowed(&a.name),
        })
        .collect();
    frame(&ServerMessage::Assets(AssetsMessage { assets }))
}

/// `{"action":"point","message":{"assetName":…,"time":…,"assetId":…,"value":…}}`
pub fn point_frame(point: &Point) -> ByteString {
    frame(&ServerMessage::Point(wire_point(point)))
}

/// What a `point` frame holds before its point object.
pub const POINT_FRAME_PREFIX: &str = r#"{"action":"point","message":"#;
/// What a `point` frame holds after its point object.
pub const POINT_FRAME_SUFFIX: &str = "}";
/// What an `asset_history` frame of asset `id` holds before its
/// comma-separated point objects.
pub fn history_frame_prefix(id: AssetId) -> String {
    format!(
        r#"{{"action":"asset_history","message":{{"assetId":{},"points":["#,
        id.0
    )
}
/// What an `asset_history` frame holds after its point objects.
pub const HISTORY_FRAME_SUFFIX: &str = "]}}";

/// Appends `point`'s JSON object, the `message` of its `point` frame and its
/// element of an `asset_history`: a server serializes each point once and
/// builds both frames from these bytes ([`POINT_FRAME_PREFIX`],
/// [`HISTORY_FRAME_PREFIX`] and their suffixes around them).
pub fn write_point_object(out: &mut Vec<u8>, point: &Point) {
    serde_json::to_writer(out, &wire_point(point))
        .expect("a struct of a string and finite numbers always serializes");
}

/// `{"action":"asset_history","message":{"assetId":N,"points":[…]}}` for
/// `asset`'s `(time, value)` pairs.
pub fn history_frame(asset: &Asset, points: impl Iterator<Item = (i64, f64)>) -> ByteString {
    let points = points.map(|point| asset_point(asset, point)).collect();
    frame(&ServerMessage::AssetHistory(PointsMessage {
        asset_id: Some(asset.id.0),
        points,
    }))
}

/// `{"action":"history","message":{"assetId":…,"from":…,"to":…,"points":[…]}}`,
/// plus `"next":T` when the request reached past `to` and the next page starts at T.
pub fn range_frame(
    asset: &Asset,
    from: i64,
    to: i64,
    points: &[Point],
    next: Option<i64>,
) -> ByteString {
    let points = points
        .iter()
        .map(|p| asset_point(asset, (p.time, p.value)))
        .collect();
    frame(&ServerMessage::History(RangeMessage {
        asset_id: asset.id.0,
        from,
        to,
        points,
        next,
    }))
}

/// `{"action":"candles","message":{"assetId":…,"interval":…,"from":…,"to":…,
/// "candles":[{"time":…,"open":…,"high":…,"low":…,"close":…,"count":…,"closed":…},…],
/// "next":T|null}}`: the candles starting in `[from, to]`, and where the next
/// page starts (`null` when the request ends at `to`).
pub fn candles_frame(
    asset: &Asset,
    interval: Interval,
    range: (i64, i64),
    candles: &[Candle],
    next: Option<i64>,
) -> ByteString {
    frame(&ServerMessage::Candles(candles_message(
        asset, interval, range, candles, next,
    )))
}

/// The `message` of a `candles` reply, which the HTTP API also answers with.
pub fn candles_message(
    asset: &Asset,
    interval: Interval,
    (from, to): (i64, i64),
    candles: &[Candle],
    next: Option<i64>,
) -> CandlesMessage<'static> {
    let candles = candles.iter().map(wire_candle).collect();
    CandlesMessage {
        asset_id: asset.id.0,
        interval: Cow::Borrowed(interval.as_str()),
        from,
        to,
        candles,
        next,
    }
}

/// A candle as every message carries it.
fn wire_candle(c: &Candle) -> WireCandle {
    WireCandle {
        time: c.time,
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        count: c.count,
        closed: c.closed,
    }
}

/// `{"action":"candle_history","message":{"assetId":…,"interval":…,"candles":[…]}}`:
/// what a subscription with `candles` starts from.
pub fn candle_history_frame(asset: AssetId, interval: Interval, candles: &[Candle]) -> ByteString {
    frame(&ServerMessage::CandleHistory(CandleHistoryMessage {
        asset_id: asset.0,
        interval: Cow::Borrowed(interval.as_str()),
        candles: candles.iter().map(wire_candle).collect(),
    }))
}

/// `{"action":"candle","message":{"assetId":…,"interval":…,"time":…,"open":…,
/// "high":…,"low":…,"close":…,"count":…,"closed":…}}`: one live candle.
pub fn candle_frame(asset: AssetId, interval: Interval, candle: &Candle) -> ByteString {
    frame(&ServerMessage::Candle(LiveCandle {
        asset_id: asset.0,
        interval: Cow::Borrowed(interval.as_str()),
        time: candle.time,
        open: candle.open,
        high: candle.high,
        low: candle.low,
        close: candle.close,
        count: candle.count,
        closed: candle.closed,
    }))
}

/// `{"action":"unsubscribed","message":{"assetId":N|null,"assetIds":[…]}}`:
/// the assets no longer followed; `assetId` is the first, `null` when none.
pub fn unsubscribed_frame(stopped: &[AssetId]) -> ByteString {
    frame(&ServerMessage::Unsubscribed(UnsubscribedMessage {
        asset_id: stopped.first().map(|a| a.0),
        asset_ids: stopped.iter().map(|a| a.0).collect(),
    }))
}

/// `{"action":"error","message":{"code":…,"error":…}}`
pub fn error_frame(error: &RequestError) -> ByteString {
    frame(&ServerMessage::Error(ErrorMessage {
        code: Cow::Borrowed(error.code.as_str()),
        error: Cow::Borrowed(&error.message),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn assets() -> AssetList {
        "EURUSD,USDJPY".parse().expect("valid list")
    }

    #[test]
    fn frames_built_from_point_objects_equal_the_serialized_frames() {
        let list = assets();
        let asset = list.get(AssetId(2)).expect("asset 2");
        let points: Vec<Point> = [(10, 150.5), (11, 150.25)]
            .into_iter()
            .map(|(time, value)| Point {
                asset_id: AssetId(2),
                asset_name: "USDJPY".into(),
                time,
                value,
            })
            .collect();
        let objects: Vec<Vec<u8>> = points
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                write_point_object(&mut out, p);
                out
            })
            .collect();
        let point = [
            POINT_FRAME_PREFIX.as_bytes(),
            &objects[0],
            POINT_FRAME_SUFFIX.as_bytes(),
        ]
        .concat();
        assert_eq!(point, point_frame(&points[0]).as_bytes().to_vec());
        let history = [
            history_frame_prefix(AssetId(2)).as_bytes(),
            &objects.join(&b","[..]),
            HISTORY_FRAME_SUFFIX.as_bytes(),
        ]
        .concat();
        assert_eq!(
            history,
            history_frame(asset, [(10, 150.5), (11, 150.25)].into_iter())
                .as_bytes()
                .to_vec()
        );
        let empty = [&history_frame_prefix(AssetId(2)), HISTORY_FRAME_SUFFIX].concat();
        assert_eq!(empty, &*history_frame(asset, std::iter::empty()));
    }

    #[test]
    fn frames_have_the_documented_shapes() {
        let list = assets();
        assert_eq!(
            &*assets_frame(&list),
            r#"{"action":"assets","message":{"assets":[{"id":1,"name":"EURUSD"},{"id":2,"name":"USDJPY"}]}}"#
        );
        let point = Point {
            asset_id: AssetId(1),
            asset_name: "EURUSD".into(),
            time: 1_700_000_000,
            value: 1.091185,
        };
        assert_eq!(
            &*point_frame(&point),
            r#"{"action":"point","message":{"assetName":"EURUSD","time":1700000000,"assetId":1,"value":1.091185}}"#
        );
        let asset = list.get(AssetId(2)).expect("asset 2");
        assert_eq!(
            &*history_frame(asset, [(10, 150.5), (11, 150.25)].into_iter()),
            r#"{"action":"asset_history","message":{"assetId":2,"points":[{"assetName":"USDJPY","time":10,"assetId":2,"value":150.5},{"assetName":"USDJPY","time":11,"assetId":2,"value":150.25}]}}"#
        );
        assert_eq!(
            &*history_frame(asset, std::iter::empty()),
            r#"{"action":"asset_history","message":{"assetId":2,"points":[]}}"#
        );
        let point = Point {
            asset_id: AssetId(2),
            asset_name: "USDJPY".into(),
            time: 10,
            value: 150.5,
        };
        assert_eq!(
            &*range_frame(asset, 5, 20, std::slice::from_ref(&point), None),
            r#"{"action":"history","message":{"assetId":2,"from":5,"to":20,"points":[{"assetName":"USDJPY","time":10,"assetId":2,"value":150.5}]}}"#
        );
        assert_eq!(
            &*range_frame(asset, 5, 20, &[point], Some(21)),
            r#"{"action":"history","message":{"assetId":2,"from":5,"to":20,"points":[{"assetName":"USDJPY","time":10,"assetId":2,"value":150.5}],"next":21}}"#
        );
        assert_eq!(
            &*unsubscribed_frame(&[AssetId(3), AssetId(1)]),
            r#"{"action":"unsubscribed","message":{"assetId":3,"assetIds":[3,1]}}"#
        );
        assert_eq!(
            &*unsubscribed_frame(&[]),
            r#"{"action":"unsubscribed","message":{"assetId":null,"assetIds":[]}}"#
        );
        let candle = Candle {
            time: 120,
            open: 1.5,
            high: 1.75,
            low: 1.25,
            close: 1.5,
            count: 60,
            closed: false,
            last_time: 179,
        };
        assert_eq!(
            &*candles_frame(asset, Interval::M1, (100, 179), &[candle], None),
            r#"{"action":"candles","message":{"assetId":2,"interval":"1m","from":100,"to":179,"candles":[{"time":120,"open":1.5,"high":1.75,"low":1.25,"close":1.5,"count":60,"closed":false}],"next":null}}"#
        );
        assert_eq!(
            &*candle_history_frame(AssetId(2), Interval::M1, &[candle]),
            r#"{"action":"candle_history","message":{"assetId":2,"interval":"1m","candles":[{"time":120,"open":1.5,"high":1.75,"low":1.25,"close":1.5,"count":60,"closed":false}]}}"#
        );
        assert_eq!(
            &*candle_frame(AssetId(2), Interval::M1, &candle),
            r#"{"action":"candle","message":{"assetId":2,"interval":"1m","time":120,"open":1.5,"high":1.75,"low":1.25,"close":1.5,"count":60,"closed":false}}"#
        );
        assert_eq!(
            &*candles_frame(asset, Interval::H4, (0, 10), &[], Some(11)),
            r#"{"action":"candles","message":{"assetId":2,"interval":"4h","from":0,"to":10,"candles":[],"next":11}}"#
        );
        let err = RequestError::new(ErrorCode::UnknownAsset, "say \"hi\"");
        assert_eq!(
            &*error_frame(&err),
            r#"{"action":"error","message":{"code":"unknown_asset","error":"say \"hi\""}}"#
        );
    }
}
