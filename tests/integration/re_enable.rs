//! Re-enabling (SPEC, Claims and writes: "coming back"): a session disabled
//! as expired is enabled again, and its error cleared, when the web app
//! stores a new login (token or cookies change; the trigger of the second
//! migration does it, the web app's plain UPDATE needs no change), or when
//! a refresh of it succeeds; one switched off by hand stays off.

use aimharder_testkit::aimharder::{FakeAimHarder, Reply};
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::stack;

use crate::BIN;

pub const RE_ENABLE: &str = "migrations/20261127000000_re_enable_on_login.sql";

const EXPIRED: &str =
    "[2026-11-20T08:00:00Z] AimHarder answered with its login page: the member must log in again";
const NEW_COOKIES: &str = r#"[{"name":"PHPSESSID","value":"php-secret-2"},{"name":"amhrdrauth","value":"auth-secret-2"}]"#;

/// Both migrations, in file-name order.
async fn both() -> (TestDb, FakeAimHarder) {
    let (db, aim) = stack().await;
    db.apply_migration(RE_ENABLE);
    (db, aim)
}

/// What the web app does when the member logs in again: a plain UPDATE of
/// token and cookies, nothing else.
fn web_app_login(db: &TestDb, id: &str, token: &str) {
    db.sql(&format!(
        "UPDATE auth_sessions SET aimharder_token = '{token}', \
         aimharder_cookies = '{NEW_COOKIES}'::jsonb WHERE id = '{id}'"
    ));
}

/// The row without `updated_at` (the table's own trigger moves it on every
/// UPDATE) and without the credentials.
fn tracking(db: &TestDb, id: &str) -> serde_json::Value {
    let mut r = row(db, id);
    let o = r.as_object_mut().unwrap();
    for k in ["updated_at", "aimharder_token", "aimharder_cookies"] {
        o.remove(k);
    }
    r
}

#[tokio::test]
async fn coming_back_a_new_login_re_enables_an_expired_session_and_the_next_run_refreshes_it() {
    let (db, aim) = both().await;
    // Disabled as expired; last refresh 7 hours ago, so due once enabled.
    let id = Seed::new("back@example.com", "21|1766731601|old")
        .disabled()
        .error(EXPIRED)
        .insert(&db);
    // A neighbour in the same state that does not log in again.
    let other = Seed::new("gone@example.com", "22|1766731601|gone")
        .disabled()
        .error(EXPIRED)
        .insert(&db);
    let before = tracking(&db, &id);
    let other_before = row(&db, &other);

    web_app_login(&db, &id, "21|1774000000|new");

    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], true, "{r}");
    assert!(r["last_refresh_error"].is_null(), "{r}");
    // The login is exactly as the web app wrote it.
    assert_eq!(r["aimharder_token"], "21|1774000000|new");
    assert_eq!(
        r["aimharder_cookies"],
        serde_json::from_str::<serde_json::Value>(NEW_COOKIES).unwrap()
    );
    // Nothing else moved: only the two tracking columns changed.
    let mut expected = before.clone();
    expected["auto_refresh_enabled"] = true.into();
    expected["last_refresh_error"] = serde_json::Value::Null;
    assert_eq!(tracking(&db, &id), expected);
    assert_eq!(r["refresh_count"], 3);
    assert_eq!(
        row(&db, &other),
        other_before,
        "the neighbour stays disabled"
    );

    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["selected"], 1, "{doc}");
    assert_eq!(doc["refreshed"], 1, "{doc}");
    assert_eq!(done.session(&id)["outcome"], "refreshed");
    // Called with the new login, never the old one; the neighbour not at all.
    assert_eq!(aim.calls_for("21|1774000000|new"), 1);
    assert_eq!(aim.calls_for("21|1766731601|old"), 0);
    assert_eq!(aim.calls_for("22|1766731601|gone"), 0);
    let seen = aim.seen();
    assert_eq!(
        seen[0].cookie.as_deref(),
        Some("PHPSESSID=php-secret-2; amhrdrauth=auth-secret-2")
    );

    let r = row(&db, &id);
    assert_eq!(r["refresh_count"], 4, "{r}");
    assert_eq!(r["auto_refresh_enabled"], true);
    assert!(r["last_refresh_error"].is_null());
    assert!(r["last_refresh_date"].is_string());
    assert_eq!(row(&db, &other), other_before);
}

