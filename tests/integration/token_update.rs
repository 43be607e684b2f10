//! `--endpoint token-update`: AimHarder's own page keep-alive, `POST
//! /api/tokenUpdate` with a form, answering `{"newToken": …}` (the token
//! rotates on every call) or `{"logout": 1}`.

use aimharder_testkit::aimharder::{rotated, Reply, TOKEN_UPDATE};
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::start::stack;

use crate::BIN;

#[tokio::test]
async fn token_update_posts_the_form_and_stores_the_rotated_token() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "69232|1766731601|aaa")
        .fingerprint("fp-of-a")
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    let s = done.session(&id);
    assert_eq!(s["outcome"], "refreshed", "{s}");
    assert_eq!(s["token_changed"], true);
    let r = row(&db, &id);
    assert_eq!(
        r["aimharder_token"],
        rotated("69232|1766731601|aaa").as_str()
    );
    assert_eq!(r["refresh_count"], 4);

    let seen = aim.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, TOKEN_UPDATE);
    assert_eq!(call.raw_query, "", "nothing in the URL");
    assert_eq!(call.token, "69232|1766731601|aaa");
    assert_eq!(call.fingerprint, "fp-of-a");
    assert_eq!(call.ciclo.as_deref(), Some("1"));
    assert_eq!(call.x_requested_with.as_deref(), Some("XMLHttpRequest"));
    assert_eq!(
        call.content_type.as_deref(),
        Some("application/x-www-form-urlencoded; charset=UTF-8")
    );
    // What AimHarder's own page sends with its fetch: without it AimHarder
    // has answered logout to live sessions.
    assert_eq!(call.origin.as_deref(), Some(aim.url().as_str()));
    assert_eq!(
        call.referer.as_deref(),
        Some(format!("{}/", aim.url()).as_str())
    );
    assert_eq!(call.sec_fetch_site.as_deref(), Some("same-origin"));
    assert_eq!(call.sec_fetch_mode.as_deref(), Some("cors"));
    assert_eq!(call.sec_fetch_dest.as_deref(), Some("empty"));
    assert!(call.accept.as_deref().unwrap().contains("application/json"));
    assert_eq!(aim.not_browser_calls(), 0);
    assert!(call
        .cookie
        .as_deref()
        .unwrap()
        .contains("PHPSESSID=php-secret-1"));
    assert!(call.user_agent.as_deref().unwrap().contains("Mozilla/"));
}

#[tokio::test]
async fn token_update_outcomes_row_by_row() {
    let (db, aim) = stack().await;
    let cases: [(&str, Vec<Reply>, &str, u64); 6] = [
        ("1|1|logout", vec![Reply::Logout], "expired", 1),
        ("2|1|html", vec![Reply::LoginPage], "failed", 1),
        ("3|1|blocked", vec![Reply::Status(403)], "failed", 1),
        (
            "4|1|flaky",
            vec![Reply::Status(503), Reply::ok()],
            "refreshed",
            2,
        ),
        (
            "5|1|gone",
            vec![Reply::Redirect(302, "/login")],
            "expired",
            1,
        ),
        ("6|1|fine", vec![Reply::ok()], "refreshed", 1),
    ];
    let mut ids = Vec::new();
    for (token, replies, _, _) in &cases {
        aim.script(token, replies.clone());
        ids.push(Seed::new(&format!("{token}@example.com"), token).insert(&db));
    }
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--endpoint", "token-update"])
        .exits(1)
        .output()
        .await;
    for ((token, _, outcome, attempts), id) in cases.iter().zip(&ids) {
        let s = done.session(id);
        assert_eq!(s["outcome"], *outcome, "{token}: {s}");
        assert_eq!(s["attempts"], *attempts, "{token}: {s}");
    }
    let html = done.session(&ids[1]);
    assert!(html["error"]
        .as_str()
        .unwrap()
        .contains("unexpected response"));
    assert_eq!(row(&db, &ids[0])["auto_refresh_enabled"], false);
    assert_eq!(row(&db, &ids[2])["auto_refresh_enabled"], true);
}

#[tokio::test]
async fn the_default_due_window_follows_the_endpoint() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|half-hour")
        .refreshed("now() - interval '30 minutes'")
        .insert(&db);
    let due = |endpoint: &'static str| {
        BIN.run(&db, &aim)
            .args(&["status", "--json", "--endpoint", endpoint])
            .output()
    };
    assert_eq!(due("setrefresh").await.json()["due"], 0, "6h window");
    assert_eq!(due("token-update").await.json()["due"], 1, "20m window");

    let done = BIN.run(&db, &aim).refresh_all_json().output().await;
    assert_eq!(done.json()["selected"], 0, "setrefresh: not due");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--endpoint", "token-update"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 1, "token-update: due after 20m");
    assert_eq!(aim.seen()[0].path, TOKEN_UPDATE);
}

#[tokio::test]
async fn the_simulated_aimharder_kills_a_token_it_replaced_so_a_lost_rotation_shows() {
    let (db, aim) = stack().await;
    let old = "69232|1766731601|lost";
    let id = Seed::new("a@example.com", old).insert(&db);
    let run = || {
        BIN.run(&db, &aim)
            .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
            .refresh_one_json(&id)
            .output()
    };
    assert_eq!(run().await.json()["outcome"], "refreshed");
    assert!(aim.is_replaced(old));
    // Lose the rotation, as a tool that dropped the new token would: the
    // row holds the replaced token again.
    db.sql(&format!(
        "UPDATE auth_sessions SET aimharder_token = '{old}' WHERE id = '{id}'"
    ));
    let done = run().await;
    // The replaced token answers logout, but the session lives on at
    // AimHarder (whoami knows it): not disabled, and the loss is counted.
    let s = done.json();
    assert_eq!(s["outcome"], "failed", "{}", done.stdout);
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("AimHarder answered logout but the session is alive"),
        "{s}"
    );
    assert_eq!(row(&db, &id)["auto_refresh_enabled"], true);
    assert_eq!(aim.stale_token_calls(), 1, "the loss is counted");
}
