//! Supabase through the gateway when it is briefly away or refuses writes:
//! a short outage costs nothing, a write that keeps failing is `unrecorded`.

use std::time::Duration;

use serde_json::{json, Value};

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::gateway::{Answer, GatewayRequest, REST_PREFIX};
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::{ANON_KEY, SERVICE_KEY, WRONG_KEY};
use aimharder_testkit::start::gateway_stack;
use aimharder_testkit::wire::{send, Message};

use crate::supabase_keys::{assert_all_forwarded_ok, assert_secret_key_only, result_columns};
use crate::BIN;

#[tokio::test]
async fn a_three_second_outage_mid_run_changes_nothing_in_the_result() {
    let (db, aim, gw) = gateway_stack().await;
    db.sql(
        "INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, created_at, last_refresh_date, refresh_count) \
         SELECT 'o' || g || '@example.com', g || '|1766731601|outage', '[]', now() - interval '30 days', \
                now() - interval '7 hours' - (g || ' seconds')::interval, 0 FROM generate_series(1, 300) g",
    );
    let outage = Duration::from_secs(3);
    gw.outage_after(40, outage);
    let done = BIN
        .via_gateway(&gw, &aim)
        .refresh_all_json()
        .args(&["--concurrency", "8"])
        .succeeds()
        .output()
        .await;
    let doc = done.json();
    assert_eq!(doc["selected"], 300, "{}", doc["selected"]);
    assert_eq!(doc["refreshed"], 300, "{}", doc["refreshed"]);
    assert_eq!(doc["unrecorded"], 0);
    assert_eq!(doc["failed"], 0);
    assert_eq!(doc["skipped"], 0);
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1"),
        "300",
        "every row counted once"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM auth_sessions WHERE refresh_count <> 1 OR last_refresh_error IS NOT NULL"),
        "0"
    );
    assert_eq!(aim.seen().len(), 300, "AimHarder called once per session");

    // The outage happened, in the middle of the run.
    let (start, end) = gw.outage_window().expect("the outage never began");
    assert_eq!(end - start, outage);
    let requests = gw.requests();
    let refused = gw.answered(&Answer::Outage);
    assert!(refused >= 1, "no request met the outage");
    assert!(
        requests
            .iter()
            .any(|r| r.at >= end && matches!(r.answer, Answer::Forwarded(_))),
        "nothing was forwarded after the outage: it did not happen mid-run"
    );
    let passed: Vec<GatewayRequest> = requests
        .iter()
        .filter(|r| r.answer != Answer::Outage)
        .cloned()
        .collect();
    assert_eq!(passed.len() + refused, requests.len());
    assert_all_forwarded_ok(&passed);
    assert_secret_key_only(&gw, &requests);
}

#[tokio::test]
async fn a_write_outage_makes_the_refresh_unrecorded() {
    let (db, aim, gw) = gateway_stack().await;
    let token = "1|1766731601|lost";
    let id = Seed::new("a@example.com", token).insert(&db);
    let before = result_columns(&db, &id);
    // Supabase stops taking writes once AimHarder has accepted the refresh:
    // whatever claimed the row before went through.
    let writes_down = {
        let gw = gw.clone();
        std::sync::Arc::new(move || gw.fail_method("rpc/refresh_write", usize::MAX))
    };
    aim.script(token, vec![Reply::Then(writes_down, Box::new(Reply::ok()))]);

    let run = BIN.via_gateway(&gw, &aim);
    let state = run.dir().join("state");
    let done = run
        .env("AIMHARDER_STATE_DIR", state.to_str().unwrap())
        .refresh_all_json()
        .exits(69)
        .output()
        .await;
    let s = done.session(&id);
    assert_eq!(s["outcome"], "unrecorded", "{s}");
    let doc = done.json();
    assert_eq!(doc["unrecorded"], 1, "{doc}");
    assert_eq!(doc["refreshed"], 0, "never reported as refreshed");
    assert_eq!(result_columns(&db, &id), before, "nothing half-written");
    assert_eq!(aim.calls_for(token), 1);

    // The write was retried, within the 30 s budget.
    let faults: Vec<GatewayRequest> = gw
        .requests()
        .into_iter()
        .filter(|r| r.answer == Answer::MethodFault)
        .collect();
    assert!(
        faults.len() >= 2,
        "the write was not retried: {}",
        faults.len()
    );
    let span = faults.last().unwrap().at - faults[0].at;
    assert!(
        span >= Duration::from_secs(10) && span <= Duration::from_secs(35),
        "retries spanned {span:?}, not the 30 s budget"
    );
    assert_secret_key_only(&gw, &gw.requests());
}