#[tokio::test]
async fn coming_back_the_tools_own_expired_outcome_still_disables_and_a_login_undoes_it() {
    let (db, aim) = both().await;
    let id = Seed::new("expiring@example.com", "31|1766731601|dying").insert(&db);
    aim.script("31|1766731601|dying", vec![Reply::LoginPage]);

    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    assert_eq!(done.json()["expired"], 1, "{}", done.stdout);
    assert_eq!(done.session(&id)["outcome"], "expired");
    assert_eq!(aim.calls_for("31|1766731601|dying"), 1);

    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], false, "{r}");
    let err = r["last_refresh_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(err.contains("log in again"), "{err}");
    assert!(err.starts_with('['), "{err}");
    assert_eq!(r["aimharder_token"], "31|1766731601|dying");
    assert_eq!(r["refresh_count"], 3);

    // Disabled rows are not selected: a second run calls nothing.
    let again = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(again.json()["selected"], 0);
    assert_eq!(aim.calls_for("31|1766731601|dying"), 1);

    // The member logs in again: back on, error gone.
    web_app_login(&db, &id, "31|1774000000|alive");
    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], true, "{r}");
    assert!(r["last_refresh_error"].is_null(), "{r}");
    assert_eq!(r["refresh_count"], 3);
}

#[tokio::test]
async fn coming_back_updates_that_leave_token_and_cookies_alone_do_not_re_enable() {
    let (db, _aim) = both().await;
    let id = Seed::new("still-off@example.com", "41|1766731601|off")
        .disabled()
        .error(EXPIRED)
        .insert(&db);
    let before = tracking(&db, &id);

    for update in [
        "updated_at = now()",
        "refresh_count = refresh_count",
        "session_type = 'background', is_admin = false",
        "fingerprint = 'fp-new-device'",
        // Named in the SET list, but the same values: not a new login.
        "aimharder_token = aimharder_token, aimharder_cookies = aimharder_cookies",
        // The same cookies in another key order are the same jsonb value.
        r#"aimharder_cookies = '[{"value":"php-secret-1","name":"PHPSESSID"},{"value":"auth-secret-1","name":"amhrdrauth"}]'::jsonb"#,
    ] {
        db.sql(&format!(
            "UPDATE auth_sessions SET {update} WHERE id = '{id}'"
        ));
        let r = row(&db, &id);
        assert_eq!(r["auto_refresh_enabled"], false, "after SET {update}: {r}");
        assert_eq!(r["last_refresh_error"], EXPIRED, "after SET {update}: {r}");
    }
    // A new error written on its own stays, and the row stays off.
    let newer = "[2026-11-21T08:00:00Z] AimHarder answered with its login page: the member must log in again";
    db.sql(&format!(
        "UPDATE auth_sessions SET last_refresh_error = '{newer}' WHERE id = '{id}'"
    ));
    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], false, "{r}");
    assert_eq!(r["last_refresh_error"], newer);

    let mut expected = before;
    expected["fingerprint"] = "fp-new-device".into();
    expected["last_refresh_error"] = newer.into();
    assert_eq!(tracking(&db, &id), expected);
}

#[tokio::test]
async fn coming_back_what_the_writer_sets_with_new_credentials_stands() {
    let (db, _aim) = both().await;

    // The web app turns auto refresh off explicitly with the new login.
    let opted_out = Seed::new("opt-out@example.com", "51|1|on").insert(&db);
    db.sql(&format!(
        "UPDATE auth_sessions SET aimharder_token = '51|2|new', auto_refresh_enabled = false \
         WHERE id = '{opted_out}'"
    ));
    let r = row(&db, &opted_out);
    assert_eq!(r["auto_refresh_enabled"], false, "{r}");
    assert!(r["last_refresh_error"].is_null());

    // An expired outcome recorded together with rotated cookies (as a
    // refresh-one of a disabled row might): stays off with the new error.
    let recorded = Seed::new("recorded@example.com", "52|1|off")
        .disabled()
        .error(EXPIRED)
        .insert(&db);
    let newer = "[2026-11-22T08:00:00Z] AimHarder answered with its login page: the member must log in again";
    db.sql(&format!(
        "UPDATE auth_sessions SET aimharder_cookies = '{NEW_COOKIES}'::jsonb, \
         last_refresh_error = '{newer}', auto_refresh_enabled = false WHERE id = '{recorded}'"
    ));
    let r = row(&db, &recorded);
    assert_eq!(r["auto_refresh_enabled"], false, "{r}");
    assert_eq!(r["last_refresh_error"], newer);

    // A failure (enabled, with an error) gets a new login: error cleared.
    let failing = Seed::new("failing@example.com", "53|1|blocked")
        .error("[2026-11-22T08:00:00Z] blocked, HTTP 403")
        .insert(&db);
    web_app_login(&db, &failing, "53|2|new");
    let r = row(&db, &failing);
    assert_eq!(r["auto_refresh_enabled"], true, "{r}");
    assert!(r["last_refresh_error"].is_null(), "{r}");

    // A healthy row gets a new login: only the credentials change.
    let healthy = Seed::new("healthy@example.com", "54|1|ok").insert(&db);
    let before = tracking(&db, &healthy);
    web_app_login(&db, &healthy, "54|2|new");
    assert_eq!(tracking(&db, &healthy), before);

    // INSERT: the trigger is not involved; a disabled row stays as inserted.
    let inserted = Seed::new("inserted@example.com", "55|1|x")
        .disabled()
        .error(EXPIRED)
        .insert(&db);
    let r = row(&db, &inserted);
    assert_eq!(r["auto_refresh_enabled"], false);
    assert_eq!(r["last_refresh_error"], EXPIRED);
}

