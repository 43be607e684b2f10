//! Politeness toward AimHarder: the circuit breaker, a run-wide pause on
//! `Retry-After`, and a proxy for AimHarder's traffic only.

use std::time::Duration;

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::forward_proxy::ForwardProxy;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::{stack, stack_with_latency};

use crate::BIN;

/// `n` due sessions, each with cookies of its own session, due in seed
/// order (the first seeded is the first out, which the pause test counts on).
fn seed(db: &TestDb, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            Seed::new(&format!("{tag}{i}@example.com"), &format!("{i}|1|{tag}"))
                .session(&format!("{tag}{i}"))
                .insert(db)
        })
        .collect()
}

#[tokio::test]
async fn a_refused_network_trips_the_breaker_and_leaves_the_rest_untouched() {
    let (db, aim) = stack().await;
    aim.answer_everyone(Reply::Status(403));
    let ids = seed(&db, 60, "refused");
    let summary = tempfile::NamedTempFile::new().unwrap();
    let done = BIN
        .run(&db, &aim)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path().to_str().unwrap())
        // 12 in a row: more than the 10 annotations, whatever was in flight.
        .env("AIMHARDER_MAX_CONSECUTIVE_FAILURES", "12")
        .refresh_all_json()
        .args(&["--concurrency", "4"])
        .exits(69)
        .output()
        .await;
    let line = done
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {}", done.stderr));
    assert!(
        line.contains("AimHarder refused 12 sessions in a row (HTTP 403)"),
        "{line}"
    );
    assert!(
        line.contains("AIMHARDER_PROXY") && line.contains("self-hosted runner"),
        "{line}"
    );
    let calls = aim.seen().len();
    assert!((12..=12 + 4).contains(&calls), "{calls} calls");
    let doc = done.json();
    assert_eq!(doc["failed"], calls as u64, "every call recorded: {doc}");
    assert!(
        doc["stopped"].as_str().unwrap().contains("circuit breaker"),
        "{doc}"
    );
    let stamped =
        db.sql("SELECT count(*) FROM auth_sessions WHERE last_refresh_error LIKE '%HTTP 403%'");
    assert_eq!(stamped, calls.to_string());
    for id in &ids {
        let r = row(&db, id);
        assert_eq!(r["refresh_count"], 3);
        if r["last_refresh_error"].is_null() {
            assert_eq!(r["auto_refresh_enabled"], true, "untouched");
        }
    }
    // Bounded annotations: ten, then one line for the rest.
    let annotations = done
        .stderr
        .matches("::error title=aimharder-refresh::")
        .count();
    assert_eq!(annotations, 11, "{}", done.stderr);
    assert!(
        done.stderr.contains("more sessions failed"),
        "{}",
        done.stderr
    );
    let summary = std::fs::read_to_string(summary.path()).unwrap();
    assert!(summary.contains("circuit breaker"), "{summary}");

    // probe stops the same way.
    let probe = BIN
        .run(&db, &aim)
        .probe_all_json()
        .args(&["--max-consecutive-failures", "5"])
        .exits(69)
        .output()
        .await;
    assert!(
        probe
            .stderr
            .contains("AimHarder refused 5 sessions in a row"),
        "{}",
        probe.stderr
    );
    let probed = probe.json()["probed"].as_u64().unwrap();
    assert!((5..=5 + 4).contains(&probed), "{probed}");
    assert_eq!(aim.seen().len(), calls + probed as usize);
}

#[tokio::test]
async fn scattered_refusals_never_trip_the_breaker() {
    let (db, aim) = stack().await;
    let ids = seed(&db, 60, "scattered");
    for i in (0..60).step_by(10) {
        aim.script(&format!("{i}|1|scattered"), vec![Reply::Status(403)]);
    }
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--max-consecutive-failures", "2"])
        .exits(1)
        .output()
        .await;
    let doc = done.json();
    assert_eq!(
        (&doc["refreshed"], &doc["failed"]),
        (&54.into(), &6.into()),
        "{doc}"
    );
    assert!(doc.get("stopped").is_none(), "{doc}");
    assert_eq!(aim.seen().len(), ids.len());
}