/// The gateway itself, talked to directly: what the tests above rely on.
#[tokio::test]
async fn the_gateway_translates_keys_and_refuses_like_supabase() {
    let (db, _aim, gw) = gateway_stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let path = format!("{REST_PREFIX}/auth_sessions?select=id,refresh_count");
    let get = |headers: Vec<(&'static str, String)>| {
        let gw = gw.clone();
        let path = path.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            send(gw.addr(), "GET", &path, &headers, "").await
        }
    };
    let rows = |m: &Message| -> Value {
        serde_json::from_slice(&m.body).unwrap_or_else(|e| panic!("{e}: {}", m.text()))
    };
    let secret = gw.secret_key().to_string();
    let one_row = json!([{"id": id, "refresh_count": 3}]);

    // The secret key is the service role; its exact copy in Authorization
    // is tolerated.
    let m = get(vec![("apikey", secret.clone())]).await;
    assert_eq!(m.status, Some(200), "{}", m.text());
    assert_eq!(rows(&m), one_row);
    let m = get(vec![
        ("apikey", secret.clone()),
        ("Authorization", format!("Bearer {secret}")),
    ])
    .await;
    assert_eq!(m.status, Some(200), "{}", m.text());
    assert_eq!(rows(&m), one_row);

    // Refused: a browser, another Authorization, an unknown or missing key.
    for (headers, message) in [
        (
            vec![
                ("apikey", secret.clone()),
                ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)".to_string()),
            ],
            "Forbidden use of secret API key in browser",
        ),
        (
            vec![
                ("apikey", secret.clone()),
                ("Authorization", format!("Bearer {SERVICE_KEY}")),
            ],
            "Secret API key used together with an Authorization header holding something else",
        ),
        (
            vec![("apikey", "sb_secret_unknown".to_string())],
            "Invalid API key",
        ),
        (vec![], "No API key found in request"),
    ] {
        let m = get(headers).await;
        assert_eq!(m.status, Some(401), "{}", m.text());
        assert_eq!(m.header("content-type"), Some("application/json"));
        assert_eq!(rows(&m)["message"], message);
        assert!(rows(&m)["hint"].is_string());
    }

    // Publishable and anon keys see no sessions; the legacy service JWT does;
    // a JWT of another project is refused by postrust.
    let m = get(vec![("apikey", gw.publishable_key().to_string())]).await;
    assert_eq!((m.status, rows(&m)), (Some(200), json!([])));
    let m = get(vec![
        ("apikey", ANON_KEY.to_string()),
        ("Authorization", format!("Bearer {ANON_KEY}")),
    ])
    .await;
    assert_eq!((m.status, rows(&m)), (Some(200), json!([])));
    let m = get(vec![
        ("apikey", SERVICE_KEY.to_string()),
        ("Authorization", format!("Bearer {SERVICE_KEY}")),
    ])
    .await;
    assert_eq!((m.status, rows(&m)), (Some(200), one_row.clone()));
    let m = get(vec![
        ("apikey", WRONG_KEY.to_string()),
        ("Authorization", format!("Bearer {WRONG_KEY}")),
    ])
    .await;
    assert_eq!(m.status, Some(401), "{}", m.text());

    // Only /rest/v1 is served.
    let m = send(
        gw.addr(),
        "GET",
        "/auth/v1/user",
        &[("apikey", &secret)],
        "",
    )
    .await;
    assert_eq!(m.status, Some(404));

    // A failing method: the next PATCH gets 503 unforwarded, the one after
    // goes through.
    gw.fail_method("PATCH", 1);
    let patch = format!("{REST_PREFIX}/auth_sessions?id=eq.{id}");
    let headers = [
        ("apikey", secret.as_str()),
        ("Content-Type", "application/json"),
        ("Prefer", "return=minimal"),
    ];
    let body = r#"{"refresh_count":7}"#;
    let m = send(gw.addr(), "PATCH", &patch, &headers, body).await;
    assert_eq!(m.status, Some(503));
    assert_eq!(row(&db, &id)["refresh_count"], 3);
    let m = send(gw.addr(), "PATCH", &patch, &headers, body).await;
    assert_eq!(m.status, Some(204), "{}", m.text());
    assert_eq!(row(&db, &id)["refresh_count"], 7);
    assert_eq!(gw.count("PATCH"), 2);
    assert_eq!(gw.answered(&Answer::MethodFault), 1);

    // What was received is recorded, headers included.
    let last = gw.requests().pop().unwrap();
    assert_eq!(last.method, "PATCH");
    assert_eq!(last.target, patch);
    assert_eq!(last.header("APIKEY"), Some(secret.as_str()));
    assert_eq!(last.answer, Answer::Forwarded(204));

    // An outage: 503 with Retry-After until the window ends, then forwarded.
    let outage = Duration::from_millis(300);
    gw.outage_after_with_retry_after(gw.total(), outage, 1);
    let first = get(vec![("apikey", secret.clone())]).await;
    assert_eq!(first.status, Some(503));
    assert_eq!(first.header("retry-after"), Some("1"));
    let (_, end) = gw.outage_window().unwrap();
    let answer = loop {
        let m = get(vec![("apikey", secret.clone())]).await;
        if m.status != Some(503) {
            break m;
        }
        // A poll interval, not a guess: the loop ends on the first answer.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(std::time::Instant::now() >= end);
    assert_eq!(answer.status, Some(200));

    // A redirect: 307 to the same path on the other host.
    gw.redirect_to("http://127.0.0.1:9");
    let m = get(vec![("apikey", secret.clone())]).await;
    assert_eq!(m.status, Some(307));
    assert_eq!(
        m.header("location"),
        Some(&*format!("http://127.0.0.1:9{path}"))
    );
}
