//! The all-in-one service end to end: a real HTTP upstream on loopback, the
//! fetcher polling it, the embedded store, the API and real websocket clients.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Client, FakeUpstream, Reply, Service, WAIT, rates_body};

/// Waits until the upstream has answered `more` further requests.
async fn wait_requests(upstream: &FakeUpstream, more: usize) {
    let target = upstream.requests() + more;
    tokio::time::timeout(WAIT, async {
        while upstream.requests() < target {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the poller kept polling");
}

/// The next live point of `client` whose value is `value`.
async fn wait_for_value(client: &mut Client, value: f64) -> Value {
    loop {
        let point = client.expect("point").await;
        if point["value"].as_f64() == Some(value) {
            return point;
        }
    }
}

#[tokio::test]
async fn upstream_quotes_reach_a_subscriber_as_mid_prices_every_second() {
    let upstream = FakeUpstream::start(Reply::Body(rates_body(&[
        ("EURUSD", "1.09107", "1.0913"),
        ("COIN.us", "160.15", "160.27"),
    ])))
    .await;
    let service =
        Service::start(&["--rates-url", &upstream.url(), "--assets", "EURUSD,USDJPY"]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_skip_seconds_and_never_become_points_or_stop_the_poller() {
    let good = rates_body(&[("EURUSD", "1.1", "1.2")]);
    let upstream = FakeUpstream::start(Reply::Body(good)).await;
    let service = Service::start(&["--rates-url", &upstream.url(), "--assets", "EURUSD"]).await;
    let mut client = Client::connect(service.addr).await;
    client.subscribe(1).await;
    wait_for_value(&mut client, 1.15).await;

    let failures = [
        Reply::Status(500),
        Reply::Status(404),
        Reply::Body("<html>Bad Gateway</html>".into()),
        Reply::Body(r#"null({"Rates":[{"Symbol":"EURUSD","Bid":"n/a","Ask":"1.2"}]});"#.into()),
        Reply::Body(r#"null({"Rates":[{"Symbol":"EURUSD","Ask":"1.2"}]});"#.into()),
        Reply::Truncated(rates_body(&[("EURUSD", "1.1", "1.2")])),
        Reply::Huge(10 * 1024 * 1024),
        Reply::Hang,
    ];
    for failure in failures {
        upstream.set(failure);
        wait_requests(&upstream, 2).await;
    }
    upstream.set(Reply::Body(rates_body(&[("EURUSD", "1.3", "1.4")])));
    let recovered = wait_for_value(&mut client, 1.35).await;

    // Everything the store holds is a real quote: 1.15 before, 1.35 after.
    let mut fresh = Client::connect(service.addr).await;
    let history = fresh.subscribe(1).await;
    let recovered_at = recovered["time"].as_i64().expect("time");
    let mut last = i64::MIN;
    for point in &history {
        let (time, value) = (
            point["time"].as_i64().expect("time"),
            point["value"].as_f64().expect("value"),
        );
        assert!(time > last, "ascending, no duplicates");
        last = time;
        let expected = if time < recovered_at {
            [1.15, 1.35]
        } else {
            [1.35, 1.35]
        };
        assert!(
            expected.contains(&value),
            "invented value {value} at {time}"
        );
    }
    let span = history
        .last()
        .and_then(|p| p["time"].as_i64())
        .expect("points")
        - history[0]["time"].as_i64().expect("t")
        + 1;
    assert!(
        (history.len() as i64) < span - 8,
        "the failing seconds are gaps: {} points over {span} s",
        history.len()
    );
    service.shutdown.cancel();
    service.task.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn without_an_upstream_simulated_rates_come_with_a_full_30_minute_history() {
    let service = Service::start(&["--assets", "EURUSD,USDJPY"]).await;
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
        Service::start(&["--rates-url", &upstream.url(), "--assets", "EURUSD,USDJPY"]).await;
    let mut client = Client::connect(service.addr).await;
    client.subscribe(1).await;
    client.expect("point").await;
    let (status, scrape) = support::http_get(service.addr, "/metrics").await;
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
        "ratecast_feed_points_total",
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
async fn the_upstream_client_refuses_oversized_bodies_and_gives_up_on_a_hanging_upstream() {
    use ratecast_fetcher::{FetchError, HttpSource, HttpSourceConfig, RateSource};
    let upstream = FakeUpstream::start(Reply::Huge(10 * 1024 * 1024)).await;
    let source = HttpSource::new(
        upstream.url().parse().expect("url"),
        HttpSourceConfig::default(),
    )
    .expect("client");
    let declared = source.fetch().await.expect_err("a 10 MiB body is refused");
    assert!(
        matches!(declared, FetchError::TooLarge { .. }),
        "{declared}"
    );
    upstream.set(Reply::Unbounded(10 * 1024 * 1024));
    let streamed = source
        .fetch()
        .await
        .expect_err("an unbounded body is cut off");
    assert!(
        matches!(streamed, FetchError::TooLarge { .. }),
        "{streamed}"
    );
    upstream.set(Reply::Hang);
    let hung = source
        .fetch()
        .await
        .expect_err("a hanging upstream times out");
    assert!(matches!(hung, FetchError::Timeout(_)), "{hung}");
    upstream.set(Reply::Body(rates_body(&[("EURUSD", "1.1", "1.2")])));
    let quotes = source.fetch().await.expect("the next request works");
    assert_eq!(quotes.get("EURUSD"), Ok(1.15));
}

#[tokio::test]
async fn readyz_reports_a_failing_upstream_as_detail() {
    let upstream = FakeUpstream::start(Reply::Status(503)).await;
    let service = Service::start(&["--rates-url", &upstream.url(), "--assets", "EURUSD"]).await;
    let body = tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = support::http_get(service.addr, "/readyz").await;
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
