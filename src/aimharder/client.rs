//! The AimHarder side: one `/setrefresh` call and what its answer means.

use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use url::Url;

use crate::aimharder::api::{is_logout, new_token};
use crate::aimharder::parser::{parse_page, Page, RefreshedSession};
use crate::http::{client_builder, describe_transport, join_path, retry_after};

/// The words for a `{"logout": …}` answer.
const LOGOUT: &str =
    "AimHarder answered {\"logout\": …}: the session is dead; the member must log in again";

/// The most of a body read: a real refresh page is a few hundred bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt {
    Refreshed {
        session: RefreshedSession,
        set_cookies: Vec<String>,
    },
    /// The session is dead: log in again in the web app.
    Expired(String),
    /// Not worth retrying.
    Failed(String),
    /// Worth retrying (429, 5xx, timeout, connection error).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// Which keep-alive to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /setrefresh`: a page whose script stores the token.
    Setrefresh,
    /// `POST /api/tokenUpdate`: what AimHarder's own page calls every 29
    /// minutes; the token rotates on every call.
    TokenUpdate,
}

impl Endpoint {
    /// How old a refresh may get before a session is due again.
    pub fn default_older_than(self) -> Duration {
        match self {
            Endpoint::Setrefresh => Duration::from_secs(6 * 3600),
            Endpoint::TokenUpdate => Duration::from_secs(20 * 60),
        }
    }
}

/// How to talk to AimHarder.
#[derive(Debug, Clone)]
pub struct AimHarderConfig {
    pub base_url: Url,
    pub endpoint: Endpoint,
    pub default_fingerprint: String,
    pub user_agent: String,
    pub request_timeout: Duration,
}

pub struct AimHarder {
    http: reqwest::Client,
    endpoint: Endpoint,
    url: Url,
}

impl AimHarder {
    pub fn new(config: &AimHarderConfig) -> anyhow::Result<Self> {
        let http = client_builder()
            .redirect(Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()?;
        let path = match config.endpoint {
            Endpoint::Setrefresh => "setrefresh",
            Endpoint::TokenUpdate => "api/tokenUpdate",
        };
        Ok(Self {
            http,
            endpoint: config.endpoint,
            url: join_path(&config.base_url, path),
        })
    }

    /// One keep-alive call with the session's token, fingerprint and cookies.
    pub async fn refresh(
        &self,
        token: &SecretString,
        fingerprint: &str,
        cookie_header: Option<&SecretString>,
    ) -> Attempt {
        let fields = [
            ("token", token.expose_secret()),
            ("fingerprint", fingerprint),
        ];
        let mut req = match self.endpoint {
            Endpoint::Setrefresh => self.http.get(self.url.clone()).query(&fields),
            Endpoint::TokenUpdate => {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", token.expose_secret())
                    .append_pair("ciclo", "1")
                    .append_pair("fingerprint", fingerprint)
                    .finish();
                self.http
                    .post(self.url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("X-Requested-With", "XMLHttpRequest")
                    .body(form)
            }
        };
        if let Some(cookies) = cookie_header {
            match HeaderValue::from_str(cookies.expose_secret()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    req = req.header(COOKIE, value);
                }
                Err(_) => {
                    return Attempt::Failed("stored cookies cannot be sent as a header".into())
                }
            }
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return transport_failure(&e),
        };
        let status = resp.status();
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return classify_redirect(status, location);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry {
                reason: format!("HTTP {}", status.as_u16()),
                retry_after: retry_after(
                    resp.headers().get(RETRY_AFTER),
                    OffsetDateTime::now_utc(),
                ),
            };
        }
        if status == StatusCode::FORBIDDEN {
            return Attempt::Failed(
                "blocked, HTTP 403 (AimHarder blocks some cloud IP ranges; run from another network)".into(),
            );
        }
        if status != StatusCode::OK {
            return Attempt::Failed(format!("unexpected HTTP {}", status.as_u16()));
        }
        let body = match read_capped(resp).await {
            Ok(body) => body,
            Err(attempt) => return attempt,
        };
        // A dead session may be announced as JSON on either endpoint.
        if is_logout(&body) {
            return Attempt::Expired(LOGOUT.into());
        }
        if self.endpoint == Endpoint::TokenUpdate {
            return match new_token(&body) {
                Some(token) => Attempt::Refreshed {
                    session: RefreshedSession {
                        token,
                        fingerprint: None,
                    },
                    set_cookies,
                },
                None => Attempt::Failed("unexpected response: no newToken in the answer".into()),
            };
        }
        match parse_page(&String::from_utf8_lossy(&body)) {
            Page::Refreshed(session) => Attempt::Refreshed {
                session,
                set_cookies,
            },
            Page::Login => Attempt::Expired(
                "AimHarder answered with its login page: the member must log in again".into(),
            ),
            Page::Unexpected => {
                Attempt::Failed("unexpected response: no refreshToken in the page".into())
            }
        }
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, Attempt> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Attempt::Failed(
                        "unexpected response: body larger than 1 MiB".into(),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_failure(&e)),
        }
    }
}

fn transport_failure(e: &reqwest::Error) -> Attempt {
    Attempt::Retry {
        reason: describe_transport(e),
        retry_after: None,
    }
}

fn classify_redirect(status: StatusCode, location: &str) -> Attempt {
    // Only the path is quoted back: a query may echo the token.
    let path = location.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase();
    if lower.contains("login") || lower.contains("logout") {
        Attempt::Expired(format!(
            "AimHarder redirected to {path} (HTTP {}): the member must log in again",
            status.as_u16()
        ))
    } else {
        Attempt::Failed(format!(
            "unexpected redirect (HTTP {}) to {path}",
            status.as_u16()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_to_login_or_logout_mean_expired() {
        assert!(matches!(
            classify_redirect(
                StatusCode::FOUND,
                "https://login.aimharder.com/?token=secret"
            ),
            Attempt::Expired(_)
        ));
        assert!(matches!(
            classify_redirect(StatusCode::SEE_OTHER, "/logout"),
            Attempt::Expired(_)
        ));
        match classify_redirect(StatusCode::FOUND, "/elsewhere?token=secret") {
            Attempt::Failed(msg) => assert!(!msg.contains("secret"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
