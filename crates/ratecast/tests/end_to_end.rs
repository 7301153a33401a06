//! The all-in-one service end to end: a real HTTP upstream on loopback, the
//! fetcher polling it, the embedded store, the API and real websocket clients.

mod support;

use support::start_service;

use std::time::Duration;

use ratecast_testkit::{Client, FakeUpstream, Reply, WAIT, http_get, rates_body};

#[tokio::test]
async fn upstream_quotes_reach_a_subscriber_as_mid_prices_every_second() {
    let upstream = FakeUpstream::start(Reply::Body(rates_body(&[
        ("EURUSD", "1.09107", "1.0913"),
        ("COIN.us", "160.15", "160.27"),
    ])))
    .await;
    let service =
        start_service(&["--rates-url", &upstream.url(), "--assets", "EURUSD,USDJPY"]).await;
    let mut client = Client::connect(service.addr).await;
    client.subscribe(1).await;
    let first = client.expect("point").await;
    let second = client.expect("point").await;
    for point in [&first, &second] {
        assert_eq!(point["assetName"], "EURUSD");
        assert_eq!(point["assetId"], 1);
        assert_eq!(point["value"], 1.091185);
    }
    let (t1, t2) = (
        first["time"].as_i64().expect("time"),
        second["time"].as_i64().expect("time"),
    );
    assert_eq!(
        t2,
        t1 + 1,
        "one point per second, stamped with consecutive seconds"
    );
    let now = ratecast_core::time::unix_now_secs();
    assert!(
        (now - 3..=now + 1).contains(&t2),
        "stamped with the current second: {t2} vs {now}"
    );
    // USDJPY is absent upstream: its history stays empty, nothing is invented.
    assert!(client.subscribe(2).await.is_empty());
    service.shutdown.cancel();
    service.task.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn without_an_upstream_simulated_rates_come_with_a_full_30_minute_history() {
    let service = start_service(&["--assets", "EURUSD,USDJPY"]).await;
    let mut client = Client::connect(service.addr).await;
    let history = client.subscribe(2).await;
    assert!(
        (1795..=1800).contains(&history.len()),
        "{} points",
        history.len()
    );
    let times: Vec<i64> = history
        .iter()
        .map(|p| p["time"].as_i64().expect("time"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[1] == w[0] + 1),
        "one point per second, no hole"
    );
    for point in &history {
        let value = point["value"].as_f64().expect("value");
        assert!(
            (100.0..200.0).contains(&value),
            "USDJPY near its level: {value}"
        );
    }
    let live = client.expect("point").await;
    assert!(live["time"].as_i64().expect("time") > *times.last().expect("non-empty"));
    service.shutdown.cancel();
    service.task.await.expect("task").expect("clean stop");
}

/// The value of the first sample of `name` (with labels, if given) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_show_the_fetcher_and_the_api_at_work() {
    let upstream = FakeUpstream::start(Reply::Body(rates_body(&[("EURUSD", "1.1", "1.2")]))).await;
    let service =
        start_service(&["--rates-url", &upstream.url(), "--assets", "EURUSD,USDJPY"]).await;
    let mut client = Client::connect(service.addr).await;
    client.subscribe(1).await;
    client.expect("point").await;
    let (status, scrape) = http_get(service.addr, "/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "ratecast_ws_connections",
        "ratecast_ws_subscriptions{asset=\"EURUSD\"}",
        "ratecast_ws_messages_sent_total",
        "ratecast_ws_bytes_sent_total",
        "ratecast_history_frames_served_total{asset=\"EURUSD\"}",
        "ratecast_points_stored_total",
        "ratecast_fetcher_ticks_total",
        "ratecast_quotes_skipped_total{kind=\"missing\"}",
        "ratecast_feed_points_total{outcome=\"live\"}",
        "ratecast_window_points{asset=\"EURUSD\"}",
    ] {
        let value =
            sample(&scrape, series).unwrap_or_else(|| panic!("{series} missing:\n{scrape}"));
        assert!(value >= 1.0, "{series} = {value}");
    }
    assert!(
        scrape.contains("ratecast_upstream_fetch_seconds_bucket"),
        "{scrape}"
    );
    assert!(
        scrape.contains("ratecast_feed_lag_seconds_bucket"),
        "{scrape}"
    );
    service.shutdown.cancel();
    service.task.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn readyz_reports_a_failing_upstream_as_detail() {
    let upstream = FakeUpstream::start(Reply::Status(503)).await;
    let service = start_service(&["--rates-url", &upstream.url(), "--assets", "EURUSD"]).await;
    let body = tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = http_get(service.addr, "/readyz").await;
            assert_eq!(
                status, 200,
                "a failing upstream does not make the API unready"
            );
            if body.contains("upstream failing for") {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the detail appears");
    assert!(body.contains("last error: status"), "{body}");
    service.shutdown.cancel();
    service.task.await.expect("task").expect("clean stop");
}
