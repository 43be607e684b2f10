//! Rows of issue 10's review table that do not need claims: the exact email,
//! `.env` from the working directory only, hooks for refresh runs only,
//! `status` staleness by the due key, ranges checked at parse time, and an
//! unrecorded result winning over the deadline.

use std::time::Duration;

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::proxy::{Fault, FaultProxy};
use aimharder_testkit::recorder::Recorder;
use aimharder_testkit::run::{row, Seed};

use crate::refresh_all::stack;
use crate::BIN;

#[tokio::test]
async fn an_email_is_matched_exactly_without_regard_to_case() {
    let (db, aim) = stack().await;
    let wanted = Seed::new("bulk1_@example.com", "1|1|wanted").insert(&db);
    for (i, email) in [
        "bulk10@example.com",
        "bulk1x@example.com",
        "bulk1__@example.com",
    ]
    .iter()
    .enumerate()
    {
        Seed::new(email, &format!("{}|1|other", i + 2)).insert(&db);
    }
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-one", "--email", "BULK1_@Example.com", "--json"])
        .output()
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.json()["id"], wanted.as_str());
    assert_eq!(aim.seen().len(), 1);
    assert_eq!(aim.calls_for("1|1|wanted"), 1);

    // `%` is a character like any other, never a pattern.
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-one", "--email", "bulk1%@example.com"])
        .output()
        .await;
    assert_eq!(done.code, 66, "{}", done.stderr);
    assert_eq!(aim.seen().len(), 1, "nobody else was called");
}

#[tokio::test]
async fn dotenv_is_read_from_the_working_directory_only() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    // A `.env` planted in the parent folder would point the tool at a stack.
    let run = BIN.bare().in_subdir("work");
    std::fs::write(
        run.dir().join(".env"),
        format!(
            "SUPABASE_REST_URL={}\nSUPABASE_SERVICE_ROLE_KEY={}\nAIMHARDER_BASE_URL={}\n",
            db.rest_url(),
            db.service_key(),
            aim.url()
        ),
    )
    .unwrap();
    let done = run.args(&["status", "--json"]).output().await;
    assert_eq!(done.code, 78, "{}", done.stderr);
    assert!(done.stderr.contains("SUPABASE_URL"), "{}", done.stderr);
    assert_eq!(done.stdout, "");

    // A malformed one in the working directory names its line, not its text.
    let run = BIN.bare();
    std::fs::write(
        run.dir().join(".env"),
        "SUPABASE_URL=http://127.0.0.1:9\nsb_secret_leaked oops\n",
    )
    .unwrap();
    let done = run.args(&["status"]).output().await;
    assert_eq!(done.code, 78, "{}", done.stderr);
    assert!(done.stderr.contains(".env line 2"), "{}", done.stderr);
    assert!(!done.stderr.contains("sb_secret_leaked"), "{}", done.stderr);
}

#[tokio::test]
async fn only_refresh_runs_ping_the_healthcheck_and_status_writes_only_its_schedule() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    let hc = Recorder::start().await;
    for args in [
        &["status"][..],
        &["status", "--check"][..],
        &["refresh-all", "--dry-run"][..],
    ] {
        let run = BIN.run(&db, &aim);
        let metrics = run.dir().join("metrics.prom");
        let done = run
            .env("AIMHARDER_HEALTHCHECK_URL", &hc.url())
            .env("AIMHARDER_METRICS_FILE", metrics.to_str().unwrap())
            .args(args)
            .output()
            .await;
        assert_eq!(done.code, 0, "{args:?}: {}", done.stderr);
        let metrics = done.dir.path().join("metrics.prom");
        if args[0] == "status" {
            // Only the figures of the schedule it checked, as its own.
            let text = std::fs::read_to_string(&metrics).unwrap();
            let names: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split('{').next().unwrap())
                .collect();
            assert_eq!(
                names,
                [
                    "aimharder_refresh_schedule_capacity_per_hour",
                    "aimharder_refresh_schedule_needed_per_hour"
                ],
                "{text}"
            );
            assert!(text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.contains("{command=\"status\"}")));
        } else {
            assert!(!metrics.exists(), "{args:?} wrote the metrics file");
        }
        assert!(hc.requests().is_empty(), "{args:?} pinged the healthcheck");
    }
    // A refresh run does both.
    let run = BIN.run(&db, &aim);
    let metrics = run.dir().join("metrics.prom");
    let done = run
        .env("AIMHARDER_HEALTHCHECK_URL", &hc.url())
        .env("AIMHARDER_METRICS_FILE", metrics.to_str().unwrap())
        .args(&["refresh-all", "--rate", "0"])
        .output()
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.dir.path().join("metrics.prom").exists());
    assert_eq!(hc.requests().len(), 2);
}

#[tokio::test]
async fn a_session_created_a_minute_ago_is_not_stale() {
    let (db, aim) = stack().await;
    Seed::new("new@example.com", "1|1|new")
        .never_refreshed("now() - interval '1 minute'")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check", "--json"])
        .output()
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.json()["stale"], 0);
    assert_eq!(done.json()["never_refreshed"], 1);

    // Created two days ago and never refreshed: stale by the same key.
    Seed::new("old@example.com", "2|1|old")
        .never_refreshed("now() - interval '2 days'")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check", "--json"])
        .output()
        .await;
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert_eq!(done.json()["stale"], 1);
}

#[tokio::test]
async fn out_of_range_values_are_usage_errors_not_panics() {
    for args in [
        &["refresh-all", "--rate", "1e-30"][..],
        &["refresh-all", "--rate", "20000"][..],
        &["refresh-all", "--max-duration", "500000000000y"][..],
        &["refresh-all", "--older-than", "20000y"][..],
        &["refresh-all", "--retry-errors-after", "367d"][..],
        &[
            "refresh-one",
            "--id",
            "0a1b2c3d-0000-4000-8000-00000000abcd",
            "--if-older-than",
            "400d",
        ][..],
        &["status", "--stale-after", "20000y"][..],
    ] {
        let done = BIN.bare().args(args).output().await;
        assert_eq!(done.code, 64, "{args:?}: {}", done.stderr);
        assert!(
            !done.stderr.contains("panicked"),
            "{args:?}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "");
    }
}

#[tokio::test]
async fn an_unrecorded_result_wins_over_the_deadline() {
    let db = aimharder_testkit::stack::TestDb::new().await;
    db.apply_migrations();
    let aim = FakeAimHarder::with_latency(Duration::from_millis(300)).await;
    let proxy = FaultProxy::start(&db.rest_url()).await;
    // Plain 500s are not retried: each write fails at once.
    proxy.fail("rpc/refresh_write", 0, usize::MAX, Fault::Status(500));
    let ids: Vec<String> = (0..20)
        .map(|i| Seed::new(&format!("u{i}@example.com"), &format!("{i}|1|x")).insert(&db))
        .collect();
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .args(&[
            "refresh-all",
            "--json",
            "--rate",
            "0",
            "--concurrency",
            "1",
            "--max-duration",
            "1s",
        ])
        .output()
        .await;
    let doc = done.json();
    assert!(doc["unrecorded"].as_u64().unwrap() >= 1, "{doc}");
    // The writes failing stop the run before its deadline: 69 naming
    // Supabase wins over 75.
    assert!(
        doc["stopped"].as_str().unwrap().contains("Supabase"),
        "{doc}"
    );
    assert_eq!(done.code, 69, "{}", done.stderr);
    let untouched = ids
        .iter()
        .filter(|id| row(&db, id)["refresh_count"] == 3)
        .count();
    assert_eq!(untouched, 20, "no write got through the proxy");
}
