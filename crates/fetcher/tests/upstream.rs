//! The fetcher against a real HTTP upstream on loopback: the HTTP source's limits,
//! and the poller on the wall clock writing into the embedded store while the
//! upstream fails in every way it can.

use std::{sync::Arc, time::Duration};

use ratecast_core::{AssetId, MemoryStore, PointStore};
use ratecast_fetcher::{
    FetchError, HttpSource, HttpSourceConfig, Poller, QuoteError, RateSource, UpstreamHealth,
};
use ratecast_testkit::TEST_RETENTION_SECS;
use ratecast_testkit::{FakeUpstream, Reply, WAIT, rates_body};
use tokio_util::sync::CancellationToken;

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

/// The stored `(time, value)` points of EURUSD.
async fn stored(store: &MemoryStore) -> Vec<(i64, f64)> {
    store
        .history(AssetId(1), 0, i64::MAX)
        .await
        .expect("memory history")
        .iter()
        .map(|p| (p.time, p.value))
        .collect()
}

/// Waits until a point of `value` is stored; returns its time.
async fn wait_for_value(store: &MemoryStore, value: f64) -> i64 {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(&(time, _)) = stored(store).await.iter().find(|(_, v)| *v == value) {
                return time;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the value was stored")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_skip_seconds_and_never_become_points_or_stop_the_poller() {
    let good = rates_body(&[("EURUSD", "1.1", "1.2")]);
    let upstream = FakeUpstream::start(Reply::Body(good)).await;
    let assets = "EURUSD".parse().expect("assets");
    let store = MemoryStore::new(assets, TEST_RETENTION_SECS);
    let source = HttpSource::new(
        upstream.url().parse().expect("url"),
        HttpSourceConfig::default(),
    )
    .expect("client");
    let health = Arc::new(UpstreamHealth::new(1));
    let shutdown = CancellationToken::new();
    let poller = tokio::spawn(
        Poller::with_health(
            source,
            store.clone(),
            "EURUSD".parse().expect("assets"),
            health,
        )
        .run(shutdown.clone()),
    );
    wait_for_value(&store, 1.15).await;

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
    let recovered_at = wait_for_value(&store, 1.35).await;
    shutdown.cancel();
    poller.await.expect("the poller stops on shutdown");

    // Everything the store holds is a real quote: 1.15 before, 1.35 after.
    let history = stored(&store).await;
    let mut last = i64::MIN;
    for &(time, value) in &history {
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
    let span = history.last().expect("points").0 - history[0].0 + 1;
    assert!(
        (history.len() as i64) < span - 8,
        "the failing seconds are gaps: {} points over {span} s",
        history.len()
    );
}

#[tokio::test]
async fn the_upstream_client_refuses_oversized_bodies_and_gives_up_on_a_hanging_upstream() {
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

/// One quote with a bare `NaN`, `Infinity` or `1e400` (a JSON writer's answer to a
/// non-finite value) costs that asset its second, not every asset.
#[tokio::test]
async fn a_bare_non_finite_number_in_one_quote_skips_only_that_asset() {
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream/emcont-non-finite.txt"
    ))
    .expect("the fixture");
    let upstream = FakeUpstream::start(Reply::Body(body)).await;
    let assets: ratecast_core::AssetList = "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD"
        .parse()
        .expect("assets");
    let store = MemoryStore::new(assets.clone(), TEST_RETENTION_SECS);
    let source = HttpSource::new(
        upstream.url().parse().expect("url"),
        HttpSourceConfig::default(),
    )
    .expect("client");
    let mut poller = Poller::new(source, store.clone(), assets);
    let report = poller.poll_once(1_700_000_000).await;
    assert!(report.fetch_error.is_none(), "{:?}", report.fetch_error);
    let skipped: Vec<(u32, &str)> = report
        .skipped
        .iter()
        .map(|(asset, error)| (asset.0, error.kind()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (2, "not_numeric"),
            (3, "not_numeric"),
            (4, "not_numeric"),
            (5, "not_numeric")
        ]
    );
    assert!(matches!(
        &report.skipped[0].1,
        QuoteError::NotNumeric { field: "Bid", raw } if raw == "\"NaN\""
    ));
    let eurusd = store
        .history(AssetId(1), 0, i64::MAX)
        .await
        .expect("history");
    assert_eq!(
        eurusd.iter().map(|p| (p.time, p.value)).collect::<Vec<_>>(),
        vec![(1_700_000_000, 1.08518)]
    );
}
