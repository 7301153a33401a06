//! `ratecast watch` against the real server: history summary, one line per point,
//! and a reconnect after the server restarts that neither repeats nor skips.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::Parser;
use ratecast::watch::{Color, WatchArgs};
use ratecast_testkit::WAIT;
use tokio_util::sync::CancellationToken;

/// A writer the test can read while the watcher writes.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("screen lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("screen lock").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until `done` holds for the lines printed so far.
    async fn wait_for(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        tokio::time::timeout(WAIT, async {
            loop {
                let lines = self.lines();
                if done(&lines) {
                    return lines;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the watcher did not print enough: {:?}", self.lines()))
    }
}

/// Starts the all-in-one (simulated rates) on `listener`.
fn start(
    listener: std::net::TcpListener,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ratecast::RunError>>,
) {
    let config =
        ratecast::Config::try_parse_from(["ratecast", "--assets", "EURUSD,USDJPY"]).expect("flags");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ratecast::run(config, listener, shutdown.clone()));
    (shutdown, task)
}

/// `(time text, value)` of the point lines of `asset` (summary lines excluded).
fn point_times(lines: &[String], asset: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(&format!(" {asset} ")) && !l.contains("points from"))
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_a_summary_then_points_and_resumes_after_a_server_restart() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, server) = start(listener);
    ratecast_testkit::wait_ready(addr).await;

    let screen = Screen::default();
    let args = WatchArgs {
        assets: vec!["eurusd".into()],
        url: format!("ws://{addr}/"),
        color: Color::Never,
    };
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(ratecast::watch::run(args, screen.clone(), stop.clone()));
    let lines = screen
        .wait_for(|l| point_times(l, "EURUSD").len() >= 2)
        .await;
    let count: usize = lines[0]
        .split("EURUSD: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no history summary: {lines:?}"));
    assert!((1795..=1800).contains(&count), "a full window: {lines:?}");
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "no colour when asked for none"
    );

    // Restart the server on the same port; the watcher reconnects with `since`.
    shutdown.cancel();
    server.await.expect("task").expect("clean stop");
    let before = point_times(&screen.lines(), "EURUSD").len();
    let listener = std::net::TcpListener::bind(addr).expect("rebind the same port");
    let (shutdown, server) = start(listener);
    let lines = screen
        .wait_for(|l| point_times(l, "EURUSD").len() >= before + 2)
        .await;
    let times = point_times(&lines, "EURUSD");
    let mut sorted = times.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        times, sorted,
        "strictly increasing across the restart: no repeat"
    );
    stop.cancel();
    watcher.await.expect("watch task").expect("watch ran");
    shutdown.cancel();
    server.await.expect("task").expect("clean stop");
}
