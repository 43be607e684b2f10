//! Running unattended: GitHub Actions annotations and step summary,
//! healthcheck pings, the metrics file, completions and the man page.

use std::time::Duration;

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::recorder::Recorder;
use aimharder_testkit::seed::Seed;
use aimharder_testkit::start::{stack, stack_with_latency};

use crate::BIN;

#[tokio::test]
async fn under_github_actions_secrets_are_masked_failures_annotated_and_summarised() {
    let (db, aim) = stack().await;
    Seed::new("good@example.com", "1|1|good").insert(&db);
    let bad = Seed::new("blocked@example.com", "2|1|blocked").insert(&db);
    aim.script("2|1|blocked", vec![Reply::Status(403)]);
    let run = BIN.run(&db, &aim).env("GITHUB_ACTIONS", "true");
    let summary_path = run.dir().join("summary.md");
    let summary_file = summary_path.to_str().unwrap().to_string();
    std::fs::write(&summary_path, "earlier step\n").unwrap();
    let done = run
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    let first = done.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("::add-mask::{}", db.service_key()),
        "mask comes first"
    );
    let errors: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", done.stderr);
    assert!(errors[0].contains("b***@example.com"), "{}", errors[0]);
    assert!(
        errors[0].contains(&bad) && errors[0].contains("failed: blocked, HTTP 403"),
        "{}",
        errors[0]
    );
    assert_eq!(done.json()["failed"], 1, "stdout stays a JSON document");

    let summary = std::fs::read_to_string(done.dir.path().join("summary.md")).unwrap();
    assert!(
        summary.starts_with("earlier step\n"),
        "appended, not overwritten"
    );
    assert!(summary.contains("| 2 | 1 | 1 | 0 | 0 | 0 |"), "{summary}");
    assert!(
        summary.contains(&format!("| `{bad}` | b***@example.com | failed |")),
        "{summary}"
    );
    for secret in [
        "1|1|good",
        "2|1|blocked",
        "php-secret-1",
        "auth-secret-1",
        db.service_key(),
    ] {
        assert!(!summary.contains(secret), "{secret} in the summary");
        assert!(!done.stdout.contains(secret), "{secret} in stdout");
        let leaked = done.stderr.lines().skip(1).any(|l| l.contains(secret));
        assert!(!leaked, "{secret} in stderr after the mask");
    }
}

#[tokio::test]
async fn healthcheck_is_pinged_at_start_and_end_with_one_run_id() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    aim.script("1|1|a", vec![Reply::LoginPage]);
    let hc = Recorder::start().await;
    BIN.run(&db, &aim)
        .env("AIMHARDER_HEALTHCHECK_URL", &hc.url())
        .refresh_all()
        .exits(1)
        .output()
        .await;
    let pings = hc.requests();
    assert_eq!(pings.len(), 2, "{pings:?}");
    assert_eq!(pings[0].method, "GET");
    let rid = pings[0]
        .target
        .strip_prefix("/ping/abc/start?rid=")
        .expect("start ping")
        .to_string();
    assert_eq!(rid.len(), 36);
    assert_eq!(pings[1].method, "POST");
    assert_eq!(pings[1].target, format!("/ping/abc/1?rid={rid}"));
    assert!(pings[1].body.contains("1 expired"), "{}", pings[1].body);
}

#[tokio::test]
async fn a_failed_ping_is_only_a_warning() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_all()
        .args(&["--healthcheck-url", "http://127.0.0.1:9/ping"])
        .succeeds()
        .output()
        .await;
    assert!(done.stderr.contains("healthcheck"), "{}", done.stderr);

    // An unset CI secret arrives empty: that is "no healthcheck", not an error.
    BIN.run(&db, &aim)
        .env("AIMHARDER_HEALTHCHECK_URL", "")
        .refresh_all()
        .args(&["--force"])
        .succeeds()
        .output()
        .await;
}

