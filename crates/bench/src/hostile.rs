//! One `ratecast-bench hostile` run (issue 15): the same N ordinary subscribers
//! measured in a calm phase, then beside K attackers, and the verdicts.
//!
//! Each phase is a [`run_load_marked`] of the subscribers' configuration (fresh
//! clients: probe, storm, hold, stop, settle), with around it the server's RSS
//! sampled every [`RSS_EVERY`] (which enforces `--rss-ceiling`), its CPU read at
//! both ends, and the admission probe from the start of the hold. In the attack
//! phase the attackers connect before the subscribers' probe and storm (so
//! subscribing under attack is measured too) and attack until the end of the
//! hold, and on past it until each has ended or attacked for `--close-within`
//! plus [`CLOSE_GRACE`] (see [`stop_attack`]); then they are stopped and their
//! outcomes collected. The admission probe runs during the hold only, while
//! the subscribers hold their connection slots. The TCP-table
//! watcher runs while they attack. The calm phase comes first: its peak RSS is
//! the reference the attack phase's is compared with. This module owns the
//! timeline; the attacks are [`super::attack`]'s, the figures and verdicts
//! [`super::hostile_report`]'s. Before both phases, one unmeasured storm of the
//! subscribers warms the server up (see [`warm_up`]).

use std::{sync::Arc, time::Duration};

use ratecast_core::time::unix_now_secs;
use tokio::{task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    BenchError,
    admission::{AdmissionReport, probe_admission},
    attack::{Attack, AttackerLog, AttackerOutcome, Target, run_attacker, watch_server_ends},
    config::HostileConfig,
    hostile_report::{HostileReport, PhaseReport, RssTrace, Targets},
    load::{self, Milestones, run_load, run_load_marked},
    procfs,
};

/// How often the server's RSS is read (and checked against the ceiling).
const RSS_EVERY: Duration = Duration::from_millis(100);

/// Attackers attack at least this long past the close target, so one closed a
/// little late is reported with its time rather than as never closed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long the attackers may take to stop once told (an attacker that never
/// read drains for a second looking for a Close frame).
const ATTACKERS_STOP: Duration = Duration::from_secs(10);

/// Runs both phases; `shutdown` (Ctrl-C) cuts the run short.
pub async fn run_hostile(
    config: HostileConfig,
    shutdown: CancellationToken,
) -> Result<HostileReport, BenchError> {
    let pid = config.validate().map_err(BenchError::Config)?;
    let server = load::resolve(&config.load).await?;
    let assets = load::probe(&config.load, server, &shutdown).await?;
    let url = &config.load.url;
    let target = Arc::new(Target {
        server,
        host: match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or("localhost")),
            None => url.host_str().unwrap_or("localhost").to_owned(),
        },
        path: url.path().to_owned(),
        asset_ids: assets.iter().map(|a| a.id).collect(),
        connect_timeout: config.load.connect_timeout,
    });
    let started_unix = unix_now_secs();
    warm_up(&config, &shutdown).await?;
    info!(
        subscribers = config.load.clients,
        "calm phase: the subscribers without an attacker"
    );
    let calm = run_phase(&config, pid, &target, None, &shutdown).await?;
    info!(
        attack = %config.attack,
        attackers = config.attackers,
        subscribers = config.load.clients,
        "attack phase: the subscribers beside the attackers"
    );
    let attacked = run_phase(&config, pid, &target, Some(config.attack), &shutdown).await?;
    let targets = Targets::judge(
        &calm,
        &attacked,
        config.attackers,
        config.close_within.as_secs_f64(),
    );
    Ok(HostileReport {
        attack: config.attack,
        attack_description: config.attack.describe().to_owned(),
        url: url.to_string(),
        started_unix,
        subscribers: config.load.clients,
        attackers: config.attackers,
        hold_secs: config.load.hold.as_secs_f64(),
        rss_ceiling_kb: config.rss_ceiling_kb,
        close_within_secs: config.close_within.as_secs_f64(),
        calm,
        attacked,
        targets,
    })
}

