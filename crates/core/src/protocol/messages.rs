//! The shapes of the server's messages, both ways: the server serializes them
//! into frames ([`frames`](super::frames)), clients (`ratecast watch`, the bench)
//! deserialize them. One definition, so the two cannot drift.
//!
//! On the wire a message is `{"action":…,"message":…}`: [`ServerMessage`] is
//! adjacently tagged, its variant the `action`, its content the `message`. Field
//! order is the wire order. Strings are `Cow` so the server writes borrowed
//! names and a client reads owned ones.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Every message a server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "message", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// The answer to `assets`.
    Assets(AssetsMessage<'a>),
    /// The first answer to `subscribe`: the recent points, ascending.
    AssetHistory(PointsMessage<'a>),
    /// One new point of the subscribed asset.
    Point(WirePoint<'a>),
    /// One page of the answer to `history`.
    History(RangeMessage<'a>),
    /// One page of the answer to `candles`.
    Candles(CandlesMessage<'a>),
    /// The first answer to a subscription with `candles`, per asset: its
    /// recent closed candles, then the running one.
    CandleHistory(CandleHistoryMessage<'a>),
    /// One candle of a subscription with `candles`: the running one again
    /// (`closed:false`) or its final state (`closed:true`, once per interval).
    Candle(LiveCandle<'a>),
    /// The answer to `unsubscribe`.
    Unsubscribed(UnsubscribedMessage),
    /// A refused request.
    Error(ErrorMessage<'a>),
}

/// A point as every message carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePoint<'a> {
    pub asset_name: Cow<'a, str>,
    pub time: i64,
    pub asset_id: u32,
    pub value: f64,
}

/// An asset in the `assets` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAsset<'a> {
    pub id: u32,
    pub name: Cow<'a, str>,
}

/// `{"assets":[…]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetsMessage<'a> {
    pub assets: Vec<WireAsset<'a>>,
}

/// `{"assetId":N,"points":[…]}` (`assetId` is absent from servers before it
/// was added, so an empty history could not say its asset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PointsMessage<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<u32>,
    pub points: Vec<WirePoint<'a>>,
}

/// `{"assetId":…,"from":…,"to":…,"points":[…]}`, plus `"next":T` when the
/// request reached past `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeMessage<'a> {
    pub asset_id: u32,
    pub from: i64,
    pub to: i64,
    pub points: Vec<WirePoint<'a>>,
    /// Where the next page starts, when the request reached further than `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// A candle as the `candles` answer carries it (see [`Candle`](crate::Candle)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WireCandle {
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub count: u64,
    pub closed: bool,
}

/// `{"assetId":…,"interval":…,"from":…,"to":…,"candles":[…],"next":T|null}`:
/// the candles starting in `[from, to]`; `next` is where the next page starts,
/// `null` when the request ends at `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandlesMessage<'a> {
    pub asset_id: u32,
    pub interval: Cow<'a, str>,
    pub from: i64,
    pub to: i64,
    pub candles: Vec<WireCandle>,
    pub next: Option<i64>,
}

/// `{"assetId":…,"interval":…,"candles":[…]}`: the closed candles a
/// subscription with `candles` starts from, ascending, then the running one
/// (`closed:false`) if its interval has points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandleHistoryMessage<'a> {
    pub asset_id: u32,
    pub interval: Cow<'a, str>,
    pub candles: Vec<WireCandle>,
}

/// `{"assetId":…,"interval":…,"time":…,"open":…,"high":…,"low":…,"close":…,
/// "count":…,"closed":…}`: a [`WireCandle`] with its asset and interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCandle<'a> {
    pub asset_id: u32,
    pub interval: Cow<'a, str>,
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub count: u64,
    pub closed: bool,
}

/// `{"assetId":N|null,"assetIds":[…]}`: the assets no longer followed, in the
/// order they were; `assetId` is the first of them (the one asset a
/// single-asset client followed), `null` when none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribedMessage {
    pub asset_id: Option<u32>,
    /// Absent from servers before several assets per connection.
    #[serde(default)]
    pub asset_ids: Vec<u32>,
}

/// `{"code":…,"error":…}`: an [`ErrorCode`](super::ErrorCode) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage<'a> {
    pub code: Cow<'a, str>,
    pub error: Cow<'a, str>,
}

