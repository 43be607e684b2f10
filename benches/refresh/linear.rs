//! `linear`: does reading every row cost in proportion to the rows, and
//! nothing worse? `refresh-all --dry-run --json` and `status --sessions
//! --json` are timed on a table and on one four times larger (a fresh
//! schema each); then a dry run on a huge table (1,000,000 rows), once, as
//! seeding it takes a while (about 20 s here).
//!
//! These commands call no AimHarder and write nothing, so they go straight
//! to `postrust` (as `status.rs` does): what is timed is the tool's reading,
//! not the gateway's re-framing of every page.

use std::time::{Duration, Instant};

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::stack::TestDb;

use crate::binary::{run_binary, run_totals, tail_of};
use crate::measure::{mib, secs, Targets};

/// Table sizes: `small` and `large` (four times as many) for the ratio,
/// and `huge` for the one dry run.
#[derive(Clone, Copy)]
pub struct Sizes {
    pub small: usize,
    pub large: usize,
    pub huge: usize,
}

/// Timed runs of each command on the small and the large table; the ratio
/// is taken between medians, so one disturbed run does not decide it.
const RUNS: usize = 3;

/// The commands timed, and on which tables.
const DRY_RUN: [&str; 3] = ["refresh-all", "--dry-run", "--json"];
const STATUS: [&str; 3] = ["status", "--sessions", "--json"];

/// One table and the runs on it.
pub struct Table {
    pub n: usize,
    /// The one INSERT … generate_series, and the VACUUM ANALYZE after it.
    pub seed: Duration,
    pub vacuum: Duration,
    pub dry_run: Vec<Duration>,
    pub dry_run_rss_kib: i64,
    /// Empty on the huge table.
    pub status: Vec<Duration>,
    pub status_rss_kib: i64,
}

pub struct LinearMeasured {
    pub small: Table,
    pub large: Table,
    pub huge: Table,
}

pub async fn run(sizes: Sizes) -> LinearMeasured {
    LinearMeasured {
        small: table(sizes.small, RUNS, true).await,
        large: table(sizes.large, RUNS, true).await,
        huge: table(sizes.huge, 1, false).await,
    }
}

