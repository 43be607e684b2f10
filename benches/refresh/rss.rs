//! The memory scenarios and their targets: `rss-small` and `rss-big` differ
//! only in N, so the peak RSS of the big one against the small one tells
//! steady growth from a plateau.

use std::time::Duration;

use crate::measure::{mib, Kind, Measured, Scenario, Targets};

/// `rss-small` (`small` sessions) and `rss-big` (`big` sessions).
pub fn scenarios(small: usize, big: usize) -> [Scenario; 2] {
    let ms = Duration::from_millis;
    // The memory pair uses a short latency to keep the big run short;
    // both use the same L and C, so only N differs between them.
    [
        Scenario {
            kind: Kind::RssSmall,
            name: "rss-small",
            n: small,
            latency: ms(5),
            concurrency: 64,
            tail: false,
        },
        Scenario {
            kind: Kind::RssBig,
            name: "rss-big",
            n: big,
            latency: ms(5),
            concurrency: 64,
            tail: false,
        },
    ]
}

/// The largest VmRSS sampled up to each quarter of the run, in MiB.
pub fn quarters(samples: &[(Duration, u64)], wall: Duration) -> [f64; 4] {
    [1u32, 2, 3, 4].map(|q| {
        let until = wall * q / 4;
        samples
            .iter()
            .filter(|(at, _)| *at <= until)
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    })
}

/// rss-big: at most 24 MiB, and at most 1.2 × rss-small's.
pub fn check(big: &Measured, small: Option<&Measured>, targets: &mut Targets) {
    targets.check(
        big.rss_kib <= 24 * 1024,
        format!(
            "rss: {} MiB at N={} <= 24 MiB",
            mib(big.rss_kib),
            big.scenario.n
        ),
    );
    if let Some(small) = small {
        let growth = big.rss_kib as f64 / small.rss_kib as f64;
        targets.check(
            growth <= 1.2,
            format!(
                "rss: N={} / N={} = {growth:.2} <= 1.2 (same L and C)",
                big.scenario.n, small.scenario.n
            ),
        );
    }
}
