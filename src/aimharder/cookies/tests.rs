//! The jar's reading, merging and writing back, and what it refuses.

use super::*;
use proptest::prelude::*;
use secrecy::ExposeSecret;
use serde_json::json;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

fn jar(stored: Value) -> CookieJar {
    CookieJar::from_json(&stored).expect("valid stored cookies")
}

fn header(jar: &CookieJar) -> Option<String> {
    jar.header_value().map(|h| h.expose_secret().to_owned())
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

    assert!(jar.merge_set_cookies(["a=2; Path=/"], NOW));
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
        NOW,
    );
    assert!(!changed);
    assert_eq!(jar.to_json(), before);
}

#[test]
fn no_set_cookie_headers_is_no_change() {
    let mut jar = session();
    assert!(!jar.merge_set_cookies([], NOW));
    assert_eq!(jar.len(), 3);
}

#[test]
fn a_new_name_is_appended() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(["lang=es; Path=/"], NOW));
    assert_eq!(
        header(&jar).as_deref(),
        Some("PHPSESSID=sess1; AWSALB=oldalb; AWSALBCORS=oldcors; lang=es")
    );
    assert_eq!(jar.to_json()[3], json!({"name": "lang", "value": "es"}));
}

#[test]
fn max_age_zero_or_negative_removes() {
    for set_cookie in ["AWSALB=; Max-Age=0; Path=/", "AWSALB=gone; Max-Age=-1"] {
        let mut jar = session();
        assert!(jar.merge_set_cookies([set_cookie], NOW), "{set_cookie}");
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
        assert!(jar.merge_set_cookies([set_cookie], NOW), "{set_cookie}");
        assert_eq!(
            header(&jar).as_deref(),
            Some("PHPSESSID=sess1; AWSALBCORS=oldcors")
        );
    }
}

#[test]
fn expires_in_the_future_keeps() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(["AWSALB=new; Expires=Thu, 01 Jan 2026 12:00:01 GMT"], NOW));
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
        NOW
    ));
    assert_eq!(jar.values().nth(1), Some("new"));

    assert!(jar.merge_set_cookies(
        ["AWSALB=new; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Max-Age=0"],
        NOW
    ));
    assert_eq!(jar.len(), 2);
}

#[test]
fn expiring_an_unknown_name_is_no_change() {
    let mut jar = session();
    assert!(!jar.merge_set_cookies(["other=; Max-Age=0"], NOW));
    assert!(!jar.merge_set_cookies(["other=x; Expires=Thu, 01 Jan 1970 00:00:01 GMT"], NOW));
    assert_eq!(jar.len(), 3);
}

#[test]
fn untouched_cookies_are_kept_in_order() {
    let mut jar = session();
    assert!(jar.merge_set_cookies(["AWSALBCORS=new"], NOW));
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
        NOW,
    );
    assert!(!changed);
    assert_eq!(jar.to_json(), before);
}

#[test]
fn values_are_kept_verbatim() {
    let mut jar = jar(Value::Null);
    assert!(jar.merge_set_cookies(["q=\"a b\"", "p=%3D%20x"], NOW));
    assert_eq!(jar.values().collect::<Vec<_>>(), ["\"a b\"", "%3D%20x"]);
}

#[test]
fn the_last_set_cookie_for_a_name_wins() {
    let mut jar = session();
    assert!(!jar.merge_set_cookies(["AWSALB=tmp", "AWSALB=oldalb"], NOW));
    assert!(!jar.merge_set_cookies(["new=1", "new=; Max-Age=0"], NOW));
    assert_eq!(jar.to_json(), session().to_json());
}

#[test]
fn a_repeated_stored_name_is_updated_everywhere() {
    let mut jar = jar(json!([
        {"name": "a", "value": "1", "path": "/"},
        {"name": "a", "value": "1", "path": "/es"},
    ]));
    assert!(jar.merge_set_cookies(["a=2"], NOW));
    assert_eq!(header(&jar).as_deref(), Some("a=2; a=2"));
    assert!(jar.merge_set_cookies(["a=; Max-Age=0"], NOW));
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

/// Strings biased towards the characters the validation cares about.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{0,6}",
        "[a-z;=, \t\r\n\u{0}\u{7f}\"%é-]{0,8}",
        any::<String>(),
    ]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        tricky_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((tricky_string(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Arrays of cookie-shaped objects, so that validation, not just the
/// shape checks, gets exercised.
fn cookie_shaped_json() -> impl Strategy<Value = Value> {
    let cookie = (
        tricky_string(),
        tricky_string(),
        prop::option::of(arbitrary_json()),
    )
        .prop_map(|(name, value, extra)| {
            let mut object = json!({"name": name, "value": value});
            if let Some(extra) = extra {
                object["extra"] = extra;
            }
            object
        });
    prop::collection::vec(cookie, 0..5).prop_map(Value::Array)
}

fn set_cookie() -> impl Strategy<Value = String> {
    let name = prop_oneof!["[a-c]", Just("AWSALB".to_owned()), tricky_string()];
    let attribute = prop_oneof![
        Just("; Path=/".to_owned()),
        Just("; Max-Age=0".to_owned()),
        Just("; Max-Age=-5".to_owned()),
        Just("; Max-Age=".to_owned()),
        Just("; Max-Age=99999999999999999999999".to_owned()),
        any::<i64>().prop_map(|secs| format!("; Max-Age={secs}")),
        (0u32..10_000, 1u8..=31, 0u8..24).prop_map(|(year, day, hour)| {
            format!("; Expires=Thu, {day:02} Jan {year} {hour:02}:00:00 GMT")
        }),
        Just("; Expires=Sun Nov  6 08:49:37 1994".to_owned()),
        tricky_string().prop_map(|s| format!("; {s}")),
    ];
    prop_oneof![
        (
            name,
            tricky_string(),
            prop::collection::vec(attribute, 0..4)
        )
            .prop_map(|(name, value, attributes)| format!("{name}={value}{}", attributes.concat())),
        any::<String>(),
    ]
}

fn instant() -> impl Strategy<Value = OffsetDateTime> {
    (0i64..4_102_444_800)
        .prop_map(|secs| OffsetDateTime::from_unix_timestamp(secs).expect("timestamp in range"))
}

fn assert_round_trips(jar: &CookieJar) {
    let stored = jar.to_json();
    let reread = CookieJar::from_json(&stored).expect("to_json output is accepted");
    assert_eq!(reread.to_json(), stored);
    assert_eq!(reread.len(), jar.len());
    assert_eq!(header(&reread), header(jar));
}

proptest! {
    #[test]
    fn from_json_never_panics(stored in prop_oneof![arbitrary_json(), cookie_shaped_json()]) {
        if let Ok(jar) = CookieJar::from_json(&stored) {
            assert_round_trips(&jar);
            let written_back = if stored.is_null() { json!([]) } else { stored };
            prop_assert_eq!(jar.to_json(), written_back);
        }
    }

    #[test]
    fn merge_never_panics_and_keeps_the_jar_storable(
        stored in cookie_shaped_json(),
        set_cookies in prop::collection::vec(set_cookie(), 0..6),
        now in instant(),
    ) {
        let mut jar = CookieJar::from_json(&stored).unwrap_or_else(|_| session());
        let before = jar.to_json();
        let changed = jar.merge_set_cookies(set_cookies.iter().map(String::as_str), now);
        prop_assert_eq!(changed, jar.to_json() != before);
        assert_round_trips(&jar);
    }
}
