//! `probe`: asks AimHarder's `/api/whoami` whether sessions are alive, with
//! the stored cookies, and writes nothing to Supabase.

use std::time::Duration;

use aimharder_testkit::aimharder::{Reply, WHOAMI};
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::start::stack;

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
        .succeeds()
        .output()
        .await;
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
    // A dead or failed session fails the probe.
    let done = BIN.run(&db, &aim).probe_all_json().exits(1).output().await;
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
        .probe_all_json()
        .args(&["--limit", "3"])
        .succeeds()
        .output()
        .await;
    assert_eq!(limited.json()["probed"], 3);

    let shard = BIN
        .run(&db, &aim)
        .probe_all_json()
        .args(&["--shard", "1/2"])
        .succeeds()
        .output()
        .await;
    let mut expected: Vec<String> = ids
        .into_iter()
        .filter(|id| aimharder_refresh::internals::shard_of(id, 2) == 1)
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
    BIN.run(&db, &aim)
        .args(&["probe", "--id", "0a1b2c3d-0000-4000-8000-00000000abcd"])
        .exits(66)
        .output()
        .await;
    let twins = BIN
        .run(&db, &aim)
        .args(&["probe", "--email", "TWIN@example.com"])
        .exits(64)
        .output()
        .await;
    assert!(twins.stderr.contains("fp-a") && twins.stderr.contains("fp-b"));
    BIN.run(&db, &aim)
        .args(&[
            "probe",
            "--email",
            "twin@example.com",
            "--fingerprint",
            "fp-b",
        ])
        .succeeds()
        .output()
        .await;
    assert_eq!(aim.seen().len(), 1, "only the picked session was asked");
    // A target is required.
    BIN.run(&db, &aim).args(&["probe"]).exits(64).output().await;
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
        .map(|id| aimharder_refresh::internals::shard_of(id, 2) == 1)
        .collect();
    assert!(
        kept.contains(&true) && kept.contains(&false),
        "both shards seeded"
    );
    // Every 15 minutes of the model's clock, for two hours: four lifetimes.
    for _ in 0..8 {
        aim.advance(Duration::from_secs(15 * 60));
        BIN.run(&db, &aim)
            .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
            .refresh_all_json()
            .args(&["--force", "--shard", "1/2"])
            .succeeds()
            .output()
            .await;
    }
    for (i, keep) in kept.iter().enumerate() {
        assert_eq!(aim.is_alive(&format!("c{i}")), *keep, "c{i}");
    }
    // Shard 2 died.
    let probe = BIN.run(&db, &aim).probe_all_json().exits(1).output().await;
    for (id, keep) in ids.iter().zip(&kept) {
        let want = if *keep { "alive" } else { "dead" };
        assert_eq!(probe.session(id)["outcome"], want, "{id}");
    }
    // The kept shard is all alive.
    BIN.run(&db, &aim)
        .probe_all()
        .args(&["--shard", "1/2"])
        .succeeds()
        .output()
        .await;
    // A dead session's keep-alive answers logout: the tool disables it.
    let revive = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_all_json()
        .args(&["--force", "--shard", "2/2"])
        .exits(1)
        .output()
        .await;
    for (id, keep) in ids.iter().zip(&kept) {
        if !keep {
            assert_eq!(revive.session(id)["outcome"], "expired");
            assert_eq!(row(&db, id)["auto_refresh_enabled"], false);
        }
    }
}

/// `by_age` against the liveness model: rows whose last keep-alive (last
/// refresh, else creation) is known, in a model where a session lives 50
/// minutes; the buckets follow token-update's 20-minute due window.
#[tokio::test]
async fn probe_all_counts_alive_and_dead_by_age_since_the_last_keepalive() {
    let (db, aim) = stack().await;
    aim.sessions_die_after(Duration::from_secs(50 * 60));
    aim.advance(Duration::from_secs(3 * 86_400));
    // (session, minutes since its keep-alive, never refreshed, scripted 403)
    let rows: [(&str, u64, bool, bool); 10] = [
        ("a10", 10, false, false),
        ("a30", 30, false, false),
        ("n25", 25, true, false),
        ("f35", 35, false, true),
        ("a45", 45, false, false),
        ("d55", 55, false, false),
        ("d90", 90, false, false),
        ("d180", 180, false, false),
        ("d600", 600, false, false),
        ("d2880", 2880, false, false),
    ];
    let mut ids = Vec::new();
    for (session, minutes, never, blocked) in rows {
        let when = format!("now() - interval '{minutes} minutes'");
        let seed = Seed::new(&format!("{session}@example.com"), &format!("1|1|{session}"))
            .session(session);
        let seed = if never {
            seed.never_refreshed(&when)
        } else {
            seed.refreshed(&when)
        };
        ids.push(seed.insert(&db));
        aim.kept_alive_ago(session, Duration::from_secs(minutes * 60));
        if blocked {
            aim.script(session, vec![Reply::Status(403)]);
        }
    }
    let probe = || {
        BIN.run(&db, &aim)
            .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
            .probe_all()
    };
    // Some are dead: the probe fails.
    let done = probe().arg("--json").exits(1).output().await;
    let doc = done.json();
    for ((session, minutes, _, blocked), id) in rows.iter().zip(&ids) {
        let want = match (*blocked, *minutes < 50) {
            (true, _) => "failed",
            (false, true) => "alive",
            (false, false) => "dead",
        };
        assert_eq!(done.session(id)["outcome"], want, "{session}");
    }
    let bucket = |age: &str, alive: u64, dead: u64, failed: u64| serde_json::json!({"age": age, "alive": alive, "dead": dead, "failed": failed});
    assert_eq!(
        doc["by_age"],
        serde_json::json!([
            bucket("<20m", 1, 0, 0),
            // n25 by its creation, never refreshed.
            bucket("20m-40m", 2, 0, 1),
            // The lifetime, 50 minutes, lies in here.
            bucket("40m-1h", 1, 1, 0),
            bucket("1h-2h", 0, 1, 0),
            bucket("2h-6h", 0, 1, 0),
            bucket("6h-1d", 0, 1, 0),
            bucket(">1d", 0, 1, 0),
            bucket("unknown", 0, 0, 0),
        ]),
        "{doc}"
    );

    let text = probe().exits(1).output().await;
    let line = |label: &str| -> Vec<String> {
        let found = text
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(label))
            .unwrap_or_else(|| panic!("no {label} line: {}", text.stdout));
        found.split_whitespace().map(str::to_string).collect()
    };
    assert!(
        text.stdout.contains("since last keep-alive"),
        "{}",
        text.stdout
    );
    assert_eq!(line("40m-1h"), ["40m-1h", "1", "1", "0"]);
    assert_eq!(line(">1d"), [">1d", "0", "1", "0"]);
    assert!(!text.stdout.contains("unknown"), "{}", text.stdout);
}
