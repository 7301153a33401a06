//! `GET /v1/stream`: the request of a Server-Sent Events stream, parsed at the
//! edge, and its response.
//!
//! `assets` (names or ids, comma-separated, distinct, at least one) says what
//! it follows; `history=1` asks for an `asset_history` per asset first; a
//! resume position — the `Last-Event-ID` header an `EventSource` sends when it
//! reconnects, or else the `since` parameter (`since=T` for every asset, or
//! the id format, [`crate::sse::id`]) — resumes each asset after its position,
//! by the websocket's `since` rule. A resumed stream always starts with an
//! `asset_history` per asset (the points it missed, maybe none), so nothing
//! is lost between two connections whether or not `history` is given; a fresh
//! stream without `history` starts with live points. The stream counts against
//! `MAX_CONNECTIONS` as a websocket does (503 beyond it) and is never
//! compressed. What it sends and how it ends is [`crate::sse`]'s.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{Method, header},
    web,
};
use ratecast_core::{
    AssetList,
    protocol::{ErrorCode, Follow},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    Rest,
    errors::RestError,
    query::{Params, bad, parse_asset},
};
use crate::{
    sse::{
        self,
        id::{IdError, Positions},
    },
    transport::{ConnectionHandle, Connections},
};

/// What a stream needs of the server beyond [`Rest`]: its limit and its
/// shutdown, shared with the websocket sessions.
#[derive(Clone)]
pub struct Streams {
    /// Cancelled after the drain at shutdown: every stream ends.
    pub closing: CancellationToken,
    /// Every live session and stream, so shutdown waits for them.
    pub sessions: TaskTracker,
    /// Connections now open, for `max_connections`.
    pub connections: Connections,
    pub max_connections: usize,
}

/// A parsed stream request.
#[derive(Debug, PartialEq)]
pub struct StreamRequest {
    /// The assets, in the order given, each with its resume position.
    pub follows: Vec<Follow>,
    /// Whether an `asset_history` per asset starts the stream.
    pub histories: bool,
}

/// Parses the query string and the `Last-Event-ID` header (if sent) of a
/// stream request against the tracked `assets`.
pub fn parse_request(
    query: &str,
    last_event_id: Option<&[u8]>,
    assets: &AssetList,
) -> Result<StreamRequest, RestError> {
    let params = Params::parse(query)?;
    let listed = params
        .one("assets")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad(
                ErrorCode::InvalidAssetId,
                "missing \"assets\": names or ids, comma-separated, such as EURUSD,USDJPY",
            )
        })?;
    let mut follows: Vec<Follow> = Vec::new();
    for name in listed.split(',') {
        let asset = parse_asset(Some(name), assets)?;
        if follows.iter().any(|f| f.asset.id == asset.id) {
            return Err(bad(
                ErrorCode::InvalidRequest,
                format!("\"assets\" lists {} more than once", asset.name),
            ));
        }
        follows.push(Follow { asset, since: None });
    }
    let history = match params.one("history")? {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(bad(
                ErrorCode::InvalidRequest,
                format!("\"history\" must be 1 or 0, got {other:?}"),
            ));
        }
    };
    // The header wins: a browser reconnects to the URL it started with.
    let (positions, what) = match (
        last_event_id.filter(|id| !id.is_empty()),
        params.one("since")?,
    ) {
        (Some(id), _) => (
            parse_positions(id, assets, "Last-Event-ID")?,
            "Last-Event-ID",
        ),
        (None, Some(since)) if !since.is_empty() && since.bytes().all(|b| b.is_ascii_digit()) => {
            let since = since.parse::<i64>().map_err(|_| {
                bad(
                    ErrorCode::InvalidRange,
                    format!("\"since\" {since} is out of range"),
                )
            })?;
            for follow in &mut follows {
                follow.since = Some(since);
            }
            return Ok(StreamRequest {
                follows,
                histories: true,
            });
        }
        (None, Some(since)) => (
            parse_positions(since.as_bytes(), assets, "\"since\"")?,
            "\"since\"",
        ),
        (None, None) => {
            return Ok(StreamRequest {
                follows,
                histories: history,
            });
        }
    };
    if let Some(stray) = positions
        .assets()
        .find(|id| !follows.iter().any(|f| f.asset.id == *id))
    {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "{what} names asset {}, which \"assets\" does not list",
                stray.0
            ),
        ));
    }
    for follow in &mut follows {
        follow.since = positions.of(follow.asset.id);
    }
    Ok(StreamRequest {
        follows,
        histories: true,
    })
}

/// A resume position in the id format, or a 400 naming `what` gave it.
fn parse_positions(text: &[u8], assets: &AssetList, what: &str) -> Result<Positions, RestError> {
    let refused = |error: IdError| {
        bad(
            ErrorCode::InvalidRequest,
            format!(
                "{what} is not a stream position (<assetId>:<time>, comma-separated, \
                 as the stream's event ids): {error}"
            ),
        )
    };
    let text = std::str::from_utf8(text).map_err(|_| refused(IdError::Malformed("…".into())))?;
    Positions::parse(text, assets).map_err(refused)
}

