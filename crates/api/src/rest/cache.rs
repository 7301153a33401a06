//! Validators and freshness of `/v1` answers: the `ETag` of a body, the
//! `If-None-Match` check that turns a match into 304, and the rule that says
//! when a `history` page may be reused without asking.
//!
//! # When a history page cannot change
//!
//! A page `[from, to]` changes in two ways after it was first answered:
//!
//! - **Points arrive late.** The fetcher keeps what the store refused in its
//!   write buffer and flushes it when the store is back; its capacity is
//!   `FETCHER_BUFFER_SECONDS` (default 900) seconds of points for all assets,
//!   so with assets missing from upstream it spans up to that many seconds
//!   times the number of assets (4,500 s for the default five). A second
//!   fetcher (high availability) writes the same seconds, never others.
//! - **Retention deletes points** older than the store keeps (24 h for the
//!   memory store, 7 days for MongoDB by default): a page only ever loses
//!   them, and only once it is that old.
//!
//! So a page whose `to` is more than [`SETTLED_AFTER_SECS`] in the past
//! (longer than the default buffer can span) is **settled**: it is served with
//! `Cache-Control: public, max-age=`[`SETTLED_MAX_AGE_SECS`]. A cache may then
//! serve, for up to that hour, points that retention has deleted since, never a
//! point that was not stored. Any other page (it reaches into the last two
//! hours or the future) is `no-cache`: a cache must revalidate it. Every page
//! carries an `ETag` computed from its bytes, so revalidation is exact
//! whatever the rule says; a deployment with a larger fetcher buffer only
//! makes a cached settled page miss a late point for up to an hour.

use std::hash::{DefaultHasher, Hash, Hasher};

use actix_web::{
    HttpRequest, HttpResponse, HttpResponseBuilder,
    http::{StatusCode, header},
};

use super::errors::mime_json;

/// How far in the past a page's `to` must be for the page to be settled: two
/// hours, more than the fetcher's default buffer spans with assets missing
/// (4,500 s).
pub const SETTLED_AFTER_SECS: i64 = 7200;

/// How long a cache may reuse a settled page without revalidating.
pub const SETTLED_MAX_AGE_SECS: i64 = 3600;

/// The `Cache-Control` of a `history` page ending at `to`, at second `now`.
pub fn history_cache_control(to: i64, now: i64) -> String {
    if to < now.saturating_sub(SETTLED_AFTER_SECS) {
        format!("public, max-age={SETTLED_MAX_AGE_SECS}")
    } else {
        "no-cache".to_owned()
    }
}

/// A weak validator of `body`: equal bodies, equal tags. Weak, because the same
/// tag names the identity, gzip and br forms of the body. The hash is the
/// standard library's (fixed keys), stable across the replicas of one build.
pub fn etag(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

/// Whether the request's `If-None-Match` names `etag` (or is `*`), compared
/// weakly as RFC 9110 §13.1.2 asks.
fn matches(req: &HttpRequest, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(etag);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == wanted)
}

/// A JSON `200` of `body` with its `ETag` and `cache_control`, or a bodiless
/// `304` when the request already holds it.
pub fn json_reply(
    req: &HttpRequest,
    body: Vec<u8>,
    cache_control: &str,
    extra: impl FnOnce(&mut HttpResponseBuilder),
) -> HttpResponse {
    let etag = etag(&body);
    let not_modified = matches(req, &etag);
    let mut response = HttpResponse::build(if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control.to_owned()));
    extra(&mut response);
    if not_modified {
        return response.finish();
    }
    response.content_type(mime_json()).body(body)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn only_a_page_ending_two_hours_ago_is_cached_without_revalidation() {
        let now = 1_700_000_000;
        assert_eq!(history_cache_control(now, now), "no-cache");
        assert_eq!(history_cache_control(now + 60, now), "no-cache");
        assert_eq!(
            history_cache_control(now - SETTLED_AFTER_SECS, now),
            "no-cache"
        );
        assert_eq!(
            history_cache_control(now - SETTLED_AFTER_SECS - 1, now),
            "public, max-age=3600"
        );
    }

    #[test]
    fn equal_bodies_have_equal_tags_and_different_ones_different_tags() {
        assert_eq!(etag(b"{}"), etag(b"{}"));
        assert_ne!(etag(b"{\"a\":1}"), etag(b"{\"a\":2}"));
        assert!(etag(b"x").starts_with("W/\""));
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_the_star() {
        let tag = etag(b"body");
        let strong = tag.trim_start_matches("W/").to_owned();
        for (header_value, expected) in [
            (tag.clone(), true),
            (strong, true),
            (format!("\"nope\", {tag}"), true),
            ("*".to_owned(), true),
            ("\"nope\"".to_owned(), false),
        ] {
            let req = TestRequest::default()
                .insert_header((header::IF_NONE_MATCH, header_value.clone()))
                .to_http_request();
            assert_eq!(matches(&req, &tag), expected, "{header_value}");
        }
        assert!(!matches(&TestRequest::default().to_http_request(), &tag));
    }
}
