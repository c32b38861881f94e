//! Where the CPU went during a run: the measured process (ingest, or the API under wrk),
//! PostgreSQL's processes, the broker and the machine's idle time, from `/proc` tick counters
//! (all threads of each process).

use std::fs;

/// Tick counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    ingest: u64,
    postgres: u64,
    broker: u64,
    idle: u64,
    total: u64,
}

/// Shares of all cores over an interval, in percent (100 = every core busy).
#[derive(Debug, Clone, Copy, Default)]
pub struct Split {
    pub ingest: f64,
    pub postgres: f64,
    pub broker: f64,
    pub idle: f64,
    /// Everything else (the bench itself, the kernel's own threads…).
    pub other: f64,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ingest {:.0}%, PostgreSQL {:.0}%, broker {:.0}%, other {:.0}%, idle {:.0}%",
            self.ingest, self.postgres, self.broker, self.other, self.idle
        )
    }
}

/// utime + stime of a process (fields 14 and 15 of `/proc/PID/stat`, after the command name).
fn process_ticks(pid: u32) -> u64 {
    process_ticks_at(&format!("/proc/{pid}/stat"))
}

fn process_ticks_at(path: &str) -> u64 {
    // `rest` below starts at field 3 (state): utime is field 14, stime 15.
    stat_sum(path, [11, 12])
}

/// The sum of two fields of a `/proc/…/stat` file, counted from field 3 (after the command
/// name, which may hold spaces); 0 when it cannot be read.
fn stat_sum(path: &str, at: [usize; 2]) -> u64 {
    let Ok(stat) = fs::read_to_string(path) else { return 0 };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    at.iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum()
}

/// utime + stime of the calling thread.
pub fn thread_ticks() -> u64 {
    process_ticks_at("/proc/thread-self/stat")
}

/// Every process whose command is `postgres` (the postmaster, its backends and workers), and
/// the backends that have exited: the postmaster reaps them, and its `cutime + cstime` (fields
/// 16 and 17) hold their ticks. Without those the sum went down whenever a busy backend ended
/// between two snapshots (a bench connection closing during a wrk run showed PostgreSQL at 0 %).
pub fn postgres_ticks() -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|pid| process_ticks(pid) + reaped_children_ticks(&format!("/proc/{pid}/stat")))
        .sum()
}

/// cutime + cstime (fields 16 and 17): the ticks of the process's children it has waited for.
fn reaped_children_ticks(path: &str) -> u64 {
    stat_sum(path, [13, 14])
}

/// (idle + iowait, total) ticks of all cores from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return (0, 0) };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    // guest time is already counted in user time.
    (idle, v.iter().take(8).sum())
}

/// `broker_pid`: none when the broker takes no part (the API under wrk).
pub fn snapshot(ingest_pid: u32, broker_pid: Option<u32>) -> Snapshot {
    let (idle, total) = machine_ticks();
    Snapshot {
        ingest: process_ticks(ingest_pid),
        postgres: postgres_ticks(),
        broker: broker_pid.map_or(0, process_ticks),
        idle,
        total,
    }
}

pub fn split(from: Snapshot, to: Snapshot) -> Split {
    let total = to.total.saturating_sub(from.total).max(1) as f64;
    let pct = |a: u64, b: u64| b.saturating_sub(a) as f64 * 100.0 / total;
    let (ingest, postgres, broker) =
        (pct(from.ingest, to.ingest), pct(from.postgres, to.postgres), pct(from.broker, to.broker));
    let idle = pct(from.idle, to.idle);
    Split { ingest, postgres, broker, idle, other: (100.0 - ingest - postgres - broker - idle).max(0.0) }
}
