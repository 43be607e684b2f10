//! Which requests a stored cookie goes with, and which stored cookie a
//! `Set-Cookie` is: by host and path (RFC 6265).

use super::*;

#[test]
fn a_new_cookie_with_a_domain_attribute_records_that_domain() {
    let mut jar = jar(Value::Null);
    assert!(jar.merge_set_cookies(["lang=es; Domain=.AimHarder.com; Path=/"], &root(), NOW));
    assert_eq!(
        jar.to_json(),
        json!([{"name": "lang", "value": "es", "domain": "aimharder.com", "path": "/"}])
    );
    assert_eq!(
        header_to(&jar, "https://mygym.aimharder.com/").as_deref(),
        Some("lang=es")
    );
}

#[test]
fn a_new_cookie_without_path_records_the_default_path() {
    let mut jar = jar(Value::Null);
    let token_update = url("https://aimharder.com/api/tokenUpdate");
    assert!(jar.merge_set_cookies(["a=1", "b=2; Path=nonsense"], &token_update, NOW));
    assert_eq!(jar.to_json()[0]["path"], "/api");
    assert_eq!(jar.to_json()[1]["path"], "/api");
    assert_eq!(
        header_to(&jar, "https://aimharder.com/api/whoami").as_deref(),
        Some("a=1; b=2")
    );
    assert_eq!(header(&jar), None, "/setrefresh is not under /api");
}

#[test]
fn a_domain_the_host_may_not_set_is_ignored() {
    let mut jar = session();
    let before = jar.to_json();
    let changed = jar.merge_set_cookies(
        [
            "PHPSESSID=evil; Domain=evil.com",
            "PHPSESSID=evil; Domain=mygym.aimharder.com",
            "PHPSESSID=evil; Domain=harder.com",
            "PHPSESSID=; Max-Age=0; Domain=mygym.aimharder.com",
        ],
        &root(),
        NOW,
    );
    assert!(!changed);
    assert_eq!(jar.to_json(), before);
}

#[test]
fn a_set_cookie_updates_only_the_cookie_of_its_path() {
    let mut jar = jar(json!([
        {"name": "a", "value": "1", "path": "/"},
        {"name": "a", "value": "1", "path": "/es"},
    ]));
    // From /setrefresh, without a Path attribute: the default path, "/".
    assert!(jar.merge_set_cookies(["a=2"], &root(), NOW));
    assert!(jar.merge_set_cookies(["a=3; Path=/es"], &root(), NOW));
    assert_eq!(jar.values().collect::<Vec<_>>(), ["2", "3"]);
    assert_eq!(
        header_to(&jar, "https://aimharder.com/es/x").as_deref(),
        Some("a=3; a=2")
    );
    assert!(jar.merge_set_cookies(["a=; Max-Age=0; Path=/es"], &root(), NOW));
    assert_eq!(
        jar.to_json(),
        json!([{"name": "a", "value": "2", "path": "/"}])
    );
}

/// The cookies of a real login: one `PHPSESSID` for the root domain, one
/// for the member's gym, and a load-balancer cookie of the login host.
fn two_hosts() -> CookieJar {
    jar(json!([
        {"name": "PHPSESSID", "value": "root1", "domain": ".aimharder.com", "path": "/"},
        {"name": "PHPSESSID", "value": "gym1", "domain": "mygym.aimharder.com", "path": "/"},
        {"name": "AWSALB", "value": "login1", "domain": "login.aimharder.com", "hostOnly": true},
    ]))
}

#[test]
fn a_stored_domain_goes_to_the_hosts_that_domain_match_it() {
    let jar = two_hosts();
    for (to, expected) in [
        ("https://aimharder.com/setrefresh", Some("PHPSESSID=root1")),
        (
            "https://mygym.aimharder.com/",
            Some("PHPSESSID=root1; PHPSESSID=gym1"),
        ),
        (
            "https://a.mygym.aimharder.com/",
            Some("PHPSESSID=root1; PHPSESSID=gym1"),
        ),
        (
            "https://login.aimharder.com/",
            Some("PHPSESSID=root1; AWSALB=login1"),
        ),
        ("https://x.login.aimharder.com/", Some("PHPSESSID=root1")),
        ("https://notaimharder.com/", None),
        ("https://aimharder.com.example.net/", None),
        ("https://gym.aimharder.com/", Some("PHPSESSID=root1")),
    ] {
        assert_eq!(header_to(&jar, to).as_deref(), expected, "{to}");
    }
}