/// The stream, or the error that refused it.
pub async fn get(
    req: HttpRequest,
    rest: web::Data<Rest>,
    streams: web::Data<Streams>,
) -> Result<HttpResponse, RestError> {
    rest.serving()?;
    let shared = &rest.shared;
    let request = parse_request(
        req.query_string(),
        req.headers().get("last-event-id").map(|v| v.as_bytes()),
        shared.hub.assets(),
    )?;
    // This connection holds a slot already (from accept): more than the limit
    // means others are open beside it.
    if streams.connections.open() > streams.max_connections {
        crate::metrics::sse_refused("max_connections");
        return Err(RestError::ConnectionLimit);
    }
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        // The stream is its connection's last response.
        .force_close();
    if req.method() == Method::HEAD {
        return Ok(response.finish());
    }
    let Some(connection) = req.conn_data::<ConnectionHandle>().cloned() else {
        // Every connection of `transport::build` has one.
        return Err(RestError::Unavailable("the stream"));
    };
    let config = &shared.config;
    let Some(outbound) = sse::open(
        &shared.hub,
        &request.follows,
        request.histories,
        config.max_queued_bytes,
    ) else {
        return Err(RestError::Unavailable("the stream"));
    };
    let body = outbound.body();
    let task = sse::run_stream(
        outbound,
        connection,
        config.sse_keepalive,
        config.send_timeout,
        streams.closing.clone(),
    );
    actix_web::rt::spawn(streams.sessions.track_future(task));
    Ok(response.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> AssetList {
        "EURUSD,USDJPY,GBPUSD".parse().expect("assets")
    }

    fn parse(query: &str, id: Option<&str>) -> Result<StreamRequest, RestError> {
        parse_request(query, id.map(str::as_bytes), &assets())
    }

    fn sinces(request: &StreamRequest) -> Vec<(u32, Option<i64>)> {
        request
            .follows
            .iter()
            .map(|f| (f.asset.id.0, f.since))
            .collect()
    }

    #[test]
    fn assets_are_names_or_ids_in_order_and_a_fresh_stream_has_histories_only_on_request() {
        let request = parse("assets=USDJPY,3,EURUSD", None).expect("valid");
        assert_eq!(sinces(&request), vec![(2, None), (3, None), (1, None)]);
        assert!(!request.histories);
        assert!(parse("assets=1&history=1", None).expect("valid").histories);
        assert!(!parse("assets=1&history=0", None).expect("valid").histories);
    }

    #[test]
    fn missing_repeated_unknown_and_malformed_assets_are_refused() {
        for (query, status) in [
            ("", 400),
            ("assets=", 400),
            ("assets=EURUSD,1", 400),
            ("assets=EURUSD&assets=USDJPY", 400),
            ("assets=EURUSD,", 400),
            ("assets=XAUUSD", 404),
            ("assets=9", 404),
            ("assets=1&history=yes", 400),
        ] {
            let error = parse(query, None).expect_err(query);
            assert_eq!(
                actix_web::ResponseError::status_code(&error).as_u16(),
                status,
                "{query}: {error}"
            );
        }
    }

    #[test]
    fn last_event_id_resumes_each_asset_and_wins_over_since() {
        let request = parse("assets=1,2,3&since=5", Some("1:100,3:300")).expect("valid");
        assert_eq!(
            sinces(&request),
            vec![(1, Some(100)), (2, None), (3, Some(300))]
        );
        assert!(request.histories, "a resume sends what was missed");
        let all = parse("assets=1,2&since=7", None).expect("valid");
        assert_eq!(sinces(&all), vec![(1, Some(7)), (2, Some(7))]);
        let per = parse("assets=1,2&since=2:9", None).expect("valid");
        assert_eq!(sinces(&per), vec![(1, None), (2, Some(9))]);
        let empty = parse("assets=1", Some("")).expect("an empty id is no id");
        assert_eq!(sinces(&empty), vec![(1, None)]);
    }

    #[test]
    fn a_malformed_or_stray_resume_position_is_a_400() {
        for (query, id) in [
            ("assets=1", Some("garbage")),
            ("assets=1", Some("1:5,1:6")),
            ("assets=1", Some("4:5")),
            ("assets=1", Some("2:5")),
            ("assets=1&since=-5", None),
            ("assets=1&since=1:x", None),
            ("assets=1&since=99999999999999999999", None),
        ] {
            let error = parse(query, id).expect_err(query);
            assert_eq!(
                actix_web::ResponseError::status_code(&error).as_u16(),
                400,
                "{query} {id:?}: {error}"
            );
        }
        let error =
            parse_request("assets=1", Some(&b"\xff:1"[..]), &assets()).expect_err("not UTF-8");
        assert_eq!(actix_web::ResponseError::status_code(&error).as_u16(), 400);
    }
}
