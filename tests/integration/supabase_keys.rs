//! Supabase as a project set up today has it (SPEC "The Supabase side",
//! rev. 2; issue 8): the binary talks to a Supabase-like gateway in front of
//! postrust with an `sb_secret_…` key, refuses keys that cannot see the
//! sessions, never follows a redirect, and rides out a short outage.

use serde_json::Value;

use aimharder_testkit::gateway::{Answer, Gateway, GatewayRequest, REST_PREFIX};
use aimharder_testkit::recorder::Recorder;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::{TestDb, ANON_KEY, SERVICE_KEY};
use aimharder_testkit::start::{gateway_stack, stack};

use crate::BIN;

/// The columns a refresh writes: what "the row is unchanged" is about (a
/// claim may stamp columns of its own).
pub(crate) const RESULT_COLUMNS: &[&str] = &[
    "aimharder_token",
    "aimharder_cookies",
    "fingerprint",
    "last_refresh_date",
    "refresh_count",
    "last_refresh_error",
    "auto_refresh_enabled",
];

pub(crate) fn result_columns(db: &TestDb, id: &str) -> Value {
    let r = row(db, id);
    RESULT_COLUMNS
        .iter()
        .map(|c| (c.to_string(), r[c].clone()))
        .collect()
}

/// Every request reached `/rest/v1`, was forwarded and answered 2xx.
pub(crate) fn assert_all_forwarded_ok(requests: &[GatewayRequest]) {
    assert!(!requests.is_empty(), "the gateway received no request");
    for r in requests {
        assert!(
            r.target.starts_with(&format!("{REST_PREFIX}/")),
            "{} {}",
            r.method,
            r.target
        );
        assert!(
            matches!(r.answer, Answer::Forwarded(s) if (200..300).contains(&s)),
            "{} {} was answered {:?}",
            r.method,
            r.target,
            r.answer
        );
    }
}

/// The secret key went in `apikey` alone: no `Authorization` of any kind,
/// and no browser User-Agent, on every request.
pub(crate) fn assert_secret_key_only(gw: &Gateway, requests: &[GatewayRequest]) {
    assert!(!requests.is_empty(), "the gateway received no request");
    for r in requests {
        assert_eq!(
            r.headers_named("apikey"),
            vec![gw.secret_key()],
            "{} {}",
            r.method,
            r.target
        );
        assert_eq!(
            r.headers_named("authorization").len(),
            0,
            "an Authorization header went with the secret key: {} {}",
            r.method,
            r.target
        );
        assert_no_browser_user_agent(r);
    }
}

pub(crate) fn assert_no_browser_user_agent(r: &GatewayRequest) {
    for ua in r.headers_named("user-agent") {
        assert!(
            !ua.contains("Mozilla/"),
            "a browser User-Agent reached Supabase ({ua}): {} {}",
            r.method,
            r.target
        );
    }
}

/// stderr is one non-empty line.
pub(crate) fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {stderr:?}");
    lines[0]
}

