//! What one request to the simulated AimHarder carried, and whether it
//! looks like what AimHarder's own page sends.

use super::TOKEN_UPDATE;

/// What one request carried.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub raw_query: String,
    /// From the query (`/setrefresh`) or the form body (`/api/tokenUpdate`).
    pub token: String,
    pub fingerprint: String,
    /// The form's `ciclo` (`/api/tokenUpdate`).
    pub ciclo: Option<String>,
    pub cookie: Option<String>,
    /// The value of the [`SESSION_COOKIE`] sent, if any.
    pub session: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub x_requested_with: Option<String>,
    pub accept: Option<String>,
    pub origin: Option<String>,
    pub referer: Option<String>,
    pub sec_fetch_site: Option<String>,
    pub sec_fetch_mode: Option<String>,
    pub sec_fetch_dest: Option<String>,
}

impl Seen {
    /// Whether an API call (`tokenUpdate`, `whoami`) came as the page's
    /// own `fetch` would send it, from `origin`. AimHarder has answered
    /// `{"logout": 1}` to calls that did not, whatever the session.
    pub fn is_browser_call(&self, origin: &str) -> bool {
        let is = |v: &Option<String>, want: &str| v.as_deref() == Some(want);
        is(&self.origin, origin)
            && self
                .referer
                .as_deref()
                .is_some_and(|r| r.starts_with(origin))
            && is(&self.sec_fetch_site, "same-origin")
            && is(&self.sec_fetch_mode, "cors")
            && is(&self.sec_fetch_dest, "empty")
            && self
                .accept
                .as_deref()
                .is_some_and(|a| a.contains("application/json"))
            && (self.path != TOKEN_UPDATE
                || self
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")))
    }
}
