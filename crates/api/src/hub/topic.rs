//! One asset's topic: its sequence numbers, its window of encoded points, the
//! shared history frame built from that window, the broadcast of live points,
//! and the catch-up of a subscriber that fell behind.
//!
//! Everything of one asset sits behind one small mutex, held for a few
//! microseconds and never across `.await`, so placing a point, numbering it and
//! taking a history with its sequence number are each one step (why that
//! matters: [the sequence invariant](super#the-sequence-invariant)). A topic
//! does not know the other assets, readiness or the wall clock, and does not
//! decide which points are refused before they reach the window (future,
//! expired, unknown asset): that is the [`Hub`](super::Hub)'s.

use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use ratecast_core::{
    Asset,
    time::history_cutoff,
    window::{Placed, Window},
};
use tokio::sync::broadcast;

use crate::wire::{self, PointBytes};

/// Point frames buffered per asset for subscribers, shared by all of them.
///
/// The buffer is one ring per asset, so its memory does not grow with the number
/// of subscribers. A subscriber more than this many points behind (a burst, e.g.
/// a fetcher flushing a backlog after a store outage) misses frames, sees the gap
/// and catches up from the window ([the sequence
/// invariant](super#the-sequence-invariant)). Slow-consumer policy: only a client
/// that does not take a frame within the send timeout is closed (1008 "slow
/// consumer", see `SessionConfig::send_timeout`).
pub const POINT_BUFFER: usize = 64;

/// One asset's subscription topic: what a subscriber of that asset gets.
pub(super) struct Topic {
    asset: Asset,
    state: Mutex<TopicState>,
    /// Current subscribers, for `ratecast_ws_subscriptions` (they listen on their
    /// worker's relay, not on the topic's broadcast).
    subscribers: Arc<AtomicUsize>,
}

struct TopicState {
    /// The points inside the history span, encoded once; histories and
    /// catch-ups share these bytes.
    window: Window<PointBytes>,
    /// The encoded history of `window`, built on the first subscribe after a
    /// change and shared until the next one.
    history: Option<Bytes>,
    /// The live points, numbered, to the per-worker relays.
    points: broadcast::Sender<PointBytes>,
    /// The number of the last point pushed live (0: none yet).
    seq: u64,
}