#[tokio::test]
async fn the_metrics_file_carries_the_run_in_prometheus_format() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    Seed::new("b@example.com", "2|1|b").insert(&db);
    aim.script("2|1|b", vec![Reply::Status(403)]);
    let run = BIN.run(&db, &aim);
    let folder = run.dir().join("textfile");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("aimharder.prom");
    let done = run
        .env("AIMHARDER_METRICS_FILE", path.to_str().unwrap())
        .refresh_all()
        .exits(1)
        .output()
        .await;
    let text = std::fs::read_to_string(done.dir.path().join("textfile/aimharder.prom")).unwrap();
    let value = |metric: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(metric))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{metric} missing from\n{text}"))
    };
    assert_eq!(
        value("aimharder_refresh_sessions{command=\"refresh-all\",outcome=\"refreshed\"}"),
        1.0
    );
    assert_eq!(
        value("aimharder_refresh_sessions{command=\"refresh-all\",outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        value("aimharder_refresh_last_run_exit_code{command=\"refresh-all\"}"),
        1.0
    );
    assert!(value("aimharder_refresh_last_run_timestamp_seconds{command=\"refresh-all\"}") > 1.7e9);
    assert!(!text.contains("last_success"), "no run has succeeded yet");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, v) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("aimharder_refresh_"), "{line}");
        v.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    let entries: Vec<String> = std::fs::read_dir(done.dir.path().join("textfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".prom") || n.ends_with(".tmp"))
        .collect();
    assert_eq!(
        entries,
        ["aimharder.prom"],
        "the temp file was renamed away"
    );
}

/// The samples of `file` a command wrote, as lines.
fn series_of(file: &std::path::Path, command: &str) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("command=\"{command}\"")))
        .map(String::from)
        .collect()
}

