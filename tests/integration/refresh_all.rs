//! `refresh-all` end to end: selection, every outcome of the spec's table,
//! what is written back, and what is left alone.

use serde_json::json;

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::seed::{self, row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::stack;

use crate::BIN;

pub const MIGRATION: &str = "migrations/20261126000000_refresh_tracking.sql";
pub const DEFAULT_FP: &str = "my0pz7di4kr8nuq718uecu4ev23fbosfp20z1q6smntm42ideb";

fn updated_at(db: &TestDb, id: &str) -> String {
    db.sql(&format!(
        "SELECT updated_at FROM auth_sessions WHERE id = '{id}'"
    ))
}

#[tokio::test]
async fn refreshes_due_rows_records_failures_and_leaves_the_rest_untouched() {
    let (db, aim) = stack().await;
    let ok = Seed::new("ok@example.com", "1|1766731601|ok").insert(&db);
    let never = Seed::new("new@example.com", "2|1766731601|never")
        .never_refreshed("now() - interval '7 hours'")
        .insert(&db);
    let blocked = Seed::new("blocked@example.com", "3|1|blocked").insert(&db);
    let redirected = Seed::new("gone@example.com", "4|1|redirected").insert(&db);
    let login = Seed::new("login@example.com", "5|1|login").insert(&db);
    let odd = Seed::new("odd@example.com", "6|1|odd").insert(&db);
    let down = Seed::new("down@example.com", "7|1|down").insert(&db);
    let teapot = Seed::new("teapot@example.com", "8|1|teapot").insert(&db);
    let old_error = Seed::new("old-error@example.com", "9|1|olderr")
        .error("[2020-01-01T00:00:00Z] blocked, HTTP 403")
        .insert(&db);
    let bad_cookies = Seed::new("cookies@example.com", "10|1|badcookies")
        .cookies(r#"{"PHPSESSID":"x"}"#)
        .insert(&db);
    // Not due: each must be left exactly as it is.
    let fresh = Seed::new("fresh@example.com", "11|1|fresh")
        .refreshed("now() - interval '1 hour'")
        .insert(&db);
    let young = Seed::new("young@example.com", "12|1|young")
        .never_refreshed("now() - interval '1 hour'")
        .insert(&db);
    let disabled = Seed::new("off@example.com", "13|1|disabled")
        .disabled()
        .insert(&db);
    let recent_error = Seed::new("recent@example.com", "14|1|recenterr")
        .error(&format!("[{}] blocked, HTTP 403", now_stamp(&db)))
        .insert(&db);
    let untouched: Vec<_> = [&fresh, &young, &disabled, &recent_error]
        .iter()
        .map(|id| (id.to_string(), row(&db, id)))
        .collect();

    aim.script("3|1|blocked", vec![Reply::Status(403)]);
    aim.script(
        "4|1|redirected",
        vec![Reply::Redirect(302, "https://login.aimharder.com/?next=x")],
    );
    aim.script("5|1|login", vec![Reply::LoginPage]);
    aim.script("6|1|odd", vec![Reply::NoScript]);
    aim.script("7|1|down", vec![Reply::Status(503)]);
    aim.script("8|1|teapot", vec![Reply::Status(418)]);
    aim.script(
        "1|1766731601|ok",
        vec![Reply::rotate("1|1774000000|rotated")],
    );

    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["selected"], 10, "{doc}");
    assert_eq!(doc["refreshed"], 3, "{doc}");
    assert_eq!(doc["expired"], 2, "{doc}");
    assert_eq!(doc["failed"], 5, "{doc}");
    assert_eq!(doc["unrecorded"], 0);
    assert_eq!(doc["dry_run"], false);

    // refreshed: count bumped, date set, error cleared, rotated token stored.
    let r = row(&db, &ok);
    assert_eq!(r["refresh_count"], 4);
    assert_eq!(r["aimharder_token"], "1|1774000000|rotated");
    assert!(r["last_refresh_error"].is_null());
    assert_eq!(done.session(&ok)["token_changed"], true);
    assert_eq!(done.session(&ok)["outcome"], "refreshed");
    assert_eq!(row(&db, &never)["refresh_count"], 4);
    assert!(row(&db, &never)["last_refresh_date"].is_string());
    assert!(row(&db, &old_error)["last_refresh_error"].is_null());

    // expired: error recorded and auto refresh off.
    for id in [&redirected, &login] {
        let r = row(&db, id);
        assert_eq!(done.session(id)["outcome"], "expired");
        assert_eq!(r["auto_refresh_enabled"], false);
        assert_eq!(r["refresh_count"], 3);
        assert!(
            r["last_refresh_error"]
                .as_str()
                .unwrap()
                .contains("log in again"),
            "{r}"
        );
    }
    // failed: error recorded, still enabled, count unchanged.
    for (id, words) in [
        (&blocked, "blocked, HTTP 403"),
        (&odd, "unexpected response"),
        (&down, "HTTP 503"),
        (&teapot, "HTTP 418"),
        (&bad_cookies, "not a JSON array"),
    ] {
        let r = row(&db, id);
        let err = r["last_refresh_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"));
        assert!(err.contains(words), "{err}");
        assert!(err.starts_with('['), "errors carry their time: {err}");
        assert_eq!(r["auto_refresh_enabled"], true);
        assert_eq!(r["refresh_count"], 3);
        assert_eq!(done.session(id)["outcome"], "failed");
    }
    // 503 is retried: three attempts, then failed. 403 and 418 are not retried.
    assert_eq!(aim.calls_for("7|1|down"), 3);
    assert_eq!(done.session(&down)["attempts"], 3);
    assert_eq!(aim.calls_for("3|1|blocked"), 1);
    assert_eq!(aim.calls_for("8|1|teapot"), 1);
    assert_eq!(aim.calls_for("10|1|badcookies"), 0);

    for (id, before) in &untouched {
        assert_eq!(&row(&db, id), before, "row {id} must not change");
        assert_eq!(
            aim.calls_for(before["aimharder_token"].as_str().unwrap()),
            0
        );
    }

    // A second run at once: nothing is due, AimHarder is not called.
    let calls = aim.seen().len();
    let again = BIN
        .run(&db, &aim)
        .args(&["refresh-all", "--json"])
        .succeeds()
        .output()
        .await;
    assert_eq!(again.json()["selected"], 0);
    assert_eq!(aim.seen().len(), calls);
}