#[tokio::test]
async fn a_secret_key_via_supabase_url_refreshes_and_travels_in_apikey_only() {
    let (db, aim, gw) = gateway_stack().await;
    let a = Seed::new("a@example.com", "1|1766731601|a").insert(&db);
    let b = Seed::new("b@example.com", "2|1766731601|b")
        .never_refreshed("now() - interval '7 hours'")
        .insert(&db);
    let fresh = Seed::new("fresh@example.com", "3|1766731601|fresh")
        .refreshed("now() - interval '1 hour'")
        .insert(&db);
    let fresh_before = row(&db, &fresh);

    let done = BIN
        .via_gateway(&gw, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["selected"], 2, "{doc}");
    assert_eq!(doc["refreshed"], 2, "{doc}");
    assert_eq!(doc["unrecorded"], 0, "{doc}");
    for id in [&a, &b] {
        assert_eq!(done.session(id)["outcome"], "refreshed");
        let r = row(&db, id);
        assert_eq!(r["refresh_count"], 4, "{r}");
        assert!(r["last_refresh_date"].is_string(), "{r}");
        assert!(r["last_refresh_error"].is_null(), "{r}");
    }
    assert_eq!(row(&db, &fresh), fresh_before, "a row not due is untouched");
    assert!(!done.stderr.contains(gw.secret_key()));
    assert!(!done.stdout.contains(gw.secret_key()));

    let requests = gw.requests();
    assert_all_forwarded_ok(&requests);
    assert_secret_key_only(&gw, &requests);
    // The browser User-Agent exists, and goes to AimHarder only.
    let seen = aim.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(
            s.user_agent
                .as_deref()
                .is_some_and(|ua| ua.contains("Mozilla/")),
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn the_secret_key_can_come_from_a_flag_or_a_file() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    Seed::new("b@example.com", "2|1|b").insert(&db);

    for how in [
        "--secret-key",
        "SUPABASE_SECRET_KEY_FILE",
        "--secret-key-file",
    ] {
        let gw = Gateway::start(&db.rest_url()).await;
        let run = BIN
            .via_gateway(&gw, &aim)
            .without_env("SUPABASE_SECRET_KEY");
        let key_file = run.dir().join("supabase-secret-key");
        std::fs::write(&key_file, format!("{}\n", gw.secret_key())).unwrap();
        let key_file = key_file.to_str().unwrap().to_string();
        let run = match how {
            "--secret-key" => run.args(&["--secret-key", gw.secret_key()]),
            "SUPABASE_SECRET_KEY_FILE" => run.env("SUPABASE_SECRET_KEY_FILE", &key_file),
            _ => run.args(&["--secret-key-file", &key_file]),
        };
        let done = run.status_json().succeeds().output().await;
        assert_eq!(done.json()["total"], 2, "{how}: {}", done.stdout);
        let requests = gw.requests();
        assert_all_forwarded_ok(&requests);
        assert_secret_key_only(&gw, &requests);
    }
}

#[tokio::test]
async fn a_publishable_or_anon_key_is_refused_before_any_request() {
    let (db, aim, gw) = gateway_stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let before = row(&db, &id);

    let publishable = gw.publishable_key().to_string();
    for (variable, key) in [
        ("SUPABASE_SECRET_KEY", publishable.as_str()),
        ("SUPABASE_SERVICE_ROLE_KEY", publishable.as_str()),
        ("SUPABASE_SERVICE_ROLE_KEY", ANON_KEY),
        ("SUPABASE_SECRET_KEY", ANON_KEY),
    ] {
        let done = BIN
            .via_gateway(&gw, &aim)
            .without_env("SUPABASE_SECRET_KEY")
            .env(variable, key)
            .refresh_all_json()
            .exits(78)
            .output()
            .await;
        let what = format!("{variable}={}", &key[..14]);
        let line = one_line(&done.stderr);
        assert!(
            line.to_lowercase().contains("secret key") || line.contains("SUPABASE_SECRET_KEY"),
            "{what}: the line does not say to use the secret key: {line}"
        );
        assert!(!done.stderr.contains(key), "{what}: the key was printed");
        assert_eq!(done.stdout, "", "{what}: no half-written output");
        assert_eq!(gw.total(), 0, "{what}: Supabase was called");
    }
    assert!(aim.seen().is_empty());
    assert_eq!(row(&db, &id), before);
}

#[tokio::test]
async fn a_secret_key_of_another_project_exits_77() {
    let (db, aim, gw) = gateway_stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let before = row(&db, &id);
    let other = "sb_secret_0therPr0jectK3yZZZZZZZZZZZZZZ";
    let done = BIN
        .via_gateway(&gw, &aim)
        .env("SUPABASE_SECRET_KEY", other)
        .refresh_all_json()
        .exits(77)
        .output()
        .await;
    one_line(&done.stderr);
    assert!(!done.stderr.contains(other));
    // What the gateway said, quoted: its code header and its message.
    assert!(
        done.stderr
            .contains("HTTP 401, sb-error-code invalid_api_key: Invalid API key"),
        "{}",
        done.stderr
    );
    assert!(gw.total() >= 1);
    for r in gw.requests() {
        assert_eq!(r.answer, Answer::Refused("Invalid API key".into()), "{r:?}");
        assert_eq!(r.headers_named("authorization").len(), 0);
    }
    assert!(aim.seen().is_empty());
    assert_eq!(row(&db, &id), before);
}

#[tokio::test]
async fn a_legacy_service_role_jwt_still_works_in_both_headers() {
    let (db, aim, gw) = gateway_stack().await;
    let a = Seed::new("a@example.com", "1|1|a").insert(&db);
    let b = Seed::new("b@example.com", "2|1|b").insert(&db);
    let done = BIN
        .via_gateway(&gw, &aim)
        .without_env("SUPABASE_SECRET_KEY")
        .env("SUPABASE_SERVICE_ROLE_KEY", SERVICE_KEY)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.json()["refreshed"], 2, "{}", done.stdout);
    assert_eq!(row(&db, &a)["refresh_count"], 4);
    assert_eq!(row(&db, &b)["refresh_count"], 4);

    let requests = gw.requests();
    assert_all_forwarded_ok(&requests);
    let bearer = format!("Bearer {SERVICE_KEY}");
    for r in &requests {
        assert_eq!(r.headers_named("apikey"), vec![SERVICE_KEY], "{}", r.target);
        assert_eq!(
            r.headers_named("authorization"),
            vec![bearer.as_str()],
            "{}",
            r.target
        );
        assert_no_browser_user_agent(r);
    }
}

#[tokio::test]
async fn a_redirect_from_supabase_is_an_error_naming_its_host_and_is_not_followed() {
    let (db, aim) = stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let before = row(&db, &id);

    for legacy in [false, true] {
        let gw = Gateway::start(&db.rest_url()).await;
        let elsewhere = Recorder::start().await;
        gw.redirect_to(&elsewhere.base_url());
        let mut run = BIN.via_gateway(&gw, &aim);
        let key = if legacy {
            run = run
                .without_env("SUPABASE_SECRET_KEY")
                .env("SUPABASE_SERVICE_ROLE_KEY", SERVICE_KEY);
            SERVICE_KEY.to_string()
        } else {
            gw.secret_key().to_string()
        };
        let done = run
            .refresh_all_json()
            // A redirect means SUPABASE_URL does not point at the API
            // itself: a configuration error (78), not a service that is
            // down (69).
            .exits(78)
            .output()
            .await;
        let what = if legacy { "legacy JWT" } else { "secret key" };
        one_line(&done.stderr);
        let target = elsewhere.addr().to_string();
        assert!(
            done.stderr.contains(&target),
            "{what}: stderr does not name the redirect's host {target}: {}",
            done.stderr
        );
        assert!(!done.stderr.contains(&key), "{what}: the key was printed");
        assert!(
            elsewhere.requests().is_empty(),
            "{what}: the redirect was followed: {:?}",
            elsewhere.requests()
        );
        let requests = gw.requests();
        assert!(!requests.is_empty());
        assert!(requests.iter().all(|r| r.answer == Answer::Redirected));
        assert!(aim.seen().is_empty(), "{what}: AimHarder was called");
    }
    assert_eq!(row(&db, &id), before);
}
