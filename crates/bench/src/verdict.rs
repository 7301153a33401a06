//! The correctness verdict of a run: missed and duplicated points, history/live
//! seam errors, short histories.
//!
//! Each client keeps only a summary of what it saw ([`ClientOutcome`]: its
//! history's bounds, its first and last live second, the holes between live
//! seconds). At the end those are judged against the points that *existed*,
//! i.e. arrived at some client (from [`super::arrivals`]). So a second the server
//! never produced (its poller skipped a tick) is a source gap, not a miss, while a
//! point other clients got and this one did not is a miss.
//!
//! - **missed**: an existing point inside a hole between two live points of a
//!   client, or after its last one while the run went on (a point that reached
//!   some client at least [`TAIL_GRACE`] before the stop).
//! - **duplicate**: a live point not newer than the previous one.
//! - **seam error**: the first live point is not newer than the history's last,
//!   or an existing point lies strictly between them.
//! - **full history**: a consecutive run of at least the expected length; in a
//!   backlog run (`--expect-backlog`) shorter by its age, since the server wrote
//!   nothing after it. The flushed points are live points like any other.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{catchup::CatchUpOutcome, frames::HistoryScan};

/// A point that reached some client this long before the stop must have reached
/// every client still connected; otherwise it counts as missed.
pub const TAIL_GRACE: Duration = Duration::from_secs(5);

/// How a client ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Held until the generator stopped it: the normal end.
    Stopped,
    /// Received its history, then lost the connection before the stop.
    Dropped(String),
    /// Never received its history (connect error, refusal, timeout).
    Failed(String),
}

/// What one client saw, summarised in a few words of memory.
#[derive(Debug, Clone)]
pub struct ClientOutcome {
    /// Index of the subscribed asset in the `assets` reply.
    pub asset: usize,
    pub history: Option<HistoryScan>,
    pub first_live: Option<i64>,
    pub last_live: Option<i64>,
    /// Consecutive live points `(a, b)` with `b > a + 1`: what lies between is
    /// either a source gap or missed. Empty in a healthy run (no allocation).
    pub holes: Vec<(i64, i64)>,
    /// Live points not newer than the previous one.
    pub duplicates: u64,
    /// Live points of another asset than the subscribed one.
    pub foreign: u64,
    /// Live points received.
    pub live: u64,
    /// Seconds the history may fall short of the expected length: in a backlog
    /// run, how old its newest point was when it arrived (the server wrote
    /// nothing since); 0 otherwise.
    pub history_allowance: usize,
    /// What the client saw of a backlog flush (`--expect-backlog` only).
    pub catch_up: CatchUpOutcome,
    pub end: End,
}

impl ClientOutcome {
    pub fn new(asset: usize) -> Self {
        Self {
            asset,
            history: None,
            first_live: None,
            last_live: None,
            holes: Vec::new(),
            duplicates: 0,
            foreign: 0,
            live: 0,
            history_allowance: 0,
            catch_up: CatchUpOutcome::default(),
            end: End::Stopped,
        }
    }

    /// Takes one live point of the subscribed asset, in arrival order.
    pub fn take_live(&mut self, time: i64) {
        self.live += 1;
        match self.last_live {
            None => self.first_live = Some(time),
            Some(last) if time <= last => {
                self.duplicates += 1;
                return;
            }
            Some(last) if time > last + 1 => self.holes.push((last, time)),
            Some(_) => {}
        }
        self.last_live = Some(time);
    }
}

/// The correctness figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Points missed inside a client's live stream (holes).
    pub missed: u64,
    /// Points missed after a client's last live point, before the stop.
    pub missed_at_end: u64,
    pub duplicates: u64,
    pub seam_errors: u64,
    /// Live points of an asset the client had not subscribed to.
    pub foreign_points: u64,
    /// Histories that were a consecutive run of at least the expected length.
    pub full_histories: u64,
    /// Histories received that were shorter or had holes.
    pub short_histories: u64,
    /// The shortest history received.
    pub shortest_history: Option<usize>,
    /// Seconds within the run for which no client got a point of an asset
    /// (the server produced none, e.g. its poller skipped a tick).
    pub source_gaps: u64,
}