/// Now, as the tool stamps an error it records.
pub fn now_stamp(db: &TestDb) -> String {
    db.sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

#[tokio::test]
async fn sends_encoded_token_fingerprint_cookies_and_a_browser_user_agent() {
    let (db, aim) = stack().await;
    let with_fp = Seed::new("a@example.com", "69232|1766731601|abc")
        .fingerprint("fp-of-device-a")
        .insert(&db);
    let without_fp = Seed::new("b@example.com", "70000|1766731601|def").insert(&db);
    BIN.run(&db, &aim).refresh_all().succeeds().output().await;

    let seen = aim.seen();
    assert_eq!(seen.len(), 2);
    let a = seen
        .iter()
        .find(|s| s.token == "69232|1766731601|abc")
        .unwrap();
    assert_eq!(a.path, "/setrefresh");
    assert!(
        a.raw_query.contains("token=69232%7C1766731601%7Cabc"),
        "{}",
        a.raw_query
    );
    assert_eq!(a.fingerprint, "fp-of-device-a");
    assert_eq!(
        a.cookie.as_deref(),
        Some("PHPSESSID=php-secret-1; amhrdrauth=auth-secret-1")
    );
    assert!(
        a.user_agent
            .as_deref()
            .unwrap_or("")
            .starts_with("Mozilla/5.0"),
        "{:?}",
        a.user_agent
    );
    let b = seen
        .iter()
        .find(|s| s.token == "70000|1766731601|def")
        .unwrap();
    assert_eq!(b.fingerprint, DEFAULT_FP);
    assert_eq!(row(&db, &with_fp)["refresh_count"], 4);
    assert_eq!(row(&db, &without_fp)["refresh_count"], 4);
}

#[tokio::test]
async fn set_cookie_is_merged_by_name_and_written_only_when_changed() {
    let (db, aim) = stack().await;
    // The simulated AimHarder's host is 127.0.0.1.
    let stored = r#"[{"name":"AWSALB","value":"alb-old","domain":"127.0.0.1"},
                     {"name":"AWSALBCORS","value":"cors-old"},
                     {"name":"PHPSESSID","value":"php-keep"},
                     {"name":"tracking","value":"bye"}]"#;
    let rotated = Seed::new("a@example.com", "1|1|rot")
        .cookies(stored)
        .insert(&db);
    let same = Seed::new("b@example.com", "2|1|same")
        .cookies(stored)
        .insert(&db);
    aim.script(
        "1|1|rot",
        vec![Reply::with_cookies(&[
            "AWSALB=alb-new; Expires=Thu, 03 Dec 2099 15:00:00 GMT; Path=/",
            "AWSALBCORS=cors-new; Expires=Thu, 03 Dec 2099 15:00:00 GMT; Path=/; SameSite=None; Secure",
            "fresh=hello; Path=/",
            "tracking=; Max-Age=0; Path=/",
        ])],
    );
    aim.script(
        "2|1|same",
        vec![Reply::with_cookies(&["PHPSESSID=php-keep; Path=/"])],
    );
    let same_before = db.sql(&format!(
        "SELECT aimharder_cookies::text FROM auth_sessions WHERE id = '{same}'"
    ));

    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.session(&rotated)["cookies_changed"], true);
    assert_eq!(done.session(&same)["cookies_changed"], false);
    assert_eq!(
        row(&db, &rotated)["aimharder_cookies"],
        json!([
            {"name":"AWSALB","value":"alb-new","domain":"127.0.0.1"},
            {"name":"AWSALBCORS","value":"cors-new"},
            {"name":"PHPSESSID","value":"php-keep"},
            {"name":"fresh","value":"hello","domain":"127.0.0.1","hostOnly":true,"path":"/"}
        ])
    );
    let same_after = db.sql(&format!(
        "SELECT aimharder_cookies::text FROM auth_sessions WHERE id = '{same}'"
    ));
    assert_eq!(same_before, same_after);
}

