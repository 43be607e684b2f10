//! AimHarder's JSON answers: its API endpoints announce a dead session as
//! HTTP 200 with `{"logout": 1}` (any non-null `logout`),
//! `/api/tokenUpdate` hands out the rotated token as `{"newToken": "…"}`,
//! and `/api/whoami` lists the logged-in member as `{"data": [ … ]}`
//! (empty for a dead session).

use secrecy::SecretString;

/// Whether `body` is a JSON object with a non-null `logout`. Never panics,
/// whatever the bytes.
pub fn is_logout(body: &[u8]) -> bool {
    matches!(
        serde_json::from_slice(body),
        Ok(serde_json::Value::Object(fields)) if fields.get("logout").is_some_and(|v| !v.is_null())
    )
}

/// The rotated token of a `{"newToken": "…"}` answer. Never panics.
pub fn new_token(body: &[u8]) -> Option<SecretString> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(fields)) => match fields.get("newToken") {
            Some(serde_json::Value::String(t)) if !t.trim().is_empty() => {
                Some(SecretString::from(t.as_str()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// How many members a `{"data": [ … ]}` answer lists; `None` when the
/// answer has no `data` array. Never panics.
pub fn whoami_members(body: &[u8]) -> Option<usize> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(fields)) => match fields.get("data") {
            Some(serde_json::Value::Array(members)) => Some(members.len()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_new_token_is_a_non_empty_string_in_an_object() {
        let t = new_token(br#"{"newToken": "69232|1766907797|f306"}"#).unwrap();
        assert_eq!(t.expose_secret(), "69232|1766907797|f306");
        for other in [
            &br#"{"newToken": 5}"#[..],
            br#"{"newToken": " "}"#,
            br#"["x"]"#,
            b"<html>",
        ] {
            assert!(
                new_token(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn a_non_null_logout_in_an_object_and_nothing_else() {
        for logout in [
            &br#"{"logout": 1}"#[..],
            br#"{"logout":true}"#,
            br#"{"data":[],"logout":"1"}"#,
        ] {
            assert!(is_logout(logout), "{}", String::from_utf8_lossy(logout));
        }
        for other in [
            &br#"{"logout": null}"#[..],
            b"<html></html>",
            b"",
            b"[1,2]",
            br#"{"newToken": "1|2|3"}"#,
        ] {
            assert!(!is_logout(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn whoami_counts_the_members_of_data() {
        assert_eq!(
            whoami_members(br#"{"data":[{"id":1,"name":"Ana"}]}"#),
            Some(1)
        );
        assert_eq!(whoami_members(br#"{"data": []}"#), Some(0));
        for other in [&br#"{"data": {}}"#[..], br#"[]"#, b"<html>", b""] {
            assert_eq!(
                whoami_members(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = is_logout(&body);
            let _ = new_token(&body);
            let _ = whoami_members(&body);
        }

        #[test]
        fn never_panics_on_json_shaped_text(body in r#"\{("(logout|newToken|data)": ?[^,}]{0,12},? ?){0,3}\}"#) {
            let _ = is_logout(body.as_bytes());
            let _ = new_token(body.as_bytes());
            let _ = whoami_members(body.as_bytes());
        }
    }
}
