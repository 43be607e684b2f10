//! `status`: counts computed by the server, the session list, `--check`.

use aimharder_testkit::run::Seed;

use crate::refresh_all::stack;
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

    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--json"])
        .output()
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
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
        .output()
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
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
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check"])
        .output()
        .await;
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);

    let id = Seed::new("err@example.com", "3|1|c")
        .refreshed("now()")
        .insert(&db);
    db.sql(&format!(
        "UPDATE auth_sessions SET last_refresh_error = 'x' WHERE id = '{id}'"
    ));
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check"])
        .output()
        .await;
    assert_eq!(done.code, 1);

    db.sql(&format!(
        "UPDATE auth_sessions SET last_refresh_error = NULL WHERE id = '{id}'"
    ));
    Seed::new("stale@example.com", "4|1|d")
        .refreshed("now() - interval '3 days'")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check"])
        .output()
        .await;
    assert_eq!(done.code, 1);
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--check", "--stale-after", "4d"])
        .output()
        .await;
    assert_eq!(done.code, 0);
}
