//! One scenario: a fresh schema and `postrust`, N due sessions, the
//! simulated AimHarder with the scenario's latency, the counting proxy in
//! between, and one `refresh-all` of the release binary, measured.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::stack::TestDb;

use crate::binary::{run_binary, run_totals, tail_of, BinRun};
use crate::cpu::{cpu_sample, postmaster_pid, self_cpu};
use crate::measure::{Kind, Measured, Scenario};
use crate::proxy::CountingProxy;
use crate::rss::quarters;
use crate::status::time_status;
use crate::throughput::{TAIL, TAIL_EVERY};

pub async fn run_scenario(s: Scenario) -> Measured {
    let db = TestDb::new().await;
    db.apply_migrations();
    seed(&db, s.n);

    let aim = if s.tail {
        FakeAimHarder::with_latency_and_tail(s.latency, TAIL_EVERY, TAIL).await
    } else {
        FakeAimHarder::with_latency(s.latency).await
    };
    let rest_addr: SocketAddr = db
        .rest_url()
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .parse()
        .expect("REST address");
    let proxy = CountingProxy::start(rest_addr).await;
    let dir = tempfile::tempdir().expect("temp dir");

    let status_before = if s.kind == Kind::RssBig {
        time_status(&db, dir.path()).await
    } else {
        vec![]
    };

    let envs = vec![
        (
            "SUPABASE_REST_URL".to_string(),
            format!("http://{}/api", proxy.addr),
        ),
        (
            "SUPABASE_SERVICE_ROLE_KEY".to_string(),
            db.service_key().to_string(),
        ),
        ("AIMHARDER_BASE_URL".to_string(), aim.url()),
    ];
    let args: Vec<String> = [
        "refresh-all",
        "--concurrency",
        &s.concurrency.to_string(),
        "--rate",
        "0",
        "--json",
    ]
    .map(str::to_string)
    .to_vec();

    let postmaster = postmaster_pid(&db);
    let stack_before = cpu_sample(postmaster);
    let bench_before = self_cpu();
    let started = Instant::now();
    let run = run_binary(&args, &envs, dir.path()).await;
    let cpu_bench = self_cpu() - bench_before;
    let stack_after = cpu_sample(postmaster);

    let (recorded, refreshed) = verify(s.name, &run, dir.path(), &db, s.n);

    let status_after = if s.kind == Kind::RssBig {
        time_status(&db, dir.path()).await
    } else {
        vec![]
    };
    let first_call = aim
        .arrival_times()
        .first()
        .map_or(Duration::ZERO, |t| t.duration_since(started));

    // Dropping the table now keeps its autovacuum out of the next scenario.
    db.sql("DROP TABLE auth_sessions CASCADE");
    Measured {
        scenario: s,
        wall: run.wall,
        rss_kib: run.rss_kib,
        rss_quarters: quarters(&run.rss_samples, run.wall),
        cpu_bin: run.cpu,
        cpu_postrust: stack_after.postrust.saturating_sub(stack_before.postrust),
        cpu_postgres: stack_after.postgres.saturating_sub(stack_before.postgres),
        cpu_bench,
        cpu_machine: stack_after.machine.saturating_sub(stack_before.machine),
        cpu_irq: stack_after.irq.saturating_sub(stack_before.irq),
        rest: proxy.counts.snapshot(),
        recorded,
        refreshed,
        first_call,
        max_in_flight: aim.max_in_flight(),
        status_before,
        status_after,
    }
}

/// Stops the benchmark unless the run exited 0, reported `expect` sessions
/// refreshed and left exactly that many rows at `refresh_count = 1`.
/// Returns (recorded, refreshed).
pub fn verify(name: &str, run: &BinRun, dir: &Path, db: &TestDb, expect: usize) -> (usize, u64) {
    let doc = run_totals(&dir.join("stdout"));
    assert_eq!(
        run.code,
        0,
        "{name}: refresh-all exited {}; totals {doc}; stderr:\n{}",
        run.code,
        tail_of(&dir.join("stderr"))
    );
    let refreshed = doc["refreshed"].as_u64().unwrap_or(0);
    let recorded: usize = db
        .sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1")
        .parse()
        .expect("a count");
    assert_eq!(
        (recorded, refreshed),
        (expect, expect as u64),
        "{name}: not everything was refreshed and recorded; totals {doc}"
    );
    (recorded, refreshed)
}

/// N due sessions in one statement: odd rows were refreshed 7 h ago (the
/// default cutoff is 6 h), even ones never were; half carry two cookies,
/// a third a fingerprint of their own. All start at `refresh_count = 0`, so
/// "recorded" is simply `refresh_count = 1` afterwards.
pub fn seed(db: &TestDb, n: usize) {
    // A synchronous commit: VACUUM marks pages all-visible (which the
    // counts' index-only scans need) only once the inserts are on disk, and
    // the test cluster commits asynchronously.
    db.sql(&format!(
        "SET synchronous_commit = on; INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, fingerprint, \
                                    created_at, last_refresh_date, refresh_count)
         SELECT 'member' || i || '@example.com',
                i || '|1766731601|' || md5(i::text),
                CASE WHEN i % 2 = 0 THEN '[]'::jsonb
                     ELSE ('[{{\"name\":\"PHPSESSID\",\"value\":\"php-' || i || '\"}},'
                           '{{\"name\":\"AWSALB\",\"value\":\"alb-' || i || '\"}}]')::jsonb END,
                CASE WHEN i % 3 = 0 THEN 'fp-' || i END,
                now() - interval '30 days' + i * interval '1 ms',
                CASE WHEN i % 2 = 1 THEN now() - interval '7 hours' - i * interval '1 ms' END,
                0
         FROM generate_series(1, {n}) AS i;"
    ));
    // As a long-lived Supabase table would be: statistics in place, so the
    // planner sees the real table and not an empty one.
    db.sql("VACUUM ANALYZE auth_sessions");
}
