//! Signals and what no input may do: every command hears SIGINT and
//! SIGTERM (`refresh-one` finishes its call and its write, `probe` ends its
//! document whole), a second signal ends any run within 2 s whatever
//! Supabase does, and an absurd `Retry-After` is survived.

use std::time::{Duration, Instant};

use serde_json::Value;

use aimharder_testkit::aimharder::{Reply, WHOAMI};
use aimharder_testkit::seed::{self, row, Seed};
use aimharder_testkit::start::gateway_stack;
use aimharder_testkit::start::stack;

use crate::journal::{answer, seed_journal};
use crate::BIN;

#[tokio::test]
async fn a_sigterm_during_refresh_ones_slow_token_update_still_stores_the_rotated_token() {
    let (db, aim) = stack().await;
    let old = "69232|1766731601|slow";
    let new = "69232|1766818001|new";
    let id = Seed::new("a@example.com", old).insert(&db);
    aim.script(
        old,
        vec![Reply::Delay(
            Duration::from_secs(2),
            Box::new(Reply::rotate(new)),
        )],
    );
    let running = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_one_json(&id)
        .succeeds()
        .spawn();
    aim.wait_for_requests(1).await;
    running.signal(libc::SIGTERM);
    let done = running.finish().await;
    assert_eq!(done.json()["outcome"], "refreshed", "{}", done.stdout);
    assert!(
        done.stderr.contains("finishing requests in flight"),
        "{}",
        done.stderr
    );
    assert_eq!(
        row(&db, &id)["aimharder_token"],
        new,
        "the rotation is kept"
    );
}

#[tokio::test]
async fn two_signals_end_a_run_within_2_s_while_supabase_fails_and_answers_are_journaled() {
    let (db, aim, gw) = gateway_stack().await;
    let ids: Vec<String> = (0..6)
        .map(|i| {
            Seed::new(&format!("s{i}@example.com"), &format!("{i}|1766731601|sig")).insert(&db)
        })
        .collect();
    // Writes fail (and are retried for up to 30 s) from the start.
    gw.fail_method("rpc/refresh_write", usize::MAX);
    let run = BIN.via_gateway(&gw, &aim);
    let state = run.dir().join("state");
    let running = run
        .env("AIMHARDER_STATE_DIR", state.to_str().unwrap())
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_all_json()
        .args(&["--concurrency", "2"])
        // Refreshed and not recorded: a problem, which wins over
        // "interrupted".
        .exits(1)
        .spawn();
    aim.wait_for_requests(6).await;
    running.signal(libc::SIGTERM);
    running.wait_for_log("starting nothing new").await;
    let second = Instant::now();
    running.signal(libc::SIGTERM);
    let done = running.finish().await;
    let took = second.elapsed();
    // 2 s is the promise; the margin is for a loaded test machine only.
    assert!(
        took < Duration::from_secs(3),
        "ended {took:?} after the second signal"
    );
    let doc: Value = serde_json::from_str(&done.stdout).expect("one whole JSON document");
    assert_eq!(doc["unrecorded"], 6, "{doc}");
    // Every rotated token AimHarder handed out is in the journal.
    let journal: String = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    for i in 0..6 {
        let rotated = aimharder_testkit::aimharder::rotated(&format!("{i}|1766731601|sig"));
        assert!(journal.contains(&rotated), "{rotated} not journaled");
    }
    for id in &ids {
        assert_eq!(row(&db, id)["refresh_count"], 3, "nothing written");
    }
}

#[tokio::test]
async fn an_absurd_retry_after_from_supabase_is_survived_without_a_panic() {
    let (db, aim, gw) = gateway_stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    gw.outage_after_with_retry_after(0, Duration::from_secs(3600), u64::MAX);
    for args in [
        &["refresh-all", "--json"][..],
        &["status", "--json"][..],
        &["probe", "--all", "--json"][..],
    ] {
        let done = BIN
            .via_gateway(&gw, &aim)
            .args(args)
            .exits(69)
            .output()
            .await;
        assert!(
            !done.stderr.contains("panicked"),
            "{args:?}: {}",
            done.stderr
        );
        assert!(
            done.stderr.contains("Supabase"),
            "{args:?}: {}",
            done.stderr
        );
    }
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn refresh_one_on_a_session_another_run_holds_exits_75() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|held").insert(&db);
    db.sql(&format!(
        "INSERT INTO refresh_claims (session_id, run_id, lease_until, credentials) \
         VALUES ('{id}', gen_random_uuid(), now() + interval '5 minutes', 'another run')"
    ));
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&id)
        .exits(75)
        .output()
        .await;
    let s = done.json();
    assert_eq!(s["outcome"], "skipped");
    assert!(s["error"].as_str().unwrap().contains("another run"), "{s}");
    assert!(aim.seen().is_empty(), "not called");
    // Deleted meanwhile is another matter: not found.
    db.sql(&format!("DELETE FROM auth_sessions WHERE id = '{id}'"));
    BIN.run(&db, &aim).refresh_one(&id).exits(66).output().await;
}

