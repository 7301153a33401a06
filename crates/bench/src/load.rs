//! One load-generator run: probe the server, open clients at the ramp rate,
//! hold them, stop them, and build the [`Report`].
//!
//! Phases, in order: *probe* (one connection asks `assets`, retrying until the
//! server accepts; then the idle server is sampled), *storm* (client `k` starts
//! at `k / ramp` seconds; the storm ends when every client has its history or
//! has failed), *hold* (the steady-state window: counters and the server's CPU
//! are read at both ends), *stop* (every client closes; after `--settle` the
//! server's memory is read again). A housekeeping task prints progress and
//! settles the arrival table while the run goes on.
//!
//! `--idle` clients skip the subscribe: the storm ends when they are connected.
//! With `--expect-backlog` the hold waits, after `--hold`, until every client
//! waiting for the flush is current (see [`super::catchup`]), then
//! [`AFTER_CATCH_UP`] more; a watcher task reads the server at the flush and
//! when every client is current.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use ratecast_core::{sync::lock, time::unix_now_secs};
use tokio::{
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    BenchError,
    arrivals::Arrivals,
    catchup::{self, CatchUp, RunClock},
    client::{Counters, Plan, Shared, run_client},
    config::{Follow, LoadConfig},
    frames::{self, WireAsset},
    latency::Latency,
    procfs::{self, ProcSample, thread_cpu_delta},
    report::{ConnectReport, DeliveryReport, GeneratorReport, MachineReport, Report, ServerReport},
    verdict::{ClientOutcome, TAIL_GRACE, judge},
};

/// How long the stop may take before unfinished clients are abandoned.
const STOP_BUDGET: Duration = Duration::from_secs(30);

/// In a backlog run, the hold goes on this long after every client is current,
/// so the live points after the catch-up are judged too (past [`TAIL_GRACE`]).
pub const AFTER_CATCH_UP: Duration = Duration::from_secs(10);

/// Moments of a run that another task can wait for: `hostile` starts its
/// admission probe when the hold begins and stops its attackers when it ends.
#[derive(Debug, Clone, Default)]
pub struct Milestones {
    /// Cancelled when the hold (the steady-state window) begins.
    pub holding: CancellationToken,
    /// Cancelled when the hold ends, before the clients are stopped.
    pub hold_over: CancellationToken,
}

/// Runs the load described by `config`; `shutdown` (Ctrl-C) cuts the run short
/// but still yields a report of what was measured.
pub async fn run_load(
    config: LoadConfig,
    shutdown: CancellationToken,
) -> Result<Report, BenchError> {
    run_load_marked(config, shutdown, &Milestones::default()).await
}

/// [`run_load`], cancelling the tokens of `milestones` as the run passes them.
pub async fn run_load_marked(
    config: LoadConfig,
    shutdown: CancellationToken,
    milestones: &Milestones,
) -> Result<Report, BenchError> {
    let run = start(&config, &shutdown).await?;
    let storm = storm(&config, &run, &shutdown).await;
    let held = hold(&config, &run, milestones, &shutdown).await;
    let stopped = stop(&config, &run.base.shared, run.tasks, storm.clients).await;
    Ok(report(&config, &run.base, &storm.result, &held, stopped))
}

/// What the probe found and what every phase after it uses.
struct Base {
    started_unix: i64,
    /// The server's process, when given: its `/proc` is read at each phase.
    pid: Option<u32>,
    /// The server's reading before any client connected.
    idle: Option<ProcSample>,
    shared: Arc<Shared>,
}

/// A started run: [`Base`] and the tasks that run beside the clients until the stop.
struct Run {
    base: Base,
    tasks: Background,
    assets: Vec<WireAsset>,
}

/// The progress printer and the backlog watcher, aborted at the stop.
struct Background {
    housekeeping: JoinHandle<()>,
    watcher: Option<JoinHandle<()>>,
}

/// What the storm hands on: the clients, and what the report says of the storm.
struct Storm {
    /// One task per client (connection), each with one outcome per asset it follows.
    clients: JoinSet<Vec<ClientOutcome>>,
    result: StormResult,
}

struct StormResult {
    spawned: u64,
    ramp_secs: f64,
    /// On the arrival table's clock.
    storm_end_us: u64,
    /// The server's reading when every client had its history.
    after_ramp: Option<ProcSample>,
}

/// The readings at one end of the hold.
struct HoldEdge {
    at: Instant,
    live_points: u64,
    server: Option<ProcSample>,
    threads: Option<BTreeMap<String, Duration>>,
    generator: Option<ProcSample>,
    machine: Option<Duration>,
}