/// A fresh schema with `n` due rows, `runs` dry runs and (with `status`)
/// as many `status --sessions` on it.
async fn table(n: usize, runs: usize, status: bool) -> Table {
    eprintln!("bench: linear (N={n})...");
    let db = TestDb::new().await;
    db.apply_migrations();
    let started = Instant::now();
    seed_small(&db, n);
    let seed = started.elapsed();
    let started = Instant::now();
    db.sql("VACUUM ANALYZE auth_sessions");
    let vacuum = started.elapsed();

    // A dry run calls nothing; the simulated AimHarder is there so that a
    // run that did would be seen, not sent out of the machine.
    let aim = FakeAimHarder::start().await;
    let envs = vec![
        ("SUPABASE_REST_URL".to_string(), db.rest_url()),
        (
            "SUPABASE_SERVICE_ROLE_KEY".to_string(),
            db.service_key().to_string(),
        ),
        ("AIMHARDER_BASE_URL".to_string(), aim.url()),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut table = Table {
        n,
        seed,
        vacuum,
        dry_run: vec![],
        dry_run_rss_kib: 0,
        status: vec![],
        status_rss_kib: 0,
    };
    for _ in 0..runs {
        let (wall, rss) = timed(&DRY_RUN, &envs, dir.path(), n).await;
        table.dry_run.push(wall);
        table.dry_run_rss_kib = table.dry_run_rss_kib.max(rss);
    }
    for _ in 0..if status { runs } else { 0 } {
        let (wall, rss) = timed(&STATUS, &envs, dir.path(), n).await;
        table.status.push(wall);
        table.status_rss_kib = table.status_rss_kib.max(rss);
    }
    assert!(
        aim.arrival_times().is_empty(),
        "linear: a dry run or status called AimHarder"
    );
    // Dropping the table now keeps its autovacuum out of the next one.
    db.sql("DROP TABLE auth_sessions CASCADE");
    table
}

/// One run of `command`: its wall time and peak RSS. Stops the benchmark
/// unless it exited 0 and listed all `n` rows.
async fn timed(
    command: &[&str],
    envs: &[(String, String)],
    dir: &std::path::Path,
    n: usize,
) -> (Duration, i64) {
    let args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
    let run = run_binary(&args, envs, dir).await;
    let what = command.join(" ");
    assert_eq!(
        run.code,
        0,
        "{what} on {n} rows exited {}; stderr:\n{}",
        run.code,
        tail_of(&dir.join("stderr"))
    );
    let listed = if command[0] == "status" {
        // The counts come before the sessions, so the whole document is
        // read; it is not timed.
        let text = std::fs::read_to_string(dir.join("stdout")).expect("stdout of status");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("status JSON");
        let lines = doc["sessions"].as_array().map_or(0, Vec::len) as u64;
        assert_eq!(
            doc["total"].as_u64(),
            Some(lines),
            "{what}: total against the sessions listed"
        );
        lines
    } else {
        run_totals(&dir.join("stdout"))["selected"]
            .as_u64()
            .unwrap_or(0)
    };
    assert_eq!(listed, n as u64, "{what} listed {listed} of {n} rows");
    (run.wall, run.rss_kib)
}

/// `n` due rows in one statement, as small as the table allows (a huge
/// table must seed in reasonable time): half never refreshed, half
/// refreshed 7 h ago, so both due walks have rows; no cookies, no
/// fingerprint.
fn seed_small(db: &TestDb, n: usize) {
    // A synchronous commit: VACUUM marks pages all-visible (which the
    // counts' index-only scans need) only once the inserts are on disk, and
    // the test cluster commits asynchronously.
    db.sql(&format!(
        "SET synchronous_commit = on; INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, \
                                    created_at, last_refresh_date, refresh_count)
         SELECT 'm' || i || '@example.com', 't' || i, '[]'::jsonb,
                now() - interval '30 days' + i * interval '1 ms',
                CASE WHEN i % 2 = 1 THEN now() - interval '7 hours' - i * interval '1 ms' END,
                0
         FROM generate_series(1, {n}) AS i;"
    ));
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Seconds to the millisecond: the small table's runs take a fraction of one.
fn secs3(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn runs(times: &[Duration]) -> String {
    times
        .iter()
        .map(|d| secs3(*d))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Time(large) / time(small), between medians.
fn growth(m: &LinearMeasured, of: impl Fn(&Table) -> &[Duration]) -> f64 {
    median(of(&m.large)).as_secs_f64() / median(of(&m.small)).as_secs_f64()
}

pub fn print(m: &LinearMeasured) {
    println!();
    println!(
        "Reading every row, straight to postrust (rows seeded by one INSERT … generate_series, \
         then VACUUM ANALYZE; wall s of each run):"
    );
    println!();
    println!("| rows | seed s | VACUUM ANALYZE s | `refresh-all --dry-run --json` s | peak RSS MiB | `status --sessions --json` s | peak RSS MiB |");
    println!("|---:|---:|---:|---|---:|---|---:|");
    for t in [&m.small, &m.large, &m.huge] {
        let (status, status_rss) = if t.status.is_empty() {
            ("—".to_string(), "—".to_string())
        } else {
            (runs(&t.status), mib(t.status_rss_kib))
        };
        println!(
            "| {} | {} | {} | {} | {} | {status} | {status_rss} |",
            t.n,
            secs(t.seed),
            secs(t.vacuum),
            runs(&t.dry_run),
            mib(t.dry_run_rss_kib),
        );
    }
    println!();
    println!(
        "| command | median s, {} rows | median s, {} rows | ratio ({}× the rows) |",
        m.small.n,
        m.large.n,
        m.large.n / m.small.n.max(1)
    );
    println!("|---|---:|---:|---:|");
    for (name, of) in commands() {
        println!(
            "| `{name}` | {} | {} | {:.2} |",
            secs3(median(of(&m.small))),
            secs3(median(of(&m.large))),
            growth(m, of)
        );
    }
}

/// Where one command's times are kept in a [`Table`].
type Times = fn(&Table) -> &[Duration];

/// The two timed commands, and where each one's times are kept.
fn commands() -> [(String, Times); 2] {
    [
        (DRY_RUN.join(" "), |t| &t.dry_run),
        (STATUS.join(" "), |t| &t.status),
    ]
}

/// Each command: time(4×) / time(1×) <= 4.5; the huge dry run under 60 s.
pub fn check(m: &LinearMeasured, targets: &mut Targets) {
    for (name, of) in commands() {
        let ratio = growth(m, of);
        targets.check(
            ratio <= 4.5,
            format!(
                "linear: {name}: {} rows / {} rows = {ratio:.2} <= 4.5",
                m.large.n, m.small.n
            ),
        );
    }
    let wall = m.huge.dry_run[0];
    targets.check(
        wall < Duration::from_secs(60),
        format!(
            "linear: {} on {} rows: {} s < 60 s",
            DRY_RUN.join(" "),
            m.huge.n,
            secs(wall)
        ),
    );
}
