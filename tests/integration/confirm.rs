//! A logout is a claim, not proof: a session is disabled only when
//! AimHarder's whoami agrees it is dead, and logouts of live sessions in a
//! row are AimHarder refusing the requests (the breaker), not mass expiry.

use std::time::Duration;

use aimharder_testkit::aimharder::{Reply, TOKEN_UPDATE, WHOAMI};
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::start::stack;

use crate::BIN;

fn whoamis(aim: &aimharder_testkit::aimharder::FakeAimHarder) -> Vec<Option<String>> {
    aim.seen()
        .into_iter()
        .filter(|s| s.path == WHOAMI)
        .map(|s| s.session)
        .collect()
}

#[tokio::test]
async fn a_logout_answered_while_whoami_says_alive_keeps_the_session_enabled() {
    let (db, aim) = stack().await;
    let alive = Seed::new("alive@example.com", "1|1|alive")
        .session("s-alive")
        .insert(&db);
    let dead = Seed::new("dead@example.com", "2|1|dead")
        .session("s-dead")
        .insert(&db);
    let fine = Seed::new("fine@example.com", "3|1|fine")
        .session("s-fine")
        .insert(&db);
    aim.script("1|1|alive", vec![Reply::FalseLogout]);
    aim.script("2|1|dead", vec![Reply::Logout]);
    for endpoint in ["setrefresh", "token-update"] {
        let done = BIN
            .run(&db, &aim)
            .env("AIMHARDER_REFRESH_ENDPOINT", endpoint)
            .refresh_all_json()
            .args(&["--force"])
            .exits(1)
            .output()
            .await;
        let s = done.session(&alive);
        assert_eq!(s["outcome"], "failed", "{endpoint}: {s}");
        let error = s["error"].as_str().unwrap();
        assert!(
            error.contains("AimHarder answered logout but the session is alive"),
            "{endpoint}: {error}"
        );
        let stored = row(&db, &alive);
        assert_eq!(stored["auto_refresh_enabled"], true, "{endpoint}");
        assert!(stored["last_refresh_error"]
            .as_str()
            .unwrap()
            .contains("the session is alive"));
        if endpoint == "setrefresh" {
            // A logout whoami agrees with disables, as before (and the
            // session is not called again).
            assert_eq!(done.session(&dead)["outcome"], "expired", "{endpoint}");
        }
        assert_eq!(row(&db, &dead)["auto_refresh_enabled"], false);
        assert_eq!(done.session(&fine)["outcome"], "refreshed", "{endpoint}");
        // Only the sessions that answered logout cost a whoami; the dead
        // one is not called again once disabled.
        let asked = whoamis(&aim);
        assert!(!asked.contains(&Some("s-fine".into())), "{asked:?}");
        assert!(asked.contains(&Some("s-alive".into())), "{asked:?}");
    }
    assert_eq!(whoamis(&aim).len(), 3, "alive twice, dead once");
}

#[tokio::test]
async fn a_logout_whoami_cannot_confirm_leaves_the_session_enabled() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|a")
        .session("s-a")
        .insert(&db);
    aim.script("1|1|a", vec![Reply::FalseLogout]);
    // whoami answers by session cookie: unavailable through its retries.
    aim.script("s-a", vec![Reply::Status(503)]);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    let s = done.session(&id);
    assert_eq!(s["outcome"], "failed", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("whoami could not confirm it"),
        "{s}"
    );
    assert_eq!(row(&db, &id)["auto_refresh_enabled"], true);
}

#[tokio::test]
async fn twenty_logouts_of_live_sessions_in_a_row_trip_the_breaker_with_nothing_disabled() {
    let (db, aim) = stack().await;
    let ids: Vec<String> = (0..30)
        .map(|i| {
            let token = format!("{i}|1|refused");
            aim.script(&token, vec![Reply::FalseLogout]);
            Seed::new(&format!("r{i}@example.com"), &token)
                .session(&format!("s-r{i}"))
                .insert(&db)
        })
        .collect();
    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .env("AIMHARDER_MAX_CONSECUTIVE_FAILURES", "20")
        .refresh_all_json()
        .args(&["--concurrency", "2"])
        .exits(69)
        .output()
        .await;
    let line = done
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("sessions in a row that its whoami says are alive"),
        "{line}"
    );
    assert!(line.contains("not a mass expiry"), "{line}");
    let disabled =
        db.sql("SELECT count(*) FROM auth_sessions WHERE auto_refresh_enabled IS NOT TRUE");
    assert_eq!(disabled, "0", "nothing disabled");
    let called = aim.seen().iter().filter(|s| s.path == TOKEN_UPDATE).count();
    assert!(
        called < ids.len(),
        "the breaker stopped the run: {called} called"
    );
}

#[tokio::test]
async fn a_logout_after_an_attempt_that_may_have_rotated_the_token_is_not_proof() {
    let (db, aim) = stack().await;
    let token = "69232|1766731601|slow";
    let id = Seed::new("a@example.com", token)
        .session("s-slow")
        .insert(&db);
    // The first call reaches AimHarder, which rotates the token, but its
    // answer comes too late; the retry's old token is dead.
    aim.script(
        token,
        vec![Reply::Delay(
            Duration::from_secs(5),
            Box::new(Reply::rotate("69232|1766818001|new")),
        )],
    );
    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_all_json()
        .args(&["--request-timeout", "1s"])
        .exits(1)
        .output()
        .await;
    assert_eq!(
        aim.stale_token_calls(),
        1,
        "the retry carried the old token"
    );
    let s = done.session(&id);
    assert_eq!(s["outcome"], "failed", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("may have been rotated unseen"),
        "{s}"
    );
    assert_eq!(row(&db, &id)["auto_refresh_enabled"], true);
}