impl HoldEdge {
    fn read(at: Instant, shared: &Shared, pid: Option<u32>) -> Self {
        Self {
            at,
            live_points: shared.counters.live_points.load(Ordering::Relaxed),
            server: sample(pid),
            threads: pid.and_then(|pid| procfs::thread_cpu(pid).ok()),
            generator: sample(Some(std::process::id())),
            machine: procfs::machine_busy().ok(),
        }
    }
}

/// Both ends of the hold.
struct Held {
    start: HoldEdge,
    end: HoldEdge,
    open_at_end: u64,
}

impl Held {
    fn secs(&self) -> f64 {
        (self.end.at - self.start.at).as_secs_f64()
    }

    fn messages(&self) -> u64 {
        self.end.live_points - self.start.live_points
    }
}

/// What the stop hands on.
struct Stopped {
    /// One per asset followed per client.
    outcomes: Vec<ClientOutcome>,
    /// The server's reading `--settle` after every client closed.
    after_close: Option<ProcSample>,
}

/// Probe: find the server and its assets, read the idle server, start the
/// background tasks.
async fn start(config: &LoadConfig, shutdown: &CancellationToken) -> Result<Run, BenchError> {
    let server = resolve(config).await?;
    let assets = probe(config, server, shutdown).await?;
    info!(%server, assets = assets.len(), clients = config.clients, "server answered; starting the storm");
    let started_unix = unix_now_secs();
    let pid = config.server_pid;
    let idle = sample(pid);
    let shared = Arc::new(Shared {
        server,
        url: config.url.to_string(),
        connect_timeout: config.connect_timeout,
        history_timeout: config.history_timeout,
        stop: CancellationToken::new(),
        arrivals: Arrivals::new(assets.len()),
        counters: Counters::default(),
        time_to_history: Mutex::new(Latency::new()),
        errors: Mutex::default(),
        idle: config.idle,
        catch_up: config.expect_backlog.map(CatchUp::new),
        asset_ids: assets.iter().map(|a| a.id).collect(),
    });
    let housekeeping = tokio::spawn(housekeeping(shared.clone(), config.progress, pid));
    let watcher = (shared.catch_up.is_some() && pid.is_some()).then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some(catch_up) = &shared.catch_up {
                catch_up.watch(|| sample(pid)).await;
            }
        })
    });
    Ok(Run {
        base: Base {
            started_unix,
            pid,
            idle,
            shared,
        },
        tasks: Background {
            housekeeping,
            watcher,
        },
        assets,
    })
}

/// Storm: client `k` starts at `k / ramp` s; over when every client has its
/// history or has failed.
async fn storm(config: &LoadConfig, run: &Run, shutdown: &CancellationToken) -> Storm {
    let Base { shared, pid, .. } = &run.base;
    let assets = &run.assets;
    let storm_start = Instant::now();
    let mut clients = JoinSet::new();
    for k in 0..config.clients {
        let due = storm_start + Duration::from_secs_f64(k as f64 / config.ramp);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        let plan = match config.follow {
            Follow::OneAsset => Plan {
                asset: k % assets.len(),
                count: 1,
                source: source_address(k, config.source_ips),
            },
            Follow::EveryAsset => Plan {
                asset: 0,
                count: assets.len(),
                source: source_address(k, config.source_ips),
            },
        };
        shared.counters.spawned.fetch_add(1, Ordering::Relaxed);
        clients.spawn(run_client(plan, shared.clone()));
    }
    let spawned = shared.counters.spawned.load(Ordering::Relaxed);
    wait_settled(shared, spawned, shutdown).await;
    let ramp_secs = storm_start.elapsed().as_secs_f64();
    let storm_end_us = shared.arrivals.now_us();
    let after_ramp = sample(*pid);
    if let Some(catch_up) = &shared.catch_up {
        catch_up.end_storm();
        if let Some(end) = catch_up.outage_end() {
            let flushed = end + 1..=end.saturating_add(catch_up.backlog_secs);
            info!(
                outage_end = end,
                newest_flushed = flushed.end(),
                "waiting for the backlog flush"
            );
            shared.arrivals.set_backlog(flushed);
        }
    }
    info!(
        secs = format!("{ramp_secs:.1}"),
        histories = shared.counters.histories.load(Ordering::Relaxed),
        "storm over; holding"
    );
    Storm {
        clients,
        result: StormResult {
            spawned,
            ramp_secs,
            storm_end_us,
            after_ramp,
        },
    }
}

