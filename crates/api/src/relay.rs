//! Per-worker relays of the hub's point frames: one cross-thread wake per point
//! per worker thread, then local wakes only.
//!
//! actix runs each connection on one of its worker threads, each a
//! single-threaded runtime. If every connection waited on the hub's broadcast
//! itself, each new point would wake thousands of tasks from the feed's thread,
//! and each wake would signal the worker thread across threads (an eventfd
//! write) and park and unpark it again and again. Instead, each worker thread
//! has one relay per hub: a task per asset that receives from the hub and
//! re-broadcasts on a channel local to the worker, which that worker's
//! connections subscribe to. A point then costs one cross-thread wake per
//! worker and per asset, and the wakes of the connections stay on their thread.
//!
//! The relay may be behind or ahead of the hub when a connection subscribes, and
//! it may skip points in a burst (its ring is bounded): it forwards the hub's
//! numbered points as they are, and [the sequence
//! invariant](crate::hub#the-sequence-invariant) says why its subscribers still
//! get each point once and in order. The relay's tasks run on the worker's own
//! runtime and end with it, or when the hub is dropped. Shutdown does not track
//! them: they hold no client and write nothing, so there is nothing to wait for.

use std::{
    cell::RefCell,
    rc::Rc,
    sync::{Arc, Weak},
};

use ratecast_core::AssetId;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{
    hub::{Hub, POINT_BUFFER},
    wire::PointBytes,
};

/// One worker thread's relay of one hub.
pub struct Relay {
    hub: Weak<Hub>,
    /// One local channel per asset, in id order.
    senders: Box<[broadcast::Sender<PointBytes>]>,
}

thread_local! {
    /// This thread's relays, one per hub (tests run several servers in one process).
    static RELAYS: RefCell<Vec<Rc<Relay>>> = const { RefCell::new(Vec::new()) };
}

impl Relay {
    /// This thread's relay of `hub`, started on first use. Must run on a thread
    /// with a local task set (an actix worker).
    pub fn for_this_thread(hub: &Arc<Hub>) -> Rc<Self> {
        RELAYS.with(|relays| {
            let mut relays = relays.borrow_mut();
            relays.retain(|relay| relay.hub.strong_count() > 0);
            if let Some(relay) = relays
                .iter()
                .find(|relay| std::ptr::eq(relay.hub.as_ptr(), Arc::as_ptr(hub)))
            {
                return relay.clone();
            }
            let relay = Rc::new(Self::start(hub));
            relays.push(relay.clone());
            relay
        })
    }

    fn start(hub: &Arc<Hub>) -> Self {
        let senders = hub
            .assets()
            .iter()
            .map(|asset| {
                let local = broadcast::channel(POINT_BUFFER).0;
                if let Some(from_hub) = hub.points(asset.id) {
                    tokio::task::spawn_local(forward(from_hub, local.clone()));
                }
                local
            })
            .collect();
        Self {
            hub: Arc::downgrade(hub),
            senders,
        }
    }

    /// A receiver of `id`'s points from now on; `None` for an unknown asset.
    pub fn subscribe(&self, hub: &Hub, id: AssetId) -> Option<broadcast::Receiver<PointBytes>> {
        let index = hub.assets().index_of(id)?;
        Some(self.senders.get(index)?.subscribe())
    }
}

/// Re-broadcasts every point of the hub locally, until the hub is dropped.
async fn forward(
    mut from_hub: broadcast::Receiver<PointBytes>,
    local: broadcast::Sender<PointBytes>,
) {
    loop {
        match from_hub.recv().await {
            // No local subscriber right now is not an error.
            Ok(point) => {
                let _ = local.send(point);
            }
            // Skipped points leave a gap in the numbers, which each subscriber
            // fills (see the sequence invariant, `crate::hub`).
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use ratecast_core::Point;

    use super::*;

    fn point(time: i64) -> Point {
        ratecast_testkit::point(1, "EURUSD", time, 1.0)
    }

    #[tokio::test]
    async fn a_worker_has_one_relay_per_hub_and_it_forwards_every_point() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let hub = Arc::new(Hub::new("EURUSD,USDJPY".parse().expect("assets")));
                let other = Arc::new(Hub::new("EURUSD".parse().expect("assets")));
                let relay = Relay::for_this_thread(&hub);
                assert!(Rc::ptr_eq(&relay, &Relay::for_this_thread(&hub)));
                assert!(!Rc::ptr_eq(&relay, &Relay::for_this_thread(&other)));
                let mut points = relay.subscribe(&hub, AssetId(1)).expect("asset");
                assert!(relay.subscribe(&hub, AssetId(9)).is_none());
                let now = 1_700_000_000;
                hub.apply(&point(now), now);
                hub.apply(&point(now + 1), now + 1);
                let first = points.recv().await.expect("forwarded");
                let second = points.recv().await.expect("forwarded");
                assert_eq!((first.time, first.seq), (now, 1));
                assert_eq!((second.time, second.seq), (now + 1, 2));
            })
            .await;
    }
}
