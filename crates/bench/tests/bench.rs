//! The load generator, run for real but small: 50 clients for a few seconds
//! against the all-in-one server (simulated rates, in-memory store) and against
//! the baseline server, both in this process on port 0. It checks what the
//! generator reports about correctness, never how fast anything was: the numbers
//! belong in docs/benchmarks.md, not in assertions.

use clap::Parser;
use ratecast_bench::{BaselineConfig, LoadConfig, Report, baseline::serve_baseline, run_load};
use ratecast_testkit::Service;
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 50;

async fn run_small_load(url: &str, label: &str) -> Report {
    let pid = std::process::id().to_string();
    let clients = CLIENTS.to_string();
    let config = LoadConfig::try_parse_from([
        "run",
        "--url",
        url,
        "--clients",
        &clients,
        "--ramp",
        "200",
        "--hold",
        "3s",
        "--progress",
        "1s",
        "--settle",
        "1s",
        "--source-ips",
        "4",
        "--server-pid",
        &pid,
        "--label",
        label,
    ])
    .expect("valid generator flags");
    run_load(config, CancellationToken::new())
        .await
        .expect("the run completes")
}

fn assert_every_client_got_everything(report: &Report) {
    let text = report.to_string();
    let connect = &report.connect;
    assert_eq!(connect.attempted, CLIENTS as u64, "{text}");
    assert_eq!(connect.connected, CLIENTS as u64, "{text}");
    assert_eq!(connect.histories, CLIENTS as u64, "{text}");
    assert_eq!(connect.open_at_end, CLIENTS as u64, "{text}");
    assert_eq!(
        (
            connect.connect_errors,
            connect.history_failures,
            connect.dropped
        ),
        (0, 0, 0),
        "{text}"
    );
    let verdict = &report.verdict;
    assert_eq!(verdict.full_histories, CLIENTS as u64, "{text}");
    assert_eq!(verdict.short_histories, 0, "{text}");
    assert_eq!(
        (
            verdict.missed,
            verdict.missed_at_end,
            verdict.duplicates,
            verdict.seam_errors,
            verdict.foreign_points
        ),
        (0, 0, 0, 0, 0),
        "{text}"
    );
    assert!(report.errors.is_empty(), "{text}");
    assert_eq!(report.time_to_history.count, CLIENTS as u64, "{text}");
    assert!(report.delivery.total_messages > 0, "{text}");
    let server = report.server.as_ref().expect("the server was sampled");
    assert!(server.steady_rss_kb > 0, "{text}");
    let json = serde_json::to_string(report).expect("the report serializes");
    let back: Report = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back.table_row(), report.table_row());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_of_ratecast_get_their_full_history_and_every_point_once() {
    let service = Service::start(&[]).await;
    let report = run_small_load(&format!("ws://{}/", service.addr), "ratecast").await;
    assert_every_client_got_everything(&report);
    service.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_of_the_baseline_get_their_full_history_and_every_point_once() {
    let config = BaselineConfig::try_parse_from(["baseline-server"]).expect("defaults parse");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind baseline");
    let addr = listener.local_addr().expect("baseline addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_baseline(listener, config.assets, shutdown.clone()));
    let report = run_small_load(&format!("ws://{addr}/"), "baseline").await;
    assert_every_client_got_everything(&report);
    shutdown.cancel();
    server
        .await
        .expect("baseline task joins")
        .expect("baseline stops cleanly");
}
