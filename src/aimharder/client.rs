//! The AimHarder side: one keep-alive call (`/setrefresh` or
//! `/api/tokenUpdate`), one liveness question (`/api/whoami`), and what
//! their answers mean.

use std::time::Duration;

use reqwest::header::{
    HeaderValue, ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, REFERER, RETRY_AFTER, SET_COOKIE,
};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use url::Url;

use crate::aimharder::api::{is_logout, new_token, whoami_members};
use crate::aimharder::cookies::{CookieJar, SetCookies};
use crate::aimharder::parser::{parse_page, Page, RefreshedSession};
use crate::http::{
    client_builder, describe_transport, join_path, read_capped, retry_after, BodyError,
};

/// The words for a `{"logout": …}` answer.
const LOGOUT: &str =
    "AimHarder answered {\"logout\": …}: the session is dead; the member must log in again";

/// The most of a body read: a real refresh page is a few hundred bytes.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The keep-alive worked: the new token and fingerprint, and the cookies
    /// the answer set.
    Refreshed {
        session: RefreshedSession,
        set_cookies: SetCookies,
    },
    /// The session is dead: log in again in the web app.
    Expired(String),
    /// Not worth retrying.
    Failed(String),
    /// AimHarder refuses this runner (403): nothing to do with the session.
    Blocked(String),
}

/// A failure worth retrying: 429, 5xx, a timeout, a connection error.
#[derive(Debug)]
pub(crate) struct Transient {
    pub(crate) reason: String,
    /// How long AimHarder asked to wait (`Retry-After`), if it said.
    pub(crate) retry_after: Option<Duration>,
    /// The HTTP status, when there was an answer.
    pub(crate) status: Option<u16>,
    /// The request may have reached AimHarder and been acted on (a timeout,
    /// a connection lost after sending, a 5xx); not a refused connection
    /// nor a 429.
    pub(crate) reached: bool,
}

/// What `/api/whoami` says of a session.
#[derive(Debug)]
pub(crate) enum Whoami {
    /// AimHarder knows a member for these cookies: the session is logged in.
    Alive,
    /// Logged out at AimHarder: the member must log in again.
    Dead(String),
    /// No answer about the session (an unexpected page, ...).
    Failed(String),
    /// AimHarder refuses this runner (403).
    Blocked(String),
}

/// What an exchange came to before the endpoint reads the body.
enum Exchange {
    Body {
        body: Vec<u8>,
        set_cookies: SetCookies,
    },
    /// Sent to a login or logout page: the session is dead.
    ToLogin(String),
    Failed(String),
    Blocked(String),
}

/// Which keep-alive to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET /setrefresh`: a page whose script stores the token.
    Setrefresh,
    /// `POST /api/tokenUpdate`: what AimHarder's own page calls every 29
    /// minutes; the token rotates on every call.
    TokenUpdate,
}

impl Endpoint {
    /// How old a refresh may get before a session is due again.
    pub(crate) fn default_older_than(self) -> Duration {
        match self {
            Endpoint::Setrefresh => Duration::from_secs(6 * 3600),
            Endpoint::TokenUpdate => Duration::from_secs(20 * 60),
        }
    }
}

/// How to talk to AimHarder.
#[derive(Debug, Clone)]
pub(crate) struct AimHarderConfig {
    pub(crate) base_url: Url,
    /// Every AimHarder request goes through it (its URL may hold
    /// credentials: a secret).
    pub(crate) proxy: Option<SecretString>,
    pub(crate) endpoint: Endpoint,
    /// The fingerprint sent for a session that has none stored.
    pub(crate) default_fingerprint: String,
    pub(crate) user_agent: String,
    /// The timeout of one request, connecting included.
    pub(crate) request_timeout: Duration,
}

/// The AimHarder client of a run: the keep-alive call and `/api/whoami`,
/// sent with the headers AimHarder's own page sends.
pub(crate) struct AimHarder {
    http: reqwest::Client,
    endpoint: Endpoint,
    url: Url,
    whoami: Url,
    /// `Origin` and `Referer` of AimHarder's own page, which makes these
    /// calls: AimHarder has answered `{"logout": 1}` to calls without them.
    origin: HeaderValue,
    referer: HeaderValue,
}

