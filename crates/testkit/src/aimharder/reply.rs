//! The simulated AimHarder's scripted answers, and what they do to a
//! token and a session.

use std::sync::Arc;
use std::time::Duration;

pub type Hook = Arc<dyn Fn() + Send + Sync>;

/// One scripted answer.
#[derive(Clone)]
pub enum Reply {
    /// Run the hook (say, another writer touching the row), then answer.
    Then(Hook, Box<Reply>),
    /// Wait this long (beyond the server's latency), then answer.
    Delay(Duration, Box<Reply>),
    /// 200 with the localStorage script; `None` echoes what was sent.
    Refresh {
        token: Option<String>,
        fingerprint: Option<String>,
        set_cookies: Vec<String>,
    },
    Status(u16),
    /// 429 or 503 with `Retry-After: secs`.
    RetryAfter(u16, u64),
    Redirect(u16, &'static str),
    LoginPage,
    /// 200 `{"logout":1}`: how AimHarder's API announces a dead session.
    /// The session (its cookie) is dead from then on: whoami says so too.
    Logout,
    /// 200 `{"logout":1}` to a session that is alive: AimHarder refusing
    /// the request, not the session (whoami still knows the member).
    FalseLogout,
    /// 200 `{"data":[]}`: whoami's answer for a dead session (`Reply::ok()`
    /// is a live one there).
    Dead,
    NoScript,
    /// Body larger than 1 MiB.
    Huge,
    /// Bytes that are not UTF-8 around a valid-looking call.
    InvalidUtf8,
    /// Headers promise more body than is sent, then the connection closes.
    Truncated,
    /// Accept, read, and never answer.
    Hang,
    /// Close the connection without answering.
    Reset,
    /// Headers at once, then the body never finishes.
    SlowBody,
}

impl Reply {
    pub fn ok() -> Self {
        Reply::Refresh {
            token: None,
            fingerprint: None,
            set_cookies: vec![],
        }
    }

    pub fn rotate(token: &str) -> Self {
        Reply::Refresh {
            token: Some(token.into()),
            fingerprint: None,
            set_cookies: vec![],
        }
    }

    pub fn with_cookies(cookies: &[&str]) -> Self {
        Reply::Refresh {
            token: None,
            fingerprint: None,
            set_cookies: cookies.iter().map(|c| c.to_string()).collect(),
        }
    }
}

/// `USERID|EXPIRY|HASH` with the expiry moved on a day and a new hash, as
/// every `newToken` does; anything else gets a suffix.
pub fn rotated(token: &str) -> String {
    let parts: Vec<&str> = token.split('|').collect();
    match parts.as_slice() {
        [user, expiry, hash] => match expiry.parse::<u64>() {
            Ok(t) => format!("{user}|{}|{hash}r", t + 86_400),
            Err(_) => format!("{token}r"),
        },
        _ => format!("{token}r"),
    }
}

/// Whether `reply` to a `tokenUpdate` with `token` hands out another token.
pub(super) fn rotates(reply: &Reply, token: &str) -> bool {
    match reply {
        Reply::Then(_, next) | Reply::Delay(_, next) => rotates(next, token),
        Reply::Refresh { token: new, .. } => new.as_deref() != Some(token),
        _ => false,
    }
}

/// Whether `reply` to a keep-alive tells the session it is logged out
/// (and so ends it).
pub(super) fn logs_out(reply: &Reply) -> bool {
    match reply {
        Reply::Then(_, next) | Reply::Delay(_, next) => logs_out(next),
        Reply::Logout | Reply::LoginPage => true,
        Reply::Redirect(_, location) => location.contains("login") || location.contains("logout"),
        _ => false,
    }
}
