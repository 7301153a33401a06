use ratecast_core::time::HISTORY_SPAN_SECS;
use serde_json::Value;

use super::*;
use crate::wire::payload;

const NOW: i64 = 1_700_000_000;

fn hub() -> Hub {
    Hub::new("EURUSD,USDJPY".parse().expect("valid"))
}

fn point(asset: u32, time: i64, value: f64) -> Point {
    Point {
        asset_id: AssetId(asset),
        asset_name: if asset == 1 { "EURUSD" } else { "USDJPY" }.into(),
        time,
        value,
    }
}

/// Subscribes as a session does: the receiver first, then the history.
fn subscribe(
    hub: &Hub,
    id: u32,
    now: i64,
    since: Option<i64>,
) -> (Subscription, broadcast::Receiver<PointBytes>) {
    let points = hub.points(AssetId(id)).expect("known asset");
    let sub = hub.subscribe(AssetId(id), now, since).expect("known asset");
    (sub, points)
}

fn json(frame: &[u8]) -> Value {
    serde_json::from_slice(payload(frame)).expect("frames are JSON")
}

fn history_times(frame: &[u8]) -> Vec<i64> {
    json(frame)["message"]["points"]
        .as_array()
        .expect("points array")
        .iter()
        .map(|p| p["time"].as_i64().expect("time"))
        .collect()
}

#[test]
fn history_then_live_points_meet_without_hole_or_duplicate() {
    let hub = hub();
    hub.apply(&point(1, NOW - 2, 1.0), NOW);
    hub.apply(&point(1, NOW - 1, 1.1), NOW);
    let (sub, mut points) = subscribe(&hub, 1, NOW, None);
    assert_eq!(hub.apply(&point(1, NOW, 1.2), NOW), Applied::Live);
    assert_eq!(history_times(&sub.history), vec![NOW - 2, NOW - 1]);
    let live = points.try_recv().expect("the next point is queued");
    assert_eq!(live.time, NOW);
    assert_eq!(json(&live.frame)["message"]["time"], NOW);
    assert!(points.try_recv().is_err(), "nothing else");
}

#[test]
fn stale_and_repeated_points_are_not_pushed() {
    let hub = hub();
    let (_sub, mut points) = subscribe(&hub, 2, NOW, None);
    assert_eq!(hub.apply(&point(2, NOW, 150.0), NOW), Applied::Live);
    assert_eq!(hub.apply(&point(2, NOW, 151.0), NOW), Applied::Duplicate);
    assert_eq!(
        hub.apply(&point(2, NOW - 2000, 149.0), NOW),
        Applied::Expired
    );
    assert_eq!(hub.apply(&point(9, NOW, 1.0), NOW), Applied::UnknownAsset);
    assert!(points.try_recv().is_ok());
    assert!(points.try_recv().is_err());
}

