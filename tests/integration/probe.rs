//! `probe`: asks AimHarder's `/api/whoami` whether sessions are alive, with
//! the stored cookies, and writes nothing to Supabase.

use std::time::Duration;

use aimharder_testkit::aimharder::{Reply, WHOAMI};
use aimharder_testkit::run::{row, Seed};

use crate::refresh_all::stack;
use crate::BIN;

#[tokio::test]
async fn probe_asks_whoami_with_the_cookies_and_writes_nothing() {
    let (db, aim) = stack().await;
    let id = Seed::new("ana@example.com", "69232|1766731601|aaa")
        .session("sess-ana")
        .insert(&db);
    let before = row(&db, &id);
    let done = BIN
        .run(&db, &aim)
        .args(&["probe", "--id", &id])
        .output()
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.stdout.starts_with("alive"), "{}", done.stdout);
    assert!(done.stdout.contains("a***@example.com"), "{}", done.stdout);
    assert!(
        done.stdout
            .contains("1 sessions probed: 1 alive, 0 dead, 0 failed"),
        "{}",
        done.stdout
    );
    let seen = aim.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!((call.method.as_str(), call.path.as_str()), ("GET", WHOAMI));
    assert_eq!(call.raw_query, "", "no token goes to whoami");
    assert_eq!(call.token, "");
    assert_eq!(call.session.as_deref(), Some("sess-ana"));
    assert!(call
        .cookie
        .as_deref()
        .unwrap()
        .contains("amhrdrauth=auth-sess-ana"));
    assert!(call.user_agent.as_deref().unwrap().contains("Mozilla/"));
    assert_eq!(row(&db, &id), before, "a probe writes nothing");
}

#[tokio::test]
async fn probe_outcomes_row_by_row() {
    let (db, aim) = stack().await;
    let cases: [(&str, Vec<Reply>, &str); 8] = [
        ("alive", vec![Reply::ok()], "alive"),
        ("empty", vec![Reply::Dead], "dead"),
        ("logout", vec![Reply::Logout], "dead"),
        ("to-login", vec![Reply::Redirect(302, "/login")], "dead"),
        ("login-page", vec![Reply::LoginPage], "dead"),
        ("blocked", vec![Reply::Status(403)], "failed"),
        ("flaky", vec![Reply::Status(503), Reply::ok()], "alive"),
        ("odd", vec![Reply::NoScript], "failed"),
    ];
    let mut ids = Vec::new();
    for (session, replies, _) in &cases {
        aim.script(session, replies.clone());
        ids.push(
            Seed::new(&format!("{session}@example.com"), &format!("1|1|{session}"))
                .session(session)
                .insert(&db),
        );
    }
    let disabled = Seed::new("off@example.com", "1|1|off")
        .session("off")
        .disabled()
        .insert(&db);
    let done = BIN
        .run(&db, &aim)
        .args(&["probe", "--all", "--rate", "0", "--json"])
        .output()
        .await;
    assert_eq!(done.code, 1, "a dead or failed session fails the probe");
    let doc = done.json();
    assert_eq!(
        (&doc["probed"], &doc["alive"], &doc["dead"], &doc["failed"]),
        (&8.into(), &2.into(), &4.into(), &2.into()),
        "{doc}"
    );
    for ((session, _, outcome), id) in cases.iter().zip(&ids) {
        let s = done.session(id);
        assert_eq!(s["outcome"], *outcome, "{session}: {s}");
        assert_eq!(s["error"].is_null(), *outcome == "alive", "{session}: {s}");
    }
    assert!(
        done.session(&ids[5])["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 403"),
        "the reason is given"
    );
    assert!(
        aim.seen()
            .iter()
            .all(|s| s.session.as_deref() != Some("off")),
        "--all asks about enabled sessions only"
    );
    assert_eq!(row(&db, &disabled)["refresh_count"], 3);
    for id in &ids {
        let r = row(&db, id);
        assert_eq!(r["refresh_count"], 3, "nothing written");
        assert!(r["last_refresh_error"].is_null(), "nothing written");
    }
}

