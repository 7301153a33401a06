//! The read-only HTTP API under `/v1`: `GET /v1/assets`, `/v1/history`,
//! `/v1/candles`, `/v1/latest` and the SSE `/v1/stream` (one file each), their one error shape
//! ([`errors`]), their query strings ([`query`]) and their validators and
//! freshness ([`cache`]). `docs/openapi.yaml` describes them.
//!
//! The scope answers JSON only: every error, actix's own included (an unknown
//! path, a method other than `GET`/`HEAD`, an encoding that cannot be served),
//! is `{"error":{"code":…,"message":…}}`. Bodies are gzip- or br-compressed
//! when the client asks (never the stream: it is registered before the scope,
//! outside its compression), and every answer says `Vary: Accept-Encoding`. Until this
//! replica's window was loaded once, and from the moment shutdown starts, every
//! `/v1` request is answered 503 with `Retry-After`, as websocket upgrades are.
//! Plain HTTP connections count against `MAX_CONNECTIONS` in
//! [`crate::transport`], not here. The websocket, the page and the probes are
//! [`crate::server`]'s.

mod assets;
mod cache;
mod candles;
mod errors;
mod history;
mod latest;
mod query;
mod stream;

use std::sync::Arc;

use actix_web::{
    Error, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    guard,
    http::{
        StatusCode,
        header::{self, HeaderValue},
    },
    middleware::{Compress, Next, from_fn},
    web,
};
use tokio_util::sync::CancellationToken;

pub use self::{
    cache::{SETTLED_AFTER_SECS, SETTLED_MAX_AGE_SECS},
    errors::RestError,
    history::{HistoryQuery, parse_query},
    stream::{StreamRequest, Streams, parse_request as parse_stream_request},
};
use crate::{history::Answered, session};

/// What the `/v1` handlers share.
pub struct Rest {
    /// The hub (assets, window) and the process-wide `history` queries, the
    /// same ones the websocket sessions use.
    shared: Arc<session::Shared>,
    /// Cancelled when shutdown starts: from then on `/v1` answers 503.
    shutdown: CancellationToken,
    /// `GET /v1/assets`'s body, built once.
    assets_body: Vec<u8>,
}

impl Rest {
    /// Whether this replica answers `/v1` now.
    fn serving(&self) -> Result<(), RestError> {
        if self.shutdown.is_cancelled() {
            Err(RestError::ShuttingDown)
        } else if !self.shared.hub.has_loaded() {
            Err(RestError::NotReady)
        } else {
            Ok(())
        }
    }
}

/// Registers the `/v1` scope (for `App::configure`), and before it the SSE
/// stream, which shares its error shape but not its compression.
pub fn routes(
    shared: Arc<session::Shared>,
    shutdown: CancellationToken,
    streams: Streams,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let rest = web::Data::new(Rest {
            assets_body: assets::assets_body(shared.hub.assets()),
            shared,
            shutdown,
        });
        config.service(
            resource("/v1/stream", stream::get)
                .app_data(rest.clone())
                .app_data(web::Data::new(streams))
                .wrap(from_fn(json_errors)),
        );
        config.service(
            web::scope("/v1")
                .app_data(rest)
                .wrap(Compress::default())
                .wrap(from_fn(json_errors))
                .service(resource("/assets", assets::get))
                .service(resource("/history", history::get))
                .service(resource("/candles", candles::get))
                .service(resource("/latest", latest::get))
                .default_service(web::to(not_found)),
        );
    }
}

/// The outcome of a `what` store read (`history`, `candles`), recorded by
/// `record`: its answer, or 503 `unavailable` (the read logged its failure).
fn settle<T>(
    answered: Answered<T>,
    what: &'static str,
    record: fn(&'static str),
) -> Result<T, RestError> {
    let outcome = match answered {
        Answered::Points(answer) => {
            record("ok");
            return Ok(answer);
        }
        Answered::Failed(_) => "failed",
        Answered::TimedOut => "timed_out",
    };
    record(outcome);
    Err(RestError::Unavailable(what))
}

/// A resource answering `GET` and `HEAD` with `handler`, and 405 to any other
/// method.
fn resource<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        )
        .default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    RestError::NotFound(req.path().to_owned()).error_response()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    RestError::MethodNotAllowed(req.method().to_string()).error_response()
}

/// Makes every answer of the scope say `Vary: Accept-Encoding` (the encoder
/// says it only when it compressed) and turns any error that is not JSON yet
/// (actix's own) into the one error shape.
async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let response = next.call(req).await?;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    let mut response = if response.status().is_client_error() && !is_json {
        let status = response.status();
        let (req, _) = response.into_parts();
        ServiceResponse::new(req, actix_error(status).error_response())
    } else {
        response.map_into_boxed_body()
    };
    let headers = response.headers_mut();
    if !headers.contains_key(header::VARY) {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    Ok(response)
}

/// The error of ours that an error status of actix's own means.
fn actix_error(status: StatusCode) -> RestError {
    match status {
        StatusCode::NOT_ACCEPTABLE => RestError::NotAcceptable,
        StatusCode::METHOD_NOT_ALLOWED => RestError::MethodNotAllowed("this method".into()),
        StatusCode::NOT_FOUND => RestError::NotFound("this path".into()),
        _ => RestError::BadRequest(ratecast_core::protocol::RequestError::new(
            ratecast_core::protocol::ErrorCode::InvalidRequest,
            format!("the request was refused ({status})"),
        )),
    }
}
