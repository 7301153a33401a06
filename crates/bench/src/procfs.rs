//! Resource use of a process, read from `/proc` (Linux only).
//!
//! CPU time comes from `/proc/<pid>/stat` (user + system, all threads), memory
//! from `/proc/<pid>/status` (`VmRSS`, and `VmHWM`, the peak RSS since start), and
//! per-thread CPU from `/proc/<pid>/task/*/stat`, grouped by thread name. Times in
//! `stat` are in clock ticks of `USER_HZ`, which is 100 on every Linux ABI.

use std::{collections::BTreeMap, fs, io, time::Duration};

use serde::{Deserialize, Serialize};

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`, fixed by the kernel ABI).
const TICKS_PER_SEC: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time of all threads so far.
    pub cpu: Duration,
    /// The system (kernel) part of `cpu`: syscalls, and for loopback sockets the
    /// TCP work of both ends of a send.
    pub system_cpu: Duration,
    pub rss_kb: u64,
    /// Peak RSS since the process started.
    pub peak_rss_kb: u64,
}

/// Reads `pid`'s CPU time and memory.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let times = parse_stat(&stat).ok_or_else(|| malformed("stat"))?;
    Ok(ProcSample {
        cpu: times.user + times.system,
        system_cpu: times.system,
        rss_kb: status_kb(&status, "VmRSS:").ok_or_else(|| malformed("status VmRSS"))?,
        peak_rss_kb: status_kb(&status, "VmHWM:").ok_or_else(|| malformed("status VmHWM"))?,
    })
}

/// CPU time the whole machine spent busy so far (all cores, from `/proc/stat`:
/// everything but idle and iowait), to tell how much of it other processes took.
pub fn machine_busy() -> io::Result<Duration> {
    let stat = fs::read_to_string("/proc/stat")?;
    parse_machine_busy(&stat).ok_or_else(|| malformed("/proc/stat"))
}

fn parse_machine_busy(stat: &str) -> Option<Duration> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(ticks(busy))
}

/// CPU time per thread name (threads of one name added up), e.g. the actix
/// workers or tokio's `tokio-runtime-worker`s. Threads that end in between are
/// not seen; unreadable ones are skipped.
pub fn thread_cpu(pid: u32) -> io::Result<BTreeMap<String, Duration>> {
    let mut by_name = BTreeMap::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(entry) = entry else { continue };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(times) = parse_stat(&stat) {
            *by_name.entry(times.name).or_insert(Duration::ZERO) += times.user + times.system;
        }
    }
    Ok(by_name)
}

/// CPU seconds per thread name spent between two [`thread_cpu`] readings.
pub fn thread_cpu_delta(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
) -> Vec<ThreadCpu> {
    let mut threads: Vec<ThreadCpu> = after
        .iter()
        .map(|(name, cpu)| ThreadCpu {
            name: name.clone(),
            cpu_secs: cpu
                .saturating_sub(before.get(name).copied().unwrap_or_default())
                .as_secs_f64(),
        })
        .collect();
    threads.sort_by(|a, b| b.cpu_secs.total_cmp(&a.cpu_secs));
    threads
}

/// CPU spent by the threads of one name during a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadCpu {
    pub name: String,
    pub cpu_secs: f64,
}

/// The name and CPU times of a thread or process.
struct StatTimes {
    name: String,
    user: Duration,
    system: Duration,
}

/// Name, `utime` and `stime` of a `stat` line. The name is in parentheses and may
/// itself hold spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<StatTimes> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    // After the name: state(3) ppid … utime(14) stime(15), 1-based in proc(5).
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(StatTimes {
        name,
        user: ticks(user),
        system: ticks(system),
    })
}

fn ticks(ticks: u64) -> Duration {
    Duration::from_secs(ticks / TICKS_PER_SEC)
        + Duration::from_millis((ticks % TICKS_PER_SEC) * 1000 / TICKS_PER_SEC)
}

/// The kB value of a `status` line such as `VmRSS:   12345 kB`.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_after_an_awkward_name() {
        let stat = "4242 (actix (rt) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        let times = parse_stat(stat).expect("parses");
        assert_eq!(times.name, "actix (rt) x");
        assert_eq!(times.user, Duration::from_millis(2500));
        assert_eq!(times.system, Duration::from_millis(750));
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 10 0 0\ncpu0 50 2 25 500 10 1 1 5 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(Duration::from_millis(1700)));
        assert!(machine_busy().is_ok());
    }

    #[test]
    fn memory_lines_are_read_in_kilobytes() {
        let status = "Name:\tratecast\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), Some(102_400));
        assert_eq!(status_kb(status, "VmHWM:"), Some(204_800));
        assert_eq!(status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(std::process::id()).expect("/proc/self readable");
        assert!(me.rss_kb > 0 && me.peak_rss_kb >= me.rss_kb);
        assert!(!thread_cpu(std::process::id()).expect("tasks").is_empty());
    }

    #[test]
    fn thread_deltas_are_sorted_busiest_first() {
        let before = BTreeMap::from([("a".to_owned(), Duration::from_secs(1))]);
        let after = BTreeMap::from([
            ("a".to_owned(), Duration::from_secs(2)),
            ("b".to_owned(), Duration::from_secs(3)),
        ]);
        let delta = thread_cpu_delta(&before, &after);
        assert_eq!(delta[0].name, "b");
        assert_eq!(delta[0].cpu_secs, 3.0);
        assert_eq!(delta[1].cpu_secs, 1.0);
    }
}
