//! Tests of the test stack itself (the test kit's `stack`): that it starts,
//! isolates tests from each other, and that the PostgREST behaviour the app is
//! written against holds through `postrust`. When one of the contract tests
//! fails after a `postrust` upgrade, the app's assumptions need checking too.
//!
//! The stack's own tests are here; the PostgREST contract is in `postgrest.rs`.
//!
//! `cargo test --test integration stack_contract -- --nocapture` prints what was observed.

use aimharder_testkit::stack;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stack::TestDb;

mod postgrest;

const TRACKING_MIGRATION: &str = "migrations/20261126000000_refresh_tracking.sql";

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Print what was seen, for whoever is checking the contract by eye.
    fn show(&self, what: &str) {
        eprintln!(
            "OBSERVED {what}: {} content-range={:?} body={}",
            self.status,
            self.header("content-range"),
            self.body
        );
    }
}

/// A request the way the app sends it: `apikey` and `Authorization: Bearer`
/// both carrying the key.
async fn call(
    db: &TestDb,
    method: Method,
    key: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let client = aimharder_refresh::internals::client_builder()
        .build()
        .unwrap();
    let mut request = client
        .request(method, format!("{}{path_and_query}", db.rest_url()))
        .header("apikey", key)
        .header("Authorization", format!("Bearer {key}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request failed");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// A TestDb with the tracking columns and four rows whose `created_at` differ
/// by one microsecond each.
async fn seeded() -> TestDb {
    let db = TestDb::new().await;
    db.apply_migration(TRACKING_MIGRATION);
    db.sql(
        "insert into auth_sessions
           (user_email, aimharder_token, created_at, refresh_count, last_refresh_error, auto_refresh_enabled)
         values
           ('a@example.com', 'ta', '2026-01-01 10:00:00.123456+00', 0, null, true),
           ('b@example.com', 'tb', '2026-01-01 10:00:00.123457+00', 2, '[2025-12-31T10:00:00Z] boom', true),
           ('c@example.com', 'tc', '2026-01-01 10:00:00.123458+00', 0, '[2026-02-01T00:00:00Z] later', false),
           ('d@example.com', 'td', '2026-01-01 10:00:00.123459+00', 0, null, false)",
    );
    db
}

fn emails(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| row["user_email"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn start_times() {
    let db = TestDb::new().await;
    eprintln!(
        "OBSERVED cluster start: {:?}; postrust start: {:?}",
        stack::cluster_start_time(),
        db.rest_start_time()
    );
    db.restart_rest();
    eprintln!("OBSERVED postrust restart: {:?}", db.rest_start_time());
    assert_eq!(db.sql("select 1"), "1");
}

/// Two tests at once, each with its own rows: neither sees the other's.
async fn sees_only_its_own_rows(email: &str) {
    let db = TestDb::new().await;
    db.sql(&format!(
        "insert into auth_sessions (user_email, aimharder_token) values ('{email}', 't')"
    ));
    let reply = call(
        &db,
        Method::GET,
        db.service_key(),
        "/auth_sessions?select=user_email",
        &[],
        None,
    )
    .await;
    assert_eq!(emails(&reply.json()), [email]);
    assert_eq!(
        db.query_json("select user_email from auth_sessions")[0]["user_email"],
        json!(email)
    );
}

#[tokio::test]
async fn parallel_one() {
    sees_only_its_own_rows("one@example.com").await;
}

#[tokio::test]
async fn parallel_two() {
    sees_only_its_own_rows("two@example.com").await;
}

#[tokio::test]
async fn stopped_rest_refuses_connections_and_comes_back() {
    let mut db = TestDb::new().await;
    let url = db.rest_url();
    db.stop_rest();
    let error = reqwest::get(format!("{url}/auth_sessions"))
        .await
        .unwrap_err();
    eprintln!("OBSERVED stopped REST: {error:?}");
    assert!(error.is_connect(), "{error:?}");

    db.restart_rest();
    assert_eq!(db.rest_url(), url);
    let reply = call(
        &db,
        Method::GET,
        db.service_key(),
        "/auth_sessions?select=id",
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn query_json_and_sql_helpers() {
    let db = seeded().await;
    let rows = db.query_json(
        "select user_email, refresh_count, created_at from auth_sessions order by created_at limit 1;",
    );
    eprintln!("OBSERVED query_json: {rows}");
    assert_eq!(rows[0]["user_email"], json!("a@example.com"));
    assert_eq!(rows[0]["refresh_count"], json!(0));
    assert_eq!(
        rows[0]["created_at"],
        json!("2026-01-01T10:00:00.123456+00:00")
    );
    assert_eq!(db.query_json("select 1 where false"), json!([]));
    assert_eq!(
        db.sql("show search_path"),
        format!("{},public", db.schema())
    );
}

#[tokio::test]
#[should_panic(expected = "psql failed")]
async fn sql_errors_panic_with_psql_message() {
    let db = TestDb::new().await;
    db.sql("select no_such_column from auth_sessions");
}