#[tokio::test]
async fn columns_the_tool_does_not_own_are_left_alone() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|x").insert(&db);
    db.sql(&format!(
        "UPDATE auth_sessions SET session_type = 'device', is_admin = true WHERE id = '{id}'"
    ));
    let before = row(&db, &id);
    let updated_before = updated_at(&db, &id);
    BIN.run(&db, &aim).refresh_all().succeeds().output().await;
    let after = row(&db, &id);
    let owned = [
        "refresh_count",
        "last_refresh_date",
        "last_refresh_error",
        "updated_at",
    ];
    for (k, v) in before.as_object().unwrap() {
        if !owned.contains(&k.as_str()) {
            assert_eq!(&after[k], v, "column {k} changed");
        }
    }
    assert_ne!(
        updated_at(&db, &id),
        updated_before,
        "the trigger still runs"
    );
}

#[tokio::test]
async fn a_concurrent_writer_does_not_lose_an_increment() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|race").count(3).insert(&db);
    // While AimHarder answers, "another runner" bumps the count.
    let bump = db.sql_hook(&format!(
        "UPDATE auth_sessions SET refresh_count = 10 WHERE id = '{id}'"
    ));
    aim.script("1|1|race", vec![Reply::Then(bump, Box::new(Reply::ok()))]);
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&id)
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["outcome"], "refreshed");
    assert_eq!(row(&db, &id)["refresh_count"], 11);
}

#[tokio::test]
async fn default_pace_is_two_requests_per_second() {
    let (db, aim) = stack().await;
    for i in 0..5 {
        Seed::new(&format!("p{i}@example.com"), &format!("{i}|1|pace")).insert(&db);
    }
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-all", "--json"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 5);
    let times = aim.arrival_times();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= std::time::Duration::from_millis(450),
            "requests {gap:?} apart"
        );
    }
}

#[tokio::test]
async fn dry_run_lists_due_sessions_and_calls_nothing() {
    let (db, aim) = stack().await;
    let due = Seed::new("a@example.com", "1|1|due").insert(&db);
    Seed::new("b@example.com", "2|1|fresh")
        .refreshed("now()")
        .insert(&db);
    let before = row(&db, &due);
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-all", "--dry-run", "--json"])
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["selected"], 1);
    assert_eq!(done.session(&due)["outcome"], "due");
    assert_eq!(done.session(&due)["email"], "a***@example.com");
    assert!(aim.seen().is_empty());
    assert_eq!(row(&db, &due), before);
}

#[tokio::test]
async fn force_takes_every_enabled_session() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|f")
        .refreshed("now()")
        .insert(&db);
    Seed::new("b@example.com", "2|1|f")
        .error(&format!("[{}] x", now_stamp(&db)))
        .insert(&db);
    Seed::new("c@example.com", "3|1|f").disabled().insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--force"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 2);
    assert_eq!(aim.calls_for("3|1|f"), 0);
}

#[tokio::test]
async fn older_than_moves_the_cutoff() {
    let (db, aim) = stack().await;
    let two_h = Seed::new("a@example.com", "1|1|o")
        .refreshed("now() - interval '2 hours'")
        .insert(&db);
    let done = BIN.run(&db, &aim).refresh_all_json().output().await;
    assert_eq!(done.json()["selected"], 0);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--older-than", "1h"])
        .output()
        .await;
    assert_eq!(done.json()["selected"], 1, "{}", done.stderr);
    assert_eq!(row(&db, &two_h)["refresh_count"], 4);
}

#[tokio::test]
async fn pages_are_walked_past_the_first_one() {
    let (db, aim) = stack().await;
    seed::due_in_bulk(&db, 1203, "bulk");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "16"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 1203);
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1"),
        "1203"
    );
    assert_eq!(aim.seen().len(), 1203);
}
