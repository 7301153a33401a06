//! A server under test on 127.0.0.1:0, ready (`/readyz` 200) before the test
//! goes on. What it runs is the caller's: the harness links no product crate
//! but `ratecast-core`, so every crate's tests can use it without a dependency
//! cycle (the API's and the all-in-one's starters live in their own `tests/`).

use std::{future::Future, net::SocketAddr};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::wait_ready;

/// Retention of the memory stores tests build: a day, longer than any test
/// reaches back. (The product's default is `MEMORY_RETENTION`'s.)
pub const TEST_RETENTION_SECS: i64 = 86_400;

/// A server running on `addr` until `shutdown` is cancelled; `task` is its run.
pub struct Spawned<T> {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<T>,
}

/// Binds 127.0.0.1:0, spawns `run(listener, shutdown)` and waits until it is ready.
pub async fn spawn_server<T, F, Fut>(run: F) -> Spawned<T>
where
    F: FnOnce(std::net::TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a server");
    let addr = listener.local_addr().expect("the server's address");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(listener, shutdown.clone()));
    wait_ready(addr).await;
    Spawned {
        addr,
        shutdown,
        task,
    }
}
