//! `custom`: any N, L, C and tail, for profiling.

use std::time::Duration;

use crate::measure::{Kind, Scenario};

/// `custom`: N, L, C and the tail from `AIMHARDER_BENCH_N`, `_LATENCY_MS`,
/// `_CONCURRENCY` and `_TAIL` (`1` for on); defaults are the base scenario's.
pub fn custom() -> Scenario {
    let var = |name: &str, default: u64| {
        std::env::var(format!("AIMHARDER_BENCH_{name}"))
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("AIMHARDER_BENCH_{name}={v:?}"))
            })
            .unwrap_or(default)
    };
    Scenario {
        kind: Kind::Custom,
        name: "custom",
        n: var("N", 10_000) as usize,
        latency: Duration::from_millis(var("LATENCY_MS", 50)),
        concurrency: var("CONCURRENCY", 32).max(1) as usize,
        tail: var("TAIL", 0) == 1,
    }
}
