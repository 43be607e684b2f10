//! `status --json` timed on rss-big's table, before its run (every session
//! due) and after it (every session fresh), and its target.

use std::path::Path;
use std::time::Duration;

use aimharder_testkit::stack::TestDb;

use crate::binary::{run_binary, tail_of};
use crate::measure::{ms, Measured, Targets};

/// How often `status` is timed on the big table (the figure is the worst).
const STATUS_RUNS: usize = 5;

/// `status --json` straight against `postrust` (no proxy), a few times.
pub async fn time_status(db: &TestDb, dir: &Path) -> Vec<Duration> {
    let envs = vec![
        ("SUPABASE_REST_URL".to_string(), db.rest_url()),
        (
            "SUPABASE_SERVICE_ROLE_KEY".to_string(),
            db.service_key().to_string(),
        ),
    ];
    let args = vec!["status".to_string(), "--json".to_string()];
    let mut times = Vec::new();
    for _ in 0..STATUS_RUNS {
        let run = run_binary(&args, &envs, dir).await;
        assert_eq!(
            run.code,
            0,
            "status exited {}; stderr:\n{}",
            run.code,
            tail_of(&dir.join("stderr"))
        );
        times.push(run.wall);
    }
    times
}

/// One line per scenario that timed `status`.
pub fn print_times(results: &[Measured]) {
    for m in results.iter().filter(|m| !m.status_before.is_empty()) {
        let show = |t: &[Duration]| t.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ");
        println!();
        println!(
            "status --json on {} rows, wall ms: all due: {}; all fresh: {}",
            m.scenario.n,
            show(&m.status_before),
            show(&m.status_after)
        );
    }
}

/// The slowest `status` on the big table: under 500 ms.
pub fn check(big: &Measured, targets: &mut Targets) {
    let worst = big
        .status_before
        .iter()
        .chain(&big.status_after)
        .max()
        .copied()
        .unwrap_or_default();
    targets.check(
        worst < Duration::from_millis(500),
        format!(
            "status on {} rows: worst {} ms < 500 ms",
            big.scenario.n,
            ms(worst)
        ),
    );
}
