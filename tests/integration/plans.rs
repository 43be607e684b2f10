//! Every query the tool makes is served by an index (issue 17): against a
//! seeded table of realistic rows, each command runs through a `postrust`
//! whose every plan PostgreSQL writes to its log (auto_explain, statements
//! inside the tool's functions included), and no plan reads the sessions
//! table from end to end.

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::stack::TestDb;

use crate::BIN;

/// Rows shaped like the web app's: a token, three cookies, a fingerprint;
/// half never refreshed, one in a hundred with an error, one in fifty off.
fn seed(db: &TestDb, n: usize) {
    // A synchronous commit: VACUUM marks a page all-visible only once the
    // inserts' commit is on disk, and the test cluster commits
    // asynchronously.
    db.sql(&format!(
        "SET synchronous_commit = on; INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, fingerprint, \
         created_at, last_refresh_date, refresh_count, last_refresh_error, auto_refresh_enabled) \
         SELECT 'member' || i || '@example.com', i || '|1766731601|' || md5(i::text), \
                jsonb_build_array( \
                    jsonb_build_object('name', 'PHPSESSID', 'value', md5(i::text) || md5((i + 1)::text)), \
                    jsonb_build_object('name', 'AWSALB', 'value', repeat(md5(i::text), 4)), \
                    jsonb_build_object('name', 'amhrdrauth', 'value', repeat(md5((i * 7)::text), 3))), \
                'fp' || md5(i::text), \
                now() - interval '30 days' + i * interval '1 ms', \
                CASE WHEN i % 2 = 1 THEN now() - interval '7 hours' - i * interval '1 ms' END, 0, \
                CASE WHEN i % 100 = 0 THEN '[2020-01-01T00:00:00Z] blocked, HTTP 403' END, \
                i % 50 <> 0 \
         FROM generate_series(1, {n}) AS i"
    ));
    // As a long-lived Supabase table: statistics and a visibility map.
    // VACUUM marks a page all-visible only once no transaction older than
    // the inserts runs, and other tests share the cluster: look again
    // until it has (their transactions are short).
    for _ in 0..50 {
        db.sql("VACUUM ANALYZE auth_sessions");
        let visible = db.sql(&format!(
            "SELECT relallvisible >= relpages * 0.95 FROM pg_class \
             WHERE relname = 'auth_sessions' AND relnamespace = '{}'::regnamespace",
            db.schema()
        ));
        if visible == "t" {
            return;
        }
    }
    panic!("VACUUM never marked the seeded table all-visible");
}

#[tokio::test]
async fn no_query_of_the_tool_scans_the_sessions_table() {
    let db = TestDb::explaining().await;
    db.apply_migrations();
    seed(&db, 60_000);
    let aim = FakeAimHarder::start().await;
    let id = db.sql("SELECT id FROM auth_sessions WHERE user_email = 'member7@example.com'");
    let runs: [&[&str]; 11] = [
        &["refresh-all", "--dry-run", "--json", "--limit", "3000"],
        &[
            "refresh-all",
            "--dry-run",
            "--shard",
            "2/3",
            "--limit",
            "3000",
        ],
        &[
            "refresh-all",
            "--rate",
            "0",
            "--concurrency",
            "16",
            "--limit",
            "300",
        ],
        &["refresh-all", "--rate", "0", "--force", "--limit", "50"],
        // Stopped with sessions claimed and not called: they are given back.
        &["refresh-all", "--rate", "2", "--max-duration", "1s"],
        &["status", "--json"],
        &["status", "--sessions", "--json"],
        &["refresh-one", "--email", "MEMBER7@example.com"],
        &["refresh-one", "--id", &id],
        &["probe", "--all", "--limit", "20", "--rate", "0"],
        &["probe", "--email", "member9@example.com"],
    ];
    for args in runs {
        let done = BIN
            .run(&db, &aim)
            .env("AIMHARDER_METRICS_FILE", "metrics.prom")
            .args(args)
            .output()
            .await;
        assert!(
            matches!(done.code, 0 | 1 | 75),
            "{args:?} exited {}: {}",
            done.code,
            done.stderr
        );
    }
    let plans = db.plans();
    // The tool's own statements, and those inside its functions.
    for expected in [
        "refresh_claim",
        "refresh_write",
        "refresh_release",
        "refresh_counts",
        "refresh_sessions_by_email",
        "last_refresh_date",
        "INSERT INTO refresh_claims",
        "UPDATE auth_sessions s SET",
    ] {
        assert!(
            plans.iter().any(|p| p.contains(expected)),
            "no plan logged for {expected}: {} plans",
            plans.len()
        );
    }
    let scan = format!("Seq Scan on {}.auth_sessions", db.schema());
    let scans: Vec<&String> = plans.iter().filter(|p| p.contains(&scan)).collect();
    let shown: Vec<String> = scans
        .iter()
        .map(|p| {
            let query = p.lines().nth(1).unwrap_or_default().trim();
            let nodes: Vec<&str> = p
                .lines()
                .filter(|l| l.contains("Scan"))
                .map(str::trim)
                .collect();
            format!("{query}\n  {}", nodes.join("\n  "))
        })
        .collect();
    assert!(
        scans.is_empty(),
        "{} of {} plans read the whole sessions table:\n{}",
        scans.len(),
        plans.len(),
        shown.join("\n")
    );
}