#[tokio::test]
async fn coming_back_the_migration_can_run_twice() {
    let (db, _aim) = both().await;
    db.apply_migration(RE_ENABLE);
    // And the first migration again after it, in case someone reruns all.
    db.apply_migration(crate::refresh_all::MIGRATION);
    db.apply_migration(RE_ENABLE);

    let triggers = db.sql(&format!(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{}' AND c.relname = 'auth_sessions' \
         AND t.tgname = 'auth_sessions_re_enable_on_login'",
        db.schema()
    ));
    assert_eq!(triggers, "1");
    let functions = db.sql(&format!(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = '{}' AND p.proname = 'auth_sessions_re_enable_on_login'",
        db.schema()
    ));
    assert_eq!(functions, "1");
    // All non-internal triggers on the table: the table's own updated_at one
    // and ours, nothing duplicated.
    let all = db.sql(&format!(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal \
         AND tgrelid = '{}.auth_sessions'::regclass",
        db.schema()
    ));
    // The table's own updated_at trigger and this one (claims live in a
    // table of their own, with no trigger on the sessions).
    assert_eq!(all, "2");
    // The function pins its search_path and runs as the caller.
    let config = db.sql(&format!(
        "SELECT p.proconfig::text || ' ' || p.prosecdef FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = '{}' AND p.proname = 'auth_sessions_re_enable_on_login'",
        db.schema()
    ));
    assert_eq!(config, r#"{"search_path=\"\""} false"#);

    // Still works, and fires once.
    let id = Seed::new("twice@example.com", "61|1|old")
        .disabled()
        .error(EXPIRED)
        .insert(&db);
    web_app_login(&db, &id, "61|2|new");
    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], true, "{r}");
    assert!(r["last_refresh_error"].is_null());
}

#[tokio::test]
async fn coming_back_a_session_switched_off_by_hand_stays_off() {
    let (db, _aim) = both().await;
    // Disabled with no error: not the tool's doing (it always stores one).
    let id = Seed::new("off@example.com", "1|1|off")
        .disabled()
        .insert(&db);
    web_app_login(&db, &id, "1|2|new");
    let r = row(&db, &id);
    assert_eq!(r["auto_refresh_enabled"], false, "{r}");
    assert_eq!(r["aimharder_token"], "1|2|new");
}

#[tokio::test]
async fn a_tool_disabled_session_that_succeeds_is_enabled_again_and_a_hand_disabled_one_stays_off()
{
    let (db, aim) = stack().await;
    for endpoint in ["setrefresh", "token-update"] {
        let by_tool = Seed::new("tool@example.com", &format!("1|1|tool-{endpoint}"))
            .disabled()
            .error(EXPIRED)
            .insert(&db);
        let by_hand = Seed::new("hand@example.com", &format!("2|1|hand-{endpoint}"))
            .disabled()
            .insert(&db);
        for id in [&by_tool, &by_hand] {
            let done = BIN
                .run(&db, &aim)
                .env("AIMHARDER_REFRESH_ENDPOINT", endpoint)
                .refresh_one_json(id)
                .succeeds()
                .output()
                .await;
            assert_eq!(done.json()["outcome"], "refreshed", "{endpoint}");
        }
        let tool = row(&db, &by_tool);
        assert_eq!(tool["auto_refresh_enabled"], true, "{endpoint}: {tool}");
        assert!(tool["last_refresh_error"].is_null(), "{endpoint}");
        let hand = row(&db, &by_hand);
        assert_eq!(hand["auto_refresh_enabled"], false, "{endpoint}: {hand}");
        assert_eq!(hand["refresh_count"], 4, "refreshed all the same");
        // The next login of the hand-disabled member still leaves it off,
        // and the tool-enabled one is walked by refresh-all again.
        web_app_login(&db, &by_hand, &format!("2|2|hand-{endpoint}"));
        assert_eq!(row(&db, &by_hand)["auto_refresh_enabled"], false);
    }
}