/// Hold: the steady-state window, with counters and CPU read at both ends.
async fn hold(
    config: &LoadConfig,
    run: &Run,
    milestones: &Milestones,
    shutdown: &CancellationToken,
) -> Held {
    let Base { shared, pid, .. } = &run.base;
    let hold_start = Instant::now();
    shared
        .arrivals
        .start_hold(shared.arrivals.micros(hold_start.into_std()));
    let start = HoldEdge::read(hold_start, shared, *pid);
    milestones.holding.cancel();
    tokio::select! {
        () = shutdown.cancelled() => warn!("interrupted: reporting what was measured"),
        () = hold_until_done(config, shared) => {}
    }
    let hold_end = Instant::now();
    milestones.hold_over.cancel();
    shared
        .arrivals
        .end_hold(shared.arrivals.micros(hold_end.into_std()));
    let end = HoldEdge::read(hold_end, shared, *pid);
    Held {
        start,
        end,
        open_at_end: shared.counters.open.load(Ordering::Relaxed),
    }
}

/// Stop: every client closes; after `--settle` the server is read again.
async fn stop(
    config: &LoadConfig,
    shared: &Shared,
    tasks: Background,
    clients: JoinSet<Vec<ClientOutcome>>,
) -> Stopped {
    info!("hold over; closing every client");
    shared.stop.cancel();
    let outcomes = collect(clients).await;
    tasks.housekeeping.abort();
    if let Some(watcher) = tasks.watcher {
        watcher.abort();
    }
    tokio::time::sleep(config.settle).await;
    Stopped {
        outcomes,
        after_close: sample(config.server_pid),
    }
}

/// The report of a run from what its phases measured.
fn report(
    config: &LoadConfig,
    base: &Base,
    storm: &StormResult,
    held: &Held,
    stopped: Stopped,
) -> Report {
    let Stopped {
        outcomes,
        after_close,
    } = stopped;
    let shared = &base.shared;
    shared.arrivals.settle_all();
    let stop_at = shared.arrivals.micros(held.end.at.into_std());
    let due_by = stop_at.saturating_sub(TAIL_GRACE.as_micros() as u64);
    let verdict = judge(
        &outcomes,
        &shared.arrivals.first_arrivals(),
        due_by,
        config.full_history_len(),
    );
    let (ramp_delay, hold_delay) = shared.arrivals.delays();
    let counters = &shared.counters;
    let hold_secs = held.secs();
    let hold_messages = held.messages();
    let generator = match (held.start.generator, held.end.generator) {
        (Some(start), Some(end)) => GeneratorReport {
            rss_kb: end.rss_kb,
            peak_rss_kb: end.peak_rss_kb,
            hold_cpu_secs: end.cpu.saturating_sub(start.cpu).as_secs_f64(),
        },
        _ => GeneratorReport::default(),
    };
    let machine = machine_report(
        held.start.machine.zip(held.end.machine),
        held.start.server.zip(held.end.server),
        held.start.generator.zip(held.end.generator),
        hold_secs,
    );
    let time_to_history = lock(&shared.time_to_history).summary();
    let errors = lock(&shared.errors).clone();
    let backlog = shared.catch_up.as_ref().map(|catch_up| {
        let clock = RunClock {
            epoch_unix: shared.arrivals.epoch_unix(),
            storm_end_us: storm.storm_end_us,
        };
        catchup::summarize(
            &outcomes,
            catch_up.backlog_secs,
            clock,
            catch_up.samples(),
            shared.arrivals.flushed_delays().summary(),
        )
    });
    Report {
        label: config.label.clone(),
        url: config.url.to_string(),
        started_unix: base.started_unix,
        clients: config.clients,
        ramp_per_sec: config.ramp,
        source_ips: config.source_ips,
        connect: ConnectReport {
            attempted: storm.spawned,
            connected: counters.connected.load(Ordering::Relaxed),
            connect_errors: counters.connect_errors.load(Ordering::Relaxed),
            histories: counters.histories.load(Ordering::Relaxed),
            history_failures: counters.history_failures.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            open_at_end: held.open_at_end,
            ramp_secs: storm.ramp_secs,
        },
        time_to_history,
        fanout_delay: hold_delay.summary(),
        fanout_delay_ramp: ramp_delay.summary(),
        point_age: shared.arrivals.hold_ages().summary(),
        delivery: DeliveryReport {
            hold_secs,
            hold_messages,
            messages_per_sec: hold_messages as f64 / hold_secs.max(f64::EPSILON),
            total_messages: counters.live_points.load(Ordering::Relaxed),
        },
        verdict,
        server: server_report(base, storm, held, after_close),
        generator,
        machine,
        errors,
        idle: config.idle,
        backlog,
    }
}

