//! The load generator, run for real but small: 50 clients for a few seconds
//! against the all-in-one server (simulated rates, in-memory store), against
//! the baseline server, idle against the all-in-one, through a backlog flush
//! of the backlog server, two short hostile runs (an attack beside 20
//! subscribers) and a `multi` run (5 clients on one connection each, then on
//! five) against the all-in-one, all in this process on port 0. It checks what the
//! generator reports about correctness, never how fast anything was: the numbers
//! belong in docs/benchmarks.md, not in assertions.

use std::time::Duration;

use ratecast_bench::{
    BacklogConfig, BaselineConfig, HostileConfig, HostileReport, LoadConfig, Report,
    backlog_server::serve_backlog, baseline::serve_baseline, run_hostile, run_load,
};
use ratecast_testkit::{Spawned, spawn_server};
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 50;

/// The all-in-one server, as `cargo run` starts it, with `args` as its flags
/// (the environment is not read).
async fn start_service(args: &[&str]) -> Spawned<Result<(), ratecast::RunError>> {
    let argv = std::iter::once("ratecast").chain(args.iter().copied());
    let config: ratecast::Config = ratecast_process::parse_ignoring_env(argv).expect("valid flags");
    let metrics = ratecast_process::metrics::install_recorder();
    spawn_server(move |listener, shutdown| ratecast::run(listener, config, metrics, shutdown)).await
}

async fn run_small_load(url: &str, label: &str) -> Report {
    run_small_load_with(url, label, "3s", &[]).await
}

async fn run_small_load_with(url: &str, label: &str, hold: &str, extra: &[&str]) -> Report {
    let pid = std::process::id().to_string();
    let clients = CLIENTS.to_string();
    let args = [
        "run",
        "--url",
        url,
        "--clients",
        &clients,
        "--ramp",
        "200",
        "--hold",
        hold,
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
    ];
    let config = ratecast_process::parse_ignoring_env::<LoadConfig, _, _>(args.iter().chain(extra))
        .expect("valid generator flags");
    run_load(config, CancellationToken::new())
        .await
        .expect("the run completes")
}

/// Every client connected and was still connected at the end, with no error.
fn assert_every_client_stayed(report: &Report) {
    let connect = &report.connect;
    assert_eq!(
        (
            connect.connected,
            connect.open_at_end,
            connect.connect_errors,
            connect.history_failures,
            connect.dropped
        ),
        (CLIENTS as u64, CLIENTS as u64, 0, 0, 0),
        "{report}"
    );
}

