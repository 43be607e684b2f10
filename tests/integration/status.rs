//! `status`: counts computed by the server, the session list, `--check`.

use aimharder_testkit::seed::Seed;
use aimharder_testkit::start::stack;

use crate::BIN;

#[tokio::test]
async fn counts_every_state() {
    let (db, aim) = stack().await;
    Seed::new("fresh@example.com", "1|1766731601|a")
        .refreshed("now() - interval '1 hour'")
        .insert(&db);
    Seed::new("stale@example.com", "2|1|b")
        .refreshed("now() - interval '2 days'")
        .insert(&db);
    Seed::new("never@example.com", "3|1|c")
        .never_refreshed("now() - interval '1 day'")
        .insert(&db);
    Seed::new("err@example.com", "4|1|d")
        .error("[2020-01-01T00:00:00Z] blocked")
        .insert(&db);
    Seed::new("off@example.com", "5|1|e").disabled().insert(&db);

    let done = BIN.run(&db, &aim).status_json().succeeds().output().await;
    let doc = done.json();
    assert_eq!(doc["total"], 5, "{doc}");
    assert_eq!(doc["auto_refresh_enabled"], 4);
    assert_eq!(
        doc["fresh"], 2,
        "fresh and err (7h ago) are within 24h: {doc}"
    );
    assert_eq!(doc["stale"], 2);
    assert_eq!(doc["never_refreshed"], 1);
    assert_eq!(doc["with_errors"], 1);
    assert_eq!(doc["due"], 3, "stale, never, and err (old error): {doc}");
    assert!(doc.get("sessions").is_none());
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn sessions_lists_masked_emails_and_token_expiry() {
    let (db, aim) = stack().await;
    let id = Seed::new("john@example.com", "69232|1766731601|hash").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--sessions", "--json"])
        .succeeds()
        .output()
        .await;
    assert_eq!(
        done.json()["schedule"]["keeps_up"],
        true,
        "the counts' head carries the schedule: {}",
        done.stdout
    );
    let line = &done.json()["sessions"][0];
    assert_eq!(line["id"], id.as_str());
    assert_eq!(line["email"], "j***@example.com");
    assert_eq!(line["refresh_count"], 3);
    assert_eq!(line["token_expires_at"], "2025-12-26T06:46:41Z");
    assert!(
        !done.stdout.contains("69232|"),
        "token leaked: {}",
        done.stdout
    );

    let shown = BIN
        .run(&db, &aim)
        .args(&["status", "--sessions", "--show-emails"])
        .output()
        .await;
    assert!(
        shown.stdout.contains("john@example.com"),
        "{}",
        shown.stdout
    );
}

#[tokio::test]
async fn check_exits_1_only_when_an_enabled_session_is_stale_or_failing() {
    let (db, aim) = stack().await;
    Seed::new("fresh@example.com", "1|1|a")
        .refreshed("now() - interval '1 hour'")
        .insert(&db);
    Seed::new("off@example.com", "2|1|b")
        .disabled()
        .refreshed("now() - interval '9 days'")
        .insert(&db);
    BIN.run(&db, &aim)
        .args(&["status", "--check"])
        .succeeds()
        .output()
        .await;

    let id = Seed::new("err@example.com", "3|1|c")
        .refreshed("now()")
        .insert(&db);
    db.sql(&format!(
        "UPDATE auth_sessions SET last_refresh_error = 'x' WHERE id = '{id}'"
    ));
    BIN.run(&db, &aim)
        .args(&["status", "--check"])
        .exits(1)
        .output()
        .await;

    db.sql(&format!(
        "UPDATE auth_sessions SET last_refresh_error = NULL WHERE id = '{id}'"
    ));
    Seed::new("stale@example.com", "4|1|d")
        .refreshed("now() - interval '3 days'")
        .insert(&db);
    BIN.run(&db, &aim)
        .args(&["status", "--check"])
        .exits(1)
        .output()
        .await;
    BIN.run(&db, &aim)
        .args(&["status", "--check", "--stale-after", "4d"])
        .succeeds()
        .output()
        .await;
}

/// Four enabled sessions (and one disabled), all refreshed an hour ago:
/// nothing stale, nothing failing, so only the schedule decides `--check`.
fn four_enabled(db: &aimharder_testkit::stack::TestDb) {
    for n in 1..=4 {
        Seed::new(&format!("s{n}@example.com"), &format!("{n}|1|s"))
            .refreshed("now() - interval '1 hour'")
            .insert(db);
    }
    Seed::new("off@example.com", "9|1|s").disabled().insert(db);
}

#[tokio::test]
async fn the_schedule_keeps_up_or_says_what_to_change_and_check_follows() {
    let (db, aim) = stack().await;
    four_enabled(&db);
    let status = |args: &[&str]| {
        BIN.run(&db, &aim)
            .args(&["status", "--older-than", "20m"])
            .args(args)
    };
    // 4 sessions every 20m: 12 calls an hour. --rate 0.01 makes 36.
    let fits = status(&["--json", "--rate", "0.01"])
        .succeeds()
        .output()
        .await;
    assert_eq!(
        fits.json()["schedule"],
        serde_json::json!({"needed_per_hour": 12, "capacity_per_hour": 36, "keeps_up": true})
    );
    let checked = status(&["--check", "--rate", "0.01"])
        .succeeds()
        .output()
        .await;
    assert!(
        checked.stdout.contains(
            "schedule: 12 keep-alives an hour needed (4 sessions every 20m), one runner at --rate 0.01 makes 36: it keeps up"
        ),
        "{}",
        checked.stdout
    );

    // --rate 0.003 makes 10.
    // No --check, no verdict.
    let short = status(&["--json", "--rate", "0.003"])
        .succeeds()
        .output()
        .await;
    assert_eq!(
        short.json()["schedule"],
        serde_json::json!({"needed_per_hour": 12, "capacity_per_hour": 10, "keeps_up": false})
    );
    let checked = status(&["--check", "--rate", "0.003"])
        .exits(1)
        .output()
        .await;
    assert!(
        checked.stdout.contains(
            "schedule: 12 keep-alives an hour needed (4 sessions every 20m), one runner at --rate 0.003 makes 10: \
             it cannot keep up; raise --rate to 0.004, shard across 2 runners (--shard I/2), or lengthen --older-than to 24m"
        ),
        "{}",
        checked.stdout
    );
    // Each count names its window: all four fresh over 24h, and due over 20m.
    assert!(
        checked.stdout.contains(
            "5 sessions: 4 auto-refresh enabled, 4 fresh (refreshed within 24h), 0 stale (not within 24h), \
             0 never refreshed, 0 with errors, 4 due now (older than 20m)"
        ),
        "{}",
        checked.stdout
    );
    // Each remedy alone fits.
    for fix in [
        &["--rate", "0.004", "--older-than", "20m"][..],
        &["--rate", "0.003", "--older-than", "24m"][..],
    ] {
        BIN.run(&db, &aim)
            .args(&["status", "--check"])
            .args(fix)
            .succeeds()
            .output()
            .await;
    }
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn the_due_window_defaults_by_endpoint_as_refresh_all_s() {
    let (db, aim) = stack().await;
    four_enabled(&db);
    let schedule = |args: &[&str]| {
        let run = BIN.run(&db, &aim).args(args).status_json();
        async move {
            let done = run.succeeds().output().await;
            let doc = done.json();
            (doc["schedule"].clone(), doc["due"].clone())
        }
    };
    // setrefresh: every 6h, so 4 sessions need 1 call an hour (rounded
    // up); refreshed an hour ago, none is due.
    let (figures, due) = schedule(&[]).await;
    assert_eq!(
        figures,
        serde_json::json!({"needed_per_hour": 1, "capacity_per_hour": 7200, "keeps_up": true})
    );
    assert_eq!(due, 0);
    // token-update: every 20m; all four are due.
    let (figures, due) = schedule(&["--endpoint", "token-update"]).await;
    assert_eq!(figures["needed_per_hour"], 12, "{figures}");
    assert_eq!(due, 4);
}

#[tokio::test]
async fn with_rate_0_there_is_no_capacity_and_the_schedule_keeps_up() {
    let (db, aim) = stack().await;
    four_enabled(&db);
    let json = BIN
        .run(&db, &aim)
        .args(&[
            "status",
            "--json",
            "--check",
            "--rate",
            "0",
            "--older-than",
            "1s",
        ])
        .succeeds()
        .output()
        .await;
    assert_eq!(
        json.json()["schedule"],
        serde_json::json!({"needed_per_hour": 14400, "capacity_per_hour": null, "keeps_up": true})
    );
    let text = BIN
        .run(&db, &aim)
        .args(&["status", "--rate", "0", "--older-than", "1s"])
        .output()
        .await;
    assert!(
        text.stdout.contains(
            "schedule: 14,400 keep-alives an hour needed (4 sessions every 1s); --rate 0 sets no limit"
        ),
        "{}",
        text.stdout
    );
}

#[tokio::test]
async fn refresh_all_writes_its_schedule_figures_its_shard_s_share() {
    let (db, aim) = stack().await;
    // Refreshed just now: none is due, so the slow pace calls nothing.
    for n in 1..=4 {
        Seed::new(&format!("s{n}@example.com"), &format!("{n}|1|s"))
            .refreshed("now()")
            .insert(&db);
    }
    Seed::new("off@example.com", "9|1|s").disabled().insert(&db);
    let run = BIN.run(&db, &aim);
    let file = run.dir().join("m.prom");
    let done = run
        .env("AIMHARDER_METRICS_FILE", file.to_str().unwrap())
        .args(&["refresh-all", "--older-than", "20m", "--rate", "0.003"])
        .succeeds()
        .output()
        .await;
    let text = std::fs::read_to_string(done.dir.path().join("m.prom")).unwrap();
    for line in [
        "aimharder_refresh_schedule_needed_per_hour{command=\"refresh-all\"} 12",
        "aimharder_refresh_schedule_capacity_per_hour{command=\"refresh-all\"} 10",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    // One of two shards needs half the table's calls; no limit, no capacity.
    let run = BIN.run(&db, &aim);
    let file = run.dir().join("m.prom");
    let done = run
        .env("AIMHARDER_METRICS_FILE", file.to_str().unwrap())
        .refresh_all()
        .args(&["--older-than", "20m", "--shard", "1/2"])
        .succeeds()
        .output()
        .await;
    let text = std::fs::read_to_string(done.dir.path().join("m.prom")).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "aimharder_refresh_schedule_needed_per_hour{command=\"refresh-all\"} 6"),
        "{text}"
    );
    assert!(!text.contains("capacity_per_hour"), "{text}");
    assert!(aim.seen().is_empty());
}

/// `status --sessions | head -1`: the reader closing stdout is no failure.
#[tokio::test]
async fn a_reader_that_closes_stdout_early_is_no_failure() {
    let (db, aim) = stack().await;
    db.sql(
        "INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, created_at, refresh_count) \
         SELECT 'p' || g || '@example.com', g || '|1|pipe', '[]', now() - interval '1 day', 0 \
         FROM generate_series(1, 5000) g",
    );
    let mut running = BIN
        .run(&db, &aim)
        .args(&["status", "--sessions"])
        .succeeds()
        .spawn();
    // Far more than a pipe holds is still to come: its writes meet the
    // closed pipe.
    running.close_stdout();
    let done = running.finish().await;
    assert!(!done.stderr.contains("error"), "{}", done.stderr);
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
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["stale"], 0);
    assert_eq!(done.json()["never_refreshed"], 1);

    // Created two days ago and never refreshed: stale by the same key.
    Seed::new("old@example.com", "2|1|old")
        .never_refreshed("now() - interval '2 days'")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check", "--json"])
        .exits(1)
        .output()
        .await;
    assert_eq!(done.json()["stale"], 1);
}
