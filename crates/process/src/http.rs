//! The endpoints every service answers the same way: `/healthz` (the process is
//! alive) and `/metrics` (the Prometheus page of the recorder the binary
//! installed). Readiness means something different in each service and stays
//! with it.

use crate::metrics::{CONTENT_TYPE, PrometheusHandle};
use actix_web::{HttpResponse, http::header::ContentType, web};

/// `GET /healthz`: `ok` while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("ok\n")
}

/// `GET /metrics` over the handle in the app's data.
pub async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    metrics_page(&handle)
}

/// The `/metrics` page of `handle`, for a handler that records scrape-time
/// values first.
pub fn metrics_page(handle: &PrometheusHandle) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(handle.render())
}
