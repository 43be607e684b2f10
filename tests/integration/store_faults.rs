//! Supabase misbehaving: failed reads and writes, rows deleted or changed
//! under the tool, two runners and a third writer on the same table, and
//! values the table cannot hold. Nothing is ever lost silently.

use std::collections::HashMap;
use std::time::Duration;

use aimharder_testkit::aimharder::{FakeAimHarder, Reply};
use aimharder_testkit::proxy::{Fault, FaultProxy};
use aimharder_testkit::seed::{self, row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::{stack, stack_with_latency};

use crate::BIN;

async fn behind_proxy() -> (TestDb, FakeAimHarder, FaultProxy) {
    let (db, aim) = stack().await;
    let proxy = FaultProxy::start(&db.rest_url()).await;
    (db, aim, proxy)
}

#[tokio::test]
async fn a_read_that_fails_once_is_retried() {
    let (db, aim, proxy) = behind_proxy().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    proxy.fail("GET", 0, 1, Fault::Status(503));
    proxy.fail("GET", 1, 1, Fault::Drop);
    BIN.run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(proxy.injected(), 2);
    assert_eq!(row(&db, &id)["refresh_count"], 4);
}

#[tokio::test]
async fn reads_failing_mid_run_exit_69_after_reporting_what_was_done() {
    let (db, aim, proxy) = behind_proxy().await;
    seed::due_in_bulk(&db, 1500, "bulk");
    // The first page of each walk goes through (the two of never refreshed
    // sessions are empty, the refreshed ones' holds 1,000 rows); every
    // later read fails.
    proxy.fail("GET", 3, usize::MAX, Fault::Status(502));
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .refresh_all_json()
        .args(&["--concurrency", "8"])
        .exits(69)
        .output()
        .await;
    assert!(done.stderr.contains("unreachable"), "{}", done.stderr);
    let doc = done.json();
    assert_eq!(
        doc["refreshed"], 1000,
        "the first page was refreshed and reported"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1"),
        "1000"
    );
    assert_eq!(aim.seen().len(), 1000);
}

#[tokio::test]
async fn a_write_failing_once_is_retried() {
    let (db, aim, proxy) = behind_proxy().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    proxy.fail("rpc/refresh_write", 0, 1, Fault::Status(503));
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.session(&id)["outcome"], "refreshed");
    assert_eq!(proxy.count("rpc/refresh_write"), 2);
    assert_eq!(row(&db, &id)["refresh_count"], 4);
}

#[tokio::test]
async fn a_refresh_whose_write_keeps_failing_is_unrecorded_and_fails_the_run() {
    let (db, aim, proxy) = behind_proxy().await;
    let lost = Seed::new("a@example.com", "1|1|a").insert(&db);
    let before = row(&db, &lost);
    proxy.fail("rpc/refresh_write", 0, usize::MAX, Fault::Status(500));
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .refresh_all_json()
        .exits(69)
        .output()
        .await;
    // Supabase stopped taking writes: the run stops, exit 69 naming it.
    assert!(
        done.stderr.contains("Supabase stopped taking writes"),
        "{}",
        done.stderr
    );
    let s = done.session(&lost);
    assert_eq!(s["outcome"], "unrecorded", "{s}");
    assert!(s["error"].as_str().unwrap().contains("not recorded"));
    assert_eq!(done.json()["unrecorded"], 1);
    assert_eq!(done.json()["refreshed"], 0, "never reported as refreshed");
    // Only the claim is held (in the tool's own table, where it lapses with
    // its lease): the row did not move at all, not even its updated_at.
    assert_eq!(row(&db, &lost), before, "nothing half-written");
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM refresh_claims WHERE session_id = '{lost}'"
        )),
        "1",
        "held until it lapses: no other run calls it with the old token meanwhile"
    );
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_not_counted_twice() {
    let (db, aim, proxy) = behind_proxy().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    proxy.fail("rpc/refresh_write", 0, 1, Fault::Lost);
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .refresh_one_json(&id)
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["outcome"], "refreshed");
    assert_eq!(proxy.injected(), 1);
    assert_eq!(row(&db, &id)["refresh_count"], 4, "applied once, not twice");
}

