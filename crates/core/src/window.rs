//! The sliding history window of one asset: what a new subscriber is sent.
//!
//! Points enter in strictly increasing time and leave from the front when they
//! fall out of the history span. Strict ordering is the window's contract with
//! subscribers: a point older than or equal to the newest one is refused, so live
//! points never arrive out of order or twice, whatever the feed replays.

use std::collections::VecDeque;

/// `(time, value)` pairs, strictly ascending by time.
#[derive(Debug, Clone, Default)]
pub struct Window {
    points: VecDeque<(i64, f64)>,
    /// The newest time ever taken, kept apart from `points` so a window that
    /// emptied (upstream down longer than the span) still refuses older points.
    newest: Option<i64>,
}

impl Window {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a point newer than every held point; returns whether it was taken.
    pub fn push(&mut self, time: i64, value: f64) -> bool {
        if self.newest.is_some_and(|newest| time <= newest) {
            return false;
        }
        self.newest = Some(time);
        self.points.push_back((time, value));
        true
    }

    /// Drops points with `time < cutoff`; returns whether any was dropped.
    pub fn evict_before(&mut self, cutoff: i64) -> bool {
        let before = self.points.len();
        while self.points.front().is_some_and(|&(t, _)| t < cutoff) {
            self.points.pop_front();
        }
        if self.points.is_empty() {
            // Release the capacity of a window that emptied (e.g. upstream down for long).
            self.points.shrink_to_fit();
        }
        self.points.len() != before
    }

    /// Held points with `time >= since`, ascending.
    pub fn since(&self, since: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        let start = self.points.partition_point(|&(t, _)| t < since);
        self.points.range(start..).copied()
    }

    /// The newest time ever taken, even if it has since been evicted.
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strictly_newer_points_enter() {
        let mut window = Window::new();
        assert!(window.push(10, 1.0));
        assert!(window.push(12, 1.2));
        assert!(!window.push(12, 9.9), "same second again");
        assert!(!window.push(11, 1.1), "older than the newest");
        assert_eq!(
            window.since(0).collect::<Vec<_>>(),
            vec![(10, 1.0), (12, 1.2)]
        );
    }

    #[test]
    fn eviction_drops_exactly_the_points_before_the_cutoff() {
        let mut window = Window::new();
        for t in 0..10 {
            window.push(t, t as f64);
        }
        assert!(window.evict_before(7));
        assert!(!window.evict_before(7));
        assert_eq!(
            window.since(0).map(|(t, _)| t).collect::<Vec<_>>(),
            vec![7, 8, 9]
        );
        assert_eq!(window.since(9).count(), 1);
        assert!(window.evict_before(100));
        assert!(window.is_empty());
        assert_eq!(window.newest(), Some(9));
        assert!(
            !window.push(5, 5.0),
            "an emptied window still refuses older points"
        );
    }
}
