//! The store conformance suite: the behaviour every store must have, written once.
//!
//! Each `pub async fn` here checks one property against a fresh, empty store that
//! tracks [`assets()`]. Store crates run the whole suite with
//! [`store_conformance_tests!`](crate::store_conformance_tests), giving it an async
//! factory that returns `None` (after printing why) when the store's backing
//! service is not available. Enable the `conformance` feature to use it outside
//! this crate.

use std::{collections::BTreeSet, time::Duration};

use crate::{
    asset::{AssetId, AssetList},
    point::Point,
    store::{FeedEvent, LiveFeed, PointSink, PointStore},
    time::{MAX_FUTURE_SECS, unix_now_secs},
};

/// How long a feed may take to deliver a point before a case fails.
const FEED_WAIT: Duration = Duration::from_secs(10);

/// The assets a conformance store must track: ids 1 and 2.
pub fn assets() -> AssetList {
    AssetList::new(["EURUSD", "USDJPY"]).expect("a valid literal list")
}

/// A recent base time, so stores with time-based expiry keep every test point.
fn base_time() -> i64 {
    unix_now_secs() - 3600
}

pub fn point(asset: u32, time: i64, value: f64) -> Point {
    let name = assets()
        .get(AssetId(asset))
        .map(|a| a.name.clone())
        .unwrap_or_else(|| "UNKNOWN".into());
    Point {
        asset_id: AssetId(asset),
        asset_name: name,
        time,
        value,
    }
}

fn times(points: &[Point]) -> Vec<i64> {
    points.iter().map(|p| p.time).collect()
}

/// The feed's next point (a `Resumed` in between is not a point).
async fn next_point<F: LiveFeed>(feed: &mut F) -> Point {
    tokio::time::timeout(FEED_WAIT, async {
        loop {
            match feed.next().await.expect("the feed stays open") {
                FeedEvent::Point(point) => return point,
                FeedEvent::Resumed => {}
            }
        }
    })
    .await
    .expect("the feed delivers within the deadline")
}

pub async fn assets_are_listed_in_id_order<S: PointStore>(store: &S) {
    let listed: Vec<(u32, String)> = store
        .assets()
        .await
        .expect("assets")
        .into_iter()
        .map(|a| (a.id.0, a.name.to_string()))
        .collect();
    assert_eq!(listed, vec![(1, "EURUSD".into()), (2, "USDJPY".into())]);
}

pub async fn history_is_ascending_and_inclusive_of_its_bounds<S: PointStore + PointSink>(
    store: &S,
) {
    let t = base_time();
    let points: Vec<Point> = (0..10).map(|i| point(1, t + i, 1.0 + i as f64)).collect();
    let report = store.insert(&points).await.expect("insert");
    assert_eq!(report.inserted, 10);
    let got = store
        .history(AssetId(1), t + 2, t + 5)
        .await
        .expect("history");
    assert_eq!(times(&got), vec![t + 2, t + 3, t + 4, t + 5]);
    assert_eq!(got[0], point(1, t + 2, 3.0), "every field is kept");
    assert!(
        store
            .history(AssetId(1), t + 20, t + 30)
            .await
            .expect("history")
            .is_empty()
    );
}

pub async fn inserting_a_stored_second_again_is_a_duplicate_not_an_error<
    S: PointStore + PointSink,
>(
    store: &S,
) {
    let t = base_time();
    store
        .insert(&[point(1, t, 1.5)])
        .await
        .expect("first insert");
    let report = store
        .insert(&[point(1, t, 9.9), point(1, t + 1, 1.6)])
        .await
        .expect("a duplicate is not an error");
    assert_eq!((report.inserted, report.duplicates), (1, 1));
    let got = store.history(AssetId(1), t, t + 1).await.expect("history");
    assert_eq!(
        got,
        vec![point(1, t, 1.5), point(1, t + 1, 1.6)],
        "the first value wins"
    );
}

pub async fn out_of_order_inserts_read_back_in_order<S: PointStore + PointSink>(store: &S) {
    let t = base_time();
    for offset in [5, 1, 3, 0, 4, 2] {
        store
            .insert(&[point(1, t + offset, 1.0)])
            .await
            .expect("insert");
    }
    let got = store.history(AssetId(1), t, t + 10).await.expect("history");
    assert_eq!(times(&got), (t..=t + 5).collect::<Vec<_>>());
}

pub async fn assets_do_not_mix<S: PointStore + PointSink>(store: &S) {
    let t = base_time();
    store
        .insert(&[point(1, t, 1.1), point(2, t, 150.0), point(2, t + 1, 150.5)])
        .await
        .expect("insert");
    assert_eq!(
        store.history(AssetId(1), t, t + 5).await.expect("history"),
        vec![point(1, t, 1.1)]
    );
    assert_eq!(
        store.history(AssetId(2), t, t + 5).await.expect("history"),
        vec![point(2, t, 150.0), point(2, t + 1, 150.5)]
    );
}

