//! Throughput and memory of `refresh-all`, and the speed of `status`, on the
//! same local stack the integration tests use: a throwaway PostgreSQL, a
//! `postrust` (PostgREST-compatible) per scenario, and the simulated AimHarder
//! with a fixed latency. Everything runs on 127.0.0.1.
//!
//! ```sh
//! cargo bench --bench refresh            # full: the figures of docs/PERFORMANCE.md
//! cargo bench --bench refresh -- quick   # smaller smoke version, under a minute
//! cargo bench --bench refresh -- tail    # only some scenarios: base tail rss status
//! AIMHARDER_BENCH_N=2000 AIMHARDER_BENCH_CONCURRENCY=8 \
//!     cargo bench --bench refresh -- custom   # any N, L, C (see `custom()`)
//! ```
//!
//! `scripts/bench` does the same after installing PostgreSQL and postrust.
//!
//! The release binary is run as an operator would run it, with
//! `refresh-all --concurrency C --rate 0 --json`. Between it and `postrust`
//! sits a small counting proxy (REST requests by method, and how long each
//! took to answer). Peak RSS and CPU time of the binary come from `wait4`.
//!
//! This is a benchmark, not a test: missed targets are reported (`MISSED`),
//! and only a functional failure (a wrong exit code, rows not recorded)
//! stops it.
//!
//! The code: this file reads the words and runs the chosen scenarios in
//! turn. `throughput.rs` (base, tail), `rss.rs` (rss-small, rss-big),
//! `status.rs` and `custom.rs` define the scenarios and their targets;
//! `scenario.rs` runs one and gathers its figures from `binary.rs` (the
//! release binary, timed and sampled), `cpu.rs` (CPU time from /proc) and
//! `proxy.rs` (the counting proxy); `report.rs` prints the tables.

mod binary;
mod cpu;
mod custom;
mod measure;
mod proxy;
mod report;
mod rss;
mod scenario;
mod status;
mod throughput;

use measure::{Kind, Scenario};

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
    let known = ["quick", "full", "base", "tail", "rss", "status", "custom"];
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

    // Two workers: the fake AimHarder and the proxy are light, and the
    // machine's cores are better left to the binary and the stack.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for scenario in &scenarios {
            eprintln!(
                "bench: {} (N={}, L={:?}, C={}{})...",
                scenario.name,
                scenario.n,
                scenario.latency,
                scenario.concurrency,
                if scenario.tail { ", tail" } else { "" }
            );
            results.push(scenario::run_scenario(*scenario).await);
        }
        results
    });
    report::report(quick, &results);
}
