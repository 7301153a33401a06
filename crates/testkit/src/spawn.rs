//! The real servers on 127.0.0.1:0, ready before the test goes on: the API alone
//! over a memory store the test writes into, and the all-in-one service as
//! `cargo run` starts it.

use std::net::SocketAddr;

use ratecast_api::ServerConfig;
use ratecast_core::{AssetList, MemoryStore, Point, PointSink, memory::DEFAULT_RETENTION_SECS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Client, wait_ready};

/// The API alone on a memory store the test writes into.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub store: MemoryStore,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ratecast_api::ApiError>>,
}

impl ApiServer {
    pub async fn start(assets: &str) -> Self {
        Self::start_with(assets, ServerConfig::default()).await
    }

    pub async fn start_with(assets: &str, config: ServerConfig) -> Self {
        let assets: AssetList = assets.parse().expect("valid asset list");
        let store = MemoryStore::new(assets.clone(), DEFAULT_RETENTION_SECS);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind api");
        let addr = listener.local_addr().expect("api addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ratecast_api::run(
            listener,
            assets,
            store.clone(),
            std::future::ready(Ok(())),
            config,
            shutdown.clone(),
        ));
        wait_ready(addr).await;
        Self {
            addr,
            store,
            shutdown,
            task,
        }
    }

    pub async fn insert(&self, points: &[Point]) {
        self.store.insert(points).await.expect("memory insert");
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// The all-in-one service, as `cargo run` starts it, with the given flags.
pub struct Service {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ratecast::RunError>>,
}

impl Service {
    pub async fn start(args: &[&str]) -> Self {
        let argv = std::iter::once("ratecast").chain(args.iter().copied());
        let config = <ratecast::Config as clap::Parser>::try_parse_from(argv).expect("valid flags");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind service");
        let addr = listener.local_addr().expect("service addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ratecast::run(config, listener, shutdown.clone()));
        wait_ready(addr).await;
        Self {
            addr,
            shutdown,
            task,
        }
    }
}
