//! The jar's reading, merging and writing back, and what it refuses.

use super::*;
use secrecy::ExposeSecret;
use serde_json::json;
use time::macros::datetime;

mod hosts;
mod properties;

const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

fn url(url: &str) -> Url {
    Url::parse(url).expect("a test URL")
}

/// Where the keep-alive goes.
fn root() -> Url {
    url("https://aimharder.com/setrefresh")
}

fn jar(stored: Value) -> CookieJar {
    CookieJar::from_json(&stored).expect("valid stored cookies")
}

fn header_to(jar: &CookieJar, to: &str) -> Option<String> {
    jar.header_for(&url(to))
        .map(|h| h.expose_secret().to_owned())
}

fn header(jar: &CookieJar) -> Option<String> {
    header_to(jar, root().as_str())
}

fn session() -> CookieJar {
    jar(json!([
        {"name": "PHPSESSID", "value": "sess1"},
        {"name": "AWSALB", "value": "oldalb"},
        {"name": "AWSALBCORS", "value": "oldcors"},
    ]))
}

#[test]
fn parses_valid_cookies() {
    let jar = session();
    assert_eq!(jar.len(), 3);
    assert!(!jar.is_empty());
    assert_eq!(
        jar.values().collect::<Vec<_>>(),
        ["sess1", "oldalb", "oldcors"]
    );
}

#[test]
fn null_is_an_empty_jar() {
    let jar = jar(Value::Null);
    assert!(jar.is_empty());
    assert_eq!(jar.len(), 0);
    assert_eq!(header(&jar), None);
    assert_eq!(jar.to_json(), json!([]));
}

#[test]
fn empty_array_is_an_empty_jar() {
    assert!(jar(json!([])).is_empty());
}

#[test]
fn extra_keys_survive_a_round_trip_and_a_merge() {
    let stored = json!([
        {"name": "a", "value": "1", "domain": ".aimharder.com", "path": "/", "httpOnly": true},
        {"name": "b", "value": "x=y, z", "expires": 1767225600},
    ]);
    let mut jar = jar(stored.clone());
    assert_eq!(jar.to_json(), stored);

    assert!(jar.merge_set_cookies(["a=2; Path=/"], &root(), NOW));
    assert_eq!(
        jar.to_json(),
        json!([
            {"name": "a", "value": "2", "domain": ".aimharder.com", "path": "/", "httpOnly": true},
            {"name": "b", "value": "x=y, z", "expires": 1767225600},
        ])
    );
}

fn error(stored: Value) -> CookieError {
    CookieJar::from_json(&stored).expect_err("invalid stored cookies")
}

#[test]
fn rejects_non_arrays() {
    for stored in [
        json!({"name": "a", "value": "1"}),
        json!("a=1"),
        json!(1),
        json!(true),
    ] {
        assert_eq!(error(stored), CookieError::NotAnArray);
    }
}

#[test]
fn rejects_an_element_that_is_not_an_object() {
    let stored = json!([{"name": "a", "value": "1"}, "b=2"]);
    assert_eq!(error(stored), CookieError::NotAnObject { index: 1 });
    assert_eq!(error(json!([null])), CookieError::NotAnObject { index: 0 });
}

#[test]
fn rejects_a_missing_or_non_string_name() {
    for stored in [
        json!([{"value": "1"}]),
        json!([{"name": null, "value": "1"}]),
        json!([{"name": 7, "value": "1"}]),
    ] {
        assert_eq!(error(stored), CookieError::MissingName { index: 0 });
    }
}

#[test]
fn rejects_an_empty_name() {
    assert_eq!(
        error(json!([{"name": "", "value": "1"}])),
        CookieError::EmptyName { index: 0 }
    );
}

#[test]
fn rejects_names_with_forbidden_characters() {
    for name in [
        "a;b", "a=b", "a,b", "a b", "a\tb", "a\rb", "a\nb", "a\u{0}b", "a\u{7f}b",
    ] {
        assert_eq!(
            error(json!([{"name": "ok", "value": "1"}, {"name": name, "value": "1"}])),
            CookieError::BadName { index: 1 },
            "name {name:?}"
        );
    }
}