#[tokio::test]
async fn probe_ends_its_document_whole_on_signals() {
    let (db, aim) = stack().await;
    for i in 0..4 {
        Seed::new(&format!("p{i}@example.com"), &format!("{i}|1|p"))
            .session(&format!("s-p{i}"))
            .insert(&db);
        aim.script(&format!("s-p{i}"), vec![Reply::Hang]);
    }
    let running = BIN
        .run(&db, &aim)
        .probe_all_json()
        .args(&["--request-timeout", "300s"])
        .exits(75)
        .spawn();
    aim.wait_for_requests(2).await;
    running.signal(libc::SIGTERM);
    running.wait_for_log("starting nothing new").await;
    running.signal(libc::SIGINT);
    let done = running.finish().await;
    let doc: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("not one whole document ({e}): {}", done.stdout));
    assert!(doc.is_object(), "{doc}");
    assert!(aim.seen().iter().all(|s| s.path == WHOAMI));
}

#[tokio::test]
async fn a_dry_run_honours_a_stop() {
    let (db, aim, gw) = gateway_stack().await;
    seed::due_in_bulk(&db, 6000, "dry");
    // Every page of due rows takes a while: the stop comes mid-listing.
    gw.hold_each(Duration::from_millis(300));
    let running = BIN
        .via_gateway(&gw, &aim)
        .args(&["refresh-all", "--dry-run", "--json"])
        .exits(75)
        .spawn();
    // Once the first pages were asked for (a condition polled, not a
    // guessed wait).
    while gw.total() < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.signal(libc::SIGTERM);
    let done = running.finish().await;
    let doc: Value = serde_json::from_str(&done.stdout).unwrap();
    let listed = doc["sessions"].as_array().unwrap().len();
    assert!(listed < 6000, "listed all {listed} after the stop");
    assert!(aim.seen().is_empty());
}

/// `--jitter` waits before any request, AimHarder's and Supabase's (the
/// journal's replay included); a signal then ends the run at once, 75.
#[tokio::test]
async fn a_signal_during_the_jitter_wait_ends_the_run_at_once_with_no_request() {
    let (db, aim, gw) = gateway_stack().await;
    let id = Seed::new("j@example.com", "1|1766731601|jitter").insert(&db);
    let before = row(&db, &id);
    // A result to replay: the first thing a run writes, were it not waiting.
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let journaled = answer(&db, &id, 1, Some("1|1766818001|journaled"));
    seed_journal(&gw, &state, 0o700, &[journaled]);
    let runs: [(&[&str], Option<&str>); 2] = [
        (&["refresh-all", "--jitter", "1h", "--json"], None),
        // From the environment, as a shared env file gives it; a filter
        // (checked against the table by a request) waits too.
        (
            &[
                "probe",
                "--all",
                "--json",
                "--filter",
                "session_type=eq.background",
            ],
            Some("1h"),
        ),
    ];
    for (args, env) in runs {
        let run = BIN
            .via_gateway(&gw, &aim)
            .env("AIMHARDER_STATE_DIR", state.to_str().unwrap());
        let run = match env {
            Some(jitter) => run.env("AIMHARDER_JITTER", jitter),
            None => run,
        };
        let running = run.args(args).exits(75).spawn();
        running.wait_for_log("before the first request").await;
        let signalled = Instant::now();
        running.signal(libc::SIGTERM);
        let done = running.finish().await;
        let took = signalled.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{args:?}: ended {took:?} after the signal"
        );
        assert!(
            done.stderr.contains("during the --jitter wait"),
            "{args:?}: {}",
            done.stderr
        );
        assert_eq!(gw.total(), 0, "{args:?}: Supabase was asked");
        assert!(aim.seen().is_empty(), "{args:?}: AimHarder was asked");
    }
    assert_eq!(row(&db, &id), before, "the journal was not replayed");
}
