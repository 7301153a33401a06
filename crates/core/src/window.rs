//! The sliding history window of one asset: what a new subscriber is sent.
//!
//! Entries are kept in strictly ascending time, at most one per second, and leave
//! from the front when they fall out of the history span. A point newer than every
//! held one is appended (the live case); an older one that is not held yet (a late
//! point: a second fetcher, or a buffer flush racing a restart) is inserted in time
//! order, so later histories hold it. What the window stores per point is up to its
//! owner: the API keeps each point's serialized frame, so histories and catch-ups
//! are built from shared bytes.

use std::collections::VecDeque;

/// How a point fared when offered to a [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Newer than every point the window ever took: appended.
    Newest,
    /// Older than the newest, not held yet and still inside the span: inserted
    /// in time order.
    Late,
    /// That second is held already.
    Duplicate,
    /// Older than the span the window covers (or than what it already evicted).
    Expired,
}

/// One asset's points, strictly ascending by time.
#[derive(Debug, Clone)]
pub struct Window<T> {
    entries: VecDeque<(i64, T)>,
    /// The newest time ever taken, kept apart from `entries` so a window that
    /// emptied (upstream down longer than the span) still knows where live points
    /// resume.
    newest: Option<i64>,
    /// Times before this have been evicted: a late point older than it would
    /// come back after eviction, so it is refused.
    floor: i64,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            newest: None,
            floor: i64::MIN,
        }
    }
}

impl<T> Window<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers the point at `time`; `entry` is built only if it is taken, and is
    /// told how ([`Placed::Newest`] or [`Placed::Late`]).
    pub fn place(&mut self, time: i64, entry: impl FnOnce(Placed) -> T) -> Placed {
        if time < self.floor {
            return Placed::Expired;
        }
        if self.newest.is_none_or(|newest| time > newest) {
            self.newest = Some(time);
            self.entries.push_back((time, entry(Placed::Newest)));
            return Placed::Newest;
        }
        let at = self.entries.partition_point(|&(t, _)| t < time);
        if self.entries.get(at).is_some_and(|&(t, _)| t == time) {
            return Placed::Duplicate;
        }
        self.entries.insert(at, (time, entry(Placed::Late)));
        Placed::Late
    }

    /// The time of the oldest entry held.
    pub fn oldest_held(&self) -> Option<i64> {
        self.entries.front().map(|&(t, _)| t)
    }

    /// Drops entries with `time < cutoff` and refuses later points older than
    /// it; returns whether any entry was dropped.
    pub fn evict_before(&mut self, cutoff: i64) -> bool {
        self.floor = self.floor.max(cutoff);
        let before = self.entries.len();
        while self.entries.front().is_some_and(|&(t, _)| t < cutoff) {
            self.entries.pop_front();
        }
        if self.entries.is_empty() {
            // Release the capacity of a window that emptied (e.g. upstream down for long).
            self.entries.shrink_to_fit();
        }
        self.entries.len() != before
    }

    /// Held entries with `time >= since`, ascending.
    pub fn since(&self, since: i64) -> impl DoubleEndedIterator<Item = (i64, &T)> + Clone + '_ {
        let start = self.entries.partition_point(|&(t, _)| t < since);
        self.entries.range(start..).map(|(t, entry)| (*t, entry))
    }

    /// The time of the newest entry held.
    pub fn newest_held(&self) -> Option<i64> {
        self.entries.back().map(|&(t, _)| t)
    }

    /// The newest time ever taken, even if it has since been evicted.
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times<T>(window: &Window<T>) -> Vec<i64> {
        window.since(i64::MIN).map(|(t, _)| t).collect()
    }

    #[test]
    fn newer_points_are_appended_and_late_ones_inserted_in_time_order() {
        let mut window = Window::new();
        let mut told = Vec::new();
        for (time, entry) in [(10, 'a'), (13, 'b'), (11, 'c'), (12, 'd'), (9, 'e')] {
            let placed = window.place(time, |how| {
                told.push(how);
                entry
            });
            assert_eq!(
                told.last(),
                Some(&placed),
                "the entry is told how it is placed"
            );
        }
        use Placed::{Late, Newest};
        assert_eq!(told, vec![Newest, Newest, Late, Late, Late]);
        assert_eq!(times(&window), vec![9, 10, 11, 12, 13]);
        assert_eq!(window.oldest_held(), Some(9));
        let entries: String = window.since(11).map(|(_, c)| *c).collect();
        assert_eq!(entries, "cdb");
        assert_eq!(window.newest(), Some(13));
    }

    #[test]
    fn a_held_second_is_a_duplicate_and_its_entry_is_not_built() {
        let mut window = Window::new();
        window.place(10, |_| 1);
        window.place(12, |_| 2);
        assert_eq!(window.place(12, |_| panic!("not built")), Placed::Duplicate);
        assert_eq!(window.place(10, |_| panic!("not built")), Placed::Duplicate);
        assert_eq!(times(&window), vec![10, 12]);
    }

    #[test]
    fn eviction_drops_exactly_the_points_before_the_cutoff_and_refuses_them_later() {
        let mut window = Window::new();
        for t in 0..10 {
            window.place(t, |_| t);
        }
        assert!(window.evict_before(7));
        assert!(!window.evict_before(7));
        assert_eq!(times(&window), vec![7, 8, 9]);
        assert_eq!(window.since(9).count(), 1);
        assert_eq!(
            window.place(5, |_| 5),
            Placed::Expired,
            "an evicted second does not come back"
        );
        assert!(window.evict_before(100));
        assert!(window.is_empty());
        assert_eq!(window.newest(), Some(9));
        assert_eq!(window.place(50, |_| 50), Placed::Expired);
        assert_eq!(
            window.place(100, |_| 100),
            Placed::Newest,
            "an emptied window takes points again at the cutoff"
        );
    }
}