#[test]
fn hosts_match_whatever_their_case_and_a_leading_dot_is_ignored() {
    for domain in [
        "MyGym.AimHarder.COM",
        ".mygym.aimharder.com",
        "mygym.aimharder.com",
    ] {
        let jar = jar(json!([{"name": "a", "value": "1", "domain": domain}]));
        for to in [
            "https://MYGYM.aimharder.com/x",
            "https://mygym.aimharder.com/",
        ] {
            assert_eq!(header_to(&jar, to).as_deref(), Some("a=1"), "{domain} {to}");
        }
        assert_eq!(header_to(&jar, "https://aimharder.com/"), None, "{domain}");
    }
    let mut jar = jar(json!([{"name": "a", "value": "1", "domain": "MyGym.AimHarder.COM"}]));
    assert!(jar.merge_set_cookies(["a=2"], &url("https://mygym.AIMHARDER.com/"), NOW));
    assert_eq!(jar.len(), 1, "the same host: updated, not added");
    assert_eq!(jar.values().next(), Some("2"));
}

#[test]
fn an_ip_host_matches_only_itself() {
    let jar = jar(json!([
        {"name": "a", "value": "1", "domain": "127.0.0.1"},
        {"name": "b", "value": "2", "domain": "0.0.1"},
        {"name": "c", "value": "3", "domain": "[::1]", "hostOnly": true},
    ]));
    assert_eq!(
        header_to(&jar, "http://127.0.0.1:8080/setrefresh").as_deref(),
        Some("a=1")
    );
    assert_eq!(
        header_to(&jar, "http://[::1]:8080/").as_deref(),
        Some("c=3")
    );
}

#[test]
fn host_only_goes_to_that_host_alone() {
    let jar =
        jar(json!([{"name": "a", "value": "1", "domain": "aimharder.com", "hostOnly": true}]));
    assert_eq!(header(&jar).as_deref(), Some("a=1"));
    assert_eq!(header_to(&jar, "https://mygym.aimharder.com/"), None);
}

#[test]
fn a_stored_path_goes_to_the_paths_that_path_match_it() {
    let jar = jar(json!([
        {"name": "api", "value": "1", "path": "/api"},
        {"name": "slash", "value": "2", "path": "/api/"},
        {"name": "everywhere", "value": "3"},
    ]));
    for (to, expected) in [
        ("https://aimharder.com/api", "api=1; everywhere=3"),
        (
            "https://aimharder.com/api/whoami",
            "slash=2; api=1; everywhere=3",
        ),
        ("https://aimharder.com/apix", "everywhere=3"),
        ("https://aimharder.com/setrefresh", "everywhere=3"),
        ("https://aimharder.com/API/whoami", "everywhere=3"),
    ] {
        assert_eq!(header_to(&jar, to).as_deref(), Some(expected), "{to}");
    }
}

#[test]
fn no_domain_and_no_path_go_with_every_request() {
    let jar = session();
    for to in [
        "https://aimharder.com/setrefresh",
        "https://mygym.aimharder.com/api/whoami",
        "http://127.0.0.1:9/x/y",
    ] {
        assert_eq!(
            header_to(&jar, to).as_deref(),
            Some("PHPSESSID=sess1; AWSALB=oldalb; AWSALBCORS=oldcors"),
            "{to}"
        );
    }
}

#[test]
fn a_set_cookie_updates_only_the_same_named_cookie_of_its_host() {
    let mut jar = two_hosts();
    assert!(jar.merge_set_cookies(["PHPSESSID=root2; Path=/"], &root(), NOW));
    assert_eq!(
        jar.values().collect::<Vec<_>>(),
        ["root2", "gym1", "login1"]
    );

    let gym = url("https://mygym.aimharder.com/api/whoami");
    assert!(jar.merge_set_cookies(["PHPSESSID=gym2; Path=/"], &gym, NOW));
    assert_eq!(
        jar.values().collect::<Vec<_>>(),
        ["root2", "gym2", "login1"]
    );

    // The gym's host sets the root domain's cookie with a Domain attribute.
    assert!(jar.merge_set_cookies(["PHPSESSID=root3; Domain=aimharder.com; Path=/"], &gym, NOW));
    assert_eq!(
        jar.values().collect::<Vec<_>>(),
        ["root3", "gym2", "login1"]
    );
    assert_eq!(jar.len(), 3);
    assert_eq!(
        jar.to_json(),
        json!([
            {"name": "PHPSESSID", "value": "root3", "domain": ".aimharder.com", "path": "/"},
            {"name": "PHPSESSID", "value": "gym2", "domain": "mygym.aimharder.com", "path": "/"},
            {"name": "AWSALB", "value": "login1", "domain": "login.aimharder.com", "hostOnly": true},
        ])
    );
}

