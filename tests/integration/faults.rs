//! AimHarder misbehaving in every way we know of: each fault gives its
//! outcome and stored error, and every other session of the run still goes
//! through.

use std::time::Duration;

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::start::stack;

use crate::BIN;

struct Case {
    token: &'static str,
    replies: Vec<Reply>,
    outcome: &'static str,
    error: Option<&'static str>,
    calls: usize,
}

fn case(
    token: &'static str,
    reply: Reply,
    outcome: &'static str,
    error: Option<&'static str>,
    calls: usize,
) -> Case {
    Case {
        token,
        replies: vec![reply],
        outcome,
        error,
        calls,
    }
}

#[tokio::test]
async fn every_aimharder_fault_has_its_outcome_and_spares_the_others() {
    let (db, aim) = stack().await;
    let cases = vec![
        case("1|1|timeout", Reply::Hang, "failed", Some("timed out"), 3),
        case(
            "2|1|reset",
            Reply::Reset,
            "failed",
            Some("after 3 attempts"),
            3,
        ),
        case(
            "3|1|slowbody",
            Reply::SlowBody,
            "failed",
            Some("after 3 attempts"),
            3,
        ),
        case("4|1|5xx", Reply::Status(502), "failed", Some("HTTP 502"), 3),
        case(
            "5|1|403",
            Reply::Status(403),
            "failed",
            Some("blocked, HTTP 403"),
            1,
        ),
        case(
            "6|1|302",
            Reply::Redirect(302, "https://login.aimharder.com/login"),
            "expired",
            Some("log in again"),
            1,
        ),
        case(
            "7|1|login200",
            Reply::LoginPage,
            "expired",
            Some("login page"),
            1,
        ),
        case(
            "8|1|noscript",
            Reply::NoScript,
            "failed",
            Some("unexpected response"),
            1,
        ),
        case(
            "9|1|huge",
            Reply::Huge,
            "failed",
            Some("larger than 1 MiB"),
            1,
        ),
        case("10|1|utf8", Reply::InvalidUtf8, "refreshed", None, 1),
        case(
            "11|1|truncated",
            Reply::Truncated,
            "failed",
            Some("after 3 attempts"),
            3,
        ),
        case(
            "12|1|404",
            Reply::Status(404),
            "failed",
            Some("HTTP 404"),
            1,
        ),
        Case {
            token: "13|1|flaky",
            replies: vec![Reply::Status(503), Reply::Reset, Reply::ok()],
            outcome: "refreshed",
            error: None,
            calls: 3,
        },
    ];
    let good = Seed::new("good@example.com", "0|1|good").insert(&db);
    let ids: Vec<String> = cases
        .iter()
        .map(|c| {
            aim.script(c.token, c.replies.clone());
            Seed::new(
                &format!("{}@example.com", c.token.replace('|', "-")),
                c.token,
            )
            .insert(&db)
        })
        .collect();

    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "16", "--request-timeout", "1s"])
        .exits(1)
        .output()
        .await;
    assert_eq!(done.session(&good)["outcome"], "refreshed");
    assert_eq!(row(&db, &good)["refresh_count"], 4);
    for (c, id) in cases.iter().zip(&ids) {
        let s = done.session(id);
        assert_eq!(s["outcome"], c.outcome, "{}: {s}", c.token);
        assert_eq!(aim.calls_for(c.token), c.calls, "{}", c.token);
        assert_eq!(s["attempts"], c.calls, "{}", c.token);
        let stored = row(&db, id);
        match c.error {
            Some(words) => {
                let err = stored["last_refresh_error"].as_str().unwrap_or_default();
                assert!(err.contains(words), "{}: {err}", c.token);
                assert_eq!(stored["refresh_count"], 3, "{}", c.token);
            }
            None => {
                assert!(stored["last_refresh_error"].is_null(), "{}", c.token);
                assert_eq!(stored["refresh_count"], 4, "{}", c.token);
            }
        }
        assert_eq!(
            stored["auto_refresh_enabled"],
            c.outcome != "expired",
            "{}",
            c.token
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|429").insert(&db);
    aim.script("1|1|429", vec![Reply::RetryAfter(429, 2), Reply::ok()]);
    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&id)
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["attempts"], 2);
    let t = aim.arrival_times();
    assert!(
        t[1] - t[0] >= Duration::from_secs(2),
        "retried after {:?}",
        t[1] - t[0]
    );
}

/// AimHarder's API announces a dead session as 200 `{"logout": 1}`: that is
/// `expired` (disabled, not retried), not an "unexpected response" retried
/// every hour for ever.
#[tokio::test]
async fn a_logout_answer_means_expired() {
    let (db, aim) = stack().await;
    let dead = Seed::new("dead@example.com", "1|1|dead").insert(&db);
    let fine = Seed::new("fine@example.com", "2|1|fine").insert(&db);
    aim.script("1|1|dead", vec![Reply::Logout]);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    let s = done.session(&dead);
    assert_eq!(s["outcome"], "expired", "{s}");
    assert_eq!(s["attempts"], 1);
    let r = row(&db, &dead);
    assert_eq!(r["auto_refresh_enabled"], false);
    assert!(
        r["last_refresh_error"].as_str().unwrap().contains("logout"),
        "{r}"
    );
    assert_eq!(row(&db, &fine)["refresh_count"], 4);
    assert_eq!(aim.calls_for("1|1|dead"), 1);
}
