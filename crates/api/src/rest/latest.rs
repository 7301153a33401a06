//! `GET /v1/latest`: the newest point of every asset, from this replica's
//! window (not the store): `{"points":[…]}` in asset id order, each point the
//! websocket's point object, an asset with no point in the last 30 minutes
//! left out. The point objects are the hub's shared bytes, copied once into
//! the body.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{Rest, cache::json_reply, errors::RestError};

/// `no-cache` with an `ETag`: the answer changes with every new point, and a
/// client polling faster than points arrive gets 304.
pub async fn get(req: HttpRequest, rest: web::Data<Rest>) -> Result<HttpResponse, RestError> {
    rest.serving()?;
    let hub = &rest.shared.hub;
    let points = hub.latest(hub.now_secs());
    let objects: usize = points.iter().map(|p| p.object().len() + 1).sum();
    let mut body = Vec::with_capacity(objects + 16);
    body.extend_from_slice(br#"{"points":["#);
    for (i, point) in points.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(point.object());
    }
    body.extend_from_slice(b"]}");
    Ok(json_reply(&req, body, "no-cache", |_| {}))
}