/// One unmeasured storm of the subscribers (no hold): the first storm a
/// server sees grows its memory more than the next ones (allocator arenas,
/// buffers kept for reuse), which would read as the attack's cost.
async fn warm_up(config: &HostileConfig, shutdown: &CancellationToken) -> Result<(), BenchError> {
    info!(
        subscribers = config.load.clients,
        "warm-up: one storm of the subscribers, not measured"
    );
    let mut warm = config.load.clone();
    warm.label = format!("{}-warm-up", config.load.label);
    warm.hold = Duration::ZERO;
    warm.json = None;
    run_load(warm, shutdown.clone()).await.map(drop)
}

/// One phase: the subscribers' run, with `attack` beside it if given.
async fn run_phase(
    config: &HostileConfig,
    pid: u32,
    target: &Arc<Target>,
    attack: Option<Attack>,
    shutdown: &CancellationToken,
) -> Result<PhaseReport, BenchError> {
    // Cut short by Ctrl-C, or by the RSS ceiling.
    let phase = shutdown.child_token();
    // The attackers' end (see `stop_attack`).
    let attack_stop = CancellationToken::new();
    let milestones = Milestones::default();
    let start = Instant::now();
    let cpu_start = procfs::sample(pid).ok();

    let sampler_stop = CancellationToken::new();
    let sampler = tokio::spawn(sample_rss(
        pid,
        config.rss_ceiling_kb,
        sampler_stop.clone(),
        [phase.clone(), attack_stop.clone()],
    ));
    let mut attackers = JoinSet::new();
    let mut logs: Vec<Arc<AttackerLog>> = Vec::new();
    if let Some(attack) = attack {
        logs = (0..config.attackers)
            .map(|_| Arc::new(AttackerLog::new(attack_stop.clone())))
            .collect();
        for (index, log) in logs.iter().enumerate() {
            attackers.spawn(run_attacker(attack, index, target.clone(), log.clone()));
        }
        if !attack.reads() {
            tokio::spawn(watch_server_ends(
                target.server,
                logs.clone(),
                attack_stop.clone(),
            ));
        }
        wait_begun(&logs, config.load.connect_timeout * 2, &phase).await;
    }
    let stopper = tokio::spawn(stop_attack(
        logs,
        milestones.hold_over.clone(),
        phase.clone(),
        attack_stop.clone(),
        config.close_within + CLOSE_GRACE,
    ));
    let admission = {
        let (target, begin, end) = (
            target.clone(),
            milestones.holding.clone(),
            milestones.hold_over.clone(),
        );
        tokio::spawn(async move { probe_admission(&target, begin, end).await })
    };

    let mut subscribers = config.load.clone();
    subscribers.label = format!(
        "{}-{}",
        config.load.label,
        attack.map_or("calm", Attack::name)
    );
    subscribers.json = None;
    let load = run_load_marked(subscribers, phase.clone(), &milestones).await;
    milestones.hold_over.cancel();
    if let Err(error) = stopper.await {
        warn!(%error, "the attack's stopper failed");
    }
    attack_stop.cancel();
    let outcomes = collect(attackers).await;
    let admission = admission.await.unwrap_or_else(|error| {
        warn!(%error, "the admission probe failed");
        AdmissionReport::default()
    });
    sampler_stop.cancel();
    let rss = sampler.await.unwrap_or_else(|error| {
        warn!(%error, "the RSS sampler failed");
        RssTrace::default()
    });
    let cpu_end = procfs::sample(pid).ok();
    let load = load?;
    Ok(PhaseReport {
        load,
        rss,
        cpu_secs: match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => b.cpu.saturating_sub(a.cpu).as_secs_f64(),
            _ => 0.0,
        },
        secs: start.elapsed().as_secs_f64(),
        admission,
        attackers: outcomes,
    })
}

