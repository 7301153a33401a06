//! The process's Prometheus recorder: the binary installs it, every `/metrics`
//! endpoint renders it.

use std::sync::OnceLock;

/// What renders the recorder's page; handed from the binary to its library.
pub use metrics_exporter_prometheus::PrometheusHandle;
/// A recorder that is not installed, for tests that record into their own
/// ([`standalone_recorder`]).
pub use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// The `Content-Type` of a rendered `/metrics` page (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets of every `*_seconds` series: 1 ms to 5 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process's Prometheus recorder and returns its handle, which
/// renders every `/metrics` page. Binaries call it at start-up, before anything
/// records (metric handles taken before a recorder exists stay no-ops), and
/// hand the handle to their library's `run`; libraries never install it. Later
/// calls (several servers in one test process) get the same recorder.
pub fn install_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// A Prometheus recorder of its own, not installed: a test records into it with
/// `metrics::with_local_recorder` and reads it with its `handle()`, untouched by
/// whatever else the test process records.
pub fn standalone_recorder() -> PrometheusRecorder {
    PrometheusBuilder::new().build_recorder()
}
