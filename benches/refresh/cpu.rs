//! CPU accounting from /proc: the binary's own comes from `wait4` (see
//! `binary.rs`); this is everyone else's during the run.

use std::path::Path;
use std::time::Duration;

use aimharder_testkit::stack::TestDb;

use crate::binary::timeval;

/// CPU time (user + system), from `/proc`, of this bench's `postrust`
/// (started under this process) and of its PostgreSQL cluster (the
/// postmaster `postmaster_pid` and its children), and of the whole machine.
/// Other engineers' test runs may start clusters and servers of their own;
/// those are not counted as ours, and show up in `machine`.
///
/// PostgreSQL backends hold on to postrust's pooled connections, so they
/// live through the run; a short-lived autovacuum worker would be missed.
#[derive(Clone, Copy, Default)]
pub struct CpuSample {
    pub postrust: Duration,
    pub postgres: Duration,
    /// Busy time of all CPUs (everything but idle and iowait).
    pub machine: Duration,
    /// Of which interrupt handling (irq + softirq): on loopback, mostly TCP
    /// processing, charged to no process.
    pub irq: Duration,
}

pub fn cpu_sample(postmaster_pid: u32) -> CpuSample {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let time = |ticks: u64| Duration::from_millis(ticks * 1000 / hz);
    let me = std::process::id();

    // pid -> (parent, comm, CPU ticks)
    let mut procs = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..." -- comm may hold spaces, so split at
        // the last ')'; ppid is field 4, utime and stime are 14 and 15.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        procs.insert(pid, (num(1) as u32, comm, num(11) + num(12)));
    }
    let under_me = |mut pid: u32| {
        while let Some((parent, _, _)) = procs.get(&pid) {
            if *parent == me {
                return true;
            }
            pid = *parent;
        }
        false
    };
    let mut sample = CpuSample::default();
    for (pid, (parent, comm, ticks)) in &procs {
        if comm == "postrust" && under_me(*pid) {
            sample.postrust += time(*ticks);
        } else if *pid == postmaster_pid || *parent == postmaster_pid {
            sample.postgres += time(*ticks);
        }
    }
    // First line of /proc/stat: "cpu user nice system idle iowait irq ...".
    let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = all
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    sample.machine = time(ticks.iter().sum::<u64>() - idle);
    sample.irq = time(ticks.get(5).copied().unwrap_or(0) + ticks.get(6).copied().unwrap_or(0));
    sample
}

/// The pid of the cluster's postmaster, from `postmaster.pid` in its data
/// directory.
pub fn postmaster_pid(db: &TestDb) -> u32 {
    let data = db.sql("SHOW data_directory");
    std::fs::read_to_string(Path::new(&data).join("postmaster.pid"))
        .ok()
        .and_then(|pidfile| pidfile.lines().next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no postmaster.pid in {data}"))
}

/// CPU time of this process (the fake AimHarder and the proxy).
pub fn self_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}
