//! The PostgREST behaviour the app is written against, through `postrust`:
//! reads and RLS, counts, conditional writes, errors, keys, timestamps, the
//! `updated_at` trigger and the keyset query shapes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{call, emails, seeded, Reply, TestDb};

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

/// A GET with its query given as pairs and encoded the way `reqwest`'s
/// `.query()` (and so the `postgrest` crate) does: form-urlencoded, so `+`
/// arrives as %2B and `"` as %22.
async fn get_query(
    db: &TestDb,
    key: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = aimharder_refresh::internals::client_builder()
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
    let patch = aimharder_refresh::internals::client_builder()
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