/// The server's memory and CPU over the run; `None` without its pid or when
/// a reading failed.
fn server_report(
    base: &Base,
    storm: &StormResult,
    held: &Held,
    after_close: Option<ProcSample>,
) -> Option<ServerReport> {
    let pid = base.pid?;
    let idle = base.idle?;
    let after_ramp = storm.after_ramp?;
    let hold = held.start.server?;
    let steady = held.end.server?;
    let closed = after_close?;
    let hold_secs = held.secs();
    let hold_messages = held.messages();
    let hold_cpu = steady.cpu.saturating_sub(hold.cpu).as_secs_f64();
    Some(ServerReport {
        pid,
        idle_rss_kb: idle.rss_kb,
        rss_after_ramp_kb: after_ramp.rss_kb,
        steady_rss_kb: steady.rss_kb,
        // VmHWM can lag the last RSS reading by a page-table update.
        peak_rss_kb: closed.peak_rss_kb.max(steady.rss_kb).max(after_ramp.rss_kb),
        rss_after_close_kb: closed.rss_kb,
        kb_per_connection: steady.rss_kb.saturating_sub(idle.rss_kb) as f64
            / held.open_at_end.max(1) as f64,
        ramp_cpu_secs: after_ramp.cpu.saturating_sub(idle.cpu).as_secs_f64(),
        hold_cpu_secs: hold_cpu,
        hold_system_cpu_secs: steady
            .system_cpu
            .saturating_sub(hold.system_cpu)
            .as_secs_f64(),
        hold_cpu_percent: 100.0 * hold_cpu / hold_secs.max(f64::EPSILON),
        // No message (an idle run): no cost per message to speak of.
        cpu_us_per_message: if hold_messages == 0 {
            0.0
        } else {
            1e6 * hold_cpu / hold_messages as f64
        },
        hold_threads: match (&held.start.threads, &held.end.threads) {
            (Some(before), Some(after)) => thread_cpu_delta(before, after),
            _ => Vec::new(),
        },
    })
}

/// The hold: `--hold`, and in a backlog run until every waiting client is
/// current (at most `--catch-up-timeout` more), then [`AFTER_CATCH_UP`].
async fn hold_until_done(config: &LoadConfig, shared: &Shared) {
    tokio::time::sleep(config.hold).await;
    let Some(catch_up) = &shared.catch_up else {
        return;
    };
    if catch_up
        .wait_all_current(Instant::now() + config.catch_up_timeout)
        .await
    {
        info!(
            "every client waiting for the flush is current; holding {} s more",
            AFTER_CATCH_UP.as_secs()
        );
        tokio::time::sleep(AFTER_CATCH_UP).await;
    } else {
        warn!("not every client waiting for the flush became current within --catch-up-timeout");
    }
}

/// Busy CPU of the machine in the hold, and the part neither the server nor the
/// generator took (each given as readings at the start and end of the hold).
fn machine_report(
    machine: Option<(Duration, Duration)>,
    server: Option<(ProcSample, ProcSample)>,
    generator: Option<(ProcSample, ProcSample)>,
    hold_secs: f64,
) -> MachineReport {
    let used = |pair: Option<(ProcSample, ProcSample)>| {
        pair.map_or(0.0, |(a, b)| b.cpu.saturating_sub(a.cpu).as_secs_f64())
    };
    let busy = machine.map_or(0.0, |(a, b)| b.saturating_sub(a).as_secs_f64());
    let percent = |secs: f64| 100.0 * secs / hold_secs.max(f64::EPSILON);
    MachineReport {
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        hold_busy_percent: percent(busy),
        hold_other_percent: percent((busy - used(server) - used(generator)).max(0.0)),
    }
}

/// Client `k`'s source address: 127.0.0.2, .3, … over `spread` addresses.
pub fn source_address(k: usize, spread: u8) -> Option<Ipv4Addr> {
    if spread == 0 {
        return None;
    }
    let offset = (k % usize::from(spread)) as u8;
    Some(Ipv4Addr::new(127, 0, 0, 2 + offset))
}

pub(crate) async fn resolve(config: &LoadConfig) -> Result<SocketAddr, BenchError> {
    let url = &config.url;
    let bad = || BenchError::Url(url.to_string());
    if url.scheme() != "ws" {
        return Err(bad());
    }
    let host = url.host_str().ok_or_else(bad)?;
    let port = url.port_or_known_default().ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| BenchError::Resolve {
            url: url.to_string(),
            source,
        })?
        .next()
        .ok_or_else(bad)
}

