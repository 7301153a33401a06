//! `GET /v1/history?asset=…&from=…&to=…`: the stored points of one asset in a
//! range, paged and limited exactly like the websocket's `history`
//! ([`crate::history`]: one page is at most [`PAGE_SECS`](crate::history::PAGE_SECS)
//! seconds, the same process-wide query slots and deadline), answered with the
//! websocket reply's `message` (`{"assetId","from","to","points","next"}`) and,
//! when there is a next page, a `Link: <…>; rel="next"` header.
//!
//! The query string is parsed here, at the edge; the range itself is checked
//! by the websocket's own parser (the same rules and wording, declared once).

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use ratecast_core::{
    Asset, AssetList, Point,
    protocol::{ClientRequest, ErrorCode, RangeMessage, WirePoint},
};

use super::{
    Rest,
    cache::{history_cache_control, json_reply},
    errors::RestError,
    query::{Params, bad},
    settle,
};
use crate::history::{NotStarted, page};

/// A parsed `history` query.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub asset: Asset,
    pub from: i64,
    pub to: i64,
}

/// Parses `asset`, `from` and `to` from a query string; other parameters are
/// ignored, a repeated one is refused.
pub fn parse_query(query: &str, assets: &AssetList) -> Result<HistoryQuery, RestError> {
    match Params::parse(query)?.as_request("history", &["from", "to"], assets)? {
        ClientRequest::History { asset, from, to } => Ok(HistoryQuery { asset, from, to }),
        // A history message parses as history; nothing else reaches here.
        _ => Err(bad(ErrorCode::InvalidRequest, "not a history request")),
    }
}

/// The body of a page.
fn page_body(asset: &Asset, from: i64, to: i64, points: &[Point], next: Option<i64>) -> Vec<u8> {
    let points = points
        .iter()
        .map(|p| WirePoint {
            asset_name: Cow::Borrowed(&asset.name),
            time: p.time,
            asset_id: asset.id.0,
            value: p.value,
        })
        .collect();
    serde_json::to_vec(&RangeMessage {
        asset_id: asset.id.0,
        from,
        to,
        points,
        next,
    })
    .expect("plain structs of strings and finite numbers always serialize")
}

pub async fn get(req: HttpRequest, rest: web::Data<Rest>) -> Result<HttpResponse, RestError> {
    rest.serving()?;
    let hub = &rest.shared.hub;
    let HistoryQuery { asset, from, to } = parse_query(req.query_string(), hub.assets())?;
    let (page_to, next) = page(from, to);
    let query = rest
        .shared
        .history
        .start(asset.id, from, page_to)
        .map_err(|NotStarted::ServerBusy| RestError::Busy("history"))?;
    let points = settle(query.await, "history", crate::metrics::history_query)?;
    let body = page_body(&asset, from, page_to, &points, next);
    let cache_control = history_cache_control(page_to, hub.now_secs());
    Ok(json_reply(&req, body, &cache_control, |response| {
        if let Some(next) = next {
            response.insert_header((
                header::LINK,
                format!(
                    "</v1/history?asset={}&from={next}&to={to}>; rel=\"next\"",
                    asset.name
                ),
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratecast_core::AssetId;

    fn assets() -> AssetList {
        "EURUSD,USDJPY,1234".parse().expect("assets")
    }

    fn error(query: &str) -> (String, String) {
        match parse_query(query, &assets()) {
            Err(error) => (error.code().to_owned(), error.to_string()),
            Ok(parsed) => panic!("{query} parsed as {parsed:?}"),
        }
    }

    #[test]
    fn an_asset_is_found_by_name_or_by_id() {
        let by_name = parse_query("asset=USDJPY&from=1&to=2", &assets()).expect("by name");
        let by_id = parse_query("from=1&to=2&asset=2", &assets()).expect("by id");
        assert_eq!(by_name, by_id);
        assert_eq!(
            (by_name.asset.id, by_name.from, by_name.to),
            (AssetId(2), 1, 2)
        );
        // A name made of digits is a name first.
        let named = parse_query("asset=1234&from=1&to=2", &assets()).expect("name");
        assert_eq!(named.asset.id, AssetId(3));
    }

    #[test]
    fn bad_parameters_get_the_websocket_codes_and_wording() {
        for (query, code, message) in [
            ("from=1&to=2", "invalid_asset_id", "missing \"asset\""),
            (
                "asset=&from=1&to=2",
                "invalid_asset_id",
                "missing \"asset\"",
            ),
            ("asset=0&from=1&to=2", "invalid_asset_id", "out of range"),
            (
                "asset=99999999999&from=1&to=2",
                "invalid_asset_id",
                "out of range",
            ),
            ("asset=XAUUSD&from=1&to=2", "unknown_asset", "XAUUSD"),
            ("asset=9&from=1&to=2", "unknown_asset", "\"9\""),
            ("asset=1&to=2", "invalid_range", "missing \"from\""),
            ("asset=1&from=1", "invalid_range", "missing \"to\""),
            ("asset=1&from=-5&to=2", "invalid_range", "got -5"),
            (
                "asset=1&from=x&to=2",
                "invalid_range",
                "got the string \"x\"",
            ),
            ("asset=1&from=1.5&to=2", "invalid_range", "\"from\""),
            ("asset=1&from=3&to=2", "invalid_range", "is after"),
            ("asset=1&from=0&to=86400", "invalid_range", "86401 seconds"),
            (
                "asset=1&asset=2&from=1&to=2",
                "invalid_request",
                "more than once",
            ),
        ] {
            let (got_code, got_message) = error(query);
            assert_eq!(got_code, code, "{query}");
            assert!(
                got_message.contains(message),
                "{query}: {got_message:?} lacks {message:?}"
            );
        }
    }

    #[test]
    fn a_page_body_is_the_websocket_reply_message() {
        let assets = assets();
        let asset = assets.get(AssetId(1)).expect("asset");
        let points = [ratecast_core::Point {
            asset_id: AssetId(1),
            asset_name: "EURUSD".into(),
            time: 5,
            value: 1.5,
        }];
        let frame = ratecast_core::protocol::range_frame(asset, 5, 9, &points, Some(10));
        let expected = frame
            .strip_prefix(r#"{"action":"history","message":"#)
            .and_then(|s| s.strip_suffix('}'))
            .expect("a history frame")
            .to_owned();
        assert_eq!(
            String::from_utf8(page_body(asset, 5, 9, &points, Some(10))).expect("utf-8"),
            expected
        );
    }
}