#[tokio::test]
async fn a_retry_after_pauses_the_whole_run() {
    let (db, aim) = stack_with_latency(Duration::from_millis(200)).await;
    let ids = seed(&db, 24, "pause");
    aim.script("3|1|pause", vec![Reply::RetryAfter(429, 2), Reply::ok()]);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "4"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], ids.len() as u64);
    let seen = aim.seen();
    let arrivals = aim.arrival_times();
    let refused = seen.iter().position(|s| s.token == "3|1|pause").unwrap();
    let at = arrivals[refused];
    // The 429 reached the tool ~200 ms after it arrived; requests sent
    // before then may still arrive, none may start after until 2 s passed.
    let window = (
        at + Duration::from_millis(700),
        at + Duration::from_millis(1900),
    );
    let inside: Vec<Duration> = arrivals
        .iter()
        .filter(|t| **t > window.0 && **t < window.1)
        .map(|t| *t - at)
        .collect();
    assert!(inside.is_empty(), "requests inside the pause: {inside:?}");
    let after = arrivals.iter().filter(|t| **t >= window.1).count();
    assert!(after >= 10, "the run resumed after the pause: {after}");
}

#[tokio::test]
async fn aimharder_traffic_goes_through_the_proxy_and_supabase_does_not() {
    let (db, aim) = stack().await;
    let proxy = ForwardProxy::start().await;
    let ids = seed(&db, 5, "proxied");
    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_PROXY", &proxy.url(Some("op:s3cret-pass")))
        .env("GITHUB_ACTIONS", "true")
        .refresh_all_json()
        .args(&["-v"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], ids.len() as u64);
    BIN.run(&db, &aim)
        .env("AIMHARDER_PROXY", &proxy.url(None))
        .probe_all()
        .succeeds()
        .output()
        .await;
    let passed = proxy.passed();
    let aim_authority = aim.url().trim_start_matches("http://").to_string();
    assert_eq!(
        passed.len(),
        aim.seen().len(),
        "every AimHarder request went through it"
    );
    assert_eq!(passed.len(), 2 * ids.len());
    assert!(
        passed.iter().all(|p| p.authority == aim_authority),
        "{passed:?}"
    );
    assert!(passed.iter().any(|p| p.path.starts_with("/api/whoami")));
    assert!(
        passed[..ids.len()]
            .iter()
            .all(|p| p.proxy_authorization.is_some()),
        "credentials sent to the proxy"
    );
    // The password is masked for GitHub and printed nowhere else.
    assert!(
        done.stderr.contains("::add-mask::s3cret-pass"),
        "{}",
        done.stderr
    );
    // (The mask commands themselves carry it: that is how masking works.)
    let shown: String = done
        .stderr
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    assert!(
        !shown.contains("s3cret") && !done.stdout.contains("s3cret"),
        "{shown}"
    );

    let bad = BIN
        .run(&db, &aim)
        .env("AIMHARDER_PROXY", "ftp://op:s3cret-pass@127.0.0.1:1")
        .args(&["refresh-all"])
        .exits(78)
        .output()
        .await;
    assert!(
        bad.stderr.contains("AIMHARDER_PROXY") && !bad.stderr.contains("s3cret"),
        "{}",
        bad.stderr
    );

    // socks5 is taken too; through a proxy that is not there, AimHarder is
    // unreachable while Supabase (not proxied) still records the failure.
    let socks = BIN
        .run(&db, &aim)
        .env("AIMHARDER_PROXY", "socks5://127.0.0.1:1")
        .refresh_one_json(&ids[0])
        .exits(1)
        .output()
        .await;
    assert_eq!(socks.json()["outcome"], "failed", "{}", socks.stdout);
    assert!(!row(&db, &ids[0])["last_refresh_error"].is_null());
}

#[tokio::test]
async fn an_aimharder_failing_through_every_retry_trips_the_breaker_too() {
    let (db, aim) = stack().await;
    aim.answer_everyone(Reply::Status(502));
    let ids = seed(&db, 40, "down");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "2", "--max-consecutive-failures", "3"])
        .exits(69)
        .output()
        .await;
    assert!(
        done.stderr
            .contains("AimHarder failed 3 sessions in a row (HTTP 502 (after 3 attempts))"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("AIMHARDER_PROXY"),
        "not a refused network"
    );
    // In flight when it tripped: sessions between two attempts too (the
    // pipeline holds twice the concurrency), recorded without a retry.
    let failed = done.json()["failed"].as_u64().unwrap();
    assert!((3..=3 + 2 * 2).contains(&failed), "{failed}");
    assert!(
        aim.seen().len() as u64 <= 3 * failed,
        "at most 3 attempts per session"
    );
    assert!(ids.len() as u64 > failed, "the rest were left alone");
}
