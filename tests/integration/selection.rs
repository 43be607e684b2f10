//! `--filter COLUMN=OP.VALUE` (`AIMHARDER_FILTER`): every walk and every
//! count narrowed to matching rows, on the server; a filter the table cannot
//! take stops the run before anything is called or printed.
//!
//! The web app keeps two rows per member: `session_type` `device` (the
//! browser holds that token and rotates it itself) and `background`. The
//! test table has the column with `background` as its default, like the
//! web app's; the tool's migrations know nothing of it.

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::gateway_stack;
use aimharder_testkit::start::stack;

use crate::refresh_all::now_stamp;
use crate::BIN;

const BACKGROUND: &str = "session_type=eq.background";

fn make_device(db: &TestDb, id: &str) {
    db.sql(&format!(
        "UPDATE auth_sessions SET session_type = 'device' WHERE id = '{id}'"
    ));
}

/// One row in each state `status` counts, tokens and emails tagged with
/// `tag`; returns their ids.
fn every_state(db: &TestDb, tag: &str) -> Vec<String> {
    vec![
        Seed::new(&format!("fresh-{tag}@example.com"), &format!("1|1|{tag}"))
            .refreshed("now() - interval '1 hour'")
            .insert(db),
        Seed::new(&format!("stale-{tag}@example.com"), &format!("2|1|{tag}"))
            .refreshed("now() - interval '2 days'")
            .insert(db),
        Seed::new(&format!("never-{tag}@example.com"), &format!("3|1|{tag}"))
            .never_refreshed("now() - interval '1 day'")
            .insert(db),
        Seed::new(&format!("young-{tag}@example.com"), &format!("4|1|{tag}"))
            .never_refreshed("now() - interval '1 hour'")
            .insert(db),
        Seed::new(&format!("err-{tag}@example.com"), &format!("5|1|{tag}"))
            .error("[2020-01-01T00:00:00Z] blocked")
            .insert(db),
        Seed::new(&format!("held-{tag}@example.com"), &format!("6|1|{tag}"))
            .refreshed("now() - interval '2 days'")
            .error(&format!("[{}] blocked", now_stamp(db)))
            .insert(db),
        Seed::new(&format!("off-{tag}@example.com"), &format!("7|1|{tag}"))
            .disabled()
            .insert(db),
    ]
}

#[tokio::test]
async fn device_rows_are_never_called_with_the_filter() {
    let (db, aim) = stack().await;
    let background: Vec<String> = (0..3)
        .map(|i| Seed::new(&format!("bg{i}@example.com"), &format!("{i}|1|bg")).insert(&db))
        .collect();
    let device: Vec<String> = (0..3)
        .map(|i| {
            let id = Seed::new(&format!("dev{i}@example.com"), &format!("{i}|1|dev")).insert(&db);
            make_device(&db, &id);
            id
        })
        .collect();
    let before: Vec<_> = device.iter().map(|id| row(&db, id)).collect();

    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
        .refresh_all_json()
        .args(&["--filter", BACKGROUND])
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["selected"], 3, "{doc}");
    assert_eq!(doc["refreshed"], 3, "{doc}");
    let mut called = done.session_ids();
    called.sort();
    let mut expected = background.clone();
    expected.sort();
    assert_eq!(called, expected);
    let seen = aim.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.token.ends_with("|bg")),
        "a device row's token went to AimHarder: {seen:?}"
    );
    let after: Vec<_> = device.iter().map(|id| row(&db, id)).collect();
    assert_eq!(after, before, "device rows are left exactly as they were");
    for id in &background {
        assert_eq!(row(&db, id)["refresh_count"], 4);
    }
}

#[tokio::test]
async fn probe_all_and_a_dry_run_take_only_matching_rows() {
    let (db, aim) = stack().await;
    let bg = Seed::new("bg@example.com", "1|1|bg")
        .session("sess-bg")
        .insert(&db);
    Seed::new("off@example.com", "2|1|off")
        .session("sess-off")
        .disabled()
        .insert(&db);
    let dev = Seed::new("dev@example.com", "3|1|dev")
        .session("sess-dev")
        .insert(&db);
    make_device(&db, &dev);
    aim.answer_everyone(Reply::ok());

    // The variable joins filters with &; every one must hold.
    let probed = BIN
        .run(&db, &aim)
        .env(
            "AIMHARDER_FILTER",
            "session_type=eq.background&auto_refresh_enabled=is.true",
        )
        .probe_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(probed.session_ids(), [bg]);
    let asked: Vec<_> = aim.seen().into_iter().filter_map(|s| s.session).collect();
    assert_eq!(asked, ["sess-bg"]);

    let listed = BIN
        .run(&db, &aim)
        .args(&["refresh-all", "--dry-run", "--json"])
        .args(&["--filter", "session_type=not.eq.background"])
        .succeeds()
        .output()
        .await;
    assert_eq!(listed.session_ids(), [dev]);
}

