//! What the benchmark speaks of: scenarios, the figures of one run, the
//! targets checked, and how figures are printed.

use std::time::Duration;

use crate::proxy::Counts;

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// Throughput against the N×L/C bound.
    Base,
    /// The same with a heavy tail of slow answers.
    Tail,
    /// Peak RSS, small table (the reference for the big one).
    RssSmall,
    /// Peak RSS, big table; `status` is timed on this table too.
    RssBig,
    /// Any N, L, C from the environment, for profiling (see `custom()`).
    Custom,
    /// Through the Supabase-like gateway, which holds each REST request
    /// (`remote.rs`).
    Remote,
    /// `--limit 1` through the gateway: what one session costs in requests.
    Limit1,
}

#[derive(Clone, Copy)]
pub struct Scenario {
    pub kind: Kind,
    pub name: &'static str,
    pub n: usize,
    pub latency: Duration,
    pub concurrency: usize,
    pub tail: bool,
}

pub struct Measured {
    pub scenario: Scenario,
    pub wall: Duration,
    pub rss_kib: i64,
    /// VmRSS (MiB) at a quarter, half, three quarters and the end of the run.
    pub rss_quarters: [f64; 4],
    /// User + system CPU of the binary.
    pub cpu_bin: Duration,
    /// CPU burnt meanwhile by `postrust`, by PostgreSQL (all its processes),
    /// and by this process (fake AimHarder + proxy).
    pub cpu_postrust: Duration,
    pub cpu_postgres: Duration,
    pub cpu_bench: Duration,
    /// Busy CPU time of the whole machine during the run: what is neither
    /// ours above nor interrupt work was someone else's (a test run, a build).
    pub cpu_machine: Duration,
    /// Kernel interrupt work (irq + softirq), charged to no process.
    pub cpu_irq: Duration,
    pub rest: Counts,
    /// Rows with `refresh_count = 1` after the run.
    pub recorded: usize,
    pub refreshed: u64,
    /// From spawn to the first AimHarder call (start-up and first page).
    pub first_call: Duration,
    pub max_in_flight: usize,
    /// `status --json` wall times on this table, before and after the run.
    pub status_before: Vec<Duration>,
    pub status_after: Vec<Duration>,
}

pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

pub fn mib(kib: i64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The measured run of the scenario of kind `kind`, if it ran.
pub fn find(results: &[Measured], kind: Kind) -> Option<&Measured> {
    results.iter().find(|m| m.scenario.kind == kind)
}

/// Targets checked so far: each is printed as it is checked.
#[derive(Default)]
pub struct Targets {
    missed: usize,
}

impl Targets {
    /// How many were missed.
    pub fn missed(&self) -> usize {
        self.missed
    }

    pub fn check(&mut self, ok: bool, what: String) {
        println!("{} {what}", if ok { "ok    " } else { "MISSED" });
        self.missed += usize::from(!ok);
    }
}
