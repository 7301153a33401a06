//! Cheap reading of the server frames the load generator looks at.
//!
//! A generator holding 19,000 clients cannot afford a full JSON parse of every
//! 125 KB `asset_history`, so this module reads only what the checks need: the
//! `action`, and the `time`/`assetId` integers of points, found by plain substring
//! search in the compact JSON both servers write. It does not validate JSON; the
//! protocol tests of the server do that. The one-off `assets` reply is parsed with
//! serde_json.

use serde::Deserialize;

/// What one server frame is, as far as the generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Point,
    AssetHistory,
    Error,
    Other,
}

/// The kind of `text`, from its `"action"` member.
pub fn kind(text: &str) -> Kind {
    match action(text) {
        Some("point") => Kind::Point,
        Some("asset_history") => Kind::AssetHistory,
        Some("error") => Kind::Error,
        _ => Kind::Other,
    }
}

/// The value of the first `"action":"…"` member.
pub fn action(text: &str) -> Option<&str> {
    let rest = after_key(text, "\"action\":")?;
    let rest = rest.strip_prefix('"')?;
    rest.split_once('"').map(|(value, _)| value)
}

/// The asset and second of a live `point` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivePoint {
    pub asset_id: u32,
    pub time: i64,
}

/// Reads `assetId` and `time` of a `point` frame; `None` when either is missing.
pub fn live_point(text: &str) -> Option<LivePoint> {
    let time = leading_int(after_key(text, "\"time\":")?)?;
    let asset_id = leading_int(after_key(text, "\"assetId\":")?)?;
    Some(LivePoint {
        asset_id: u32::try_from(asset_id).ok()?,
        time,
    })
}

/// What an `asset_history` held, summarised without keeping its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryScan {
    /// Points in the history.
    pub count: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Every `time` is greater than the one before it.
    pub ascending: bool,
    /// Every `time` is exactly one more than the one before it.
    pub consecutive: bool,
    /// The `assetId` of the first point (the others are not read).
    pub asset_id: Option<u32>,
}

impl HistoryScan {
    /// A run of consecutive seconds at least `expected` long: the whole window.
    pub fn is_full(&self, expected: usize) -> bool {
        self.consecutive && self.count >= expected
    }
}

/// Walks the `"time":` members of an `asset_history` frame.
pub fn scan_history(text: &str) -> HistoryScan {
    let mut scan = HistoryScan {
        ascending: true,
        consecutive: true,
        asset_id: after_key(text, "\"assetId\":")
            .and_then(leading_int)
            .and_then(|id| u32::try_from(id).ok()),
        ..HistoryScan::default()
    };
    const KEY: &str = "\"time\":";
    for (at, _) in text.match_indices(KEY) {
        let Some(time) = leading_int(&text[at + KEY.len()..]) else {
            continue;
        };
        if let Some(last) = scan.last {
            scan.ascending &= time > last;
            scan.consecutive &= time == last + 1;
        }
        scan.first.get_or_insert(time);
        scan.last = Some(time);
        scan.count += 1;
    }
    scan
}

/// One asset of the `assets` reply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WireAsset {
    pub id: u32,
    pub name: String,
}

#[derive(Deserialize)]
struct AssetsFrame {
    action: String,
    message: AssetsMessage,
}

#[derive(Deserialize)]
struct AssetsMessage {
    assets: Vec<WireAsset>,
}

/// The assets of an `assets` reply; `None` for any other frame.
pub fn assets(text: &str) -> Option<Vec<WireAsset>> {
    let frame: AssetsFrame = serde_json::from_str(text).ok()?;
    (frame.action == "assets").then_some(frame.message.assets)
}

/// The text after the first `key`, with leading spaces skipped.
fn after_key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)?;
    Some(text[at + key.len()..].trim_start())
}

/// The integer at the start of `text` (an optional `-`, then digits).
fn leading_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    let end = text.len() - digits.len() + len;
    if len == 0 {
        return None;
    }
    text[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: &str = r#"{"action":"point","message":{"assetName":"EURUSD","time":1700000000,"assetId":1,"value":1.091185}}"#;

    #[test]
    fn a_point_frame_yields_its_asset_and_second() {
        assert_eq!(kind(POINT), Kind::Point);
        assert_eq!(
            live_point(POINT),
            Some(LivePoint {
                asset_id: 1,
                time: 1_700_000_000
            })
        );
    }

    #[test]
    fn frames_are_told_apart_by_their_action() {
        assert_eq!(
            kind(r#"{"action":"asset_history","message":{"points":[]}}"#),
            Kind::AssetHistory
        );
        assert_eq!(
            kind(r#"{"action":"error","message":{"code":"x","error":"y"}}"#),
            Kind::Error
        );
        assert_eq!(kind(r#"{"action": "assets","message":{}}"#), Kind::Other);
        assert_eq!(kind("not json"), Kind::Other);
    }

    #[test]
    fn a_point_without_a_time_is_not_read() {
        assert_eq!(
            live_point(r#"{"action":"point","message":{"assetId":1}}"#),
            None
        );
        assert_eq!(
            live_point(r#"{"action":"point","message":{"time":"x","assetId":1}}"#),
            None
        );
    }

    fn history(times: &[i64]) -> String {
        let points: Vec<String> = times
            .iter()
            .map(|t| format!(r#"{{"assetName":"USDJPY","time":{t},"assetId":2,"value":150.5}}"#))
            .collect();
        format!(
            r#"{{"action":"asset_history","message":{{"points":[{}]}}}}"#,
            points.join(",")
        )
    }

    #[test]
    fn a_consecutive_history_is_full_when_it_is_long_enough() {
        let scan = scan_history(&history(&[10, 11, 12]));
        assert_eq!(scan.count, 3);
        assert_eq!((scan.first, scan.last), (Some(10), Some(12)));
        assert!(scan.ascending && scan.consecutive);
        assert_eq!(scan.asset_id, Some(2));
        assert!(scan.is_full(3));
        assert!(!scan.is_full(4));
    }

    #[test]
    fn a_history_with_a_hole_or_a_step_back_is_flagged() {
        let holed = scan_history(&history(&[10, 12]));
        assert!(holed.ascending && !holed.consecutive);
        let back = scan_history(&history(&[10, 11, 11]));
        assert!(!back.ascending && !back.consecutive);
    }

    #[test]
    fn an_empty_history_has_no_bounds() {
        let scan = scan_history(r#"{"action":"asset_history","message":{"points":[]}}"#);
        assert_eq!(scan.count, 0);
        assert_eq!(scan.last, None);
        assert_eq!(scan.asset_id, None);
    }

    #[test]
    fn the_assets_reply_lists_ids_and_names() {
        let text = r#"{"action":"assets","message":{"assets":[{"id":1,"name":"EURUSD"},{"id":2,"name":"USDJPY"}]}}"#;
        let list = assets(text).expect("an assets frame");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].id, 2);
        assert_eq!(list[1].name, "USDJPY");
        assert_eq!(assets(POINT), None);
    }

    #[test]
    fn negative_and_spaced_integers_are_read() {
        assert_eq!(leading_int("-5,"), Some(-5));
        assert_eq!(leading_int("42}"), Some(42));
        assert_eq!(leading_int("-"), None);
        assert_eq!(
            live_point(r#"{"time": 7, "assetId": 3}"#),
            Some(LivePoint {
                asset_id: 3,
                time: 7
            })
        );
    }
}
