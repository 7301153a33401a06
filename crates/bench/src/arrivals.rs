//! Fan-out delay: for each point, its arrival at each client minus its first
//! arrival at any client.
//!
//! Clients report every live point they receive as `(asset, time, at)`. Arrivals of
//! a point are appended to one small vector while the point is "open"; once the
//! point is older than [`SETTLE_AFTER`], it is settled: its earliest arrival is
//! found and every arrival's distance to it goes into a histogram. Each arrival is
//! touched a constant number of times (no per-pair work), and only the last few
//! seconds of points are held in full. The first arrival of every settled point
//! is kept (a few bytes per point) so the verdict can tell which points existed.
//!
//! Arrivals are split by when the point first arrived: during the subscribe storm
//! (ramp), during the hold (steady state, the figure the targets are about), or
//! after it. Beside the fan-out delay, each arrival during the hold is also
//! measured against the point's own second (its *age*: receive time minus
//! `time`), which a delay that hits every client alike does not escape. In a backlog run the flushed points (a range of seconds, once known)
//! have a histogram of their own, so the burst does not stand in for the steady
//! state.

use ratecast_core::sync::lock;
use std::{
    collections::{BTreeMap, HashMap},
    ops::RangeInclusive,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::latency::Latency;

/// How long after its first arrival a point stays open for more arrivals.
/// A later arrival is still measured, against the settled first arrival.
pub const SETTLE_AFTER: Duration = Duration::from_secs(10);

/// The shared arrival table of one run.
pub struct Arrivals {
    /// Every timestamp is microseconds since this instant.
    epoch: Instant,
    /// Unix time of `epoch`, to report an arrival as a wall-clock time.
    epoch_unix: Duration,
    inner: Mutex<Inner>,
}

/// Which part of the run a point first arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Ramp,
    Hold,
    After,
}

struct Inner {
    /// Points still taking arrivals, by (asset index, time).
    open: HashMap<(usize, i64), Open>,
    /// Per asset index: time → first arrival, for settled points.
    first: Vec<BTreeMap<i64, u64>>,
    /// The hold window, once known.
    hold_start: Option<u64>,
    hold_end: Option<u64>,
    /// The flushed seconds of a backlog run, once known.
    backlog: Option<RangeInclusive<i64>>,
    ramp: Latency,
    hold: Latency,
    flushed: Latency,
    /// Receive time minus the point's second, for arrivals during the hold.
    age: Latency,
}

struct Open {
    /// When the first report of this point was recorded (not necessarily the
    /// earliest arrival: reports from different clients race for the lock).
    opened: u64,
    arrivals: Vec<u64>,
}

impl Arrivals {
    pub fn new(assets: usize) -> Self {
        Self {
            epoch: Instant::now(),
            epoch_unix: ratecast_core::time::unix_now(),
            inner: Mutex::new(Inner {
                open: HashMap::new(),
                first: vec![BTreeMap::new(); assets],
                hold_start: None,
                hold_end: None,
                backlog: None,
                ramp: Latency::new(),
                hold: Latency::new(),
                flushed: Latency::new(),
                age: Latency::new(),
            }),
        }
    }

    /// Unix time of µs 0 of this table.
    pub fn epoch_unix(&self) -> Duration {
        self.epoch_unix
    }

    /// Microseconds since the start of the run.
    pub fn now_us(&self) -> u64 {
        self.micros(Instant::now())
    }

    pub fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// One client received `time` of asset `asset` at `at` (µs since the epoch).
    pub fn record(&self, asset: usize, time: i64, at: u64) {
        let age = self.age_us(time, at);
        let mut inner = self.lock();
        if inner.in_hold(at) {
            inner.age.record(age);
        }
        if let Some(&first) = inner.first.get(asset).and_then(|f| f.get(&time)) {
            let phase = inner.phase(first);
            if let Some(histogram) = inner.histogram(phase, time) {
                histogram.record(at.saturating_sub(first));
            }
            return;
        }
        inner
            .open
            .entry((asset, time))
            .or_insert_with(|| Open {
                opened: at,
                arrivals: Vec::new(),
            })
            .arrivals
            .push(at);
    }