/// Asks the server for its assets, retrying until it accepts connections.
pub(crate) async fn probe(
    config: &LoadConfig,
    server: SocketAddr,
    shutdown: &CancellationToken,
) -> Result<Vec<WireAsset>, BenchError> {
    let deadline = Instant::now() + config.ready_timeout;
    let mut last_error = String::new();
    while Instant::now() < deadline && !shutdown.is_cancelled() {
        match tokio::time::timeout(Duration::from_secs(5), ask_assets(config, server)).await {
            Ok(Ok(assets)) if !assets.is_empty() => return Ok(assets),
            Ok(Ok(_)) => last_error = "the server tracks no assets".into(),
            Ok(Err(error)) => last_error = error,
            Err(_) => last_error = "no answer to `assets` within 5 s".into(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(BenchError::Probe(last_error))
}

async fn ask_assets(config: &LoadConfig, server: SocketAddr) -> Result<Vec<WireAsset>, String> {
    let stream = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(config.url.as_str(), stream)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text(r#"{"action":"assets","message":{}}"#))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message.map_err(|e| e.to_string())?
            && let Some(assets) = frames::assets(&text)
        {
            let _ = ws.close(None).await;
            return Ok(assets);
        }
    }
    Err("connection closed before the assets reply".into())
}

/// Waits until every spawned client has its history or has failed.
async fn wait_settled(shared: &Shared, spawned: u64, shutdown: &CancellationToken) {
    while shared.counters.settled.load(Ordering::Relaxed) < spawned {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// Collects every client's outcomes (one per asset it follows); clients still
/// running after the budget are aborted and count as failed.
async fn collect(mut clients: JoinSet<Vec<ClientOutcome>>) -> Vec<ClientOutcome> {
    let mut outcomes = Vec::with_capacity(clients.len());
    let deadline = Instant::now() + STOP_BUDGET;
    loop {
        match tokio::time::timeout_at(deadline, clients.join_next()).await {
            Ok(Some(Ok(client))) => outcomes.extend(client),
            Ok(Some(Err(error))) => warn!(%error, "a client task failed"),
            Ok(None) => break,
            Err(_) => {
                warn!(left = clients.len(), "clients did not stop in time");
                clients.abort_all();
                break;
            }
        }
    }
    outcomes
}

/// Prints a progress line every `every` and settles the arrival table.
async fn housekeeping(shared: Arc<Shared>, every: Duration, pid: Option<u32>) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_print = Instant::now();
    let mut last_live = 0;
    let mut last_cpu = sample(pid);
    loop {
        tick.tick().await;
        shared.arrivals.settle_older(shared.arrivals.now_us());
        if last_print.elapsed() < every {
            continue;
        }
        let counters = &shared.counters;
        let live = counters.live_points.load(Ordering::Relaxed);
        let secs = last_print.elapsed().as_secs_f64();
        let now = sample(pid);
        let server = match (&now, &last_cpu) {
            (Some(now), Some(before)) => format!(
                " server_rss={:.0}MB server_cpu={:.0}%",
                now.rss_kb as f64 / 1024.0,
                100.0 * now.cpu.saturating_sub(before.cpu).as_secs_f64() / secs
            ),
            _ => String::new(),
        };
        let catch_up = shared
            .catch_up
            .as_ref()
            .map(CatchUp::progress)
            .unwrap_or_default();
        info!(
            "t={:.0}s spawned={} connected={} histories={} connect_errors={} no_history={} dropped={} open={} msg/s={:.0}{}{}",
            start.elapsed().as_secs_f64(),
            counters.spawned.load(Ordering::Relaxed),
            counters.connected.load(Ordering::Relaxed),
            counters.histories.load(Ordering::Relaxed),
            counters.connect_errors.load(Ordering::Relaxed),
            counters.history_failures.load(Ordering::Relaxed),
            counters.dropped.load(Ordering::Relaxed),
            counters.open.load(Ordering::Relaxed),
            (live - last_live) as f64 / secs,
            server,
            catch_up
        );
        last_live = live;
        last_cpu = now;
        last_print = Instant::now();
    }
}

fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let pid = pid?;
    match procfs::sample(pid) {
        Ok(sample) => Some(sample),
        Err(error) => {
            warn!(pid, %error, "cannot read the process's /proc entries");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_spread_round_robin_over_source_addresses() {
        assert_eq!(source_address(0, 0), None);
        assert_eq!(source_address(0, 3), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_address(2, 3), Some(Ipv4Addr::new(127, 0, 0, 4)));
        assert_eq!(source_address(3, 3), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(
            source_address(249, 250),
            Some(Ipv4Addr::new(127, 0, 0, 251))
        );
    }
}