#[test]
fn rejects_a_missing_or_non_string_value() {
    for stored in [
        json!([{"name": "a"}]),
        json!([{"name": "a", "value": null}]),
        json!([{"name": "a", "value": 1}]),
        json!([{"name": "a", "value": ["1"]}]),
    ] {
        assert_eq!(
            error(stored),
            CookieError::MissingValue { name: "a".into() }
        );
    }
}

#[test]
fn rejects_values_with_forbidden_characters() {
    for value in [
        "se\rcret",
        "se\ncret",
        "se\r\ncret",
        "se;cret",
        "se\u{0}cret",
    ] {
        assert_eq!(
            error(json!([{"name": "a", "value": value}])),
            CookieError::BadValue { name: "a".into() },
            "value {value:?}"
        );
    }
}

#[test]
fn error_messages_are_one_line_and_never_show_a_value() {
    let errors = [
        error(json!([{"name": "a", "value": "secret;\r\n"}])),
        error(json!([{"name": "a b", "value": "secret"}])),
        error(json!([{"name": "a", "value": 12345}])),
    ];
    for err in errors {
        let message = err.to_string();
        assert!(!message.contains("secret"), "{message}");
        assert!(!message.contains("12345"), "{message}");
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{message}"
        );
    }
}

#[test]
fn rotated_load_balancer_cookies_replace_the_stored_ones() {
    let mut jar = session();
    let changed = jar.merge_set_cookies(
        [
            "AWSALB=Qm9vK2Zvby9iYXI=; Expires=Thu, 08 Jan 2026 12:00:00 GMT; Path=/",
            "AWSALBCORS=Qm9vK2Zvby9iYXI=; Expires=Thu, 08 Jan 2026 12:00:00 GMT; Path=/; SameSite=None; Secure",
        ],
        &root(),
        NOW,
    );
    assert!(changed);
    assert_eq!(
        jar.to_json(),
        json!([
            {"name": "PHPSESSID", "value": "sess1"},
            {"name": "AWSALB", "value": "Qm9vK2Zvby9iYXI="},
            {"name": "AWSALBCORS", "value": "Qm9vK2Zvby9iYXI="},
        ])
    );
}

#[test]
fn the_same_value_again_is_no_change() {
    let mut jar = session();
    let before = jar.to_json();
    let changed = jar.merge_set_cookies(
        ["AWSALB=oldalb; Expires=Thu, 08 Jan 2026 12:00:00 GMT; Path=/"],
        &root(),
        NOW,
    );
    assert!(!changed);
    assert_eq!(jar.to_json(), before);
}

#[test]
fn no_set_cookie_headers_is_no_change() {
    let mut jar = session();
    assert!(!jar.merge_set_cookies([], &root(), NOW));
    assert_eq!(jar.len(), 3);
}

#[test]
fn a_new_name_is_appended_for_the_host_that_set_it() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(["lang=es; Path=/"], &root(), NOW));
    assert_eq!(
        header(&jar).as_deref(),
        Some("PHPSESSID=sess1; AWSALB=oldalb; AWSALBCORS=oldcors; lang=es")
    );
    assert_eq!(
        jar.to_json()[3],
        json!({"name": "lang", "value": "es", "domain": "aimharder.com", "hostOnly": true, "path": "/"})
    );
    assert_eq!(
        header_to(&jar, "https://mygym.aimharder.com/").as_deref(),
        Some("PHPSESSID=sess1; AWSALB=oldalb; AWSALBCORS=oldcors"),
        "host-only: not for a subdomain"
    );
}

#[test]
fn max_age_zero_or_negative_removes() {
    for set_cookie in ["AWSALB=; Max-Age=0; Path=/", "AWSALB=gone; Max-Age=-1"] {
        let mut jar = session();
        assert!(
            jar.merge_set_cookies([set_cookie], &root(), NOW),
            "{set_cookie}"
        );
        assert_eq!(
            header(&jar).as_deref(),
            Some("PHPSESSID=sess1; AWSALBCORS=oldcors")
        );
    }
}

#[test]
fn expires_at_or_before_now_removes() {
    for set_cookie in [
        "AWSALB=deleted; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/",
        "AWSALB=deleted; Expires=Thu, 01 Jan 2026 12:00:00 GMT",
    ] {
        let mut jar = session();
        assert!(
            jar.merge_set_cookies([set_cookie], &root(), NOW),
            "{set_cookie}"
        );
        assert_eq!(
            header(&jar).as_deref(),
            Some("PHPSESSID=sess1; AWSALBCORS=oldcors")
        );
    }
}