pub async fn follow_snapshots_since_and_feeds_what_comes_after<S: PointStore + PointSink>(
    store: &S,
) {
    let t = base_time();
    store
        .insert(&[
            point(1, t, 1.0),
            point(1, t + 1, 1.1),
            point(2, t + 1, 150.0),
        ])
        .await
        .expect("insert");
    let mut follow = store.follow(t + 1).await.expect("follow");
    let mut snapshot: Vec<(u32, i64)> = follow
        .snapshot
        .iter()
        .map(|p| (p.asset_id.0, p.time))
        .collect();
    snapshot.sort_unstable();
    assert_eq!(snapshot, vec![(1, t + 1), (2, t + 1)]);

    store
        .insert(&[point(2, t + 2, 151.0)])
        .await
        .expect("insert");
    store
        .insert(&[point(2, t + 2, 999.0), point(1, t + 2, 1.2)])
        .await
        .expect("insert with a duplicate");
    assert_eq!(next_point(&mut follow.feed).await, point(2, t + 2, 151.0));
    assert_eq!(
        next_point(&mut follow.feed).await,
        point(1, t + 2, 1.2),
        "a duplicate is never fed"
    );
}

pub async fn a_point_stamped_ahead_of_the_shared_clock_is_rejected_and_never_stored<
    S: PointStore + PointSink,
>(
    store: &S,
) {
    let now = PointSink::clock(store).now_secs();
    let ahead = now + 3600;
    let report = store
        .insert(&[point(1, ahead, 9.9), point(1, now, 1.0)])
        .await
        .expect("a future point is refused, not an error");
    assert_eq!((report.inserted, report.rejected), (1, 1));
    assert_eq!(
        store
            .history(AssetId(1), now + 1, ahead + 10)
            .await
            .expect("history"),
        vec![],
        "the future point would later hide the real point of its second"
    );
    let near = PointSink::clock(store).now_secs() + MAX_FUTURE_SECS - 1;
    let report = store.insert(&[point(2, near, 2.0)]).await.expect("insert");
    assert_eq!(report.inserted, 1, "a clock slightly ahead is normal");
}

pub async fn follow_under_concurrent_inserts_misses_and_repeats_nothing<
    S: PointStore + PointSink + Clone,
>(
    store: &S,
) {
    const COUNT: i64 = 300;
    let t = base_time();
    // The writer stores the first half, then goes on at a steady pace while the
    // follow starts, and stores its last second only after the follow returned:
    // the snapshot is taken with inserts on both sides of it.
    let half_stored = std::sync::Arc::new(tokio::sync::Notify::new());
    let (followed, follow_done) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let store = store.clone();
        let half_stored = half_stored.clone();
        tokio::spawn(async move {
            let mut follow_done = Some(follow_done);
            for i in 0..COUNT {
                if i == COUNT / 2 {
                    half_stored.notify_one();
                }
                if i == COUNT - 1
                    && let Some(done) = follow_done.take()
                {
                    done.await.expect("the follow returns");
                }
                store
                    .insert(&[point(1, t + i, 1.0), point(2, t + i, 2.0)])
                    .await
                    .expect("insert");
                if i >= COUNT / 2 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        })
    };
    half_stored.notified().await;
    let mut follow = store.follow(t).await.expect("follow");
    followed.send(()).expect("the writer waits for the follow");
    let in_snapshot = follow.snapshot.len();
    assert!(
        (COUNT as usize..2 * COUNT as usize).contains(&in_snapshot),
        "the snapshot was taken while inserts went on ({in_snapshot} of {} points)",
        2 * COUNT
    );
    let mut seen: BTreeSet<(u32, i64)> = BTreeSet::new();
    for p in &follow.snapshot {
        assert!(
            seen.insert((p.asset_id.0, p.time)),
            "snapshot repeats {p:?}"
        );
    }
    while seen.len() < 2 * COUNT as usize {
        let p = next_point(&mut follow.feed).await;
        assert!(seen.insert((p.asset_id.0, p.time)), "feed repeats {p:?}");
    }
    writer.await.expect("writer finished");
    let expected: BTreeSet<(u32, i64)> =
        (0..COUNT).flat_map(|i| [(1, t + i), (2, t + i)]).collect();
    assert_eq!(seen, expected);
}

/// Generates one `#[tokio::test]` per conformance case. `$factory` is an async fn
/// returning `Option<store>`; `None` skips the case (the factory says why).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:ident) => {
        mod store_conformance {
            use super::*;
            $crate::store_conformance_tests!(@cases $factory;
                assets_are_listed_in_id_order,
                history_is_ascending_and_inclusive_of_its_bounds,
                inserting_a_stored_second_again_is_a_duplicate_not_an_error,
                out_of_order_inserts_read_back_in_order,
                assets_do_not_mix,
                follow_snapshots_since_and_feeds_what_comes_after,
                follow_under_concurrent_inserts_misses_and_repeats_nothing,
                a_point_stamped_ahead_of_the_shared_clock_is_rejected_and_never_stored,
            );
        }
    };
    (@cases $factory:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $factory().await else { return };
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}
