//! What the `parse_request` fuzz targets check about one client text frame.
//!
//! Beyond "never panics": an accepted request names a tracked asset and a sane
//! range (what the session and the hub rely on without re-checking), and a refused
//! one serializes to a JSON `error` frame carrying its code.

use std::sync::LazyLock;

use ratecast_core::{
    AssetList,
    protocol::{ClientRequest, MAX_HISTORY_SPAN_SECS, error_frame, parse_request},
};

/// The default `ASSET_LIST`, so `assetId` 1..=5 are valid and 6 is unknown.
pub static ASSETS: LazyLock<AssetList> = LazyLock::new(|| {
    AssetList::new(["EURUSD", "USDJPY", "GBPUSD", "AUDUSD", "USDCAD"])
        .expect("the default asset list is valid")
});

/// Parses `text` as the session does and asserts the invariants above.
pub fn check_frame(text: &str) {
    match parse_request(text, &ASSETS) {
        Ok(ClientRequest::Subscribe { asset, since }) => {
            assert_eq!(ASSETS.get(asset.id), Some(&asset));
            assert!(since.is_none_or(|t| t >= 0));
        }
        Ok(ClientRequest::SubscribeMany(follows)) => {
            assert!(!follows.is_empty());
            for (i, follow) in follows.iter().enumerate() {
                assert_eq!(ASSETS.get(follow.asset.id), Some(&follow.asset));
                assert!(follow.since.is_none_or(|t| t >= 0));
                assert!(follows[..i].iter().all(|f| f.asset.id != follow.asset.id));
            }
        }
        Ok(ClientRequest::Add(follow)) => {
            assert_eq!(ASSETS.get(follow.asset.id), Some(&follow.asset));
            assert!(follow.since.is_none_or(|t| t >= 0));
        }
        Ok(ClientRequest::SubscribeCandles { follows, .. }) => {
            assert!(!follows.is_empty());
            for follow in &follows {
                assert_eq!(ASSETS.get(follow.asset.id), Some(&follow.asset));
                assert!(follow.since.is_none_or(|t| t >= 0));
            }
        }
        Ok(ClientRequest::AddCandles { follow, .. }) => {
            assert_eq!(ASSETS.get(follow.asset.id), Some(&follow.asset));
            assert!(follow.since.is_none_or(|t| t >= 0));
        }
        Ok(ClientRequest::Remove(asset)) => assert_eq!(ASSETS.get(asset.id), Some(&asset)),
        Ok(ClientRequest::History { asset, from, to }) => {
            assert_eq!(ASSETS.get(asset.id), Some(&asset));
            assert!(0 <= from && from <= to && to - from < MAX_HISTORY_SPAN_SECS);
        }
        Ok(ClientRequest::Assets | ClientRequest::Unsubscribe) => {}
        Err(error) => {
            let frame = error_frame(&error);
            let value: serde_json::Value =
                serde_json::from_str(&frame).expect("an error frame is JSON");
            assert_eq!(value["action"], "error");
            assert_eq!(value["message"]["code"], error.code.as_str());
        }
    }
}