/// One counted subscriber of an asset; dropping it uncounts it.
pub struct Subscribed(Arc<AtomicUsize>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A chunk of a lagging subscriber's catch-up.
pub struct CatchUp {
    /// The next points after the subscriber's newest, ascending.
    pub frames: Vec<PointBytes>,
    /// When these reach the newest point: the topic's sequence number, taken
    /// with them (the subscriber continues live after it). `None` when more
    /// remain.
    pub done_at: Option<u64>,
}

/// What a subscriber gets: the history so far and where live points continue
/// (what `seq` and `last_time` promise: [the sequence
/// invariant](super#the-sequence-invariant)).
pub struct Subscription {
    pub asset: Asset,
    /// The encoded `asset_history` frame.
    pub history: Bytes,
    /// The number of the last point pushed before `history` was taken.
    pub seq: u64,
    /// Counts the subscriber until dropped.
    pub counted: Subscribed,
    /// The newest time the client has (its history's newest, or `since`).
    pub last_time: Option<i64>,
}

/// What a candle subscriber starts from: the window's points after the time
/// its stored candles reach, and where live points continue (as for
/// [`Subscription`], taken together under the lock).
pub struct Seed {
    /// `(time, value)` of every point held after `after`, ascending.
    pub points: Vec<(i64, f64)>,
    /// The number of the last point pushed before `points` were taken.
    pub seq: u64,
    /// The newest time the subscriber has (the newest of `points`, or `after`).
    pub last_time: Option<i64>,
    /// Counts the subscriber until dropped.
    pub counted: Subscribed,
}

impl Topic {
    pub(super) fn new(asset: Asset) -> Self {
        Self {
            asset,
            state: Mutex::new(TopicState {
                window: Window::new(),
                history: None,
                points: broadcast::channel(POINT_BUFFER).0,
                seq: 0,
            }),
            subscribers: Arc::default(),
        }
    }

    /// Places `encoded` (the point at `time`) in the window after dropping what
    /// is older than `cutoff`: the newest point is numbered and pushed live, a
    /// late one only enters the window. The window keeps each entry with the
    /// number it was pushed with (0 for a late point), so a catch-up sends
    /// exactly the points every subscriber got live.
    pub(super) fn place(&self, time: i64, mut encoded: PointBytes, cutoff: i64) -> Placed {
        let mut state = self.lock();
        if state.window.evict_before(cutoff) {
            // The cached history holds what just left the span: even if this
            // point is refused (a duplicate of a reload), it must not be served.
            state.history = None;
        }
        let next = state.seq + 1;
        let placed = state.window.place(time, |how| {
            let mut entry = encoded.clone();
            if how == Placed::Newest {
                entry.seq = next;
            }
            entry
        });
        match placed {
            Placed::Newest => {
                state.seq = next;
                encoded.seq = next;
                state.history = None;
                // An error only means nobody is subscribed to this asset right now.
                let _ = state.points.send(encoded);
            }
            Placed::Late => state.history = None,
            Placed::Duplicate | Placed::Expired => {}
        }
        placed
    }

    /// The history at wall-clock second `now` (after `since`, when given) and
    /// the sequence number it ends at, taken together.
    pub(super) fn subscribe(&self, now: i64, since: Option<i64>) -> Subscription {
        let mut state = self.lock();
        if state.window.evict_before(history_cutoff(now)) {
            state.history = None;
        }
        // A client resuming from `since` already has everything up to it, even if
        // this replica's window does not reach that far yet.
        let last_time = state.window.newest_held().max(since);
        let seq = state.seq;
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        let counted = Subscribed(self.subscribers.clone());
        // A `since` before the oldest point held asks for the whole window: the
        // shared frame, not a private copy of it.
        let since = since.filter(|&since| {
            state
                .window
                .oldest_held()
                .is_some_and(|oldest| since >= oldest)
        });
        let history = match since {
            Some(since) => {
                let missed: Vec<PointBytes> = state
                    .window
                    .since(since.saturating_add(1))
                    .map(|(_, p)| p.clone())
                    .collect();
                drop(state);
                wire::history_frame(self.asset.id, missed.iter())
            }
            None => match &state.history {
                Some(frame) => frame.clone(),
                None => {
                    let frame = wire::history_frame(
                        self.asset.id,
                        state.window.since(i64::MIN).map(|(_, p)| p),
                    );
                    crate::metrics::history_built();
                    state.history = Some(frame.clone());
                    frame
                }
            },
        };
        Subscription {
            asset: self.asset.clone(),
            history,
            seq,
            counted,
            last_time,
        }
    }

    /// The points held after `after` at wall-clock second `now`, as values,
    /// and the sequence number they end at, taken together: the same seam as
    /// [`subscribe`](Self::subscribe) with `since = after`, for a subscriber
    /// that folds points into candles instead of sending them.
    pub(super) fn seed(&self, now: i64, after: i64) -> Seed {
        let mut state = self.lock();
        if state.window.evict_before(history_cutoff(now)) {
            state.history = None;
        }
        let points: Vec<(i64, f64)> = state
            .window
            .since(after.saturating_add(1))
            .map(|(time, p)| (time, p.value))
            .collect();
        let last_time = state.window.newest_held().max(Some(after));
        let seq = state.seq;
        drop(state);
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        Seed {
            points,
            seq,
            last_time,
            counted: Subscribed(self.subscribers.clone()),
        }
    }

    /// The next `limit` points of the window after `after`, and the sequence
    /// number they end at when they reach the newest.
    pub(super) fn catch_up(&self, after: Option<i64>, limit: usize) -> CatchUp {
        let state = self.lock();
        let from = after.map_or(i64::MIN, |t| t.saturating_add(1));
        // Only the points that were pushed live (numbered): a late point is in
        // later histories but never a `point` message, for any subscriber.
        let mut frames: Vec<PointBytes> = state
            .window
            .since(from)
            .filter(|(_, p)| p.seq != 0)
            .take(limit.saturating_add(1))
            .map(|(_, p)| p.clone())
            .collect();
        let done_at = if frames.len() > limit {
            frames.truncate(limit);
            None
        } else {
            Some(state.seq)
        };
        CatchUp { frames, done_at }
    }

    /// The newest point held at or after `cutoff` that was pushed live (the
    /// newest held always was: a late point only enters below it), read from
    /// the back of the window.
    pub(super) fn newest_from(&self, cutoff: i64) -> Option<PointBytes> {
        let state = self.lock();
        let newest = state.window.since(cutoff).rev().find(|(_, p)| p.seq != 0);
        newest.map(|(_, point)| point.clone())
    }

    /// A receiver of every point pushed live from now on.
    pub(super) fn points(&self) -> broadcast::Receiver<PointBytes> {
        self.lock().points.subscribe()
    }

    pub(super) fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Drops the points older than `cutoff` (and the history frame that held them).
    pub(super) fn evict_before(&self, cutoff: i64) {
        let mut state = self.lock();
        if state.window.evict_before(cutoff) {
            state.history = None;
        }
    }

    /// Points held at or after `cutoff`, counted without evicting the rest.
    pub(super) fn len_from(&self, cutoff: i64) -> usize {
        self.lock().window.since(cutoff).count()
    }

    pub(super) fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, TopicState> {
        ratecast_core::sync::lock(&self.state)
    }
}