/// A table larger than one run covers: the deadline stops the run with due
/// sessions left (exit 75). It failed nothing, so it is a success.
#[tokio::test]
async fn a_run_its_deadline_stopped_updates_the_last_success() {
    let (db, aim) = stack_with_latency(Duration::from_millis(400)).await;
    for i in 0..30 {
        Seed::new(&format!("d{i}@example.com"), &format!("{i}|1|d"))
            .refreshed("now() - interval '7 hours'")
            .insert(&db);
    }
    let run = BIN.run(&db, &aim);
    let path = run.dir().join("aimharder.prom");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let done = run
        .env("AIMHARDER_METRICS_FILE", path.to_str().unwrap())
        .refresh_all()
        .args(&["--concurrency", "2", "--max-duration", "1s"])
        .exits(75)
        .output()
        .await;
    let series = series_of(&done.dir.path().join("aimharder.prom"), "refresh-all");
    let value = |metric: &str| -> u64 {
        series
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{metric}{{command=\"refresh-all\"}} ")))
            .unwrap_or_else(|| panic!("no {metric} in {series:#?}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("aimharder_refresh_last_run_exit_code"), 75);
    let success = value("aimharder_refresh_last_success_timestamp_seconds");
    assert!(
        success >= started,
        "{success} is before the run ({started})"
    );
    assert_eq!(
        success,
        value("aimharder_refresh_last_run_timestamp_seconds"),
        "the last success is this run"
    );
}

/// A `refresh-one` sharing the file with a failing schedule: it adds series
/// of its own and keeps refresh-all's as they were, so refresh-all still
/// shows no success.
#[tokio::test]
async fn a_refresh_one_after_a_refresh_all_keeps_its_series_and_adds_its_own() {
    let (db, aim) = stack().await;
    let good = Seed::new("a@example.com", "1|1|a").insert(&db);
    Seed::new("b@example.com", "2|1|b").insert(&db);
    aim.script("2|1|b", vec![Reply::Status(403)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aimharder.prom");
    BIN.run(&db, &aim)
        .env("AIMHARDER_METRICS_FILE", path.to_str().unwrap())
        .refresh_all()
        .exits(1)
        .output()
        .await;
    let before = series_of(&path, "refresh-all");
    assert!(!before.is_empty());
    BIN.run(&db, &aim)
        .env("AIMHARDER_METRICS_FILE", path.to_str().unwrap())
        .refresh_one(&good)
        .succeeds()
        .output()
        .await;
    assert_eq!(
        series_of(&path, "refresh-all"),
        before,
        "refresh-all's series changed"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for line in [
        "aimharder_refresh_last_run_exit_code{command=\"refresh-one\"} 0",
        "aimharder_refresh_sessions{command=\"refresh-one\",outcome=\"refreshed\"} 1",
        "aimharder_refresh_sessions{command=\"refresh-all\",outcome=\"failed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    let successes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("aimharder_refresh_last_success_timestamp_seconds"))
        .collect();
    assert_eq!(successes.len(), 1, "{text}");
    assert!(
        successes[0].contains("command=\"refresh-one\""),
        "refresh-one's success is credited to refresh-all: {text}"
    );
}

#[tokio::test]
async fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let done = BIN
            .bare()
            .args(&["completions", shell])
            .succeeds()
            .output()
            .await;
        assert!(
            done.stdout.contains("refresh-all") && done.stdout.contains("max-duration"),
            "{shell}"
        );
    }
    let man = BIN.bare().arg("man").succeeds().output().await;
    assert!(
        man.stdout.contains(".TH aimharder-refresh 1"),
        "{}",
        man.stdout
    );
}

#[tokio::test]
async fn quiet_prints_nothing_on_success_and_only_the_problems_otherwise() {
    let (db, aim) = stack().await;
    let id = Seed::new("q@example.com", "1|1|quiet").insert(&db);
    for args in [
        &["refresh-all", "-q", "--rate", "0"][..],
        &["refresh-one", "-q", "--id", &id][..],
        &["probe", "-q", "--all"][..],
        &["status", "-q", "--check"][..],
    ] {
        let done = BIN.run(&db, &aim).args(args).succeeds().output().await;
        assert_eq!(done.stdout, "", "{args:?}");
        assert_eq!(done.stderr, "", "{args:?}");
    }
    // A problem is still told.
    Seed::new("b@example.com", "2|1|blocked").insert(&db);
    aim.script("2|1|blocked", vec![Reply::Status(403)]);
    let done = BIN
        .run(&db, &aim)
        .refresh_all()
        .args(&["-q", "--force"])
        .exits(1)
        .output()
        .await;
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the failure and the counts: {}",
        done.stdout
    );
    assert!(lines[0].starts_with("FAILED"), "{}", done.stdout);
    // An enabled session with an error: status says so, even under -q.
    let done = BIN.run(&db, &aim).args(&["status", "-q"]).output().await;
    assert!(done.stdout.contains("1 with errors"), "{}", done.stdout);
}

#[tokio::test]
async fn only_refresh_runs_ping_the_healthcheck_and_status_writes_only_its_schedule() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    let hc = Recorder::start().await;
    for args in [
        &["status"][..],
        &["status", "--check"][..],
        &["refresh-all", "--dry-run"][..],
    ] {
        let run = BIN.run(&db, &aim);
        let metrics = run.dir().join("metrics.prom");
        let done = run
            .env("AIMHARDER_HEALTHCHECK_URL", &hc.url())
            .env("AIMHARDER_METRICS_FILE", metrics.to_str().unwrap())
            .args(args)
            .succeeds()
            .output()
            .await;
        let metrics = done.dir.path().join("metrics.prom");
        if args[0] == "status" {
            // Only the figures of the schedule it checked, as its own.
            let text = std::fs::read_to_string(&metrics).unwrap();
            let names: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split('{').next().unwrap())
                .collect();
            assert_eq!(
                names,
                [
                    "aimharder_refresh_schedule_capacity_per_hour",
                    "aimharder_refresh_schedule_needed_per_hour"
                ],
                "{text}"
            );
            assert!(text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.contains("{command=\"status\"}")));
        } else {
            assert!(!metrics.exists(), "{args:?} wrote the metrics file");
        }
        assert!(hc.requests().is_empty(), "{args:?} pinged the healthcheck");
    }
    // A refresh run does both.
    let run = BIN.run(&db, &aim);
    let metrics = run.dir().join("metrics.prom");
    let done = run
        .env("AIMHARDER_HEALTHCHECK_URL", &hc.url())
        .env("AIMHARDER_METRICS_FILE", metrics.to_str().unwrap())
        .refresh_all()
        .succeeds()
        .output()
        .await;
    assert!(done.dir.path().join("metrics.prom").exists());
    assert_eq!(hc.requests().len(), 2);
}
