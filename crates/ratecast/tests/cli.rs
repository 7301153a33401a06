//! The `ratecast` binary as a user runs it: configuration errors, `--help`, and a
//! real SIGTERM to a serving process.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use ratecast_testkit::{Client, binary::expect_config_error, process::ServerProcess};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const BIN: &str = env!("CARGO_BIN_EXE_ratecast");

#[test]
fn bad_values_stop_start_up_with_one_line_naming_the_env_var_and_exit_code_2() {
    let cases: &[(&str, &str, &str)] = &[
        ("SERVER_PORT", "eighty", "invalid digit"),
        ("SERVER_PORT", "70000", "70000"),
        ("ASSET_LIST", "", "the asset list is empty"),
        ("ASSET_LIST", "EURUSD,,USDJPY", "asset #2 is empty"),
        ("ASSET_LIST", "EURUSD,EURUSD", "listed twice"),
        ("EMCONT_EXCHANGE_RATES_URL", "not a url", "not a URL"),
        (
            "EMCONT_EXCHANGE_RATES_URL",
            "ftp://rates.example/x",
            "not http or https",
        ),
        ("MEMORY_RETENTION", "soon", "not a duration"),
    ];
    for (var, value, says) in cases {
        let line = expect_config_error(BIN, &[("SERVER_HOST", "127.0.0.1"), (var, value)], &[]);
        assert!(
            line.contains(says) && line.contains(var),
            "{var}={value:?}: {line}"
        );
    }
}

#[test]
fn help_lists_every_flag_with_its_env_var_and_default() {
    let output = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--rates-url",
        "EMCONT_EXCHANGE_RATES_URL",
        "--mongo-uri",
        "MONGO_CONNECTION_URI",
        "--mongo-db",
        "MONGO_INITDB_DATABASE",
        "[default: ratecast]",
        "--host",
        "SERVER_HOST",
        "[default: 0.0.0.0]",
        "--port",
        "SERVER_PORT",
        "[default: 8080]",
        "--assets",
        "ASSET_LIST",
        "[default: EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD]",
        "--memory-retention",
        "MEMORY_RETENTION",
        "[default: 24h]",
        "--log-format",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut server = ServerProcess::start(BIN, &["--assets", "EURUSD"], &[]).await;
    let mut client = Client::connect(server.addr).await;
    assert!(
        client.subscribe(1).await.len() >= 1799,
        "simulated history is pre-filled"
    );

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let close = client.expect_close().await;
    assert_eq!(close.map(|(code, _)| code), Some(CloseCode::Away));

    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait on the child") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the binary did not exit within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0));
}
