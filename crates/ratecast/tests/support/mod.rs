//! The all-in-one service on 127.0.0.1:0, as `cargo run` starts it, for this
//! crate's black-box tests.

#![allow(dead_code)] // Each test file uses part of it.

use ratecast::RunError;
use ratecast_testkit::{Spawned, spawn_server};

/// The all-in-one service with `args` as its flags (the environment is not
/// read: nothing exported where the tests run changes the test).
pub async fn start_service(args: &[&str]) -> Spawned<Result<(), RunError>> {
    let argv = std::iter::once("ratecast").chain(args.iter().copied());
    let config: ratecast::Config = ratecast_process::parse_ignoring_env(argv).expect("valid flags");
    let metrics = ratecast_process::metrics::install_recorder();
    spawn_server(move |listener, shutdown| ratecast::run(listener, config, metrics, shutdown)).await
}