#[tokio::test]
async fn probe_all_takes_limit_and_shard() {
    let (db, aim) = stack().await;
    let ids: Vec<String> = (0..8)
        .map(|i| {
            Seed::new(&format!("m{i}@example.com"), &format!("1|1|m{i}"))
                .session(&format!("m{i}"))
                .insert(&db)
        })
        .collect();
    let limited = BIN
        .run(&db, &aim)
        .args(&["probe", "--all", "--limit", "3", "--rate", "0", "--json"])
        .output()
        .await;
    assert_eq!(limited.code, 0, "{}", limited.stderr);
    assert_eq!(limited.json()["probed"], 3);

    let shard = BIN
        .run(&db, &aim)
        .args(&["probe", "--all", "--shard", "1/2", "--rate", "0", "--json"])
        .output()
        .await;
    assert_eq!(shard.code, 0, "{}", shard.stderr);
    let mut expected: Vec<String> = ids
        .into_iter()
        .filter(|id| aimharder_refresh::domain::shard::shard_of(id, 2) == 1)
        .collect();
    expected.sort();
    let listed = shard.session_ids();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn probe_of_an_unknown_or_ambiguous_session_is_refused() {
    let (db, aim) = stack().await;
    Seed::new("twin@example.com", "1|1|a")
        .fingerprint("fp-a")
        .insert(&db);
    Seed::new("twin@example.com", "1|1|b")
        .fingerprint("fp-b")
        .insert(&db);
    let unknown = BIN
        .run(&db, &aim)
        .args(&["probe", "--id", "0a1b2c3d-0000-4000-8000-00000000abcd"])
        .output()
        .await;
    assert_eq!(unknown.code, 66, "{}", unknown.stderr);
    let twins = BIN
        .run(&db, &aim)
        .args(&["probe", "--email", "TWIN@example.com"])
        .output()
        .await;
    assert_eq!(twins.code, 64, "{}", twins.stderr);
    assert!(twins.stderr.contains("fp-a") && twins.stderr.contains("fp-b"));
    let picked = BIN
        .run(&db, &aim)
        .args(&[
            "probe",
            "--email",
            "twin@example.com",
            "--fingerprint",
            "fp-b",
        ])
        .output()
        .await;
    assert_eq!(picked.code, 0, "{}", picked.stderr);
    assert_eq!(aim.seen().len(), 1, "only the picked session was asked");
    let none = BIN.run(&db, &aim).args(&["probe"]).output().await;
    assert_eq!(none.code, 64, "a target is required: {}", none.stderr);
}

/// The liveness model end to end: a cron-like loop keeps shard 1 of 2
/// alive with `token-update`; shard 2 is nobody's, and `probe` shows it.
#[tokio::test]
async fn a_cron_loop_keeps_its_sessions_alive_and_probe_tells() {
    let (db, aim) = stack().await;
    let lifetime = Duration::from_secs(30 * 60);
    aim.sessions_die_after(lifetime);
    let ids: Vec<String> = (0..8)
        .map(|i| {
            Seed::new(&format!("c{i}@example.com"), &format!("1|1|c{i}"))
                .session(&format!("c{i}"))
                .insert(&db)
        })
        .collect();
    let kept: Vec<bool> = ids
        .iter()
        .map(|id| aimharder_refresh::domain::shard::shard_of(id, 2) == 1)
        .collect();
    assert!(
        kept.contains(&true) && kept.contains(&false),
        "both shards seeded"
    );
    // Every 15 minutes of the model's clock, for two hours: four lifetimes.
    for _ in 0..8 {
        aim.advance(Duration::from_secs(15 * 60));
        let tick = BIN
            .run(&db, &aim)
            .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
            .args(&[
                "refresh-all",
                "--force",
                "--shard",
                "1/2",
                "--rate",
                "0",
                "--json",
            ])
            .output()
            .await;
        assert_eq!(tick.code, 0, "{}", tick.stderr);
    }
    for (i, keep) in kept.iter().enumerate() {
        assert_eq!(aim.is_alive(&format!("c{i}")), *keep, "c{i}");
    }
    let probe = BIN
        .run(&db, &aim)
        .args(&["probe", "--all", "--rate", "0", "--json"])
        .output()
        .await;
    assert_eq!(probe.code, 1, "shard 2 died: {}", probe.stderr);
    for (id, keep) in ids.iter().zip(&kept) {
        let want = if *keep { "alive" } else { "dead" };
        assert_eq!(probe.session(id)["outcome"], want, "{id}");
    }
    let alive = BIN
        .run(&db, &aim)
        .args(&["probe", "--all", "--shard", "1/2", "--rate", "0"])
        .output()
        .await;
    assert_eq!(
        alive.code, 0,
        "the kept shard is all alive: {}",
        alive.stdout
    );
    // A dead session's keep-alive answers logout: the tool disables it.
    let revive = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .args(&[
            "refresh-all",
            "--force",
            "--shard",
            "2/2",
            "--rate",
            "0",
            "--json",
        ])
        .output()
        .await;
    assert_eq!(revive.code, 1);
    for (id, keep) in ids.iter().zip(&kept) {
        if !keep {
            assert_eq!(revive.session(id)["outcome"], "expired");
            assert_eq!(row(&db, id)["auto_refresh_enabled"], false);
        }
    }
}