#[test]
fn a_set_cookie_of_a_host_without_its_cookie_is_added_beside_the_others() {
    let mut jar = jar(json!([
        {"name": "PHPSESSID", "value": "gym1", "domain": "mygym.aimharder.com"},
    ]));
    assert!(jar.merge_set_cookies(["PHPSESSID=root1; Path=/"], &root(), NOW));
    assert_eq!(
        jar.to_json(),
        json!([
            {"name": "PHPSESSID", "value": "gym1", "domain": "mygym.aimharder.com"},
            {"name": "PHPSESSID", "value": "root1", "domain": "aimharder.com", "hostOnly": true, "path": "/"},
        ])
    );
    assert_eq!(header(&jar).as_deref(), Some("PHPSESSID=root1"));
}

#[test]
fn expiry_removes_only_the_cookie_of_its_host() {
    let mut jar = two_hosts();
    assert!(jar.merge_set_cookies(["PHPSESSID=; Max-Age=0; Path=/"], &root(), NOW));
    assert_eq!(jar.values().collect::<Vec<_>>(), ["gym1", "login1"]);
    let expired = "AWSALB=x; Expires=Thu, 01 Jan 1970 00:00:01 GMT";
    assert!(
        !jar.merge_set_cookies([expired], &root(), NOW),
        "not the login host's"
    );
    assert!(jar.merge_set_cookies([expired], &url("https://login.aimharder.com/"), NOW));
    assert_eq!(jar.values().collect::<Vec<_>>(), ["gym1"]);
}

#[test]
fn rejects_a_domain_or_path_it_cannot_match_requests_against() {
    for bad in [
        json!({"domain": 7}),
        json!({"domain": "bad host"}),
        json!({"domain": "a[b]"}),
        json!({"domain": "aimharder.com", "hostOnly": "yes"}),
    ] {
        let mut cookie = json!({"name": "a", "value": "secret"});
        cookie
            .as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let err = error(json!([cookie]));
        assert_eq!(err, CookieError::BadDomain { name: "a".into() }, "{bad}");
        assert!(!err.to_string().contains("secret"));
    }
    for bad in [json!("api"), json!(1), json!(["/"])] {
        assert_eq!(
            error(json!([{"name": "a", "value": "1", "path": bad}])),
            CookieError::BadPath { name: "a".into() },
            "{bad}"
        );
    }
}

#[test]
fn an_empty_or_null_domain_or_path_is_none() {
    let jar = jar(json!([
        {"name": "a", "value": "1", "domain": "", "path": ""},
        {"name": "b", "value": "2", "domain": null, "path": null, "hostOnly": false},
        {"name": "c", "value": "3", "domain": "."},
    ]));
    assert_eq!(
        header_to(&jar, "https://x.example/y").as_deref(),
        Some("a=1; b=2; c=3")
    );
}

#[test]
fn set_cookies_debug_shows_names_but_no_values_nor_the_query() {
    let set_cookies = SetCookies::new(
        url("https://user:pw@aimharder.com/setrefresh?token=tok-secret#frag"),
        vec![
            "PHPSESSID=topsecret; Path=/".into(),
            "garbage-topsecret".into(),
        ],
    );
    let debug = format!("{set_cookies:?} {set_cookies:#?}");
    assert!(
        debug.contains("PHPSESSID") && debug.contains("count: 2"),
        "{debug}"
    );
    for secret in ["topsecret", "tok-secret", "pw", "user", "frag"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert_eq!(
        set_cookies.url().as_str(),
        "https://aimharder.com/setrefresh"
    );
}
