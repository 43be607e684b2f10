//! Tests of the test stack itself (support/stack.rs): that it starts,
//! isolates tests from each other, and that the PostgREST behaviour the app is
//! written against holds through `postrust`. When one of the contract tests
//! fails after a `postrust` upgrade, the app's assumptions need checking too.
//!
//! `cargo test --test integration stack_contract -- --nocapture` prints what was observed.

use crate::support::stack;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stack::TestDb;

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
    let client = aimharder_refresh::http::client_builder().build().unwrap();
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

#[tokio::test]
async fn reads_with_service_key_and_rls_hides_rows_from_anon() {
    let db = seeded().await;
    let path = "/auth_sessions?select=id,user_email&order=created_at.asc,id.asc";

    let service = call(&db, Method::GET, db.service_key(), path, &[], None).await;
    service.show("(a) GET with service key");
    assert_eq!(service.status, StatusCode::OK);
    let rows = service.json();
    assert_eq!(
        emails(&rows),
        [
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "d@example.com"
        ]
    );
    assert_eq!(
        rows[0].as_object().unwrap().len(),
        2,
        "only the selected columns"
    );

    let anon = call(&db, Method::GET, db.anon_key(), path, &[], None).await;
    anon.show("(a) GET with anon key");
    assert_eq!(anon.status, StatusCode::OK);
    assert_eq!(anon.json(), json!([]));
}

#[tokio::test]
async fn exact_count_comes_back_in_content_range() {
    let db = seeded().await;
    let count = [
        ("Prefer", "count=exact"),
        ("Range-Unit", "items"),
        ("Range", "0-0"),
    ];
    let cases = [
        ("/auth_sessions?select=id", 4),
        ("/auth_sessions?select=id&auto_refresh_enabled=is.true", 2),
        (
            "/auth_sessions?select=id&or=(last_refresh_error.is.null,last_refresh_error.lt.[2026-01-01)",
            3,
        ),
        (
            "/auth_sessions?select=id&auto_refresh_enabled=is.true\
             &or=(last_refresh_error.is.null,last_refresh_error.lt.[2026-01-01)",
            2,
        ),
    ];
    for (path, expected) in cases {
        let reply = call(&db, Method::GET, db.service_key(), path, &count, None).await;
        reply.show(&format!("(b) count {path}"));
        assert!(reply.status.is_success(), "{}", reply.status);
        let range = reply.header("content-range").expect("no Content-Range");
        let total = range.rsplit_once('/').unwrap().1;
        assert_eq!(total, expected.to_string(), "{path}: {range}");
        assert_eq!(
            reply.json().as_array().unwrap().len(),
            1,
            "Range: 0-0 is one row"
        );
    }

    // Without Range: the whole result, and still the count.
    let reply = call(
        &db,
        Method::GET,
        db.service_key(),
        "/auth_sessions?select=id",
        &[("Prefer", "count=exact")],
        None,
    )
    .await;
    reply.show("(b) count without Range");
    // A HEAD, as supabase-js sends for `{ head: true }`.
    let reply = call(
        &db,
        Method::HEAD,
        db.service_key(),
        "/auth_sessions?select=id",
        &[("Prefer", "count=exact")],
        None,
    )
    .await;
    reply.show("(b) HEAD count");
}

#[tokio::test]
async fn conditional_patch_returns_the_row_only_when_it_matches() {
    let db = seeded().await;
    let id = db.sql("select id from auth_sessions where user_email = 'a@example.com'");
    let path = format!("/auth_sessions?id=eq.{id}&refresh_count=eq.0");
    let prefer = [("Prefer", "return=representation")];
    let body = json!({
        "refresh_count": 1,
        "last_refresh_date": "2026-11-26T12:00:00.000001Z",
        "last_refresh_error": null,
    });

    let first = call(
        &db,
        Method::PATCH,
        db.service_key(),
        &path,
        &prefer,
        Some(body.clone()),
    )
    .await;
    first.show("(c) conditional PATCH, matching");
    assert_eq!(first.status, StatusCode::OK);
    let rows = first.json();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["id"], json!(id));
    assert_eq!(rows[0]["refresh_count"], json!(1));

    let second = call(
        &db,
        Method::PATCH,
        db.service_key(),
        &path,
        &prefer,
        Some(body),
    )
    .await;
    second.show("(c) conditional PATCH, refresh_count differs");
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.json(), json!([]));
    assert_eq!(
        db.sql(&format!(
            "select refresh_count from auth_sessions where id = '{id}'"
        )),
        "1"
    );
}

