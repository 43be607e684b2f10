//! Claims and the due order (issue 10): one caller per session, the
//! member's login winning over a call made with old credentials, oldest
//! first by one key, and `--force` calling each session once.

use std::time::Duration;

use aimharder_testkit::aimharder::{rotated, Reply};
use aimharder_testkit::seed::{self, row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::{stack, stack_with_latency};

use crate::BIN;

const NEW_COOKIES: &str =
    r#"[{"name":"PHPSESSID","value":"php-fresh"},{"name":"amhrdrauth","value":"auth-fresh"}]"#;

/// The web app storing a new login for `id` (what the member logging in
/// again does), as SQL run from inside the simulated AimHarder's answer.
fn login_hook(db: &TestDb, id: &str) -> aimharder_testkit::aimharder::Hook {
    db.sql_hook(&format!(
        "UPDATE auth_sessions SET aimharder_token = '9|2|fresh', \
         aimharder_cookies = '{NEW_COOKIES}'::jsonb WHERE id = '{id}'"
    ))
}

#[tokio::test]
async fn force_calls_each_session_once_however_many_pages() {
    let (db, aim) = stack().await;
    seed::due_in_bulk(&db, 1_100, "bulk");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--force", "--concurrency", "16"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 1_100);
    assert_eq!(aim.seen().len(), 1_100, "one call per session");
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1"),
        "1100"
    );
}

#[tokio::test]
async fn two_runners_at_once_call_each_session_once() {
    let (db, aim) = stack_with_latency(Duration::from_millis(5)).await;
    seed::due_in_bulk(&db, 320, "bulk");
    // token-update: every call rotates the token, so a second call for a
    // session would be made with a dead token, and a result dropped would
    // leave a dead token stored; the simulated AimHarder tells both.
    let run = || {
        BIN.run(&db, &aim)
            .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
            .refresh_all_json()
            .args(&["--older-than", "6h", "--concurrency", "8"])
    };
    let (a, b) = tokio::join!(run().succeeds().output(), run().succeeds().output());
    let refreshed =
        a.json()["refreshed"].as_u64().unwrap() + b.json()["refreshed"].as_u64().unwrap();
    let not_refreshed: Vec<serde_json::Value> = [&a, &b]
        .iter()
        .flat_map(|d| d.json()["sessions"].as_array().unwrap().clone())
        .filter(|s| s["outcome"] != "refreshed")
        .collect();
    assert_eq!(
        refreshed,
        320,
        "the two runs shared the work; not refreshed: {not_refreshed:?}; calls {}",
        aim.seen().len()
    );
    assert_eq!(
        aim.seen().len(),
        320,
        "exactly one AimHarder call per session"
    );
    assert_eq!(aim.stale_token_calls(), 0, "no call with a replaced token");
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1"),
        "320"
    );
    let stored_rotated = db.sql(&format!(
        "SELECT count(*) FROM auth_sessions WHERE aimharder_token IN ({})",
        (1..=320)
            .map(|g| format!("'{}'", rotated(&format!("{g}|1|bulk"))))
            .collect::<Vec<_>>()
            .join(",")
    ));
    assert_eq!(stored_rotated, "320", "every rotated token stored");
}

#[tokio::test]
async fn a_new_login_during_the_call_wins_over_its_result() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|old").insert(&db);
    // AimHarder answers (with a rotated token and a cookie) only after the
    // member logged in again through the web app.
    aim.script(
        "1|1|old",
        vec![Reply::Then(
            login_hook(&db, &id),
            Box::new(Reply::rotate("1|3|rotated-old")),
        )],
    );
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    let s = done.session(&id);
    assert_eq!(s["outcome"], "skipped", "{s}");
    assert!(
        s["error"].as_str().unwrap().contains("changed meanwhile"),
        "{s}"
    );
    let r = row(&db, &id);
    assert_eq!(r["aimharder_token"], "9|2|fresh", "the new login stays");
    assert_eq!(
        r["aimharder_cookies"],
        serde_json::from_str::<serde_json::Value>(NEW_COOKIES).unwrap()
    );
    assert_eq!(r["refresh_count"], 3, "the result was dropped");
}

#[tokio::test]
async fn an_expired_answer_for_the_old_token_never_disables_a_new_login() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|old").insert(&db);
    aim.script(
        "1|1|old",
        vec![Reply::Then(
            login_hook(&db, &id),
            Box::new(Reply::LoginPage),
        )],
    );
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.session(&id)["outcome"], "skipped");
    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], true, "{r}");
    assert_eq!(r["last_refresh_error"], serde_json::Value::Null);
    assert_eq!(r["aimharder_token"], "9|2|fresh");
}

#[tokio::test]
async fn oldest_first_by_one_key() {
    let (db, aim) = stack().await;
    let old = Seed::new("old@example.com", "1|1|old")
        .refreshed("now() - interval '80 days'")
        .insert(&db);
    Seed::new("new@example.com", "2|1|new")
        .never_refreshed("now() - interval '1 day'")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--limit", "1"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 1);
    assert_eq!(
        aim.calls_for("1|1|old"),
        1,
        "refreshed 80 days ago goes first"
    );
    assert_eq!(aim.calls_for("2|1|new"), 0);
    assert_eq!(row(&db, &old)["refresh_count"], 4);
}

#[tokio::test]
async fn rows_with_no_date_at_all_are_refreshed_once() {
    let (db, aim) = stack().await;
    db.sql("ALTER TABLE auth_sessions ALTER COLUMN created_at DROP NOT NULL");
    let undated: Vec<String> = (0..3)
        .map(|i| {
            Seed::new(&format!("u{i}@example.com"), &format!("{i}|1|undated"))
                .never_refreshed("NULL")
                .insert(&db)
        })
        .collect();
    let dated = Seed::new("d@example.com", "7|1|dated").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 4);
    for id in undated.iter().chain([&dated]) {
        assert_eq!(row(&db, id)["refresh_count"], 4, "{id}");
    }
    assert_eq!(aim.seen().len(), 4);
}

#[tokio::test]
async fn a_session_another_run_holds_is_not_called() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|held").insert(&db);
    // Another runner's live claim.
    db.sql(&format!(
        "INSERT INTO refresh_claims (session_id, run_id, lease_until, credentials) \
         VALUES ('{id}', gen_random_uuid(), now() + interval '10 minutes', 'x')"
    ));
    let before = row(&db, &id);
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&id)
        .exits(75)
        .output()
        .await;
    // Not refreshed, still to be: `refresh-one && book` can tell.
    assert_eq!(done.json()["outcome"], "skipped");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 0);
    assert!(aim.seen().is_empty(), "nobody called AimHarder for it");

    assert_eq!(row(&db, &id), before, "claiming wrote nothing to the row");
    // A lapsed claim (its runner died) is taken over.
    db.sql(&format!(
        "UPDATE refresh_claims SET lease_until = now() - interval '1 second' WHERE session_id = '{id}'"
    ));
    let done = BIN.run(&db, &aim).refresh_one_json(&id).output().await;
    assert_eq!(done.json()["outcome"], "refreshed", "{}", done.stderr);
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM refresh_claims WHERE session_id = '{id}' AND lease_until > now()"
        )),
        "0",
        "released"
    );
}
