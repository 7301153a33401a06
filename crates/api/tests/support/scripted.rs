//! The API over a store whose live feed the test scripts.

use ratecast_api::ServerConfig;
use ratecast_core::{
    AssetList, LiveFeed, MemoryStore, Point, SnapshotFeed, StoreError,
    store::{FeedError, FeedEvent},
};
use ratecast_testkit::rigged::{Rig, Rigged};

use super::{ApiServer, memory_store};

/// A store whose live feed the test scripts: each event sent is what the next
/// `next()` returns.
struct ScriptedFeedStore {
    inner: MemoryStore,
    feed: std::sync::Mutex<Option<ScriptedFeed>>,
}

struct ScriptedFeed(tokio::sync::mpsc::Receiver<Result<FeedEvent, FeedError>>);

impl LiveFeed for ScriptedFeed {
    async fn next(&mut self) -> Result<FeedEvent, FeedError> {
        match self.0.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }
}

impl Rig for ScriptedFeedStore {
    type Feed = ScriptedFeed;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    async fn follow(&self, _since: i64) -> Result<SnapshotFeed<ScriptedFeed>, StoreError> {
        let feed = ratecast_core::sync::lock(&self.feed).take();
        match feed {
            Some(feed) => Ok(SnapshotFeed {
                snapshot: Vec::new(),
                feed,
            }),
            None => Err(StoreError::Other("followed twice".into())),
        }
    }
}

/// The API over a [`ScriptedFeedStore`]; events sent go to its live feed.
pub struct Scripted {
    pub server: ApiServer,
    pub events: tokio::sync::mpsc::Sender<Result<FeedEvent, FeedError>>,
}

pub async fn start_scripted(assets: &str) -> Scripted {
    let assets: AssetList = assets.parse().expect("assets");
    let (events, rx) = tokio::sync::mpsc::channel(64);
    let memory = memory_store(&assets);
    let store = Rigged(ScriptedFeedStore {
        inner: memory.clone(),
        feed: std::sync::Mutex::new(Some(ScriptedFeed(rx))),
    });
    let server = ApiServer::start_over(assets, memory, store, ServerConfig::default()).await;
    Scripted { server, events }
}

impl Scripted {
    pub async fn feed(&self, point: Point) {
        self.events
            .send(Ok(FeedEvent::Point(point)))
            .await
            .expect("feed open");
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}
