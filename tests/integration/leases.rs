//! Claims just in time, and leases (issue 17): a slow run never calls a
//! session whose lease lapsed, a long call keeps its claim, and a killed
//! runner strands few sessions, only for its lease.

use std::time::Duration;

use aimharder_testkit::aimharder::{FakeAimHarder, Reply};
use aimharder_testkit::seed::{self, Seed};
use aimharder_testkit::stack::TestDb;

use aimharder_testkit::start::stack_with_latency;

use crate::BIN;

/// At the moment AimHarder answers a call, whether the session's claim is
/// live (its lease not over) and held by exactly one run: recorded in
/// `lease_checks` by SQL run from inside the simulated AimHarder.
fn checking_the_lease(db: &TestDb, aim: &FakeAimHarder, id: &str, token: &str) {
    let check = db.sql_hook(&format!(
        "INSERT INTO lease_checks SELECT '{id}', count(*) FROM refresh_claims \
         WHERE session_id = '{id}' AND lease_until > now() AND credentials NOT IN ('', 'written')"
    ));
    aim.script(token, vec![Reply::Then(check, Box::new(Reply::ok()))]);
}

#[tokio::test]
async fn a_slow_run_never_calls_a_session_whose_lease_lapsed() {
    let (db, aim) = stack_with_latency(Duration::ZERO).await;
    db.sql("CREATE TABLE lease_checks (session_id uuid, live bigint)");
    let ids: Vec<String> = (0..6)
        .map(|i| {
            let token = format!("{i}|1|slow");
            let id = Seed::new(&format!("s{i}@example.com"), &token).insert(&db);
            checking_the_lease(&db, &aim, &id, &token);
            id
        })
        .collect();
    // A wide concurrency at a slow pace with a short lease: six calls over
    // five seconds, each lease two seconds. Claiming them all up front (as
    // a batch the size of the concurrency would) has the last ones called
    // seconds after their lease ended.
    let done = BIN
        .run(&db, &aim)
        .args(&[
            "refresh-all",
            "--json",
            "--rate",
            "1",
            "--concurrency",
            "32",
            "--claim-lease",
            "2s",
        ])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 6, "{}", done.stdout);
    let checks = db.query_json("SELECT session_id::text AS id, live FROM lease_checks");
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), 6, "one call per session: {checks:?}");
    for check in checks {
        assert_eq!(check["live"], 1, "called without a live claim: {check}");
        assert!(ids.contains(&check["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(
        db.sql("SELECT count(*) FROM refresh_claims WHERE lease_until > now()"),
        "0",
        "every claim given back or ended by its write"
    );
}

#[tokio::test]
async fn a_call_that_runs_longer_than_the_lease_keeps_its_claim() {
    let (db, aim) = stack_with_latency(Duration::ZERO).await;
    let id = Seed::new("slow@example.com", "1|1|long").insert(&db);
    aim.script(
        "1|1|long",
        vec![Reply::Delay(Duration::from_secs(4), Box::new(Reply::ok()))],
    );
    let mut run = tokio::spawn(
        BIN.run(&db, &aim)
            .refresh_one_json(&id)
            .args(&["--claim-lease", "2s"])
            .succeeds()
            .output(),
    );
    aim.wait_for_requests(1).await;
    let first = db.sql(&format!(
        "SELECT lease_until FROM refresh_claims WHERE session_id = '{id}'"
    ));
    // Watch the claim for as long as the call runs (twice its lease): it
    // must be live at every look, and its lease must move on.
    let state = format!(
        "SELECT CASE WHEN credentials = 'written' THEN 'written' \
                     WHEN lease_until > now() THEN 'live' ELSE 'lapsed' END \
                || ' ' || (lease_until > '{first}'::timestamptz) \
         FROM refresh_claims WHERE session_id = '{id}'"
    );
    let mut looks = Vec::new();
    let done = loop {
        tokio::select! {
            done = &mut run => break done.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let look = db.sql(&state);
                if look.starts_with("written") {
                    break run.await.unwrap();
                }
                looks.push(look);
            }
        }
    };
    assert_eq!(done.json()["outcome"], "refreshed", "{}", done.stdout);
    assert!(looks.len() >= 10, "the call ran for seconds: {looks:?}");
    assert!(
        looks.iter().all(|l| l.starts_with("live")),
        "the claim lapsed during the call: {looks:?}"
    );
    assert!(
        looks.iter().any(|l| l.ends_with("true")),
        "the lease was never renewed: {looks:?}"
    );
    assert_eq!(aim.seen().len(), 1);
    assert_eq!(
        db.sql(&format!(
            "SELECT refresh_count FROM auth_sessions WHERE id = '{id}'"
        )),
        "4"
    );
}

#[tokio::test]
async fn a_killed_runner_strands_few_sessions_and_only_for_its_lease() {
    let (db, aim) = stack_with_latency(Duration::from_millis(300)).await;
    seed::due_in_bulk(&db, 200, "killed");
    let child = tokio::process::Command::new(BIN.path())
        .args([
            "refresh-all",
            "--json",
            "--rate",
            "0",
            "--concurrency",
            "4",
            "--claim-lease",
            "30s",
        ])
        .env_clear()
        .env("SUPABASE_REST_URL", db.rest_url())
        .env("SUPABASE_SERVICE_ROLE_KEY", db.service_key())
        .env("AIMHARDER_BASE_URL", aim.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    aim.wait_for_requests(12).await;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGKILL) };
    let _ = child.wait_with_output().await;
    // What it held: the calls in flight and the few claimed to start next
    // (four times the concurrency, eight when claims take long, as on a
    // loaded machine), never the whole due set.
    let stranded: usize = db
        .sql("SELECT count(*) FROM refresh_claims WHERE lease_until > now() AND credentials <> 'written'")
        .parse()
        .unwrap();
    assert!(stranded >= 1, "the killed run held its calls in flight");
    assert!(stranded <= 4 + 8 * 4, "{stranded} sessions stranded");
    // For its lease, no longer.
    let longest =
        db.sql("SELECT max(lease_until) <= now() + interval '30 seconds' FROM refresh_claims");
    assert_eq!(longest, "t");
    // Once the lease is over another run takes them (here: made over at
    // once, instead of waiting 30 s).
    db.sql("UPDATE refresh_claims SET lease_until = now() - interval '1 second'");
    let calls_before = aim.seen().len();
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "32"])
        .succeeds()
        .output()
        .await;
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 0"),
        "0",
        "every session refreshed in the end, the stranded ones too"
    );
    assert_eq!(
        aim.seen().len() - calls_before,
        done.json()["refreshed"].as_u64().unwrap() as usize
    );
}