/// Judges every outcome against the points that existed (`first_arrivals`, per
/// asset index: time → first arrival in µs). `due_by` is the first-arrival time
/// (µs) up to which a point must have reached every connected client.
pub fn judge(
    outcomes: &[ClientOutcome],
    first_arrivals: &[BTreeMap<i64, u64>],
    due_by: u64,
    expected_history: usize,
) -> Verdict {
    let empty = BTreeMap::new();
    let mut verdict = Verdict::default();
    for outcome in outcomes {
        let existing = first_arrivals.get(outcome.asset).unwrap_or(&empty);
        let between = |a: i64, b: i64| -> u64 {
            if b <= a + 1 {
                return 0;
            }
            existing.range(a + 1..b).count() as u64
        };
        verdict.duplicates += outcome.duplicates;
        verdict.foreign_points += outcome.foreign;
        verdict.missed += outcome
            .holes
            .iter()
            .map(|&(a, b)| between(a, b))
            .sum::<u64>();
        if let Some(history) = &outcome.history {
            if history.is_full(expected_history.saturating_sub(outcome.history_allowance)) {
                verdict.full_histories += 1;
            } else {
                verdict.short_histories += 1;
            }
            verdict.shortest_history = Some(
                verdict
                    .shortest_history
                    .map_or(history.count, |s| s.min(history.count)),
            );
            if let (Some(last), Some(first_live)) = (history.last, outcome.first_live)
                && (first_live <= last || between(last, first_live) > 0)
            {
                verdict.seam_errors += 1;
            }
        }
        let last_seen = outcome
            .last_live
            .or(outcome.history.as_ref().and_then(|h| h.last));
        if let (End::Stopped, Some(last)) = (&outcome.end, last_seen) {
            verdict.missed_at_end += existing
                .range(last + 1..)
                .filter(|(_, first)| **first <= due_by)
                .count() as u64;
        }
    }
    verdict.source_gaps = first_arrivals
        .iter()
        .filter_map(|times| {
            let (first, last) = (times.keys().next()?, times.keys().next_back()?);
            Some((last - first + 1) as u64 - times.len() as u64)
        })
        .sum();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_history(last: i64, len: usize) -> HistoryScan {
        HistoryScan {
            count: len,
            first: Some(last - len as i64 + 1),
            last: Some(last),
            ascending: true,
            consecutive: true,
            asset_id: Some(1),
        }
    }

    fn existing(times: impl IntoIterator<Item = i64>) -> Vec<BTreeMap<i64, u64>> {
        vec![times.into_iter().map(|t| (t, 0)).collect()]
    }

    fn client(history_last: i64, live: &[i64]) -> ClientOutcome {
        let mut outcome = ClientOutcome::new(0);
        outcome.history = Some(full_history(history_last, 10));
        for &t in live {
            outcome.take_live(t);
        }
        outcome
    }

    #[test]
    fn a_client_that_saw_every_point_after_its_history_is_clean() {
        let verdict = judge(
            &[client(100, &[101, 102, 103])],
            &existing(101..=103),
            0,
            10,
        );
        assert_eq!(
            verdict,
            Verdict {
                full_histories: 1,
                shortest_history: Some(10),
                ..Verdict::default()
            }
        );
    }

    #[test]
    fn a_point_other_clients_got_is_missed_but_a_source_gap_is_not() {
        let holed = client(100, &[101, 103, 106]);
        // 102 reached someone; 104 and 105 reached no one.
        let times = [101, 102, 103, 106];
        let verdict = judge(&[holed], &existing(times), 0, 10);
        assert_eq!(verdict.missed, 1);
        assert_eq!(verdict.source_gaps, 2);
    }

    #[test]
    fn repeated_and_backward_points_are_duplicates() {
        let outcome = client(100, &[101, 102, 102, 101, 103]);
        assert_eq!(outcome.duplicates, 2);
        assert_eq!(outcome.last_live, Some(103));
        assert!(outcome.holes.is_empty(), "going back is not a hole");
        assert_eq!(judge(&[outcome], &existing(101..=103), 0, 10).duplicates, 2);
    }

    #[test]
    fn live_points_overlapping_or_skipping_past_the_history_are_seam_errors() {
        let overlap = client(100, &[100, 101]);
        let hole = client(100, &[102]);
        let verdict = judge(&[overlap, hole], &existing(100..=102), 0, 10);
        assert_eq!(verdict.seam_errors, 2);
    }

    #[test]
    fn a_seam_across_a_second_nobody_got_is_not_an_error() {
        let verdict = judge(&[client(100, &[102])], &existing([102]), 0, 10);
        assert_eq!(verdict.seam_errors, 0);
    }

    #[test]
    fn points_delivered_elsewhere_before_the_deadline_are_missed_at_the_end() {
        let stalled = client(100, &[101]);
        let times: Vec<BTreeMap<i64, u64>> = vec![[(101, 0), (102, 10), (103, 99)].into()];
        assert_eq!(
            judge(std::slice::from_ref(&stalled), &times, 50, 10).missed_at_end,
            1
        );
        let mut dropped = stalled;
        dropped.end = End::Dropped("closed".into());
        assert_eq!(judge(&[dropped], &times, 50, 10).missed_at_end, 0);
    }

    #[test]
    fn a_history_that_ends_where_the_server_stopped_writing_is_full_in_a_backlog_run() {
        let mut stale = client(100, &[]);
        stale.history = Some(full_history(100, 7));
        assert_eq!(
            judge(std::slice::from_ref(&stale), &existing([]), 0, 10).short_histories,
            1
        );
        stale.history_allowance = 3;
        assert_eq!(judge(&[stale], &existing([]), 0, 10).full_histories, 1);
    }

    #[test]
    fn a_short_or_holed_history_is_not_full() {
        let mut short = client(100, &[]);
        short.history = Some(full_history(100, 9));
        let mut holed = client(100, &[]);
        holed.history = Some(HistoryScan {
            consecutive: false,
            ..full_history(100, 10)
        });
        let verdict = judge(&[short, holed, client(100, &[])], &existing([]), 0, 10);
        assert_eq!(verdict.full_histories, 1);
        assert_eq!(verdict.short_histories, 2);
        assert_eq!(verdict.shortest_history, Some(9));
    }
}