/// Ends the attack (cancels `attack_stop`): at the end of the hold, but not
/// before every attacker has ended or attacked for `judged_for`, so a hold
/// shorter than the close target does not decide it; at once when the phase is
/// cut short (Ctrl-C, the RSS ceiling).
async fn stop_attack(
    logs: Vec<Arc<AttackerLog>>,
    hold_over: CancellationToken,
    phase: CancellationToken,
    attack_stop: CancellationToken,
    judged_for: Duration,
) {
    tokio::select! {
        () = hold_over.cancelled() => {}
        () = phase.cancelled() => {}
    }
    let deadline = logs
        .iter()
        .filter_map(|log| log.started())
        .max()
        .map(|started| started + judged_for);
    if let Some(deadline) = deadline {
        let open = logs.iter().filter(|log| !log.is_over()).count();
        if open > 0 && Instant::now() < deadline && !phase.is_cancelled() {
            info!(
                open,
                "hold over; attackers still open attack until the close target is decided"
            );
        }
        while Instant::now() < deadline && !logs.iter().all(|log| log.is_over()) {
            tokio::select! {
                () = phase.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
    attack_stop.cancel();
}

/// Waits until every attacker began its attack or was refused (at most
/// `deadline`), so the subscribers meet an attack already going.
async fn wait_begun(logs: &[Arc<AttackerLog>], deadline: Duration, phase: &CancellationToken) {
    let until = Instant::now() + deadline;
    while !logs.iter().all(|log| log.is_settled()) && Instant::now() < until {
        tokio::select! {
            () = phase.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let begun = logs.iter().filter(|log| log.is_settled()).count();
    info!(begun, of = logs.len(), "the attack is on");
}

/// Joins the attackers (sorted by index); those that do not stop within
/// [`ATTACKERS_STOP`] are aborted and left out.
async fn collect(mut attackers: JoinSet<AttackerOutcome>) -> Vec<AttackerOutcome> {
    let mut outcomes = Vec::with_capacity(attackers.len());
    let deadline = Instant::now() + ATTACKERS_STOP;
    loop {
        match tokio::time::timeout_at(deadline, attackers.join_next()).await {
            Ok(Some(Ok(outcome))) => outcomes.push(outcome),
            Ok(Some(Err(error))) => warn!(%error, "an attacker task failed"),
            Ok(None) => break,
            Err(_) => {
                warn!(left = attackers.len(), "attackers did not stop in time");
                attackers.abort_all();
                break;
            }
        }
    }
    outcomes.sort_by_key(|o| o.index);
    outcomes
}

/// Samples the server's RSS until `stop`; when it passes `ceiling_kb`,
/// cancels `on_ceiling` (the phase and the attack) once.
async fn sample_rss(
    pid: u32,
    ceiling_kb: u64,
    stop: CancellationToken,
    on_ceiling: [CancellationToken; 2],
) -> RssTrace {
    let start = Instant::now();
    let mut trace = RssTrace::default();
    let mut tick = tokio::time::interval(RSS_EVERY);
    let mut first = true;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let rss = match procfs::sample(pid) {
            Ok(sample) => sample.rss_kb,
            Err(error) => {
                warn!(pid, %error, "cannot read the server's memory any more");
                trace.server_gone = true;
                break;
            }
        };
        if first {
            trace.start_kb = rss;
            first = false;
        }
        trace.peak_kb = trace.peak_kb.max(rss);
        trace.end_kb = rss;
        let second = start.elapsed().as_secs() as usize;
        while trace.per_second_kb.len() <= second {
            trace.per_second_kb.push(rss);
        }
        if rss > ceiling_kb && trace.ceiling_passed_after_ms.is_none() {
            trace.ceiling_passed_after_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
            warn!(
                rss_mb = rss / 1024,
                ceiling_mb = ceiling_kb / 1024,
                "the server's RSS passed the ceiling: aborting the phase"
            );
            for token in &on_ceiling {
                token.cancel();
            }
        }
    }
    trace
}
