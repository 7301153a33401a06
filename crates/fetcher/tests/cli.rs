//! The `ratecast-fetcher` binary's start-up contract: it refuses to run without MongoDB,
//! and a bad value stops it with one line and exit code 2.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ratecast-fetcher");

fn run(env: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let output = Command::new(BIN)
        .env_remove("MONGO_CONNECTION_URI")
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code(),
        stderr.lines().map(str::to_owned).collect(),
    )
}

#[test]
fn without_mongo_connection_uri_it_refuses_to_start_with_one_line_and_exit_code_2() {
    let (code, lines) = run(&[]);
    assert_eq!(code, Some(2), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("MONGO_CONNECTION_URI"), "{}", lines[0]);
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_and_exit_code_2() {
    let (code, lines) = run(&[
        (
            "MONGO_CONNECTION_URI",
            "mongodb://localhost/?replicaSet=rs0",
        ),
        ("FETCHER_HTTP_PORT", "port"),
    ]);
    assert_eq!(code, Some(2), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("FETCHER_HTTP_PORT"), "{}", lines[0]);
}

#[test]
fn a_malformed_mongo_uri_fails_at_once_with_the_cause() {
    let (code, lines) = run(&[
        ("MONGO_CONNECTION_URI", "postgres://nope"),
        ("FETCHER_HTTP_PORT", "0"),
        ("LOG_FORMAT", "text"),
    ]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("invalid MongoDB connection URI")),
        "{lines:?}"
    );
}