#[tokio::test]
async fn a_row_deleted_between_read_and_write_is_reported_not_recreated() {
    let (db, aim) = stack().await;
    let gone = Seed::new("a@example.com", "1|1|gone").insert(&db);
    let other = Seed::new("b@example.com", "2|1|other").insert(&db);
    let delete = db.sql_hook(&format!("DELETE FROM auth_sessions WHERE id = '{gone}'"));
    aim.script("1|1|gone", vec![Reply::Then(delete, Box::new(Reply::ok()))]);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    let s = done.session(&gone);
    assert_eq!(s["outcome"], "skipped");
    assert!(s["error"].as_str().unwrap().contains("deleted"), "{s}");
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM auth_sessions WHERE id = '{gone}'"
        )),
        "0"
    );
    assert_eq!(row(&db, &other)["refresh_count"], 4);
}

#[tokio::test]
async fn a_rotated_fingerprint_too_long_for_the_column_fails_that_row_only() {
    let (db, aim) = stack().await;
    db.sql("ALTER TABLE auth_sessions ALTER COLUMN fingerprint TYPE varchar(64)");
    db.restart_rest();
    let long = Seed::new("a@example.com", "1|1|long")
        .fingerprint("short")
        .insert(&db);
    let fine = Seed::new("b@example.com", "2|1|fine").insert(&db);
    aim.script(
        "1|1|long",
        vec![Reply::Refresh {
            token: Some("1|2|rotated".into()),
            fingerprint: Some("f".repeat(100)),
            set_cookies: vec![],
        }],
    );
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    assert_eq!(done.session(&long)["outcome"], "failed");
    let err = row(&db, &long)["last_refresh_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("could not be stored"), "{err}");
    assert_eq!(row(&db, &long)["fingerprint"], "short");
    // The refused write still stores the rotated token, alone.
    assert_eq!(row(&db, &long)["aimharder_token"], "1|2|rotated");
    assert_eq!(row(&db, &fine)["refresh_count"], 4);
}

#[tokio::test]
async fn a_rotated_token_supabase_refuses_even_alone_goes_to_the_journal() {
    let (db, aim) = stack().await;
    // A rule the database keeps that the new token breaks.
    db.sql(
        "ALTER TABLE auth_sessions ADD CONSTRAINT short_tokens CHECK (length(aimharder_token) <= 24)",
    );
    let id = Seed::new("a@example.com", "1|1|short").insert(&db);
    let rotated = "1|2|a-rotated-token-longer-than-the-column";
    aim.script("1|1|short", vec![Reply::rotate(rotated)]);
    let state = tempfile::tempdir().unwrap();
    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_STATE_DIR", state.path().to_str().unwrap())
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    let s = done.session(&id);
    assert!(
        s["error"].as_str().unwrap().contains("kept in the journal"),
        "{s}"
    );
    let journaled: String = std::fs::read_dir(state.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        journaled.contains(rotated),
        "the rotated token is journaled"
    );
}

#[tokio::test]
async fn two_runners_and_a_third_writer_lose_no_increment() {
    let (db, aim) = stack_with_latency(Duration::from_millis(20)).await;
    let ids: Vec<String> = (0..40)
        .map(|i| {
            Seed::new(&format!("r{i}@example.com"), &format!("{i}|1|race"))
                .count(0)
                .insert(&db)
        })
        .collect();
    let runner = || {
        BIN.run(&db, &aim)
            .refresh_all_json()
            .args(&["--force", "--concurrency", "4"])
            .output()
    };
    let bumps = {
        let hooks: Vec<_> = ids
            .iter()
            .map(|id| {
                db.sql_hook(&format!(
                    "UPDATE auth_sessions SET refresh_count = refresh_count + 1 WHERE id = '{id}'"
                ))
            })
            .collect();
        tokio::task::spawn_blocking(move || {
            for round in 0..3 {
                for (i, bump) in hooks.iter().enumerate() {
                    if (i + round) % 2 == 0 {
                        bump();
                    }
                }
            }
        })
    };
    let (a, b, bumped) = tokio::join!(runner(), runner(), bumps);
    bumped.unwrap();
    let mut reported: HashMap<String, u64> = HashMap::new();
    for done in [&a, &b] {
        for s in done.json()["sessions"].as_array().unwrap() {
            if s["outcome"] == "refreshed" {
                *reported
                    .entry(s["id"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let third = (0..3).filter(|round| (i + round) % 2 == 0).count() as u64;
        let expected = reported.get(id).copied().unwrap_or(0) + third;
        assert_eq!(row(&db, id)["refresh_count"], expected, "row {i}");
    }
    assert!(
        reported.values().sum::<u64>() >= 40,
        "every row refreshed at least once"
    );
}
