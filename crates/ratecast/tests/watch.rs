//! `ratecast watch` against the real server: several assets on one connection, a
//! history summary each, one line per point, a reconnect after the server
//! restarts that neither repeats nor skips for any of them, and the
//! real binary's `watch` untouched by the serve settings in its environment.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use ratecast::watch::{Color, WatchArgs};
use ratecast_testkit::{WAIT, process::ServerProcess};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_ratecast");

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
    let config = ratecast_process::parse_ignoring_env::<ratecast::Config, _, _>([
        "ratecast",
        "--assets",
        "EURUSD,USDJPY",
    ])
    .expect("flags");
    let shutdown = CancellationToken::new();
    let metrics = ratecast_process::metrics::install_recorder();
    let task = tokio::spawn(ratecast::run(listener, config, metrics, shutdown.clone()));
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

/// The history summary's point count of `asset`.
fn summary_count(lines: &[String], asset: &str) -> usize {
    lines
        .iter()
        .find_map(|l| l.split(&format!("{asset}: ")).nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no history summary of {asset}: {lines:?}"))
}

/// Whether `times` (`date time` texts of one format) strictly increase.
fn strictly_increasing(times: &[String]) -> bool {
    times.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_several_assets_on_one_connection_and_resumes_each_after_a_server_restart() {
    const BOTH: [&str; 2] = ["EURUSD", "USDJPY"];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, server) = start(listener);
    ratecast_testkit::wait_ready(addr).await;

    let screen = Screen::default();
    let args = WatchArgs {
        assets: vec!["eurusd".into(), "USDJPY".into()],
        url: format!("ws://{addr}/"),
        color: Color::Never,
        candles: None,
    };
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(ratecast::watch::run(args, screen.clone(), stop.clone()));
    let lines = screen
        .wait_for(|l| BOTH.iter().all(|a| point_times(l, a).len() >= 2))
        .await;
    for asset in BOTH {
        let count = summary_count(&lines, asset);
        assert!((1795..=1800).contains(&count), "a full window: {lines:?}");
    }
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "no colour when asked for none"
    );
    // Both assets arrive on one websocket (the `assets` one is closed first).
    tokio::time::timeout(WAIT, async {
        while ratecast_testkit::metric(addr, "ratecast_ws_connections").await != 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("one websocket connection for both assets");

    // Restart the server on the same port; the watcher reconnects with each
    // asset's own `since`.
    shutdown.cancel();
    server.await.expect("task").expect("clean stop");
    let before: Vec<usize> = BOTH
        .iter()
        .map(|a| point_times(&screen.lines(), a).len())
        .collect();
    let listener = std::net::TcpListener::bind(addr).expect("rebind the same port");
    let (shutdown, server) = start(listener);
    let lines = screen
        .wait_for(|l| {
            BOTH.iter()
                .zip(&before)
                .all(|(a, n)| point_times(l, a).len() >= n + 2)
        })
        .await;
    for asset in BOTH {
        let times = point_times(&lines, asset);
        assert!(
            strictly_increasing(&times),
            "{asset} strictly increasing across the restart: no repeat: {times:?}"
        );
    }
    stop.cancel();
    watcher.await.expect("watch task").expect("watch ran");
    shutdown.cancel();
    server.await.expect("task").expect("clean stop");
}

/// A child process killed when dropped, so a failing test leaves none behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_watch_runs_whatever_serve_settings_its_environment_holds() {
    let server = ServerProcess::start(BIN, &["--assets", "EURUSD,USDJPY"], &[]).await;
    // Every one of these stops `ratecast` from serving (tests/cli.rs); none is
    // `watch`'s business.
    let poisoned = [
        ("SERVER_PORT", "not-a-port"),
        ("SERVER_HOST", ""),
        ("ASSET_LIST", "EURUSD,,USDJPY"),
        ("MEMORY_RETENTION", "soon"),
        ("EMCONT_EXCHANGE_RATES_URL", "not a url"),
    ];
    let url = format!("ws://{}/", server.addr);
    let mut watch = Killed(
        Command::new(BIN)
            .args(["watch", "--url", &url, "--color", "never", "usdjpy"])
            .env_clear()
            .envs(poisoned)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts"),
    );
    let stdout = watch.0.stdout.take().expect("piped stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let printed = tokio::time::timeout(WAIT, async {
        // The history summary, then a point.
        while seen.len() < 2 {
            seen.push(lines.recv().await?);
        }
        Some(())
    })
    .await;
    if printed != Ok(Some(())) {
        let _ = watch.0.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = watch.0.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        panic!("watch printed {seen:?}; its stderr:\n{stderr}");
    }
    assert!(
        seen[0].contains("USDJPY: ") && seen[0].contains("points from"),
        "{seen:?}"
    );
    assert!(seen[1].contains(" USDJPY "), "{seen:?}");
}

/// The `(time text, count)` of the closed candle lines of `asset`.
fn candle_lines(lines: &[String], asset: &str) -> Vec<(String, u64)> {
    lines
        .iter()
        .filter(|l| l.contains(&format!(" {asset} O ")))
        .map(|l| {
            let time = l.split(' ').take(2).collect::<Vec<_>>().join(" ");
            let count = l
                .rsplit('(')
                .next()
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a point count in {l:?}"));
            (time, count)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_candles_prints_each_closed_candle_once_as_it_closes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, server) = start(listener);
    ratecast_testkit::wait_ready(addr).await;
    let screen = Screen::default();
    let args = WatchArgs {
        assets: vec!["EURUSD".into()],
        url: format!("ws://{addr}/"),
        color: Color::Never,
        candles: Some(ratecast_core::Interval::S5),
    };
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(ratecast::watch::run(args, screen.clone(), stop.clone()));
    // The closed candles of the simulated 30-minute history come first; then
    // the simulated rates give a point a second, so a 5-second candle closes
    // live within a few seconds.
    let history = screen
        .wait_for(|l| !candle_lines(l, "EURUSD").is_empty())
        .await;
    let printed = candle_lines(&history, "EURUSD").len();
    let lines = screen
        .wait_for(|l| candle_lines(l, "EURUSD").len() > printed)
        .await;
    let candles = candle_lines(&lines, "EURUSD");
    assert!(
        candles.windows(2).all(|w| w[0].0 < w[1].0),
        "each once, in order: {lines:?}"
    );
    for (time, count) in &candles {
        let seconds: u32 = time[17..19].parse().expect("seconds");
        assert_eq!(seconds % 5, 0, "aligned to 5 s: {time}");
        assert!((1..=5).contains(count), "{time}: {count} points");
    }
    assert!(
        lines.iter().all(|l| !l.contains("points from")),
        "no point history: {lines:?}"
    );
    stop.cancel();
    watcher.await.expect("watch task").expect("watch ran");
    shutdown.cancel();
    server.await.expect("task").expect("clean stop");
}
