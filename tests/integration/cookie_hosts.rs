//! Cookies belong to hosts: a stored cookie with a `domain` goes only to
//! hosts that domain-match it, and a `Set-Cookie` changes only the cookie of
//! the host that answered. The simulated AimHarder is `127.0.0.1`.

use serde_json::json;

use aimharder_testkit::aimharder::{Reply, WHOAMI};
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::start::stack;

use crate::BIN;

/// A real login's `PHPSESSID` pair: the root host's (here the simulated
/// AimHarder's) and the gym subdomain's, plus a cookie without `domain`,
/// which goes everywhere.
const STORED: &str = r#"[
    {"name":"PHPSESSID","value":"root-old","domain":"127.0.0.1","path":"/"},
    {"name":"PHPSESSID","value":"gym-secret","domain":".MyGym.aimharder.com","path":"/","hostOnly":false,"sameSite":"Lax","expirationDate":1799999999.5},
    {"name":"amhrdrauth","value":"auth-1"}
]"#;

fn gym_cookie_text(db: &aimharder_testkit::stack::TestDb, id: &str) -> String {
    db.sql(&format!(
        "SELECT (aimharder_cookies -> 1)::text FROM auth_sessions WHERE id = '{id}'"
    ))
}

#[tokio::test]
async fn a_gym_subdomain_phpsessid_is_neither_sent_to_the_root_host_nor_changed_by_a_refresh() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|hosts")
        .cookies(STORED)
        .insert(&db);
    aim.script(
        "1|1|hosts",
        vec![Reply::with_cookies(&[
            "PHPSESSID=root-new; Path=/; HttpOnly",
        ])],
    );
    let gym_before = gym_cookie_text(&db, &id);

    let done = BIN
        .run(&db, &aim)
        .refresh_one_json(&id)
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["cookies_changed"], true, "{}", done.stdout);

    let seen = aim.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].cookie.as_deref(),
        Some("PHPSESSID=root-old; amhrdrauth=auth-1"),
        "only the root host's PHPSESSID goes to the root host"
    );
    assert_eq!(
        row(&db, &id)["aimharder_cookies"],
        json!([
            {"name":"PHPSESSID","value":"root-new","domain":"127.0.0.1","path":"/"},
            {"name":"PHPSESSID","value":"gym-secret","domain":".MyGym.aimharder.com","path":"/","hostOnly":false,"sameSite":"Lax","expirationDate":1799999999.5},
            {"name":"amhrdrauth","value":"auth-1"}
        ])
    );
    assert_eq!(
        gym_cookie_text(&db, &id),
        gym_before,
        "the gym's cookie is stored exactly as it was"
    );

    // whoami's URL is matched too: the rotated root cookie, not the gym's.
    BIN.run(&db, &aim)
        .args(&["probe", "--id", &id])
        .succeeds()
        .output()
        .await;
    let whoami = aim.seen().pop().unwrap();
    assert_eq!(whoami.path, WHOAMI);
    assert_eq!(
        whoami.cookie.as_deref(),
        Some("PHPSESSID=root-new; amhrdrauth=auth-1")
    );
}

#[tokio::test]
async fn a_set_cookie_for_a_host_without_its_cookie_is_added_for_that_host() {
    let (db, aim) = stack().await;
    let gym_only = r#"[{"name":"PHPSESSID","value":"gym-secret","domain":"mygym.aimharder.com"}]"#;
    let id = Seed::new("b@example.com", "2|1|added")
        .cookies(gym_only)
        .insert(&db);
    aim.script(
        "2|1|added",
        vec![Reply::with_cookies(&["PHPSESSID=root-1; Path=/"])],
    );
    BIN.run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_one(&id)
        .succeeds()
        .output()
        .await;
    assert_eq!(
        aim.seen()[0].cookie,
        None,
        "no cookie of this host is stored"
    );
    assert_eq!(
        row(&db, &id)["aimharder_cookies"],
        json!([
            {"name":"PHPSESSID","value":"gym-secret","domain":"mygym.aimharder.com"},
            {"name":"PHPSESSID","value":"root-1","domain":"127.0.0.1","hostOnly":true,"path":"/"}
        ])
    );
}