impl AimHarder {
    /// Builds the client for `config`. It follows no redirect: one to a login
    /// page is how AimHarder says a session is dead. It fails when the proxy
    /// URL is not one it can use.
    pub(crate) fn new(config: &AimHarderConfig) -> anyhow::Result<Self> {
        let mut builder = client_builder();
        if let Some(proxy) = &config.proxy {
            // Not the error's text: it could repeat the URL's credentials.
            let proxy = reqwest::Proxy::all(proxy.expose_secret()).map_err(|_| {
                anyhow::anyhow!("AIMHARDER_PROXY is not a proxy URL the tool can use")
            })?;
            builder = builder.proxy(proxy);
        }
        let http = builder
            .redirect(Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()?;
        let path = match config.endpoint {
            Endpoint::Setrefresh => "setrefresh",
            Endpoint::TokenUpdate => "api/tokenUpdate",
        };
        let origin = config.base_url.origin().ascii_serialization();
        let page = join_path(&config.base_url, "");
        Ok(Self {
            http,
            endpoint: config.endpoint,
            url: join_path(&config.base_url, path),
            whoami: join_path(&config.base_url, "api/whoami"),
            origin: HeaderValue::from_str(&origin)?,
            referer: HeaderValue::from_str(page.as_str())?,
        })
    }

    /// What the browser adds to the page's own API calls (`fetch` from a
    /// page of the same origin).
    fn api_call(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header(ACCEPT, "application/json, text/javascript, */*; q=0.01")
            .header(ORIGIN, self.origin.clone())
            .header(REFERER, self.referer.clone())
            .header("X-Requested-With", "XMLHttpRequest")
            .header("Sec-Fetch-Site", "same-origin")
            .header("Sec-Fetch-Mode", "cors")
            .header("Sec-Fetch-Dest", "empty")
    }

    /// What the browser sends when it opens a page of the site.
    fn navigation(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header(
            ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header(REFERER, self.referer.clone())
        .header("Upgrade-Insecure-Requests", "1")
        .header("Sec-Fetch-Site", "same-origin")
        .header("Sec-Fetch-Mode", "navigate")
        .header("Sec-Fetch-Dest", "document")
        .header("Sec-Fetch-User", "?1")
    }

    /// One keep-alive call with the session's token, fingerprint and the
    /// cookies that go to its URL.
    pub(crate) async fn refresh(
        &self,
        token: &SecretString,
        fingerprint: &str,
        cookies: &CookieJar,
    ) -> Result<Attempt, Transient> {
        let fields = [
            ("token", token.expose_secret()),
            ("fingerprint", fingerprint),
        ];
        let req = match self.endpoint {
            Endpoint::Setrefresh => self.navigation(self.http.get(self.url.clone()).query(&fields)),
            Endpoint::TokenUpdate => {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", token.expose_secret())
                    .append_pair("ciclo", "1")
                    .append_pair("fingerprint", fingerprint)
                    .finish();
                self.api_call(self.http.post(self.url.clone()))
                    .header(
                        CONTENT_TYPE,
                        "application/x-www-form-urlencoded; charset=UTF-8",
                    )
                    .body(form)
            }
        };
        let cookie_header = cookies.header_for(&self.url);
        let (body, set_cookies) = match exchange(req, cookie_header.as_ref()).await? {
            Exchange::Body { body, set_cookies } => (body, set_cookies),
            Exchange::ToLogin(reason) => return Ok(Attempt::Expired(reason)),
            Exchange::Failed(reason) => return Ok(Attempt::Failed(reason)),
            Exchange::Blocked(reason) => return Ok(Attempt::Blocked(reason)),
        };
        // A dead session may be announced as JSON on either endpoint.
        if is_logout(&body) {
            return Ok(Attempt::Expired(LOGOUT.into()));
        }
        if self.endpoint == Endpoint::TokenUpdate {
            return Ok(match new_token(&body) {
                Some(token) => Attempt::Refreshed {
                    session: RefreshedSession {
                        token,
                        fingerprint: None,
                    },
                    set_cookies,
                },
                None => Attempt::Failed("unexpected response: no newToken in the answer".into()),
            });
        }
        Ok(match parse_page(&String::from_utf8_lossy(&body)) {
            Page::Refreshed(session) => Attempt::Refreshed {
                session,
                set_cookies,
            },
            Page::Login => Attempt::Expired(LOGIN_PAGE.into()),
            Page::Unexpected => {
                Attempt::Failed("unexpected response: no refreshToken in the page".into())
            }
        })
    }

    /// Asks `/api/whoami` whether the session of these cookies is logged
    /// in. Changes nothing at AimHarder; a `Set-Cookie` in the answer is
    /// not kept (a probe writes nothing).
    pub(crate) async fn whoami(&self, cookies: &CookieJar) -> Result<Whoami, Transient> {
        let cookie_header = cookies.header_for(&self.whoami);
        let req = self.api_call(self.http.get(self.whoami.clone()));
        let body = match exchange(req, cookie_header.as_ref()).await? {
            Exchange::Body { body, .. } => body,
            Exchange::ToLogin(reason) => return Ok(Whoami::Dead(reason)),
            Exchange::Failed(reason) => return Ok(Whoami::Failed(reason)),
            Exchange::Blocked(reason) => return Ok(Whoami::Blocked(reason)),
        };
        if is_logout(&body) {
            return Ok(Whoami::Dead(LOGOUT.into()));
        }
        Ok(match whoami_members(&body) {
            Some(0) => Whoami::Dead(
                "AimHarder's whoami knows no member for these cookies: the session is dead".into(),
            ),
            Some(_) => Whoami::Alive,
            None if matches!(parse_page(&String::from_utf8_lossy(&body)), Page::Login) => {
                Whoami::Dead(LOGIN_PAGE.into())
            }
            None => Whoami::Failed("unexpected response: no data in the whoami answer".into()),
        })
    }
}

const LOGIN_PAGE: &str = "AimHarder answered with its login page: the member must log in again";

/// Sends `req` with the stored cookies and sorts the answer by status:
/// redirects, blocks and other statuses here, 200 bodies (capped) to the
/// endpoint, and the retryable ones as `Transient`.
async fn exchange(
    mut req: reqwest::RequestBuilder,
    cookie_header: Option<&SecretString>,
) -> Result<Exchange, Transient> {
    if let Some(cookies) = cookie_header {
        match HeaderValue::from_str(cookies.expose_secret()) {
            Ok(mut value) => {
                value.set_sensitive(true);
                req = req.header(COOKIE, value);
            }
            Err(_) => {
                return Ok(Exchange::Failed(
                    "stored cookies cannot be sent as a header".into(),
                ))
            }
        }
    }
    let resp = req.send().await.map_err(|e| transport_failure(&e))?;
    let status = resp.status();
    let set_cookies = SetCookies::new(
        resp.url().clone(),
        resp.headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect(),
    );
    if status.is_redirection() {
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return Ok(classify_redirect(status, location));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(Transient {
            reason: format!("HTTP {}", status.as_u16()),
            retry_after: retry_after(resp.headers().get(RETRY_AFTER), OffsetDateTime::now_utc()),
            status: Some(status.as_u16()),
            reached: status.is_server_error(),
        });
    }
    if status == StatusCode::FORBIDDEN {
        return Ok(Exchange::Blocked(
            "blocked, HTTP 403 (AimHarder refuses networks by location, many outside Spain and \
             cloud ranges among them; run from a network it accepts or set AIMHARDER_PROXY)"
                .into(),
        ));
    }
    if status != StatusCode::OK {
        return Ok(Exchange::Failed(format!(
            "unexpected HTTP {}",
            status.as_u16()
        )));
    }
    Ok(match read_capped(resp, MAX_BODY).await {
        Ok(body) => Exchange::Body { body, set_cookies },
        Err(BodyError::TooLarge(_)) => {
            Exchange::Failed("unexpected response: body larger than 1 MiB".into())
        }
        Err(BodyError::Transport(e)) => return Err(transport_failure(&e)),
    })
}

fn transport_failure(e: &reqwest::Error) -> Transient {
    Transient {
        reason: describe_transport(e),
        retry_after: None,
        status: None,
        // Only a connection never made is sure not to have reached it.
        reached: !e.is_connect(),
    }
}

fn classify_redirect(status: StatusCode, location: &str) -> Exchange {
    // Only the path is quoted back: a query may echo the token.
    let path = location.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase();
    if lower.contains("login") || lower.contains("logout") {
        Exchange::ToLogin(format!(
            "AimHarder redirected to {path} (HTTP {}): the member must log in again",
            status.as_u16()
        ))
    } else {
        Exchange::Failed(format!(
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
            Exchange::ToLogin(_)
        ));
        assert!(matches!(
            classify_redirect(StatusCode::SEE_OTHER, "/logout"),
            Exchange::ToLogin(_)
        ));
        match classify_redirect(StatusCode::FOUND, "/elsewhere?token=secret") {
            Exchange::Failed(msg) => assert!(!msg.contains("secret"), "{msg}"),
            _ => panic!("a redirect elsewhere is a failure"),
        }
    }
}
