//! What the outbound unit tests share: a hub, a subscribed outbound side, and
//! polling its body by hand, without a socket.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use actix_web::body::MessageBody;
use bytes::Bytes;
use ratecast_core::{AssetId, Point};

use super::{Joined, Outbound, OutboundBody};
use crate::hub::Hub;

pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn poll(body: &mut OutboundBody) -> Poll<Option<Bytes>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(body)
        .poll_next(&mut cx)
        .map(|chunk| chunk.map(|c| c.expect("no error")))
}

/// Every chunk the body has ready now.
pub(super) fn drain(body: &mut OutboundBody) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Poll::Ready(Some(chunk)) = poll(body) {
        out.push(chunk);
    }
    out
}

/// An outbound side and its body, subscribed to EURUSD of `hub` now.
pub(super) fn subscribed(hub: &Arc<Hub>) -> (Outbound, OutboundBody) {
    let outbound = Outbound::new(1 << 20, hub.clone());
    let body = outbound.body();
    outbound.subscribe(vec![joined(hub, 1)]).expect("open");
    (outbound, body)
}

/// Asset `id` of `hub` joined now: its receiver, then its history.
pub(super) fn joined(hub: &Hub, id: u32) -> Joined {
    let points = hub.points(AssetId(id)).expect("asset");
    let sub = hub.subscribe(AssetId(id), NOW, None).expect("asset");
    Joined {
        points,
        sub,
        candles: None,
    }
}

pub(super) fn hub() -> Arc<Hub> {
    Arc::new(Hub::new("EURUSD".parse().expect("assets")))
}

pub(super) fn point(time: i64) -> Point {
    ratecast_testkit::point(1, "EURUSD", time, 1.0)
}

/// The `time` of each point frame among `chunks` (whole frames only).
pub(super) fn times(chunks: &[Bytes]) -> Vec<i64> {
    chunks
        .iter()
        .filter_map(|c| {
            let json: serde_json::Value = serde_json::from_slice(crate::wire::payload(c)).ok()?;
            (json["action"] == "point").then(|| json["message"]["time"].as_i64())?
        })
        .collect()
}