    /// Microseconds from the start of second `time` to `at` (0 for a point
    /// stamped after it arrived: a clock ahead of this one).
    fn age_us(&self, time: i64, at: u64) -> u64 {
        let arrived = self.epoch_unix.as_micros() + u128::from(at);
        let stamped = u128::try_from(time).unwrap_or(0) * 1_000_000;
        u64::try_from(arrived.saturating_sub(stamped)).unwrap_or(u64::MAX)
    }

    /// Receive time minus the point's second, for points received during the hold.
    pub fn hold_ages(&self) -> Latency {
        self.lock().age.clone()
    }

    /// Marks the start of the hold (steady state).
    pub fn start_hold(&self, at: u64) {
        self.lock().hold_start = Some(at);
    }

    /// The seconds a backlog flush holds: their delays go to [`Self::flushed_delays`].
    pub fn set_backlog(&self, seconds: RangeInclusive<i64>) {
        self.lock().backlog = Some(seconds);
    }

    /// Fan-out delays of the flushed points of a backlog run.
    pub fn flushed_delays(&self) -> Latency {
        self.lock().flushed.clone()
    }

    /// Marks the end of the hold.
    pub fn end_hold(&self, at: u64) {
        self.lock().hold_end = Some(at);
    }

    /// Settles the points opened more than [`SETTLE_AFTER`] before `now`.
    pub fn settle_older(&self, now: u64) {
        let cutoff = now.saturating_sub(SETTLE_AFTER.as_micros() as u64);
        self.lock().settle(|open| open.opened < cutoff);
    }

    /// Settles every open point (end of run).
    pub fn settle_all(&self) {
        self.lock().settle(|_| true);
    }

    /// Fan-out delays of points that first arrived during the ramp and the hold.
    pub fn delays(&self) -> (Latency, Latency) {
        let inner = self.lock();
        (inner.ramp.clone(), inner.hold.clone())
    }

