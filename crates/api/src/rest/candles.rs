//! `GET /v1/candles?asset=…&interval=…&from=…&to=…&limit=…`: one asset's
//! candles (`5s` … `1d`, UTC-aligned, empty intervals omitted) computed by the
//! store, paged and limited exactly like the websocket's `candles` (the same
//! range rules and words, process-wide query slots and deadline), answered with
//! the websocket reply's `message` (`{"assetId","interval","from","to",
//! "candles","next"}`) and, when there is a next page, a `Link: <…>;
//! rel="next"` header. `limit` (1 to 1,000, default 1,000) makes a page cover
//! fewer intervals. Freshness follows `history`'s rule ([`super::cache`]): a
//! page that ends over two hours ago is settled, every candle in it closed.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use ratecast_core::{
    candle::{PAGE_CANDLES, page_of},
    protocol::{ClientRequest, ErrorCode, candles_message},
};

use super::{
    Rest,
    cache::{history_cache_control, json_reply},
    errors::RestError,
    query::{Params, bad},
    settle,
};
use crate::history::NotStarted;

/// `limit`: absent is a full page; otherwise 1 to [`PAGE_CANDLES`].
fn parse_limit(given: Option<&str>) -> Result<i64, RestError> {
    let Some(text) = given else {
        return Ok(PAGE_CANDLES);
    };
    text.parse::<i64>()
        .ok()
        .filter(|limit| (1..=PAGE_CANDLES).contains(limit))
        .ok_or_else(|| {
            bad(
                ErrorCode::InvalidRequest,
                format!("\"limit\" must be an integer from 1 to {PAGE_CANDLES}, got {text:?}"),
            )
        })
}

pub async fn get(req: HttpRequest, rest: web::Data<Rest>) -> Result<HttpResponse, RestError> {
    rest.serving()?;
    let hub = &rest.shared.hub;
    let params = Params::parse(req.query_string())?;
    let limit = parse_limit(params.one("limit")?)?;
    let ClientRequest::Candles {
        asset,
        interval,
        from,
        to,
    } = params.as_request("candles", &["interval", "from", "to"], hub.assets())?
    else {
        // A candles message parses as candles; nothing else reaches here.
        return Err(bad(ErrorCode::InvalidRequest, "not a candles request"));
    };
    let (page_to, next) = page_of(interval, from, to, limit);
    let query = rest
        .shared
        .history
        .start_candles(
            asset.id,
            interval,
            (from, page_to),
            usize::try_from(limit).unwrap_or(1),
        )
        .map_err(|NotStarted::ServerBusy| RestError::Busy("candles"))?;
    let candles = settle(query.await, "candles", crate::metrics::candles_query)?;
    let message = candles_message(&asset, interval, (from, page_to), &candles, next);
    let body = serde_json::to_vec(&message)
        .expect("plain structs of strings and finite numbers always serialize");
    let cache_control = history_cache_control(page_to, hub.now_secs());
    Ok(json_reply(&req, body, &cache_control, |response| {
        if let Some(next) = next {
            response.insert_header((
                header::LINK,
                format!(
                    "</v1/candles?asset={}&interval={interval}&from={next}&to={to}&limit={limit}>; \
                     rel=\"next\"",
                    asset.name
                ),
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_whole_number_of_candles_up_to_a_page() {
        assert_eq!(parse_limit(None).ok(), Some(PAGE_CANDLES));
        assert_eq!(parse_limit(Some("1")).ok(), Some(1));
        assert_eq!(parse_limit(Some("1000")).ok(), Some(1000));
        for bad in ["0", "1001", "-1", "1.5", "ten", ""] {
            let error = parse_limit(Some(bad)).expect_err(bad);
            assert_eq!(error.code(), "invalid_request", "{bad}");
        }
    }
}
