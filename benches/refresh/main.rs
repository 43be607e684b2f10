//! Throughput and memory of `refresh-all`, and the speed of `status`, on the
//! same local stack the integration tests use: a throwaway PostgreSQL, a
//! `postrust` (PostgREST-compatible) per scenario, and the simulated AimHarder
//! with a fixed latency. Everything runs on 127.0.0.1.
//!
//! ```sh
//! cargo bench --bench refresh            # full: every word below but custom
//! cargo bench --bench refresh -- quick   # the same at smaller sizes, a smoke test
//! cargo bench --bench refresh -- tail    # only some scenarios, by word
//! AIMHARDER_BENCH_N=2000 AIMHARDER_BENCH_CONCURRENCY=8 \
//!     cargo bench --bench refresh -- custom   # any N, L, C (see `custom()`)
//! ```
//!
//! The words (sizes are the full ones; `quick` shrinks them):
//!
//! - `base`: N = 10,000, L = 50 ms, C = 32 against the N×L/C bound.
//! - `tail`: the same, one answer in 50 taking 1 s.
//! - `rss`: peak RSS at N = 10,000 and 100,000 (L = 5 ms, C = 64).
//! - `status`: `status --json` on the 100,000-row table (runs rss-big).
//! - `custom`: any N, L, C from the environment; never part of `full`.
//! - `remote`: base's shape through the Supabase-like gateway, which holds
//!   each REST request 0, 60 and 120 ms (three runs); REST requests by kind.
//! - `limit1`: `refresh-all --limit 1` on 200 due sessions through the
//!   gateway: the REST requests one session costs.
//! - `linear`: `refresh-all --dry-run --json` and `status --sessions --json`
//!   on 20,000 and 80,000 rows, and a dry run on 1,000,000 rows (about 40 s
//!   in all, 20 s of it seeding the 1M rows).
//! - `full` (or no word): all of the above but `custom`, about 5 minutes.
//! - `quick`: N shrinks to 1,000 (rss: 1,000 and 10,000; linear: 2,000,
//!   8,000 and 100,000).
//!
//! `scripts/bench` does the same after installing PostgreSQL and postrust.
//!
//! The release binary is run as an operator would run it, with
//! `refresh-all --concurrency C --rate 0 --json`. For base, tail, rss and
//! custom a small counting proxy sits between it and `postrust` (REST
//! requests by method, and how long each took to answer); remote and limit1
//! go through the gateway instead, which counts them by kind. Peak RSS is
//! the binary's own VmHWM, its CPU time comes from `wait4`.
//!
//! This is a benchmark, not a test: missed targets are reported (`MISSED`),
//! and only a functional failure (a wrong exit code, rows not recorded)
//! stops it.
//!
//! The code: this file reads the words and runs the chosen scenarios in
//! turn. `throughput.rs` (base, tail), `rss.rs` (rss-small, rss-big),
//! `status.rs`, `custom.rs`, `remote.rs` (remote, limit1) and `linear.rs`
//! define the scenarios and their targets; `scenario.rs` runs one behind
//! the proxy and gathers its figures from `binary.rs` (the release binary,
//! timed and sampled), `cpu.rs` (CPU time from /proc) and `proxy.rs` (the
//! counting proxy); `report.rs` prints the tables.

mod binary;
mod cpu;
mod custom;
mod linear;
mod measure;
mod proxy;
mod remote;
mod report;
mod rss;
mod scenario;
mod status;
mod throughput;

use std::time::Duration;

use linear::Sizes;
use measure::{Kind, Scenario};
use report::Results;

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

fn scenarios(quick: bool, only: &[String]) -> Vec<Scenario> {
    // Quick keeps the shapes and shrinks N so the whole run takes under a
    // minute; its ratios carry more fixed start-up cost, so the targets are
    // only meant for the full sizes.
    let (small, big) = if quick {
        (1_000, 10_000)
    } else {
        (10_000, 100_000)
    };
    let all = throughput::scenarios(small)
        .into_iter()
        .chain(rss::scenarios(small, big));
    let wanted = |s: &Scenario| {
        only.is_empty()
            || only.iter().any(|w| match w.as_str() {
                "base" => s.kind == Kind::Base,
                "tail" => s.kind == Kind::Tail,
                "rss" => matches!(s.kind, Kind::RssSmall | Kind::RssBig),
                // `status` is timed on the big table, so it needs that run.
                "status" => s.kind == Kind::RssBig,
                _ => false,
            })
    };
    let mut chosen: Vec<Scenario> = all.filter(wanted).collect();
    if only.iter().any(|w| w == "custom") {
        chosen.push(custom::custom());
    }
    chosen
}

/// Whether `word` was asked for, or all words were (none given).
fn wants(only: &[String], word: &str) -> bool {
    only.is_empty() || only.iter().any(|w| w == word)
}

/// The gateway runs chosen: each `remote` hold, then `limit1`.
fn gateway_runs(quick: bool, only: &[String]) -> Vec<(Scenario, Duration)> {
    let mut runs = Vec::new();
    if wants(only, "remote") {
        let n = if quick { 1_000 } else { 10_000 };
        runs.extend(remote::HOLDS.map(|hold| (remote::remote(n), hold)));
    }
    if wants(only, "limit1") {
        runs.push((remote::limit1(), Duration::ZERO));
    }
    runs
}

/// The `linear` tables, if chosen.
fn linear_sizes(quick: bool, only: &[String]) -> Option<Sizes> {
    if !wants(only, "linear") {
        return None;
    }
    Some(if quick {
        Sizes {
            small: 2_000,
            large: 8_000,
            huge: 100_000,
        }
    } else {
        Sizes {
            small: 20_000,
            large: 80_000,
            huge: 1_000_000,
        }
    })
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench` (and any filter after `--`); flags are
    // cargo's, words are ours.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let known = [
        "quick", "full", "base", "tail", "rss", "status", "custom", "remote", "limit1", "linear",
    ];
    if let Some(bad) = words.iter().find(|w| !known.contains(&w.as_str())) {
        eprintln!("unknown scenario {bad:?}; use any of: {}", known.join(" "));
        std::process::exit(64);
    }
    let quick = words.iter().any(|w| w == "quick");
    let only: Vec<String> = words
        .into_iter()
        .filter(|w| w != "quick" && w != "full")
        .collect();
    let scenarios = scenarios(quick, &only);
    let gateway = gateway_runs(quick, &only);
    let linear = linear_sizes(quick, &only);

    // Two workers: the fake AimHarder and the proxy are light, and the
    // machine's cores are better left to the binary and the stack.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let results = runtime.block_on(async {
        let mut proxied = Vec::new();
        for scenario in &scenarios {
            eprintln!(
                "bench: {} (N={}, L={:?}, C={}{})...",
                scenario.name,
                scenario.n,
                scenario.latency,
                scenario.concurrency,
                if scenario.tail { ", tail" } else { "" }
            );
            proxied.push(scenario::run_scenario(*scenario).await);
        }
        let mut through_gateway = Vec::new();
        for (scenario, hold) in gateway {
            eprintln!(
                "bench: {} (N={}, L={:?}, hold {} ms)...",
                scenario.name,
                scenario.n,
                scenario.latency,
                hold.as_millis()
            );
            through_gateway.push(remote::run(scenario, hold).await);
        }
        let linear = match linear {
            Some(sizes) => Some(linear::run(sizes).await),
            None => None,
        };
        Results {
            proxied,
            gateway: through_gateway,
            linear,
        }
    });
    report::report(quick, &results);
}