fn assert_every_client_got_everything(report: &Report) {
    let text = report.to_string();
    let connect = &report.connect;
    assert_eq!(connect.attempted, CLIENTS as u64, "{text}");
    assert_eq!(connect.histories, CLIENTS as u64, "{text}");
    assert_every_client_stayed(report);
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
    let service = start_service(&[]).await;
    let report = run_small_load(&format!("ws://{}/", service.addr), "ratecast").await;
    assert_every_client_got_everything(&report);
    service.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_of_the_baseline_get_their_full_history_and_every_point_once() {
    let config = ratecast_process::parse_ignoring_env::<BaselineConfig, _, _>(["baseline-server"])
        .expect("defaults parse");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_idle_clients_of_ratecast_stay_connected_without_a_history_or_an_error() {
    let service = start_service(&[]).await;
    let url = format!("ws://{}/", service.addr);
    let report = run_small_load_with(&url, "ratecast-idle", "3s", &["--idle"]).await;
    let text = report.to_string();
    assert!(report.idle, "{text}");
    assert!(text.contains("idle: connected, never subscribed"), "{text}");
    assert_eq!(report.connect.histories, 0, "{text}");
    assert_every_client_stayed(&report);
    assert_eq!(
        report.verdict,
        Default::default(),
        "nothing to judge: {text}"
    );
    assert!(report.errors.is_empty(), "{text}");
    assert_eq!(report.time_to_history.count, 0, "{text}");
    assert_eq!(report.fanout_delay.count, 0, "{text}");
    assert_eq!(report.delivery.total_messages, 0, "{text}");
    let server = report.server.as_ref().expect("the server was sampled");
    assert!(server.steady_rss_kb > 0, "{text}");
    assert!(report.table_row().contains("| idle |"), "{text}");
    service.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_every_point_of_a_backlog_flush_once_and_in_order_and_becomes_current() {
    const BACKLOG_SECS: u64 = 30;
    let backlog = format!("{BACKLOG_SECS}s");
    let config = ratecast_process::parse_ignoring_env::<BacklogConfig, _, _>([
        "backlog-server",
        "--backlog",
        &backlog,
        "--flush-after",
        "6s",
    ])
    .expect("valid backlog server flags");
    config.validate().expect("a flush inside the outage");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind backlog server");
    let addr = listener.local_addr().expect("backlog server addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_backlog(
        listener,
        config.clone(),
        ratecast_process::metrics::install_recorder(),
        shutdown.clone(),
    ));
    let report = run_small_load_with(
        &format!("ws://{addr}/"),
        "backlog",
        "1s",
        &["--expect-backlog", &backlog, "--catch-up-timeout", "2m"],
    )
    .await;
    let text = report.to_string();
    let flush = report.backlog.as_ref().expect("a backlog report");
    assert_eq!(flush.expected_secs, BACKLOG_SECS as i64, "{text}");
    assert!(flush.flush_observed_unix_ms.is_some(), "{text}");
    assert!(!flush.flush_during_storm, "{text}");
    assert_eq!(
        (
            flush.waiting_clients,
            flush.current_clients,
            flush.late_subscribers
        ),
        (CLIENTS as u64, CLIENTS as u64, 0),
        "{text}"
    );
    assert_eq!(flush.incomplete_clients, 0, "{text}");
    assert_eq!(flush.messages, CLIENTS as u64 * BACKLOG_SECS, "{text}");
    assert!(flush.all_current_ms.is_some(), "{text}");
    assert_eq!(flush.catch_up.count, CLIENTS as u64, "{text}");
    assert!(flush.server_cpu_secs.is_some(), "{text}");
    assert_eq!(
        flush.newest_flushed,
        flush.outage_end.map(|end| end + BACKLOG_SECS as i64),
        "{text}"
    );
    // Once each, in order, without a hole, and the seam with the stale history
    // holds: the flush is ordinary live points to the verdict.
    assert_every_client_got_everything(&report);
    let json = serde_json::to_string(&report).expect("the report serializes");
    let back: Report = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back.backlog, report.backlog);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the backlog server stops")
        .expect("backlog task joins")
        .expect("backlog server stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unread_history_requests_is_sent_in_full_and_the_server_keeps_serving() {
    let server = start_service(&["--assets", "EURUSD"]).await;
    let config = ratecast_process::parse_ignoring_env::<ratecast_bench::FloodConfig, _, _>([
        "flood",
        "--url",
        &format!("ws://{}/", server.addr),
        "--clients",
        "3",
        "--requests",
        "10",
        "--interval",
        "10ms",
        "--hold",
        "1s",
        "--server-pid",
        &std::process::id().to_string(),
    ])
    .expect("valid flood flags");
    let report = ratecast_bench::flood::run_flood(config, CancellationToken::new())
        .await
        .expect("the flood runs");
    assert_eq!(report.requests_sent, 30, "{report}");
    assert!(report.peak_rss_kb >= report.idle_rss_kb, "{report}");
    // The server still answers a well-behaved client afterwards.
    let mut client = ratecast_testkit::Client::connect(server.addr).await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
}

/// A short hostile run against the all-in-one: 20 subscribers without, then
/// beside, two attackers. Only the report's shape is checked (both phases,
/// every attacker, three verdicts, a JSON round trip, the table), never a
/// figure: whether the server passes is what the tool measures, not what the
/// test asserts.
async fn run_small_hostile(attack: &str) -> HostileReport {
    const SUBSCRIBERS: u64 = 20;
    let service = start_service(&[]).await;
    let url = format!("ws://{}/", service.addr);
    let pid = std::process::id().to_string();
    let subscribers = SUBSCRIBERS.to_string();
    let config = ratecast_process::parse_ignoring_env::<HostileConfig, _, _>([
        "hostile",
        "--url",
        &url,
        "--subscribers",
        &subscribers,
        "--hold",
        "2s",
        "--settle",
        "1s",
        "--progress",
        "1s",
        "--source-ips",
        "4",
        "--server-pid",
        &pid,
        "--attack",
        attack,
        "--attackers",
        "2",
        "--rss-ceiling",
        "8G",
    ])
    .expect("valid hostile flags");
    let report = run_hostile(config, CancellationToken::new())
        .await
        .expect("the hostile run completes");
    service.shutdown.cancel();
    let text = report.to_string();
    assert_eq!(report.attack.name(), attack, "{text}");
    assert_eq!((report.subscribers, report.attackers), (20, 2), "{text}");
    // The calm phase is an ordinary run: every subscriber served, no attacker,
    // and a fresh client admitted.
    let calm = &report.calm;
    assert_eq!(calm.load.connect.histories, SUBSCRIBERS, "{text}");
    assert!(calm.attackers.is_empty(), "{text}");
    assert!(
        calm.admission.ran && calm.admission.admitted_after_ms.is_some(),
        "{text}"
    );
    // The attack phase ran its subscribers and every attacker attacked.
    let attacked = &report.attacked;
    assert_eq!(attacked.load.connect.attempted, SUBSCRIBERS, "{text}");
    assert_eq!(attacked.attackers.len(), 2, "{text}");
    for (index, attacker) in attacked.attackers.iter().enumerate() {
        assert_eq!(attacker.index, index, "{text}");
        assert_eq!(attacker.refused, None, "{text}");
        assert!(
            attacker.bytes_sent > 0 && attacker.frames_sent > 0,
            "{text}"
        );
        assert_eq!(
            attacker.closed_after_ms.is_some(),
            attacker.closed_by.is_some(),
            "{text}"
        );
        assert_eq!(
            attacker.torn_down_after_ms.is_some(),
            attacker.torn_down_by.is_some(),
            "{text}"
        );
        assert!(text.contains(&format!("attacker {index}")), "{text}");
    }
    for phase in [calm, attacked] {
        assert!(phase.rss.start_kb > 0, "{text}");
        assert!(phase.rss.peak_kb >= phase.rss.start_kb, "{text}");
        assert!(!phase.rss.per_second_kb.is_empty(), "{text}");
        assert!(phase.load.server.is_some(), "{text}");
    }
    assert_eq!(report.targets.attackers, 2, "{text}");
    let verdicts = text
        .lines()
        .filter(|line| line.starts_with("  PASS  ") || line.starts_with("  FAIL  "))
        .count();
    assert_eq!(verdicts, 3, "{text}");
    let json = serde_json::to_string(&report).expect("the report serializes");
    let back: HostileReport = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back.table_row(), report.table_row());
    // serde_json reads a float back to within one ulp: compare the verdicts.
    let verdicts = |t: &ratecast_bench::hostile_report::Targets| {
        (
            t.rss_ok,
            t.fanout_ok,
            t.close_ok,
            t.closed_in_time,
            t.attackers,
        )
    };
    assert_eq!(verdicts(&back.targets), verdicts(&report.targets));
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_run_of_empty_text_floods_reports_both_phases_every_attacker_and_the_verdicts() {
    let report = run_small_hostile("empty-texts").await;
    let dir = std::env::temp_dir().join(format!("ratecast-hostile-{}", std::process::id()));
    let path = dir.join("empty-texts.json");
    ratecast_bench::write_json(&report, &path).expect("the report is written");
    let table = ratecast_bench::hostile_table(&[&path]).expect("the table is built");
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("| empty-texts | 2 | 20 |"), "{table}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_run_of_zero_window_readers_reports_every_attacker_without_reading_for_it() {
    let report = run_small_hostile("zero-window").await;
    for attacker in &report.attacked.attackers {
        // One subscribe per asset, nothing else.
        assert_eq!(attacker.frames_sent, 5, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_candles_benchmark_asks_for_a_whole_day_both_ways() {
    let config =
        ratecast_process::parse_ignoring_env::<ratecast_bench::candles::CandlesBenchConfig, _, _>(
            ["candles", "--rounds", "1"],
        )
        .expect("valid candles flags");
    let report = ratecast_bench::candles::run_candles_bench(config)
        .await
        .expect("the candles benchmark runs");
    assert_eq!(
        (report.points.pages, report.points.items),
        (24, 86_400),
        "a day of one-second points in pages of an hour"
    );
    assert_eq!(
        (report.candles.pages, report.candles.items),
        (2, 1_440),
        "a day of minutes in pages of 1,000"
    );
    assert!(
        report.points.bytes > report.candles.bytes && report.candles.bytes > 0,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_run_serves_every_asset_to_each_client_on_one_connection_then_on_five() {
    const CLIENTS: u64 = 5;
    const ASSETS: u64 = 5;
    let service = start_service(&[]).await;
    let url = format!("ws://{}/", service.addr);
    let pid = std::process::id().to_string();
    let clients = CLIENTS.to_string();
    let config =
        ratecast_process::parse_ignoring_env::<ratecast_bench::multi::MultiConfig, _, _>([
            "multi",
            "--url",
            &url,
            "--clients",
            &clients,
            "--ramp",
            "200",
            "--hold",
            "6s",
            "--settle",
            "1s",
            "--progress",
            "1s",
            "--source-ips",
            "4",
            "--server-pid",
            &pid,
        ])
        .expect("valid multi flags");
    let report = ratecast_bench::multi::run_multi(config, CancellationToken::new())
        .await
        .expect("the multi run completes");
    service.shutdown.cancel();
    let text = report.to_string();
    assert_eq!((report.clients, report.assets), (5, 5), "{text}");
    // Phase A: one connection per client, one history per asset on each; phase
    // B: one connection per asset per client. Both: every asset's history to
    // every client, and its points once each, in order, joined to the history.
    for (phase, connections) in [(&report.multi, CLIENTS), (&report.single, CLIENTS * ASSETS)] {
        let connect = &phase.connect;
        assert_eq!(
            (
                connect.attempted,
                connect.connected,
                connect.histories,
                connect.open_at_end
            ),
            (connections, connections, connections, connections),
            "{text}"
        );
        assert_eq!(
            (
                connect.connect_errors,
                connect.history_failures,
                connect.dropped
            ),
            (0, 0, 0),
            "{text}"
        );
        let verdict = &phase.verdict;
        assert_eq!(verdict.full_histories, CLIENTS * ASSETS, "{text}");
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
        assert!(phase.errors.is_empty(), "{text}");
        assert_eq!(phase.time_to_history.count, connections, "{text}");
        assert!(phase.delivery.hold_messages > 0, "{text}");
        assert!(phase.fanout_delay.count > 0, "{text}");
        assert!(phase.server.is_some(), "{text}");
    }
    assert!(report.multi.label.ends_with("-multi-5"), "{text}");
    assert!(report.single.label.ends_with("-single-25"), "{text}");
    // The comparison and both verdicts are rendered, whatever they say.
    assert!(
        report.memory().is_some() && report.cpu().is_some(),
        "{text}"
    );
    assert!(text.contains("| 5 clients, 5 assets each |"), "{text}");
    let verdicts = text
        .lines()
        .filter(|line| line.starts_with("  PASS  ") || line.starts_with("  FAIL  "))
        .count();
    assert_eq!(verdicts, 2, "{text}");
    let json = serde_json::to_string(&report).expect("the report serializes");
    let back: ratecast_bench::multi::MultiReport =
        serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back.table(), report.table());
}
