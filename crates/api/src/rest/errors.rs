//! The one error body of the HTTP API: `{"error":{"code":…,"message":…}}`, with
//! its status code and headers. The codes are the websocket's
//! [`ErrorCode`] strings where one fits, and a few of the HTTP layer's own
//! (`not_found`, `method_not_allowed`, `not_ready`, `shutting_down`,
//! `not_acceptable`, `connection_limit`). This module does not decide when a request fails; the
//! handlers and [`super::json_errors`] do.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use ratecast_core::protocol::{ErrorCode, RequestError};
use serde::Serialize;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Why a `/v1` request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// A parameter is missing, repeated or malformed (400); the websocket's
    /// code and wording where it checks the same thing.
    #[error("{}", .0.message)]
    BadRequest(RequestError),
    /// No tracked asset has that name or id (404 `unknown_asset`).
    #[error("no tracked asset is named or numbered {0:?}")]
    UnknownAsset(String),
    /// No `/v1` resource at that path (404 `not_found`).
    #[error("no resource at {0}")]
    NotFound(String),
    /// The resource exists, but answers only `GET` and `HEAD` (405).
    #[error("{0} is not allowed here; use GET")]
    MethodNotAllowed(String),
    /// None of the encodings the client accepts can be served (406).
    #[error("none of the accepted encodings can be served; accept identity, gzip or br")]
    NotAcceptable,
    /// The history window has not been loaded yet (503 `not_ready`).
    #[error("starting: history window not loaded yet")]
    NotReady,
    /// Shutdown started: this replica answers nothing new (503 `shutting_down`).
    #[error("shutting down; retry on another replica")]
    ShuttingDown,
    /// The process holds as many connections as it allows (503
    /// `connection_limit`): a stream is refused, as a websocket upgrade is.
    #[error("connection limit reached; try another server or later")]
    ConnectionLimit,
    /// Every process-wide `history` slot is taken (503 `busy`).
    #[error("the server is answering as many {0} requests as it allows; retry shortly")]
    Busy(&'static str),
    /// The store failed or did not answer in time (503 `unavailable`).
    #[error("{0} is unavailable right now; retry shortly")]
    Unavailable(&'static str),
}

impl RestError {
    /// The `code` member of the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(error) => error.code.as_str(),
            Self::UnknownAsset(_) => ErrorCode::UnknownAsset.as_str(),
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::NotAcceptable => "not_acceptable",
            Self::NotReady => "not_ready",
            Self::ShuttingDown => "shutting_down",
            Self::ConnectionLimit => "connection_limit",
            Self::Busy(_) => ErrorCode::Busy.as_str(),
            Self::Unavailable(_) => ErrorCode::Unavailable.as_str(),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

/// The JSON body of an error with `code` and `message`.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&Body {
        error: Detail { code, message },
    })
    .expect("two strings always serialize")
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownAsset(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::NotReady
            | Self::ShuttingDown
            | Self::ConnectionLimit
            | Self::Busy(_)
            | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response
            .content_type(mime_json())
            .insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::MethodNotAllowed(_) => {
                response.insert_header((header::ALLOW, "GET, HEAD"));
            }
            Self::NotReady
            | Self::ShuttingDown
            | Self::ConnectionLimit
            | Self::Busy(_)
            | Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            Self::BadRequest(_) | Self::UnknownAsset(_) | Self::NotFound(_) => {}
            Self::NotAcceptable => {}
        }
        if matches!(self, Self::ShuttingDown) {
            // The load balancer sends the retry elsewhere once this one is gone.
            response.force_close();
        }
        response.body(error_body(self.code(), &self.to_string()))
    }
}

/// `application/json`, the type of every `/v1` body.
pub fn mime_json() -> header::ContentType {
    header::ContentType::json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_the_one_body_shape_and_a_status_of_its_kind() {
        let cases = [
            (
                RestError::BadRequest(RequestError::new(ErrorCode::InvalidRange, "bad")),
                400,
                "invalid_range",
            ),
            (
                RestError::UnknownAsset("XAUUSD".into()),
                404,
                "unknown_asset",
            ),
            (RestError::NotFound("/v1/x".into()), 404, "not_found"),
            (
                RestError::MethodNotAllowed("POST".into()),
                405,
                "method_not_allowed",
            ),
            (RestError::NotAcceptable, 406, "not_acceptable"),
            (RestError::NotReady, 503, "not_ready"),
            (RestError::ShuttingDown, 503, "shutting_down"),
            (RestError::ConnectionLimit, 503, "connection_limit"),
            (RestError::Busy("history"), 503, "busy"),
            (RestError::Unavailable("candles"), 503, "unavailable"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status_code().as_u16(), status, "{error:?}");
            let body: serde_json::Value =
                serde_json::from_slice(&error_body(error.code(), &error.to_string()))
                    .expect("json");
            assert_eq!(body["error"]["code"], code);
            assert_eq!(body["error"]["message"], error.to_string());
            assert_eq!(body.as_object().map(|o| o.len()), Some(1));
        }
    }
}
