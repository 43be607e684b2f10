//! Arbitrary stored cookies and `Set-Cookie` headers: reading and merging
//! never panic, and whatever they leave is storable and read back the same.

use super::*;
use proptest::prelude::*;

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
    let domain = prop_oneof![
        Just(json!("aimharder.com")),
        Just(json!(".AimHarder.com")),
        Just(json!("mygym.aimharder.com")),
        Just(json!("127.0.0.1")),
        Just(json!("[::1]")),
        Just(json!("")),
        Just(json!(7)),
        tricky_string().prop_map(Value::from),
    ];
    let path = prop_oneof![
        Just(json!("/")),
        Just(json!("/api")),
        Just(json!("")),
        Just(json!("api")),
        tricky_string().prop_map(Value::from),
    ];
    let host_only = prop_oneof![Just(json!(true)), Just(json!(false)), Just(json!("x"))];
    let cookie = (
        tricky_string(),
        tricky_string(),
        prop::option::of(arbitrary_json()),
        prop::option::of(domain),
        prop::option::of(path),
        prop::option::of(host_only),
    )
        .prop_map(|(name, value, extra, domain, path, host_only)| {
            let mut object = json!({"name": name, "value": value});
            for (key, item) in [
                ("extra", extra),
                ("domain", domain),
                ("path", path),
                ("hostOnly", host_only),
            ] {
                if let Some(item) = item {
                    object[key] = item;
                }
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
        Just("; Domain=aimharder.com".to_owned()),
        Just("; Domain=.AimHarder.com".to_owned()),
        Just("; Domain=mygym.aimharder.com".to_owned()),
        Just("; Domain=127.0.0.1".to_owned()),
        Just("; Domain=evil.com".to_owned()),
        Just("; Domain=".to_owned()),
        Just("; Path=/api".to_owned()),
        Just("; Path=api".to_owned()),
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

const URLS: [&str; 6] = [
    "https://aimharder.com/setrefresh",
    "https://aimharder.com/api/tokenUpdate",
    "https://mygym.aimharder.com/api/whoami",
    "https://login.aimharder.com/",
    "http://127.0.0.1:1/setrefresh",
    "http://[::1]:2/a/b",
];

fn answering() -> impl Strategy<Value = Url> {
    prop::sample::select(&URLS[..]).prop_map(url)
}

fn assert_round_trips(jar: &CookieJar) {
    let stored = jar.to_json();
    let reread = CookieJar::from_json(&stored).expect("to_json output is accepted");
    assert_eq!(reread.to_json(), stored);
    assert_eq!(reread.len(), jar.len());
    for to in URLS {
        assert_eq!(header_to(&reread, to), header_to(jar, to), "{to}");
    }
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
        from in answering(),
    ) {
        let mut jar = CookieJar::from_json(&stored).unwrap_or_else(|_| session());
        let before = jar.to_json();
        let changed = jar.merge_set_cookies(set_cookies.iter().map(String::as_str), &from, now);
        prop_assert_eq!(changed, jar.to_json() != before);
        assert_round_trips(&jar);
    }
}