impl ServerMessage<'_> {
    /// Reads one server frame.
    ///
    /// # Errors
    /// When `frame` is not JSON or not one of the server's messages.
    pub fn parse(frame: &str) -> Result<ServerMessage<'static>, serde_json::Error> {
        serde_json::from_str(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, time: i64, value: f64) -> WirePoint<'static> {
        WirePoint {
            asset_name: Cow::Owned(name.to_owned()),
            time,
            asset_id: 2,
            value,
        }
    }

    /// Every variant, serialized, read back equal, and serialized again to the
    /// same bytes.
    #[test]
    fn every_message_survives_a_round_trip_byte_for_byte() {
        let messages = [
            ServerMessage::Assets(AssetsMessage {
                assets: vec![WireAsset {
                    id: 1,
                    name: "EURUSD".into(),
                }],
            }),
            ServerMessage::AssetHistory(PointsMessage {
                asset_id: Some(2),
                points: vec![point("USDJPY", 10, 150.5), point("USDJPY", 11, 150.25)],
            }),
            ServerMessage::AssetHistory(PointsMessage {
                asset_id: Some(2),
                points: vec![],
            }),
            ServerMessage::Point(point("USDJPY", 1_700_000_000, 1.091185)),
            ServerMessage::History(RangeMessage {
                asset_id: 2,
                from: 5,
                to: 20,
                points: vec![point("USDJPY", 10, 150.5)],
                next: Some(21),
            }),
            ServerMessage::History(RangeMessage {
                asset_id: 2,
                from: 5,
                to: 20,
                points: vec![],
                next: None,
            }),
            ServerMessage::Candles(CandlesMessage {
                asset_id: 1,
                interval: "1m".into(),
                from: 60,
                to: 179,
                candles: vec![WireCandle {
                    time: 120,
                    open: 1.5,
                    high: 1.75,
                    low: 1.25,
                    close: 1.5,
                    count: 60,
                    closed: true,
                }],
                next: Some(180),
            }),
            ServerMessage::Candles(CandlesMessage {
                asset_id: 1,
                interval: "1d".into(),
                from: 0,
                to: 86_399,
                candles: vec![],
                next: None,
            }),
            ServerMessage::CandleHistory(CandleHistoryMessage {
                asset_id: 1,
                interval: "5s".into(),
                candles: vec![WireCandle {
                    time: 120,
                    open: 1.5,
                    high: 1.75,
                    low: 1.25,
                    close: 1.5,
                    count: 5,
                    closed: false,
                }],
            }),
            ServerMessage::Candle(LiveCandle {
                asset_id: 2,
                interval: "1h".into(),
                time: 3_600,
                open: 150.5,
                high: 151.0,
                low: 150.25,
                close: 150.75,
                count: 3_600,
                closed: true,
            }),
            ServerMessage::Unsubscribed(UnsubscribedMessage {
                asset_id: Some(3),
                asset_ids: vec![3, 1],
            }),
            ServerMessage::Unsubscribed(UnsubscribedMessage {
                asset_id: None,
                asset_ids: vec![],
            }),
            ServerMessage::Error(ErrorMessage {
                code: "unknown_asset".into(),
                error: "say \"hi\"".into(),
            }),
        ];
        for message in messages {
            let json = serde_json::to_string(&message).expect("serializes");
            let read = ServerMessage::parse(&json).expect("parses");
            assert_eq!(read, message, "{json}");
            assert_eq!(serde_json::to_string(&read).expect("serializes"), json);
        }
    }

    #[test]
    fn documented_frames_parse_into_their_messages() {
        assert_eq!(
            ServerMessage::parse(
                r#"{"action":"point","message":{"assetName":"EURUSD","time":1700000000,"assetId":1,"value":1.091185}}"#
            )
            .expect("a point"),
            ServerMessage::Point(WirePoint {
                asset_name: "EURUSD".into(),
                time: 1_700_000_000,
                asset_id: 1,
                value: 1.091185,
            })
        );
        // As servers sent them before several assets per connection.
        assert_eq!(
            ServerMessage::parse(r#"{"action":"asset_history","message":{"points":[]}}"#)
                .expect("an old history"),
            ServerMessage::AssetHistory(PointsMessage {
                asset_id: None,
                points: vec![]
            })
        );
        assert_eq!(
            ServerMessage::parse(r#"{"action":"unsubscribed","message":{"assetId":2}}"#)
                .expect("an old unsubscribed"),
            ServerMessage::Unsubscribed(UnsubscribedMessage {
                asset_id: Some(2),
                asset_ids: vec![]
            })
        );
        assert!(ServerMessage::parse(r#"{"action":"gossip","message":{}}"#).is_err());
        assert!(ServerMessage::parse("not json").is_err());
    }
}
