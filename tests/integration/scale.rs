//! Pipeline, bounds, pace, sharding, limits, deadlines and signals. No
//! assertion here depends on how fast the machine is: they check counts,
//! orderings and lower bounds.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use aimharder_testkit::aimharder::{Event, FakeAimHarder, Reply};
use aimharder_testkit::proxy::{Fault, FaultProxy};
use aimharder_testkit::run::Running;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::{stack, stack_with_latency};

use crate::BIN;

/// `n` due sessions, each older than the one before: the last seeded is
/// the first out.
fn seed_due(db: &TestDb, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            Seed::new(&format!("{tag}{i}@example.com"), &format!("{i}|1|{tag}"))
                .refreshed(&format!(
                    "now() - interval '7 hours' - interval '{i} minutes'"
                ))
                .insert(db)
        })
        .collect()
}

fn ids_of(doc: &Value) -> BTreeSet<String> {
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound_and_reaches_it() {
    let (db, aim) = stack_with_latency(Duration::from_millis(100)).await;
    seed_due(&db, 24, "c");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "3"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 24);
    assert_eq!(aim.max_in_flight(), 3);
}

#[tokio::test]
async fn a_slow_session_does_not_hold_back_the_others() {
    let (db, aim) = stack().await;
    let ids = seed_due(&db, 12, "p");
    // The oldest session (last in seed order) is first out and answers slowly.
    aim.script(
        "11|1|p",
        vec![Reply::Delay(Duration::from_secs(3), Box::new(Reply::ok()))],
    );
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "2"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 12);
    let events = aim.events();
    let slow_answered = events
        .iter()
        .position(|e| *e == Event::Answered("11|1|p".into()))
        .unwrap();
    let arrivals_before = events[..slow_answered]
        .iter()
        .filter(|e| matches!(e, Event::Arrived(_)))
        .count();
    assert_eq!(
        arrivals_before, 12,
        "all others started while the slow one ran: {events:?}"
    );
    assert_eq!(row(&db, &ids[11])["refresh_count"], 4);
}

#[tokio::test]
async fn the_pace_applies_to_retries_too() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|r").insert(&db);
    Seed::new("b@example.com", "2|1|r").insert(&db);
    aim.script(
        "1|1|r",
        vec![Reply::Status(500), Reply::Status(500), Reply::ok()],
    );
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-all", "--json", "--rate", "4"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.session(&id)["attempts"], 3);
    let times = aim.arrival_times();
    assert_eq!(times.len(), 4);
    let mut sorted = times.clone();
    sorted.sort();
    for pair in sorted.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(230),
            "{:?} apart",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn shards_partition_the_due_set() {
    let (db, aim) = stack().await;
    let all: BTreeSet<String> = seed_due(&db, 40, "s").into_iter().collect();
    let mut seen = BTreeSet::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let done = BIN
            .run(&db, &aim)
            .args(&["refresh-all", "--dry-run", "--json", "--shard", &shard])
            .succeeds()
            .output()
            .await;
        let part = ids_of(&done.json());
        assert!(!part.is_empty(), "shard {shard} is empty");
        assert!(part.is_disjoint(&seen), "shard {shard} overlaps another");
        seen.extend(part);
    }
    assert_eq!(seen, all);
    for i in 1..=3 {
        let shard = format!("{i}/3");
        BIN.run(&db, &aim)
            .refresh_all()
            .args(&["--shard", &shard])
            .succeeds()
            .output()
            .await;
    }
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 4"),
        "40"
    );
    assert_eq!(aim.seen().len(), 40);
}

#[tokio::test]
async fn limit_takes_the_oldest_first() {
    let (db, aim) = stack().await;
    let ids = seed_due(&db, 10, "l");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--limit", "4"])
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 4);
    let oldest: BTreeSet<String> = ids[6..].iter().cloned().collect();
    assert_eq!(ids_of(&done.json()), oldest);
}

/// Every row is either as seeded or fully refreshed, never in between.
fn assert_whole(db: &TestDb, ids: &[String]) -> usize {
    let mut refreshed = 0;
    for id in ids {
        let r = row(db, id);
        let fresh = r["refresh_count"] == 4;
        assert!(r["last_refresh_error"].is_null(), "{r}");
        if fresh {
            refreshed += 1;
        } else {
            assert_eq!(r["refresh_count"], 3, "{r}");
        }
    }
    refreshed
}

#[tokio::test]
async fn the_deadline_stops_new_work_records_in_flight_and_exits_75() {
    let (db, aim) = stack_with_latency(Duration::from_millis(400)).await;
    let ids = seed_due(&db, 30, "d");
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "2", "--max-duration", "1s"])
        .exits(75)
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["stopped"], "deadline reached");
    let refreshed = assert_whole(&db, &ids);
    assert!((2..30).contains(&refreshed), "{refreshed}");
    assert_eq!(doc["refreshed"], refreshed as u64);
    assert_eq!(
        aim.seen().len(),
        refreshed,
        "every request sent was recorded"
    );
}

