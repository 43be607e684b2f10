//! The throughput scenarios and their targets: `base` runs N calls of
//! latency L, C at a time, against the N×L/C bound; `tail` is the same with
//! a heavy tail of slow answers.

use std::time::Duration;

use crate::measure::{find, Kind, Measured, Scenario, Targets};

/// The heavy tail: one AimHarder answer in `TAIL_EVERY` takes `TAIL`.
pub const TAIL_EVERY: usize = 50;
pub const TAIL: Duration = Duration::from_secs(1);

/// `base` and `tail`, with `n` sessions each.
pub fn scenarios(n: usize) -> [Scenario; 2] {
    let ms = Duration::from_millis;
    [
        Scenario {
            kind: Kind::Base,
            name: "base",
            n,
            latency: ms(50),
            concurrency: 32,
            tail: false,
        },
        Scenario {
            kind: Kind::Tail,
            name: "tail",
            n,
            latency: ms(50),
            concurrency: 32,
            tail: true,
        },
    ]
}

impl Scenario {
    /// The best any runner could do: N calls of mean latency, C at a time.
    /// With the tail, the mean is L×49/50 + 1s/50.
    pub fn bound(&self) -> Duration {
        let mean = if self.tail {
            let every = TAIL_EVERY as u32;
            self.latency * (every - 1) / every + TAIL / every
        } else {
            self.latency
        };
        mean * self.n as u32 / self.concurrency as u32
    }
}

/// Wall time over the bound: 1.0 is as fast as any runner could be.
pub fn ratio(m: &Measured) -> f64 {
    m.wall.as_secs_f64() / m.scenario.bound().as_secs_f64()
}

/// base: ratio <= 1.10 and at most 0.1 REST requests per session (reads,
/// claims, writes and releases, everything: claims and writes are
/// batched); tail: ratio <= 1.3.
pub fn check(results: &[Measured], targets: &mut Targets) {
    if let Some(m) = find(results, Kind::Base) {
        targets.check(
            ratio(m) <= 1.10,
            format!("base: ratio {:.3} <= 1.10", ratio(m)),
        );
        let per_session = m.rest.total() as f64 / m.refreshed.max(1) as f64;
        targets.check(
            per_session <= 0.1,
            format!("base: {per_session:.3} REST requests per refreshed session <= 0.1"),
        );
    }
    if let Some(m) = find(results, Kind::Tail) {
        targets.check(
            ratio(m) <= 1.3,
            format!("tail: ratio {:.3} <= 1.3", ratio(m)),
        );
    }
}
