//! The store conformance suite: the behaviour every store must have, written once.
//!
//! Each `pub async fn` here checks one property against a fresh, empty store that
//! tracks [`assets()`]. Store crates run the whole suite with
//! [`store_conformance_tests!`](crate::store_conformance_tests), giving it an async
//! factory that returns `None` (after printing why) when the store's backing
//! service is not available. Enable the `conformance` feature to use it outside
//! this crate.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crate::{
    asset::{AssetId, AssetList},
    candle::{Candle, Interval},
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

pub async fn candles_summarise_whole_intervals_and_omit_empty_ones<S: PointStore + PointSink>(
    store: &S,
) {
    let t = Interval::H1.start_of(base_time()) - 3600;
    let points = [
        point(1, t + 59, 1.0), // the minute before: outside the range
        point(1, t + 60, 1.5),
        point(1, t + 61, 1.9),
        point(1, t + 62, 1.1),
        point(1, t + 119, 1.4),
        point(2, t + 100, 150.0), // another asset
        point(1, t + 240, 2.0),   // 180..239 holds nothing
        point(1, t + 300, 3.0),
    ];
    store.insert(&points).await.expect("insert");
    // From the middle of the first minute: that minute starts before `from`, so
    // its candle is not asked for; every candle holds all of its minute.
    let got = store
        .candles(AssetId(1), Interval::M1, t + 30, t + 299, 100)
        .await
        .expect("candles");
    let candle = |time, open, high, low, close, count, last_time| Candle {
        time,
        open,
        high,
        low,
        close,
        count,
        closed: true,
        last_time,
    };
    assert_eq!(
        got,
        vec![
            candle(t + 60, 1.5, 1.9, 1.1, 1.4, 4, t + 119),
            candle(t + 240, 2.0, 2.0, 2.0, 2.0, 1, t + 240),
        ]
    );
    let limited = store
        .candles(AssetId(1), Interval::M1, t, t + 3600, 2)
        .await
        .expect("candles");
    assert_eq!(
        limited.iter().map(|c| c.time).collect::<Vec<_>>(),
        vec![t, t + 60],
        "the first `limit` candles"
    );
    let hour = store
        .candles(AssetId(1), Interval::H1, t, t, 10)
        .await
        .expect("candles");
    assert_eq!(hour, vec![candle(t, 1.0, 3.0, 1.0, 3.0, 7, t + 300)]);
    assert!(
        store
            .candles(AssetId(1), Interval::M1, t + 3600, t + 7200, 10)
            .await
            .expect("candles")
            .is_empty()
    );
}

pub async fn the_running_interval_is_not_closed<S: PointStore + PointSink>(store: &S) {
    let now = PointStore::clock(store).now_secs();
    store
        .insert(&[point(1, now - 1, 1.0), point(1, now, 2.0)])
        .await
        .expect("insert");
    let day = Interval::D1.start_of(now);
    let got = store
        .candles(AssetId(1), Interval::D1, day - 86_400, day, 10)
        .await
        .expect("candles");
    // Only a run that crosses midnight UTC between the two reads of the
    // clock could see the day closed.
    let still_today = Interval::D1.start_of(PointStore::clock(store).now_secs()) == day;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].closed, !still_today, "{got:?}");
    assert_eq!((got[0].count, got[0].close), (2, 2.0));
}

/// The property behind every candle: for `points` (seconds after a recent base
/// time, with their values) of asset 1, beside noise on asset 2, the candles of
/// `interval` starting in `[from, to]` (also seconds after the base) equal a
/// recomputation written here, apart from the stores' code: first, max, min,
/// last and count per UTC interval, no candle for an empty one, at most `limit`.
pub async fn candles_equal_an_offline_recomputation<S: PointStore + PointSink>(
    store: &S,
    interval: Interval,
    points: &[(i64, f64)],
    (from, to): (i64, i64),
    limit: usize,
) {
    // 23 hours back: the points (at most 20 hours of them) end 3 hours ago,
    // inside every store's retention (the tests' is a day); only a `1d`
    // candle can be running.
    let base = unix_now_secs() - 23 * 3_600;
    let stored: Vec<Point> = points
        .iter()
        .map(|&(offset, value)| point(1, base + offset, value))
        .collect();
    let noise: Vec<Point> = points
        .iter()
        .map(|&(offset, value)| point(2, base + offset, value * 2.0 + 1.0))
        .collect();
    store.insert(&stored).await.expect("insert");
    store.insert(&noise).await.expect("insert");
    let (from, to) = (base + from, base + to);
    let got = store
        .candles(AssetId(1), interval, from, to, limit)
        .await
        .expect("candles");

    let secs = interval.secs();
    let now = PointStore::clock(store).now_secs();
    let mut by_interval: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
    for p in &stored {
        let start = p.time.div_euclid(secs) * secs;
        by_interval
            .entry(start)
            .or_default()
            .push((p.time, p.value));
    }
    let expected: Vec<Candle> = by_interval
        .into_iter()
        .filter(|(start, _)| (from..=to).contains(start))
        .take(limit)
        .map(|(start, mut held)| {
            held.sort_by_key(|&(time, _)| time);
            let values: Vec<f64> = held.iter().map(|&(_, value)| value).collect();
            Candle {
                time: start,
                open: values[0],
                high: values.iter().copied().fold(f64::MIN, f64::max),
                low: values.iter().copied().fold(f64::MAX, f64::min),
                close: values[values.len() - 1],
                count: values.len() as u64,
                closed: start + secs <= now,
                last_time: held[held.len() - 1].0,
            }
        })
        .collect();
    assert_eq!(got, expected, "{interval} candles of [{from}, {to}]");
}

/// One input of [`candles_equal_an_offline_recomputation`].
#[derive(Debug, Clone)]
pub struct CandleCase {
    pub interval: Interval,
    /// Distinct seconds after the base time, with their values.
    pub points: Vec<(i64, f64)>,
    /// The range asked for, in seconds after the base time.
    pub range: (i64, i64),
    pub limit: usize,
}

impl CandleCase {
    /// Runs the case against `store` (a fresh one: the points are inserted).
    pub async fn check<S: PointStore + PointSink>(&self, store: &S) {
        candles_equal_an_offline_recomputation(
            store,
            self.interval,
            &self.points,
            self.range,
            self.limit,
        )
        .await;
    }
}

/// Random [`CandleCase`]s: any interval, up to 150 points spread over up to 12
/// of its intervals (at most 20 hours, inside every store's retention), so
/// gaps and empty intervals are the rule; a range that may start or end
/// outside the points and mid-interval; a limit that sometimes cuts.
pub fn candle_cases() -> impl proptest::strategy::Strategy<Value = CandleCase> {
    use proptest::prelude::*;
    proptest::sample::select(Interval::ALL.to_vec()).prop_flat_map(|interval| {
        let secs = interval.secs();
        let span = (secs * 12).min(72_000);
        (
            proptest::collection::btree_map(0..span, 0.5_f64..200.0, 0..150),
            -secs..span + secs,
            0..span + 2 * secs,
            prop_oneof![1_usize..5, Just(1_000_usize)],
        )
            .prop_map(move |(points, from, length, limit)| CandleCase {
                interval,
                points: points.into_iter().collect(),
                range: (from, from + length),
                limit,
            })
    })
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
                candles_summarise_whole_intervals_and_omit_empty_ones,
                the_running_interval_is_not_closed,
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