#[test]
fn a_late_point_enters_later_histories_in_time_order_but_is_not_pushed() {
    let hub = hub();
    for t in [NOW - 3, NOW - 1, NOW] {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    let (sub, mut points) = subscribe(&hub, 1, NOW, None);
    assert_eq!(hub.apply(&point(1, NOW - 2, 1.5), NOW), Applied::Late);
    assert!(points.try_recv().is_err(), "live points only move forward");
    let later = hub.subscribe(AssetId(1), NOW, None).expect("asset");
    assert_eq!(
        history_times(&later.history),
        vec![NOW - 3, NOW - 2, NOW - 1, NOW]
    );
    assert_ne!(
        later.history.as_ptr(),
        sub.history.as_ptr(),
        "the late point rebuilt the frame"
    );
    assert_eq!(
        (hub.seq(AssetId(1)), later.seq),
        (Some(3), 3),
        "only points pushed live are numbered"
    );
}

#[test]
fn a_subscriber_is_counted_until_its_subscription_is_dropped() {
    let hub = hub();
    let first = hub.subscribe(AssetId(1), NOW, None).expect("asset");
    let second = hub.subscribe(AssetId(1), NOW, None).expect("asset");
    let other = hub.subscribe(AssetId(2), NOW, None).expect("asset");
    assert_eq!(hub.subscriber_counts(), vec![2, 1]);
    drop(first);
    drop(other);
    assert_eq!(hub.subscriber_counts(), vec![1, 0]);
    drop(second.counted);
    assert_eq!(hub.subscriber_counts(), vec![0, 0]);
}

#[test]
fn a_point_stamped_in_the_future_is_refused_and_real_points_keep_flowing() {
    let hub = hub();
    let (_sub, mut points) = subscribe(&hub, 1, NOW, None);
    assert_eq!(
        hub.apply(&point(1, NOW + MAX_FUTURE_SECS + 1, 9.9), NOW),
        Applied::Future
    );
    assert_eq!(
        hub.apply(&point(1, NOW + MAX_FUTURE_SECS, 1.0), NOW),
        Applied::Live,
        "a clock a few seconds ahead is tolerated"
    );
    let (_other, mut other_points) = subscribe(&hub, 2, NOW, None);
    assert_eq!(hub.apply(&point(2, NOW, 150.0), NOW), Applied::Live);
    assert_eq!(other_points.try_recv().expect("pushed").time, NOW);
    assert_eq!(
        points.try_recv().expect("pushed").time,
        NOW + MAX_FUTURE_SECS
    );
}

#[test]
fn the_history_frame_is_built_once_per_change_and_shared() {
    let hub = hub();
    hub.apply(&point(1, NOW, 1.0), NOW);
    let a = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    let b = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    assert_eq!(a.as_ptr(), b.as_ptr(), "built once: same bytes, not a copy");
    hub.apply(&point(1, NOW + 1, 1.1), NOW + 1);
    let c = hub
        .subscribe(AssetId(1), NOW + 1, None)
        .expect("asset")
        .history;
    // `a` is still held, so a new frame cannot reuse its memory.
    assert_ne!(c.as_ptr(), a.as_ptr(), "rebuilt after the change");
    assert_eq!(history_times(&c), vec![NOW, NOW + 1]);
}

#[test]
fn since_limits_the_history_to_what_a_reconnecting_client_missed() {
    let hub = hub();
    for t in NOW - 10..=NOW {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    let shared = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    let sub = hub
        .subscribe(AssetId(1), NOW, Some(NOW - 3))
        .expect("asset");
    assert_eq!(history_times(&sub.history), vec![NOW - 2, NOW - 1, NOW]);
    let caught_up = hub.subscribe(AssetId(1), NOW, Some(NOW)).expect("asset");
    assert!(history_times(&caught_up.history).is_empty());
    let after = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    assert_eq!(
        after.as_ptr(),
        shared.as_ptr(),
        "filtered histories do not replace the shared one"
    );
}

#[test]
fn a_lagged_subscriber_catches_up_from_the_window_a_chunk_at_a_time_with_the_shared_frames() {
    let hub = hub();
    hub.apply(&point(1, NOW - 100, 1.0), NOW);
    let (sub, mut points) = subscribe(&hub, 1, NOW, None);
    assert_eq!((sub.last_time, sub.seq), (Some(NOW - 100), 1));
    for t in NOW - 99..=NOW {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    assert!(matches!(
        points.try_recv(),
        Err(broadcast::error::TryRecvError::Lagged(_))
    ));
    let mut times = Vec::new();
    let mut after = sub.last_time;
    let done_at = loop {
        let chunk = hub.catch_up(AssetId(1), after, 30).expect("asset");
        assert!(chunk.frames.len() <= 30);
        times.extend(chunk.frames.iter().map(|f| f.time));
        after = chunk.frames.last().map(|f| f.time).or(after);
        if let Some(seq) = chunk.done_at {
            break seq;
        }
    };
    assert_eq!(times, (NOW - 99..=NOW).collect::<Vec<_>>());
    assert_eq!(done_at, 101, "the hub pushed 101 points");
    let first = hub.catch_up(AssetId(1), sub.last_time, 30).expect("asset");
    let again = hub.catch_up(AssetId(1), sub.last_time, 30).expect("asset");
    assert_eq!(
        first.frames[0].frame.as_ptr(),
        again.frames[0].frame.as_ptr(),
        "catch-ups share the window's bytes"
    );
}

#[test]
fn history_holds_only_the_last_1800_seconds() {
    let hub = hub();
    for t in NOW - 2000..=NOW {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    let times = history_times(&hub.subscribe(AssetId(1), NOW, None).expect("asset").history);
    assert_eq!(times.len(), HISTORY_SPAN_SECS as usize);
    assert_eq!(times.first(), Some(&(NOW - 1799)));
    // Later, with no new points, expired ones leave the window and the frame.
    let later = history_times(
        &hub.subscribe(AssetId(1), NOW + 1000, None)
            .expect("asset")
            .history,
    );
    assert_eq!(later.first(), Some(&(NOW - 799)));
    hub.evict_expired(NOW + 5000);
    assert_eq!(
        hub.window_sizes(NOW + 1000),
        vec![0, 0],
        "evicted, not only out of the span"
    );
}

#[test]
fn a_quiet_windows_size_is_current_when_counted_and_counting_evicts_nothing() {
    let hub = hub();
    for t in NOW - 9..=NOW {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    let shared = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    // No point arrives for a while: the size at each time is what is in the
    // span then, and counting changes nothing.
    assert_eq!(hub.window_sizes(NOW), vec![10, 0]);
    assert_eq!(hub.window_sizes(NOW + 1795), vec![5, 0]);
    assert_eq!(hub.window_sizes(NOW + 5000), vec![0, 0]);
    assert_eq!(hub.window_sizes(NOW), vec![10, 0], "nothing was evicted");
    let again = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    assert_eq!(
        again.as_ptr(),
        shared.as_ptr(),
        "nor the history frame dropped"
    );
}

#[test]
fn a_refused_point_after_the_span_moved_leaves_no_expired_point_in_the_history() {
    let hub = hub();
    for t in NOW - 1799..=NOW {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    let before = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    assert_eq!(history_times(&before).first(), Some(&(NOW - 1799)));
    // Ten seconds later a window reload applies a point the hub holds: refused,
    // but the span moved on while placing it.
    assert_eq!(hub.apply(&point(1, NOW, 1.0), NOW + 10), Applied::Duplicate);
    let after = history_times(
        &hub.subscribe(AssetId(1), NOW + 10, None)
            .expect("asset")
            .history,
    );
    assert_eq!(
        after.first(),
        Some(&(NOW - 1789)),
        "only points with time > now - 1800"
    );
    assert_eq!(after.len(), 1790);
}

#[test]
fn a_since_before_the_oldest_point_held_gets_the_shared_frame() {
    let hub = hub();
    for t in NOW - 10..=NOW {
        hub.apply(&point(1, t, 1.0), NOW);
    }
    let shared = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    for since in [NOW - 11, NOW - 5000, i64::MIN] {
        let sub = hub.subscribe(AssetId(1), NOW, Some(since)).expect("asset");
        assert_eq!(
            sub.history.as_ptr(),
            shared.as_ptr(),
            "since {since}: the whole window, shared, not a private copy"
        );
        assert_eq!(sub.last_time, Some(NOW));
    }
    let missed = hub
        .subscribe(AssetId(1), NOW, Some(NOW - 10))
        .expect("asset")
        .history;
    assert_ne!(missed.as_ptr(), shared.as_ptr());
    assert_eq!(history_times(&missed), (NOW - 9..=NOW).collect::<Vec<_>>());
}

#[test]
fn a_catch_up_sends_only_the_points_that_were_pushed_live() {
    let hub = hub();
    hub.apply(&point(1, NOW - 10, 1.0), NOW);
    let (sub, _points) = subscribe(&hub, 1, NOW, None);
    assert_eq!(hub.apply(&point(1, NOW - 5, 1.0), NOW), Applied::Live);
    assert_eq!(hub.apply(&point(1, NOW, 1.0), NOW), Applied::Live);
    // Late: a current subscriber never gets it as a `point` message.
    assert_eq!(hub.apply(&point(1, NOW - 3, 1.0), NOW), Applied::Late);
    let chunk = hub.catch_up(AssetId(1), sub.last_time, 10).expect("asset");
    let caught: Vec<(i64, u64)> = chunk.frames.iter().map(|f| (f.time, f.seq)).collect();
    assert_eq!(
        caught,
        vec![(NOW - 5, 2), (NOW, 3)],
        "the live points with their numbers, and not the late one"
    );
    assert_eq!(chunk.done_at, Some(3));
    // A later history holds it.
    let history = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
    assert_eq!(
        history_times(&history),
        vec![NOW - 10, NOW - 5, NOW - 3, NOW]
    );
}

#[test]
fn the_hub_judges_time_by_the_shared_clock() {
    let clock = SharedClock::local();
    let hub = hub().with_clock(clock.clone());
    let local = ratecast_core::time::unix_now_secs();
    clock.set_offset(-60_000);
    let now = hub.now_secs();
    assert!(
        (local - 61..=local - 59).contains(&now),
        "this host's clock is a minute ahead of the shared one: {now} vs {local}"
    );
}
