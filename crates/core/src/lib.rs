//! ratecast-core: the domain every other crate speaks.
//!
//! It owns assets and points, the websocket wire protocol (parsing client frames,
//! serializing server frames), the store traits both stores implement, the embedded
//! in-memory store and the sliding history window the API keeps per asset. It knows
//! nothing of actix, MongoDB or HTTP: those live in the crates that do I/O. Candles
//! (OHLC summaries of stored points) are defined in [`candle`].

pub mod asset;
pub mod candle;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod memory;
pub mod point;
pub mod protocol;
pub mod retry;
pub mod store;
pub mod sync;
pub mod throttle;
pub mod time;
pub mod window;

pub use asset::{Asset, AssetId, AssetList, AssetListError};
pub use candle::{Candle, Interval};
pub use memory::MemoryStore;
pub use point::{Point, mid_price};
pub use store::{InsertReport, LiveFeed, PointSink, PointStore, SnapshotFeed, StoreError};
