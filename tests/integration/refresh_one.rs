//! `refresh-one`: by id, by email, ambiguous and unknown sessions.

use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::start::stack;

use crate::BIN;

#[tokio::test]
async fn refreshes_one_session_by_id_even_when_not_due() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|one")
        .refreshed("now()")
        .insert(&db);
    let other = Seed::new("b@example.com", "2|1|other").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&id)
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["outcome"], "refreshed");
    assert_eq!(doc["email"], "a***@example.com");
    assert_eq!(doc["attempts"], 1);
    assert_eq!(row(&db, &id)["refresh_count"], 4);
    assert_eq!(row(&db, &other)["refresh_count"], 3);
    assert_eq!(aim.calls_for("2|1|other"), 0);
}

#[tokio::test]
async fn by_email_with_one_row_and_with_a_fingerprint() {
    let (db, aim) = stack().await;
    let single = Seed::new("solo@example.com", "1|1|solo").insert(&db);
    let a = Seed::new("multi@example.com", "2|1|a")
        .fingerprint("fp-a")
        .insert(&db);
    let b = Seed::new("multi@example.com", "3|1|b")
        .fingerprint("fp-b")
        .insert(&db);

    BIN.run(&db, &aim)
        .args(&["refresh-one", "--email", "solo@example.com"])
        .succeeds()
        .output()
        .await;
    assert_eq!(row(&db, &single)["refresh_count"], 4);

    BIN.run(&db, &aim)
        .args(&[
            "refresh-one",
            "--email",
            "multi@example.com",
            "--fingerprint",
            "fp-b",
        ])
        .succeeds()
        .output()
        .await;
    assert_eq!(row(&db, &b)["refresh_count"], 4);
    assert_eq!(row(&db, &a)["refresh_count"], 3);
}

#[tokio::test]
async fn an_ambiguous_email_is_a_usage_error_listing_the_candidates() {
    let (db, aim) = stack().await;
    let a = Seed::new("multi@example.com", "2|1|a")
        .fingerprint("fp-a")
        .insert(&db);
    let b = Seed::new("multi@example.com", "3|1|b")
        .fingerprint("fp-b")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-one", "--email", "multi@example.com"])
        .exits(64)
        .output()
        .await;
    assert_eq!(done.stderr.trim().lines().count(), 1, "{}", done.stderr);
    for needle in [a.as_str(), b.as_str(), "fp-a", "fp-b", "--fingerprint"] {
        assert!(
            done.stderr.contains(needle),
            "{needle} missing from {}",
            done.stderr
        );
    }
    assert!(
        !done.stderr.contains("multi@example.com"),
        "email must be masked"
    );
    // An error line lands in logs: masked even when results show emails.
    let done = BIN
        .run(&db, &aim)
        .args(&[
            "refresh-one",
            "--email",
            "multi@example.com",
            "--show-emails",
        ])
        .exits(64)
        .output()
        .await;
    assert!(done.stderr.contains("m***@example.com"), "{}", done.stderr);
    assert!(
        !done.stderr.contains("multi@example.com"),
        "{}",
        done.stderr
    );
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn an_unknown_session_exits_66() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|x").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_one("00000000-0000-4000-8000-000000000000")
        .exits(66)
        .output()
        .await;
    assert!(done.stderr.contains("no session"), "{}", done.stderr);
    BIN.run(&db, &aim)
        .args(&["refresh-one", "--email", "nobody@example.com"])
        .exits(66)
        .output()
        .await;
}

#[tokio::test]
async fn if_older_than_skips_a_recent_refresh() {
    let (db, aim) = stack().await;
    let recent = Seed::new("a@example.com", "1|1|recent")
        .refreshed("now() - interval '2 hours'")
        .insert(&db);
    let old = Seed::new("b@example.com", "2|1|old")
        .refreshed("now() - interval '30 hours'")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&recent)
        .args(&["--if-older-than", "24h"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["outcome"], "skipped");
    assert_eq!(aim.seen().len(), 0);
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&old)
        .args(&["--if-older-than", "24h"])
        .output()
        .await;
    assert_eq!(done.json()["outcome"], "refreshed", "{}", done.stderr);
}

#[tokio::test]
async fn an_expired_session_exits_1_and_is_disabled() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|dead").insert(&db);
    aim.script(
        "1|1|dead",
        vec![aimharder_testkit::aimharder::Reply::Redirect(302, "/login")],
    );
    let done = BIN.run(&db, &aim).refresh_one(&id).exits(1).output().await;
    assert!(done.stdout.contains("EXPIRED"), "{}", done.stdout);
    assert_eq!(row(&db, &id)["auto_refresh_enabled"], false);
}

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
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["id"], wanted.as_str());
    assert_eq!(aim.seen().len(), 1);
    assert_eq!(aim.calls_for("1|1|wanted"), 1);

    // `%` is a character like any other, never a pattern.
    BIN.run(&db, &aim)
        .args(&["refresh-one", "--email", "bulk1%@example.com"])
        .exits(66)
        .output()
        .await;
    assert_eq!(aim.seen().len(), 1, "nobody else was called");
}