    /// The settled points: per asset index, time → first arrival (µs).
    pub fn first_arrivals(&self) -> Vec<BTreeMap<i64, u64>> {
        self.lock().first.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

impl Inner {
    /// `at` falls in the hold.
    fn in_hold(&self, at: u64) -> bool {
        self.hold_start.is_some_and(|start| at >= start) && self.hold_end.is_none_or(|end| at < end)
    }

    fn phase(&self, first: u64) -> Phase {
        match (self.hold_start, self.hold_end) {
            (Some(start), _) if first < start => Phase::Ramp,
            (None, _) => Phase::Ramp,
            (Some(_), Some(end)) if first >= end => Phase::After,
            (Some(_), _) => Phase::Hold,
        }
    }

    /// Where delays of the point `time` first seen in `phase` go; flushed
    /// points have their own; points first seen after the hold are measured
    /// nowhere (clients are closing).
    fn histogram(&mut self, phase: Phase, time: i64) -> Option<&mut Latency> {
        if self.backlog.as_ref().is_some_and(|b| b.contains(&time)) {
            return Some(&mut self.flushed);
        }
        match phase {
            Phase::Ramp => Some(&mut self.ramp),
            Phase::Hold => Some(&mut self.hold),
            Phase::After => None,
        }
    }

    fn settle(&mut self, due: impl Fn(&Open) -> bool) {
        let keys: Vec<(usize, i64)> = self
            .open
            .iter()
            .filter(|(_, open)| due(open))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            let Some(open) = self.open.remove(&key) else {
                continue;
            };
            let Some(&first) = open.arrivals.iter().min() else {
                continue;
            };
            let phase = self.phase(first);
            let (asset, time) = key;
            if let Some(histogram) = self.histogram(phase, time) {
                for at in &open.arrivals {
                    histogram.record(at - first);
                }
            }
            if let Some(times) = self.first.get_mut(asset) {
                times.insert(time, first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_arrival_is_measured_against_the_earliest_one_of_its_point() {
        let arrivals = Arrivals::new(1);
        arrivals.start_hold(0);
        // Reports race: the 1000 µs arrival is reported before the 400 µs one.
        for at in [1000, 400, 400, 2400] {
            arrivals.record(0, 7, at);
        }
        arrivals.settle_all();
        let (ramp, hold) = arrivals.delays();
        assert_eq!(ramp.count(), 0);
        let summary = hold.summary();
        assert_eq!(summary.count, 4);
        assert_eq!(summary.max_ms, 2.0);
        assert_eq!(arrivals.first_arrivals()[0].get(&7), Some(&400));
    }

    #[test]
    fn a_late_arrival_after_settling_still_counts_its_full_delay() {
        let arrivals = Arrivals::new(1);
        arrivals.start_hold(0);
        arrivals.record(0, 7, 100);
        arrivals.settle_all();
        arrivals.record(0, 7, 300_100);
        let (_, hold) = arrivals.delays();
        assert_eq!(hold.count(), 2);
        let max = hold.summary().max_ms;
        assert!((max - 300.0).abs() < 0.5, "max {max} ms (0.1 % resolution)");
    }

    #[test]
    fn points_are_split_by_the_phase_of_their_first_arrival() {
        let arrivals = Arrivals::new(2);
        arrivals.record(0, 1, 10); // before the hold is known: ramp
        arrivals.start_hold(1_000);
        arrivals.record(1, 1, 500); // before the hold start: ramp
        arrivals.record(1, 2, 1_500); // hold
        arrivals.end_hold(2_000);
        arrivals.record(1, 3, 2_500); // after: not measured
        arrivals.settle_all();
        let (ramp, hold) = arrivals.delays();
        assert_eq!(ramp.count(), 2);
        assert_eq!(hold.count(), 1);
        assert_eq!(arrivals.first_arrivals()[1].len(), 3, "all points exist");
    }

    #[test]
    fn flushed_points_are_measured_apart_from_the_steady_state() {
        let arrivals = Arrivals::new(1);
        arrivals.start_hold(0);
        arrivals.set_backlog(101..=103);
        for (time, at) in [(101, 10), (101, 30), (103, 40), (104, 50)] {
            arrivals.record(0, time, at);
        }
        arrivals.settle_all();
        arrivals.record(0, 101, 60); // after settling: measured against 10
        let (_, hold) = arrivals.delays();
        assert_eq!(hold.count(), 1, "only 104 is a steady-state point");
        assert_eq!(arrivals.flushed_delays().count(), 4);
    }

    #[test]
    fn the_age_of_an_arrival_in_the_hold_is_its_distance_from_the_points_second() {
        let arrivals = Arrivals::new(1);
        let epoch = arrivals.epoch_unix();
        let second = i64::try_from(epoch.as_secs()).expect("a recent time");
        // µs since the epoch at which `second + 1` began, plus 250 ms.
        let next = (1_000_000 - u64::from(epoch.subsec_micros())) + 250_000;
        arrivals.record(0, second + 1, next); // before the hold: not aged
        arrivals.start_hold(next);
        arrivals.record(0, second + 1, next);
        arrivals.record(0, second + 9, next); // stamped ahead of this clock
        arrivals.end_hold(next + 1);
        arrivals.record(0, second + 1, next + 1); // after the hold
        let ages = arrivals.hold_ages().summary();
        assert_eq!(ages.count, 2);
        assert!((ages.max_ms - 250.0).abs() < 0.5, "{ages:?}");
        assert_eq!(arrivals.hold_ages().summary().p50_ms, 0.0);
    }

    #[test]
    fn only_points_open_longer_than_the_settle_delay_are_settled() {
        let arrivals = Arrivals::new(1);
        let settle = SETTLE_AFTER.as_micros() as u64;
        arrivals.record(0, 1, 0);
        arrivals.record(0, 2, settle);
        arrivals.settle_older(settle + 1);
        let settled = arrivals.first_arrivals();
        assert!(settled[0].contains_key(&1));
        assert!(!settled[0].contains_key(&2));
    }
}
