//! The `ratecast-api` binary's start-up contract: it refuses to run without MongoDB,
//! and a bad value stops it with one line and exit code 2.

use std::process::Command;

use ratecast_testkit::binary::mongo_service;

const BIN: &str = env!("CARGO_BIN_EXE_ratecast-api");

#[test]
fn without_mongo_connection_uri_it_refuses_to_start_with_one_line_and_exit_code_2() {
    mongo_service::refuses_to_start_without_a_mongo_uri(BIN);
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_and_exit_code_2() {
    mongo_service::refuses_a_bad_value_of(BIN, "SERVER_PORT");
}

#[test]
fn a_malformed_mongo_uri_fails_at_once_with_the_cause() {
    mongo_service::fails_at_once_on_a_malformed_uri(BIN, "SERVER_PORT");
}

#[test]
fn sigterm_while_mongodb_is_unreachable_exits_cleanly() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .env(
            "MONGO_CONNECTION_URI",
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200",
        )
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", "0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    // Wait until it is retrying MongoDB, i.e. serving and not yet connected.
    assert!(
        lines.any(|l| l.contains("retrying")),
        "the binary never reported a MongoDB retry"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    std::thread::spawn(move || lines.for_each(drop));
    let exit = child.wait().expect("the binary exits");
    assert_eq!(exit.code(), Some(0));
}