#[tokio::test]
async fn unknown_column_and_table_are_errors() {
    let db = seeded().await;

    let column = call(
        &db,
        Method::GET,
        db.service_key(),
        "/auth_sessions?select=id,no_such_column",
        &[],
        None,
    )
    .await;
    column.show("(d) unknown column");
    assert_unknown_column(&column);

    let table = call(
        &db,
        Method::GET,
        db.service_key(),
        "/no_such_table?select=id",
        &[],
        None,
    )
    .await;
    table.show("(d) unknown table");
    assert_eq!(table.status, StatusCode::NOT_FOUND);
    assert_eq!(table.json()["code"], json!("PGRST205"));

    // Before the migration: the app's columns are missing, so the app's
    // filter on them fails the same way.
    let bare = TestDb::new().await;
    let missing = call(
        &bare,
        Method::GET,
        bare.service_key(),
        "/auth_sessions?select=id&auto_refresh_enabled=is.true",
        &[],
        None,
    )
    .await;
    missing.show("(d) tracking column before the migration, in a filter");
    assert_unknown_column(&missing);

    let patch = call(
        &bare,
        Method::PATCH,
        bare.service_key(),
        "/auth_sessions?user_email=eq.nobody@example.com",
        &[("Prefer", "return=representation")],
        Some(json!({ "refresh_count": 1 })),
    )
    .await;
    patch.show("(d) tracking column before the migration, in a PATCH body");
}

/// PostgREST answers an unknown column with 400 and the database's own
/// 42703 ("column ... does not exist"); postrust 3.1.0 answers 400 with its
/// own PGRST204 ("Column not found") before asking the database. The app has
/// to read both as "the migration has not been applied".
fn assert_unknown_column(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let code = reply.json()["code"].as_str().unwrap().to_owned();
    assert!(code == "42703" || code == "PGRST204", "code {code}");
}

#[tokio::test]
async fn key_from_another_project_is_refused() {
    let db = seeded().await;
    let reply = call(
        &db,
        Method::GET,
        db.wrong_key(),
        "/auth_sessions?select=id",
        &[],
        None,
    )
    .await;
    reply.show("(e) wrong-secret key");
    eprintln!("OBSERVED (e) headers: {:?}", reply.headers);
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["code"], json!("PGRST301"));
}

#[tokio::test]
async fn timestamps_round_trip_exactly_for_keyset_pagination() {
    let db = seeded().await;
    let first = call(
        &db,
        Method::GET,
        db.service_key(),
        "/auth_sessions?select=user_email,created_at&order=created_at.asc,id.asc&limit=2",
        &[],
        None,
    )
    .await;
    first.show("(f) first page");
    let page = first.json();
    assert_eq!(emails(&page), ["a@example.com", "b@example.com"]);
    let last = page[1]["created_at"].as_str().unwrap().to_owned();
    eprintln!("OBSERVED (f) created_at as returned: {last}");

    // The value as the server wrote it, put back into a filter. It carries a
    // `+`, which in a query string means a space unless percent-encoded.
    let encoded = last.replace('+', "%2B");
    let next = call(
        &db,
        Method::GET,
        db.service_key(),
        &format!(
            "/auth_sessions?select=user_email,created_at&order=created_at.asc,id.asc\
             &limit=2&created_at=gt.{encoded}"
        ),
        &[],
        None,
    )
    .await;
    next.show("(f) next page");
    assert_eq!(emails(&next.json()), ["c@example.com", "d@example.com"]);
}

