//! Bad input gets one clear line, the right exit code, and loses nothing.

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::stack;

use crate::refresh_all::MIGRATION;
use crate::BIN;

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .trim()
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line in {stderr:?}");
    lines[0]
}

#[tokio::test]
async fn missing_settings_exit_78_naming_the_setting() {
    let (db, aim) = stack().await;
    let done = BIN
        .run(&db, &aim)
        .without_env("SUPABASE_SERVICE_ROLE_KEY")
        .arg("status")
        .exits(78)
        .output()
        .await;
    // The secret key is what a project has today; the legacy name still works.
    assert!(one_line(&done.stderr).contains("SUPABASE_SECRET_KEY"));

    let done = BIN
        .run(&db, &aim)
        .without_env("SUPABASE_REST_URL")
        .arg("status")
        .exits(78)
        .output()
        .await;
    assert!(one_line(&done.stderr).contains("SUPABASE_URL"));

    let done = BIN
        .run(&db, &aim)
        .without_env("SUPABASE_SERVICE_ROLE_KEY")
        .env("SUPABASE_SERVICE_ROLE_KEY_FILE", "/nonexistent/key")
        .arg("status")
        .exits(78)
        .output()
        .await;
    assert!(one_line(&done.stderr).contains("SUPABASE_SERVICE_ROLE_KEY_FILE"));
}

#[tokio::test]
async fn the_key_can_come_from_a_file_or_a_dotenv() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|x").insert(&db);
    let run = BIN.run(&db, &aim).without_env("SUPABASE_SERVICE_ROLE_KEY");
    let key_file = run.dir().join("key");
    std::fs::write(&key_file, format!("{}\n", db.service_key())).unwrap();
    let done = run
        .env("SUPABASE_SERVICE_ROLE_KEY_FILE", key_file.to_str().unwrap())
        .status_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["total"], 1);

    let run = BIN.bare();
    std::fs::write(
        run.dir().join(".env"),
        format!(
            "SUPABASE_REST_URL={}\nSUPABASE_SERVICE_ROLE_KEY={}\n",
            db.rest_url(),
            db.service_key()
        ),
    )
    .unwrap();
    let done = run.status_json().succeeds().output().await;
    assert_eq!(done.json()["total"], 1);
}

#[tokio::test]
async fn a_missing_table_or_column_exits_78_naming_the_migration() {
    let db = TestDb::new().await;
    let aim = FakeAimHarder::start().await;
    let done = BIN
        .run(&db, &aim)
        .arg("refresh-all")
        .exits(78)
        .output()
        .await;
    let line = one_line(&done.stderr);
    assert!(line.contains(MIGRATION), "{line}");
    assert!(line.contains("last_refresh_date"), "{line}");

    db.apply_migrations();
    let done = BIN
        .run(&db, &aim)
        .args(&["status", "--table", "no_such_table"])
        .exits(78)
        .output()
        .await;
    assert!(one_line(&done.stderr).contains("no_such_table"));
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn the_fingerprint_column_is_optional() {
    let (db, aim) = stack().await;
    db.sql("ALTER TABLE auth_sessions DROP COLUMN fingerprint");
    db.restart_rest();
    let id = Seed::new("a@example.com", "1|1|nofp").insert_without_fingerprint(&db);
    BIN.run(&db, &aim).refresh_all().succeeds().output().await;
    assert_eq!(row(&db, &id)["refresh_count"], 4);
    assert_eq!(aim.seen()[0].fingerprint, crate::refresh_all::DEFAULT_FP);
}

#[tokio::test]
async fn a_refused_key_exits_77_and_an_anon_key_is_refused_before_any_request() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|x").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_SERVICE_ROLE_KEY", db.wrong_key())
        .arg("status")
        .exits(77)
        .output()
        .await;
    assert!(one_line(&done.stderr).contains("service-role key"));
    assert!(!done.stderr.contains(db.wrong_key()));

    // Row-level security would show it no session: "0 selected, exit 0"
    // would look like success, so it is refused before any request.
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", "http://127.0.0.1:9/never-asked")
        .env("SUPABASE_SERVICE_ROLE_KEY", db.anon_key())
        .args(&["refresh-all", "--json"])
        .exits(78)
        .output()
        .await;
    assert_eq!(done.stdout, "");
    assert!(
        one_line(&done.stderr).contains("secret key"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains(db.anon_key()));
}

#[tokio::test]
async fn an_unreachable_supabase_exits_69_without_calling_aimharder() {
    let (mut db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|x").insert(&db);
    db.stop_rest();
    let done = BIN
        .run(&db, &aim)
        .arg("refresh-all")
        .exits(69)
        .output()
        .await;
    assert!(one_line(&done.stderr).contains("unreachable"));
    assert!(aim.seen().is_empty());
}

#[tokio::test]
async fn bad_flags_exit_64() {
    BIN.bare()
        .args(&["refresh-all", "--concurrency", "0"])
        .exits(64)
        .output()
        .await;
    BIN.bare().refresh_one("42").exits(64).output().await;
    let done = BIN
        .bare()
        .args(&["refresh-all", "--older-than", "soon"])
        .exits(64)
        .output()
        .await;
    assert!(done.stderr.contains("30m"), "{}", done.stderr);
}

/// Every setting is checked before the first request or the first byte of
/// output: a bad one leaves no half-written JSON document behind.
#[tokio::test]
async fn a_bad_setting_stops_the_run_before_any_request_or_output() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let before = row(&db, &id);
    let done = BIN
        .run(&db, &aim)
        .args(&["refresh-all", "--json", "--request-timeout", "0s"])
        .exits(64)
        .output()
        .await;
    assert_eq!(done.stdout, "", "nothing on stdout, not half a document");
    assert!(one_line(&done.stderr).contains("--request-timeout"));
    assert!(aim.seen().is_empty());
    assert_eq!(row(&db, &id), before);

    // A setting of the hooks is checked before the command reads anything:
    // the REST URL here would refuse every connection.
    let done = BIN
        .run(&db, &aim)
        .env("SUPABASE_REST_URL", "http://127.0.0.1:9/never-asked")
        .env("AIMHARDER_HEALTHCHECK_URL", "not a url")
        .args(&["refresh-all", "--json"])
        .exits(78)
        .output()
        .await;
    assert_eq!(done.stdout, "");
    assert!(one_line(&done.stderr).contains("AIMHARDER_HEALTHCHECK_URL"));
}

#[tokio::test]
async fn a_row_with_bad_stored_data_fails_alone() {
    let (db, aim) = stack().await;
    let good = Seed::new("a@example.com", "1|1|good").insert(&db);
    let crlf = Seed::new("b@example.com", "2|1|crlf")
        .cookies(r#"[{"name":"PHPSESSID","value":"x\r\nInjected: 1"}]"#)
        .insert(&db);
    let empty = Seed::new("c@example.com", "").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .refresh_all_json()
        .exits(1)
        .output()
        .await;
    assert_eq!(done.session(&good)["outcome"], "refreshed");
    for (id, words) in [(&crlf, "PHPSESSID"), (&empty, "token is empty")] {
        assert_eq!(done.session(id)["outcome"], "failed");
        let err = row(&db, id)["last_refresh_error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains(words), "{err}");
    }
    assert_eq!(aim.seen().len(), 1);
}