#[tokio::test]
async fn no_retry_starts_after_the_deadline() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|late").insert(&db);
    aim.script("1|1|late", vec![Reply::RetryAfter(503, 30), Reply::ok()]);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .args(&["--max-duration", "2s"])
        .exits(1)
        .output()
        .await;
    assert_eq!(done.session(&id)["attempts"], 1);
    assert_eq!(aim.calls_for("1|1|late"), 1);
    let err = row(&db, &id)["last_refresh_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("no retry"), "{err}");
}

/// `refresh-all --json --rate 0 --concurrency 2` (and `extra`) as a child
/// process a test can signal, expected to end interrupted (75).
#[track_caller]
fn spawn_refresh_all(db: &TestDb, aim: &FakeAimHarder, extra: &[&str]) -> Running {
    BIN.run(db, aim)
        .refresh_all_json()
        .args(&["--concurrency", "2"])
        .args(extra)
        .exits(75)
        .spawn()
}

async fn signal_mid_run(signal: i32, name: &str) {
    let (db, aim) = stack_with_latency(Duration::from_millis(500)).await;
    let ids = seed_due(&db, 20, "sig");
    let running = spawn_refresh_all(&db, &aim, &[]);
    aim.wait_for_requests(2).await;
    running.signal(signal);
    let done = running.finish().await;
    let doc: Value = serde_json::from_str(&done.stdout).unwrap();
    assert!(doc["stopped"].as_str().unwrap().contains(name), "{doc}");
    let refreshed = assert_whole(&db, &ids);
    assert!(refreshed >= 2, "the requests in flight were recorded");
    assert_eq!(aim.seen().len(), refreshed);
    assert_eq!(doc["refreshed"], refreshed as u64);
}

#[tokio::test]
async fn sigterm_finishes_in_flight_and_exits_75() {
    signal_mid_run(libc::SIGTERM, "SIGTERM").await;
}

#[tokio::test]
async fn sigint_finishes_in_flight_and_exits_75() {
    signal_mid_run(libc::SIGINT, "SIGINT").await;
}

/// A second signal ends the run without waiting for the requests in flight
/// (here they would hang for the whole `--request-timeout`), and stdout is
/// still one whole JSON document.
#[tokio::test]
async fn a_second_signal_ends_the_run_at_once() {
    let (db, aim) = stack_with_latency(Duration::from_secs(3600)).await;
    let ids = seed_due(&db, 6, "hang");
    let running = spawn_refresh_all(&db, &aim, &["--request-timeout", "300s"]);
    aim.wait_for_requests(2).await;
    running.signal(libc::SIGTERM);
    // The second signal only once the first was taken: the tool says so.
    running.wait_for_log("starting nothing new").await;
    running.signal(libc::SIGTERM);
    let done = running.finish().await;
    let doc: Value = serde_json::from_str(&done.stdout).unwrap();
    // The two requests in flight were not waited for (they would have ended
    // `failed`, timed out): listed as ended during their call, the others
    // as never started.
    assert_eq!(doc["failed"], 0, "{doc}");
    assert_eq!(doc["refreshed"], 0, "{doc}");
    let mut during = 0;
    for s in doc["sessions"].as_array().unwrap() {
        let error = s["error"].as_str().unwrap();
        if error.contains("second signal during its call") {
            during += 1;
        } else {
            assert_eq!(error, "stopped before it started", "{doc}");
        }
    }
    assert_eq!(during, 2, "{doc}");
    assert!(
        doc["stopped"].as_str().unwrap().contains("SIGTERM"),
        "{doc}"
    );
    assert!(done.stderr.contains("ending now"), "{}", done.stderr);
    for id in &ids {
        assert_eq!(row(&db, id)["refresh_count"], 3, "{id} untouched");
    }
}

#[tokio::test]
async fn an_unrecorded_result_wins_over_the_deadline() {
    let (db, aim) = stack_with_latency(Duration::from_millis(300)).await;
    let proxy = FaultProxy::start(&db.rest_url()).await;
    // Plain 500s are not retried: each write fails at once.
    proxy.fail("rpc/refresh_write", 0, usize::MAX, Fault::Status(500));
    let ids: Vec<String> = (0..20)
        .map(|i| Seed::new(&format!("u{i}@example.com"), &format!("{i}|1|x")).insert(&db))
        .collect();
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", &proxy.rest_url())
        .refresh_all_json()
        .args(&["--concurrency", "1", "--max-duration", "1s"])
        .exits(69)
        .output()
        .await;
    let doc = done.json();
    assert!(doc["unrecorded"].as_u64().unwrap() >= 1, "{doc}");
    // The writes failing stop the run before its deadline: 69 naming
    // Supabase wins over 75.
    assert!(
        doc["stopped"].as_str().unwrap().contains("Supabase"),
        "{doc}"
    );
    let untouched = ids
        .iter()
        .filter(|id| row(&db, id)["refresh_count"] == 3)
        .count();
    assert_eq!(untouched, 20, "no write got through the proxy");
}