#[tokio::test]
async fn status_with_a_filter_counts_and_lists_only_matching_rows() {
    let (db, aim) = stack().await;
    let background = every_state(&db, "bg");
    // Device rows in every state, and more of them, so that any count
    // taking them in is off.
    for tag in ["dev1", "dev2"] {
        for id in every_state(&db, tag) {
            make_device(&db, &id);
        }
    }
    let status = |args: &[&str]| BIN.run(&db, &aim).status_json().args(args);

    let done = status(&["--filter", BACKGROUND]).succeeds().output().await;
    let doc = done.json();
    let counts = |doc: &serde_json::Value| {
        [
            "total",
            "auto_refresh_enabled",
            "fresh",
            "stale",
            "never_refreshed",
            "with_errors",
            "due",
        ]
        .map(|k| doc[k].as_u64().unwrap_or_else(|| panic!("{k} in {doc}")))
    };
    // total 7, enabled 6 (not off), fresh: fresh and err (7h ago), stale:
    // stale, never (created 1 day ago), held; never refreshed: never,
    // young; errors: err, held; due: stale, never, err (old error).
    assert_eq!(counts(&doc), [7, 6, 2, 3, 2, 2, 3], "{doc}");

    // Every row through the filtered counts, as the one function counts
    // them: the two ways agree on every state.
    let all = status(&["--filter", "session_type=in.(device,background)"])
        .output()
        .await;
    let unfiltered = status(&[]).output().await;
    assert_eq!(counts(&unfiltered.json()), [21, 18, 6, 9, 6, 6, 9]);
    assert_eq!(counts(&all.json()), counts(&unfiltered.json()));

    let human = BIN
        .run(&db, &aim)
        .args(&["status", "--filter", BACKGROUND])
        .output()
        .await;
    assert!(
        human.stdout.contains(
            "7 sessions: 6 auto-refresh enabled, 2 fresh (refreshed within 24h), 3 stale (not within 24h), 2 never refreshed, 2 with errors, 3 due now (older than 6h)"
        ),
        "{}",
        human.stdout
    );

    // The schedule counts the enabled sessions the filter selects: 6 of
    // the 18, each once an hour.
    let needed = |doc: serde_json::Value| doc["schedule"]["needed_per_hour"].clone();
    let older = ["--older-than", "1h"];
    assert_eq!(
        needed(
            status(&[&older[..], &["--filter", BACKGROUND]].concat())
                .output()
                .await
                .json()
        ),
        6
    );
    assert_eq!(needed(status(&older).output().await.json()), 18);

    let listed = status(&["--sessions", "--filter", BACKGROUND])
        .succeeds()
        .output()
        .await;
    let mut ids: Vec<String> = listed.json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut expected = background;
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(listed.json()["total"], 7);
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn the_metrics_state_counts_honour_the_filter() {
    let (db, aim) = stack().await;
    every_state(&db, "bg");
    for id in every_state(&db, "dev") {
        make_device(&db, &id);
    }
    aim.answer_everyone(Reply::ok());
    let run = BIN.run(&db, &aim);
    let path = run.dir().join("aimharder.prom");
    let done = run
        .env("AIMHARDER_METRICS_FILE", path.to_str().unwrap())
        .env("AIMHARDER_FILTER", BACKGROUND)
        .refresh_all()
        .succeeds()
        .output()
        .await;
    assert_eq!(
        aim.seen().len(),
        3,
        "stale, never, err: the due background rows"
    );
    let text = std::fs::read_to_string(done.dir.path().join("aimharder.prom")).unwrap();
    let state = |name: &str| -> u64 {
        let metric = format!(
            "aimharder_refresh_sessions_by_state{{command=\"refresh-all\",state=\"{name}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&metric))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{metric} missing from\n{text}"))
    };
    // After the run: the three due rows were refreshed.
    assert_eq!(state("total"), 7, "{text}");
    assert_eq!(state("enabled"), 6, "{text}");
    assert_eq!(state("fresh"), 4, "{text}");
    assert_eq!(state("due"), 0, "{text}");
}

#[tokio::test]
async fn a_filter_the_table_cannot_take_exits_78_before_any_call_or_output() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let before = row(&db, &id);
    for (command, filter, says) in [
        (
            "refresh-all",
            "sesion_type=eq.background",
            "names column sesion_type, which table \"auth_sessions\" does not have",
        ),
        (
            "refresh-all",
            "refresh_count=eq.many",
            "refused --filter (AIMHARDER_FILTER) refresh_count=eq.many",
        ),
        (
            "status",
            "sesion_type=eq.background",
            "names column sesion_type",
        ),
        (
            "probe",
            "sesion_type=eq.background",
            "names column sesion_type",
        ),
    ] {
        let mut args = vec![command, "--json", "--filter", filter];
        if command == "probe" {
            args.push("--all");
        }
        let done = BIN.run(&db, &aim).args(&args).exits(78).output().await;
        assert!(done.stderr.contains(says), "{command}: {}", done.stderr);
        assert_eq!(done.stdout, "", "{command}: nothing printed");
    }
    assert!(aim.seen().is_empty(), "AimHarder was called");
    assert_eq!(row(&db, &id), before);
}

#[tokio::test]
async fn a_bad_filter_form_exits_78_naming_it() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    for (filter, says) in [
        ("session_type=equals.background", "operator \"equals\""),
        ("session_type", "has no ="),
        ("session_type=background", "has no .VALUE"),
        ("type;drop=eq.x", "not a plain column name"),
    ] {
        let done = BIN
            .run(&db, &aim)
            .args(&["refresh-all", "--json", "--filter", filter])
            .exits(78)
            .output()
            .await;
        assert!(
            done.stderr.contains(says) && done.stderr.contains(filter),
            "{filter}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "");
    }
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn filtered_counts_pass_the_supabase_gateway_with_the_secret_key() {
    let (db, aim, gw) = gateway_stack().await;
    every_state(&db, "bg");
    for id in every_state(&db, "dev") {
        make_device(&db, &id);
    }
    let done = BIN
        .via_gateway(&gw, &aim)
        .args(&["status", "--json", "--filter", BACKGROUND])
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(
        (&doc["total"], &doc["stale"], &doc["due"]),
        (&7.into(), &3.into(), &3.into()),
        "{doc}"
    );
}
