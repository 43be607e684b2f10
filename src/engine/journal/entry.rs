//! One journaled result, and the digest that tells whether a row still
//! holds the credentials its call was made with.

use ring::digest::{digest, SHA256};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::supabase::write::expose_opt;

/// One unrecorded result: the row as the call found it, and what the call
/// brought back.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub(crate) id: String,
    /// The run that called: its claim may still hold the row (the write
    /// that failed would have released it), and the replay claims as it.
    pub(crate) run: String,
    /// When AimHarder accepted the refresh (by the runner's clock), for a
    /// success. A failure has none, so that a binary from before failures
    /// were journaled skips its line rather than take it for a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refreshed_at: Option<String>,
    /// AimHarder's answer was a failure (or a logout): what to record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failed: Option<Failure>,
    /// The row's `refresh_count` when it was called.
    pub(crate) refresh_count: Option<i64>,
    /// [`credentials_digest`] of the token and cookies it was called with:
    /// a row whose credentials changed since (a new login) is not written.
    pub(crate) credentials: String,
    #[serde(serialize_with = "expose_opt")]
    pub(crate) aimharder_token: Option<SecretString>,
    pub(crate) fingerprint: Option<String>,
    pub(crate) aimharder_cookies: Option<serde_json::Value>,
}

/// A failure to record: when AimHarder answered (the runner's clock), why,
/// and whether it turns auto refresh off.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Failure {
    pub(crate) at: String,
    pub(crate) error: String,
    pub(crate) expired: bool,
}

impl Entry {
    /// When AimHarder answered.
    pub fn answered_at(&self) -> &str {
        match (&self.refreshed_at, &self.failed) {
            (Some(at), _) => at,
            (None, Some(f)) => &f.at,
            (None, None) => "",
        }
    }
}

/// SHA-256 of a row's token and cookies: compares credentials without
/// keeping the old ones.
pub fn credentials_digest(token: Option<&SecretString>, cookies: &serde_json::Value) -> String {
    let mut bytes = token
        .map(|t| t.expose_secret().as_bytes().to_vec())
        .unwrap_or_default();
    bytes.push(0);
    bytes.extend_from_slice(cookies.to_string().as_bytes());
    sha256_hex(&bytes, 32)
}

/// The first `bytes` bytes of the SHA-256 of `data`, in hex.
pub(super) fn sha256_hex(data: &[u8], bytes: usize) -> String {
    digest(&SHA256, data).as_ref()[..bytes]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
impl Entry {
    /// A journaled success for session `id` (count 3, no credentials), for
    /// the tests of the journal and its replay.
    pub fn sample(id: &str) -> Self {
        Entry {
            id: id.into(),
            run: "0a1b2c3d-0000-4000-8000-00000000abcd".into(),
            refreshed_at: Some("2026-11-27T04:00:00Z".into()),
            failed: None,
            refresh_count: Some(3),
            credentials: credentials_digest(None, &serde_json::Value::Null),
            aimharder_token: Some(SecretString::from("1|2|new")),
            fingerprint: None,
            aimharder_cookies: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry::sample(id)
    }

    #[test]
    fn a_failure_has_no_refresh_time_so_older_binaries_skip_it() {
        let failure = Entry {
            refreshed_at: None,
            failed: Some(Failure {
                at: "2026-11-27T04:00:00Z".into(),
                error: "answered logout".into(),
                expired: true,
            }),
            aimharder_token: None,
            ..entry("f")
        };
        let line = serde_json::to_value(&failure).unwrap();
        assert!(line.get("refreshed_at").is_none(), "{line}");
        assert_eq!(failure.answered_at(), "2026-11-27T04:00:00Z");
        // A line of an older binary reads as a success.
        let old = r#"{"id":"a","run":"r","refreshed_at":"2026-11-27T04:00:00Z","refresh_count":1,
                      "credentials":"c","aimharder_token":"t","fingerprint":null,"aimharder_cookies":null}"#;
        let old: Entry = serde_json::from_str(old).unwrap();
        assert!(old.failed.is_none() && old.refreshed_at.is_some());
    }

    #[test]
    fn the_digest_tells_credentials_apart() {
        let cookies = serde_json::json!([{"name": "PHPSESSID", "value": "a"}]);
        let token = SecretString::from("1|2|3");
        let d = credentials_digest(Some(&token), &cookies);
        assert_eq!(d.len(), 64);
        assert_eq!(d, credentials_digest(Some(&token), &cookies.clone()));
        assert_ne!(
            d,
            credentials_digest(Some(&SecretString::from("1|2|4")), &cookies)
        );
        assert_ne!(
            d,
            credentials_digest(
                Some(&token),
                &serde_json::json!([{"name": "PHPSESSID", "value": "b"}])
            )
        );
    }
}