#[test]
fn expires_in_the_future_keeps() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(
        ["AWSALB=new; Expires=Thu, 01 Jan 2026 12:00:01 GMT"],
        &root(),
        NOW
    ));
    assert_eq!(
        header(&jar).as_deref(),
        Some("PHPSESSID=sess1; AWSALB=new; AWSALBCORS=oldcors")
    );
}

#[test]
fn max_age_wins_over_expires() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(
        ["AWSALB=new; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:01 GMT"],
        &root(),
        NOW
    ));
    assert_eq!(jar.values().nth(1), Some("new"));

    assert!(jar.merge_set_cookies(
        ["AWSALB=new; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Max-Age=0"],
        &root(),
        NOW
    ));
    assert_eq!(jar.len(), 2);
}

#[test]
fn expiring_an_unknown_name_is_no_change() {
    let mut jar = session();
    assert!(!jar.merge_set_cookies(["other=; Max-Age=0"], &root(), NOW));
    assert!(!jar.merge_set_cookies(
        ["other=x; Expires=Thu, 01 Jan 1970 00:00:01 GMT"],
        &root(),
        NOW
    ));
    assert_eq!(jar.len(), 3);
}

#[test]
fn untouched_cookies_are_kept_in_order() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(["AWSALBCORS=new"], &root(), NOW));
    assert_eq!(
        header(&jar).as_deref(),
        Some("PHPSESSID=sess1; AWSALB=oldalb; AWSALBCORS=new")
    );
}

#[test]
fn garbage_set_cookies_are_ignored() {
    let mut jar = session();
    let before = jar.to_json();
    let changed = jar.merge_set_cookies(
        [
            "",
            ";",
            "no-pair",
            "=value-without-name",
            "AWSALB",
            "bad name=1",
            "bad,name=1",
            "AWSALB=bell\u{7}char",
            "AWSALB=del\u{7f}",
        ],
        &root(),
        NOW,
    );
    assert!(!changed);
    assert_eq!(jar.to_json(), before);
}

#[test]
fn values_are_kept_verbatim() {
    let mut jar = jar(Value::Null);
    assert!(jar.merge_set_cookies(["q=\"a b\"", "p=%3D%20x"], &root(), NOW));
    assert_eq!(jar.values().collect::<Vec<_>>(), ["\"a b\"", "%3D%20x"]);
}

#[test]
fn the_last_set_cookie_for_a_name_wins() {
    let mut jar = session();
    assert!(!jar.merge_set_cookies(["AWSALB=tmp", "AWSALB=oldalb"], &root(), NOW));
    assert!(!jar.merge_set_cookies(["new=1", "new=; Max-Age=0"], &root(), NOW));
    assert_eq!(jar.to_json(), session().to_json());
}

#[test]
fn a_repeated_cookie_without_domain_or_path_is_updated_everywhere() {
    let mut jar = jar(json!([
        {"name": "a", "value": "1"},
        {"name": "a", "value": "1"},
    ]));
    assert!(jar.merge_set_cookies(["a=2"], &root(), NOW));
    assert_eq!(header(&jar).as_deref(), Some("a=2; a=2"));
    assert!(jar.merge_set_cookies(["a=; Max-Age=0"], &root(), NOW));
    assert!(jar.is_empty());
}

#[test]
fn header_value_joins_pairs_with_semicolon_space() {
    let jar = jar(json!([
        {"name": "a", "value": "1"},
        {"name": "b", "value": "2"},
        {"name": "c", "value": ""},
    ]));
    assert_eq!(header(&jar).as_deref(), Some("a=1; b=2; c="));
}

#[test]
fn debug_shows_names_but_no_values() {
    let jar = jar(json!([
        {"name": "PHPSESSID", "value": "topsecret1", "note": "topsecret2"},
    ]));
    let debug = format!("{jar:?} {jar:#?}");
    assert!(debug.contains("PHPSESSID"), "{debug}");
    assert!(!debug.contains("topsecret"), "{debug}");
}