#[tokio::test]
async fn patch_bumps_updated_at_through_the_trigger() {
    let db = seeded().await;
    let before = db.sql("select updated_at from auth_sessions where user_email = 'b@example.com'");
    let reply = call(
        &db,
        Method::PATCH,
        db.service_key(),
        "/auth_sessions?user_email=eq.b@example.com",
        &[("Prefer", "return=representation")],
        Some(json!({ "aimharder_token": "new" })),
    )
    .await;
    reply.show("(g) PATCH without updated_at");
    assert_eq!(reply.status, StatusCode::OK);
    let after = reply.json()[0]["updated_at"].as_str().unwrap().to_owned();
    let later = db.sql(&format!(
        "select '{after}'::timestamptz > '{before}'::timestamptz"
    ));
    assert_eq!(later, "t", "updated_at {before} -> {after}");

    // Without return=representation: what a bare PATCH answers.
    let bare = call(
        &db,
        Method::PATCH,
        db.service_key(),
        "/auth_sessions?user_email=eq.b@example.com",
        &[],
        Some(json!({ "aimharder_token": "newer" })),
    )
    .await;
    bare.show("(g) PATCH, no Prefer");
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

/// A GET with its query given as pairs and encoded the way `reqwest`'s
/// `.query()` (and so the `postgrest` crate) does: form-urlencoded, so `+`
/// arrives as %2B and `"` as %22.
async fn get_query(
    db: &TestDb,
    key: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = aimharder_refresh::http::client_builder()
        .build()
        .unwrap()
        .get(format!("{}/auth_sessions", db.rest_url()))
        .query(pairs)
        .header("apikey", key)
        .header("Authorization", format!("Bearer {key}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request failed");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The app's keyset step: a logic tree with quoted values, nested
/// `or(... and(...))`, inside a top-level `and=(...)`, with ties on the
/// order key broken by id.
#[tokio::test]
async fn logic_tree_keyset_with_quoted_values() {
    let db = seeded().await;
    // Two more rows sharing b's created_at, so the id tie-break matters.
    db.sql(
        "insert into auth_sessions (id, user_email, aimharder_token, created_at) values
           ('00000000-0000-4000-8000-000000000001', 'e@example.com', 'te', '2026-01-01 10:00:00.123457+00'),
           ('ffffffff-0000-4000-8000-000000000001', 'f@example.com', 'tf', '2026-01-01 10:00:00.123457+00')",
    );
    let all = get_query(
        &db,
        db.service_key(),
        &[
            ("select", "id,user_email,created_at"),
            ("order", "created_at.asc,id.asc"),
        ],
        &[],
    )
    .await
    .json();
    eprintln!("OBSERVED (h) all rows in keyset order: {all}");
    let order: Vec<&str> = emails(&all);
    let position = |email: &str| order.iter().position(|e| *e == email).unwrap();
    // Resume after the middle one of the three rows sharing a created_at.
    let pivot = &all[position(order[2])];
    let key = pivot["created_at"].as_str().unwrap();
    let id = pivot["id"].as_str().unwrap();
    let tree = format!(
        "auto_refresh_enabled.is.true,or(created_at.gt.\"{key}\",and(created_at.eq.\"{key}\",id.gt.\"{id}\"))"
    );
    let and = format!("({tree})");
    let page = get_query(
        &db,
        db.service_key(),
        &[
            ("select", "id,user_email"),
            ("order", "created_at.asc,id.asc"),
            ("and", &and),
            ("limit", "10"),
        ],
        &[],
    )
    .await;
    page.show(&format!("(h) and={and}"));
    assert_eq!(page.status, StatusCode::OK);
    // Everything after the pivot in keyset order, with auto_refresh_enabled.
    let expected: Vec<&str> = order[3..]
        .iter()
        .copied()
        .filter(|e| *e != "c@example.com" && *e != "d@example.com")
        .collect();
    assert_eq!(emails(&page.json()), expected);

    // The other shapes the app sends.
    let not_null = get_query(
        &db,
        db.service_key(),
        &[
            ("select", "user_email"),
            ("and", "(last_refresh_error.not.is.null)"),
            ("order", "created_at.asc,id.asc"),
        ],
        &[],
    )
    .await;
    not_null.show("(h) and=(last_refresh_error.not.is.null)");
    assert_eq!(emails(&not_null.json()), ["b@example.com", "c@example.com"]);

    let ilike = get_query(
        &db,
        db.service_key(),
        &[
            ("select", "user_email"),
            ("user_email", "ilike.B@EXAMPLE.COM"),
        ],
        &[],
    )
    .await;
    ilike.show("(h) user_email=ilike.B@EXAMPLE.COM");
    assert_eq!(emails(&ilike.json()), ["b@example.com"]);

    // Count with Prefer: count=exact and no Range, as `exact_count()` sends it.
    let counted = get_query(
        &db,
        db.service_key(),
        &[("select", "id"), ("and", "(auto_refresh_enabled.is.true)")],
        &[("Prefer", "count=exact")],
    )
    .await;
    counted.show("(h) count=exact, no Range");
    assert_eq!(counted.header("content-range"), Some("0-3/4"));

    // The conditional PATCH on a NULL refresh_count.
    db.sql("update auth_sessions set refresh_count = null where user_email = 'e@example.com'");
    let patch = aimharder_refresh::http::client_builder()
        .build()
        .unwrap()
        .patch(format!("{}/auth_sessions", db.rest_url()))
        .query(&[
            (
                "id",
                format!("eq.{}", "00000000-0000-4000-8000-000000000001"),
            ),
            ("refresh_count", "is.null".into()),
        ])
        .header("apikey", db.service_key())
        .header("Authorization", format!("Bearer {}", db.service_key()))
        .header("Prefer", "return=representation")
        .json(&json!({ "refresh_count": 1 }))
        .send()
        .await
        .unwrap();
    let rows: Value = patch.json().await.unwrap();
    eprintln!("OBSERVED (h) PATCH ?refresh_count=is.null: {rows}");
    assert_eq!(rows[0]["refresh_count"], json!(1));
}
