//! The stored cookie jar of one AimHarder session.
//!
//! The Supabase column `aimharder_cookies` holds a jsonb array of
//! `{"name": ..., "value": ...}` objects. Whoever wrote the row may have added
//! other keys; all are written back untouched so that a refresh does not lose
//! information. Three of them say where a cookie goes (a real login sets
//! cookies on `login.aimharder.com`, `aimharder.com` and each gym's
//! subdomain, so two cookies may share a name):
//!
//! - `domain`: sent only to hosts that domain-match it (RFC 6265 §5.1.3; a
//!   leading dot is ignored, case does not matter). Without it: every host.
//! - `hostOnly: true` (as browsers export it): only to that very host.
//! - `path`: only to paths that path-match it (§5.1.4). Without it: every path.
//!
//! Cookie values are session credentials: nothing in this module prints them,
//! neither `Debug` nor any error message.

use std::fmt;

use cookie::Cookie;
use cookie_store::{CookieDomain, CookiePath};
use secrecy::SecretString;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use url::{Host, Url};

/// What is wrong with the stored cookies. Messages name cookies by index or
/// name, never by value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CookieError {
    #[error("stored cookies are not a JSON array")]
    NotAnArray,
    #[error("stored cookie at index {index} is not a JSON object")]
    NotAnObject { index: usize },
    #[error("stored cookie at index {index} has no string \"name\"")]
    MissingName { index: usize },
    #[error("stored cookie at index {index} has an empty name")]
    EmptyName { index: usize },
    // The offending name is left out: it may hold line breaks or other
    // characters that would garble a log line.
    #[error(
        "stored cookie at index {index} has a name with characters not allowed in a cookie name"
    )]
    BadName { index: usize },
    #[error("stored cookie {name:?} has no string \"value\"")]
    MissingValue { name: String },
    #[error("stored cookie {name:?} has a value with characters not allowed in a Cookie header")]
    BadValue { name: String },
    #[error(
        "stored cookie {name:?} has a \"domain\" that is not a host name or a \"hostOnly\" that is not true or false"
    )]
    BadDomain { name: String },
    #[error("stored cookie {name:?} has a \"path\" that does not start with \"/\"")]
    BadPath { name: String },
}

/// The cookies of one session, in stored order.
///
/// Domain- and path-matching are `cookie_store`'s, the crate behind
/// reqwest's own cookie jar; its `CookieStore` is not used because it keeps
/// neither the stored order nor the stored objects' other keys.
#[derive(Clone, Default)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
}

#[derive(Clone, PartialEq)]
struct StoredCookie {
    name: String,
    value: String,
    /// Read from `domain`/`hostOnly`; `None`: every host.
    domain: Option<CookieDomain>,
    /// Read from `path`; `None`: every path.
    path: Option<CookiePath>,
    /// The stored object's other keys (`domain`, `path` and `hostOnly`
    /// included), written back as they were.
    extra: Map<String, Value>,
}

impl CookieJar {
    /// Reads the stored column; a `null` column is an empty jar.
    ///
    /// Rejects anything that could not be sent back verbatim in a `Cookie:`
    /// header, so that a damaged row is reported instead of producing a
    /// malformed request.
    pub fn from_json(stored: &Value) -> Result<Self, CookieError> {
        let items = match stored {
            Value::Null => {
                return Ok(Self {
                    cookies: Vec::new(),
                })
            }
            Value::Array(items) => items,
            _ => return Err(CookieError::NotAnArray),
        };
        let cookies = items
            .iter()
            .enumerate()
            .map(|(index, item)| StoredCookie::from_json(index, item))
            .collect::<Result<_, _>>()?;
        Ok(Self { cookies })
    }

    /// The array to store back: same order, extra keys kept, new cookies
    /// appended. An empty jar gives `[]`, not `null`.
    pub fn to_json(&self) -> Value {
        Value::Array(self.cookies.iter().map(StoredCookie::to_json).collect())
    }

    /// `Cookie:` header value `"a=1; b=2"` for a request to `url`: the
    /// cookies that match it, longer paths first and otherwise in stored
    /// order (RFC 6265 §5.4); `None` when none matches.
    pub fn header_for(&self, url: &Url) -> Option<SecretString> {
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|cookie| cookie.goes_to(url))
            .collect();
        if matching.is_empty() {
            return None;
        }
        // Stable: equal paths keep the stored order. No path counts as "/".
        matching.sort_by_key(|cookie| {
            std::cmp::Reverse(cookie.path.as_ref().map_or(1, |path| path.len()))
        });
        let header = matching
            .iter()
            .map(|cookie| format!("{}={}", cookie.name, cookie.value))
            .collect::<Vec<_>>()
            .join("; ");
        Some(SecretString::from(header))
    }

    /// Merges the `Set-Cookie` header values of one response from `url`.
    ///
    /// Each one is the cookie of its name, domain (its `Domain` attribute,
    /// which must domain-match `url`'s host, else the host) and path (its
    /// `Path` attribute, else `url`'s default path), as in RFC 6265 §5.3. A
    /// stored cookie is that cookie when name, domain and path are equal; a
    /// stored cookie without `domain` (or `path`) counts as any. A new value
    /// replaces the stored one's (its extra keys kept), a cookie the server
    /// expires is removed, and a cookie not stored is appended with its
    /// `domain` and `path` (and `hostOnly: true` without a `Domain`
    /// attribute, so that it keeps to the host that set it). Same-named
    /// cookies of other domains or paths are never touched. Set-Cookie
    /// values that do not parse, whose name or value `from_json` would
    /// reject, or whose `Domain` the host may not set, are ignored. Each
    /// header value must be passed separately: `Expires` dates contain
    /// commas.
    ///
    /// Returns true when the stored form changed.
    pub fn merge_set_cookies<'a>(
        &mut self,
        set_cookies: impl IntoIterator<Item = &'a str>,
        url: &Url,
        now: OffsetDateTime,
    ) -> bool {
        // Comparing against a snapshot, rather than tracking each step, keeps
        // the answer right when one response sets a cookie and then sets it
        // back or expires it again.
        let before = self.cookies.clone();
        for set_cookie in set_cookies {
            // `parse`, not `parse_encoded`: the server expects its values back
            // byte for byte, percent-escapes included.
            let Ok(cookie) = Cookie::parse(set_cookie) else {
                continue;
            };
            let (name, value) = (cookie.name(), cookie.value());
            // `Cookie::parse` already refuses an empty name.
            if name.contains(forbidden_in_name) || value.contains(forbidden_in_value) {
                continue;
            }
            // No public suffix list (a `Domain=com` is kept): the only
            // server is AimHarder, and nothing goes to any other host.
            let Ok(scoped) = cookie_store::Cookie::try_from_raw_cookie(&cookie, url) else {
                continue;
            };
            let (domain, path) = (&scoped.domain, &scoped.path);
            let is_it = |stored: &StoredCookie| stored.name == name && stored.is(domain, path);
            if is_expired(&cookie, now) {
                self.cookies.retain(|stored| !is_it(stored));
            } else if self.cookies.iter().any(is_it) {
                // A hand-written row may repeat a cookie (say, without
                // `domain`); the server's new value applies to each.
                for stored in self.cookies.iter_mut().filter(|stored| is_it(stored)) {
                    value.clone_into(&mut stored.value);
                }
            } else {
                self.cookies.push(StoredCookie::added(
                    name,
                    value,
                    domain.clone(),
                    path.clone(),
                ));
            }
        }
        self.cookies != before
    }

    /// Returns how many cookies the jar holds.
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Returns true when the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Cookie values, for tests and log scrubbing (exposes secrets: callers
    /// must not print them).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.cookies.iter().map(|cookie| cookie.value.as_str())
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.cookies.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("CookieJar")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

/// The `Set-Cookie` header values of one answer, with the URL that answered
/// (what they apply to depends on it). They hold session credentials:
/// `Debug` shows only how many there are and the cookies' names.
#[derive(Clone)]
pub(crate) struct SetCookies {
    url: Url,
    values: Vec<String>,
}

impl SetCookies {
    /// Only `url`'s scheme, host, port and path are kept: its query may hold
    /// the token, and cookies do not depend on it.
    pub(crate) fn new(mut url: Url, values: Vec<String>) -> Self {
        url.set_query(None);
        url.set_fragment(None);
        // Errs only for URLs that have no host, which have no userinfo.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Self { url, values }
    }

    /// Returns the URL that answered, without its query, fragment or
    /// credentials.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The raw header values (exposes secrets: callers must not print them).
    pub(crate) fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }
}

impl fmt::Debug for SetCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .values
            .iter()
            .filter_map(|value| value.split_once('=').map(|(name, _)| name.trim()))
            .filter(|name| !name.contains(forbidden_in_name))
            .collect();
        f.debug_struct("SetCookies")
            .field("url", &self.url.as_str())
            .field("count", &self.values.len())
            .field("names", &names)
            .finish()
    }
}

impl StoredCookie {
    fn from_json(index: usize, item: &Value) -> Result<Self, CookieError> {
        let Value::Object(object) = item else {
            return Err(CookieError::NotAnObject { index });
        };
        let mut extra = object.clone();
        let name = match extra.remove("name") {
            Some(Value::String(name)) => name,
            _ => return Err(CookieError::MissingName { index }),
        };
        if name.is_empty() {
            return Err(CookieError::EmptyName { index });
        }
        if name.contains(forbidden_in_name) {
            return Err(CookieError::BadName { index });
        }
        let value = match extra.remove("value") {
            Some(Value::String(value)) => value,
            _ => return Err(CookieError::MissingValue { name }),
        };
        if value.contains(forbidden_in_value) {
            return Err(CookieError::BadValue { name });
        }
        let Ok(domain) = stored_domain(&extra) else {
            return Err(CookieError::BadDomain { name });
        };
        let path = match extra.get("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) if path.is_empty() => None,
            Some(Value::String(path)) => match CookiePath::parse(path) {
                Some(path) => Some(path),
                None => return Err(CookieError::BadPath { name }),
            },
            Some(_) => return Err(CookieError::BadPath { name }),
        };
        Ok(Self {
            name,
            value,
            domain,
            path,
            extra,
        })
    }

    /// A cookie a server set: its domain and path recorded, so that it goes
    /// where a browser would send it.
    fn added(name: &str, value: &str, domain: CookieDomain, path: CookiePath) -> Self {
        let mut extra = Map::new();
        if let Some(host) = domain.as_cow() {
            extra.insert("domain".to_owned(), Value::String(host.into_owned()));
        }
        if matches!(domain, CookieDomain::HostOnly(_)) {
            extra.insert("hostOnly".to_owned(), Value::Bool(true));
        }
        extra.insert("path".to_owned(), Value::String(String::from(&path)));
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            domain: Some(domain),
            path: Some(path),
            extra,
        }
    }

    fn goes_to(&self, url: &Url) -> bool {
        self.domain
            .as_ref()
            .is_none_or(|domain| domain.matches(url))
            && self.path.as_ref().is_none_or(|path| path.matches(url))
    }

    /// Whether this is the cookie a server set for `domain` and `path`
    /// (RFC 6265 §5.3 step 11: the host-only flag is not part of it).
    fn is(&self, domain: &CookieDomain, path: &CookiePath) -> bool {
        self.domain
            .as_ref()
            .is_none_or(|stored| stored.as_cow() == domain.as_cow())
            && self
                .path
                .as_ref()
                .is_none_or(|stored| stored.as_ref() == path.as_ref())
    }

    fn to_json(&self) -> Value {
        let mut object = self.extra.clone();
        object.insert("name".to_owned(), Value::String(self.name.clone()));
        object.insert("value".to_owned(), Value::String(self.value.clone()));
        Value::Object(object)
    }
}

/// The domain of the stored keys `domain` and `hostOnly`; `None`: every
/// host (no `domain`, or an empty one, which RFC 6265 §5.2.3 ignores).
fn stored_domain(extra: &Map<String, Value>) -> Result<Option<CookieDomain>, ()> {
    let domain = match extra.get("domain") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(domain)) => domain.trim(),
        Some(_) => return Err(()),
    };
    let host_only = match extra.get("hostOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(host_only)) => *host_only,
        Some(_) => return Err(()),
    };
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Ok(None);
    }
    // A URL's host parser: it lowercases (and punycodes) as `Url::host_str`
    // does, which is what the matching compares with, and refuses what
    // cannot be a host.
    let Ok(host) = Host::parse(domain) else {
        return Err(());
    };
    let host = host.to_string();
    Ok(Some(if host_only {
        CookieDomain::HostOnly(host)
    } else {
        CookieDomain::Suffix(host)
    }))
}

/// Characters that would end or split a `name=value` pair in a `Cookie:`
/// header, or break the header line itself (controls include CR, LF and tab).
fn forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, ';' | '=' | ',' | ' ')
}

/// Looser than names: values routinely carry `=` (base64 padding), and
/// `Set-Cookie` values with commas or spaces are sent back as received.
fn forbidden_in_value(c: char) -> bool {
    c.is_control() || c == ';'
}

/// RFC 6265 §5.3: `Max-Age` takes precedence over `Expires`, and a `Max-Age`
/// of zero or less means "expire now".
fn is_expired(cookie: &Cookie<'_>, now: OffsetDateTime) -> bool {
    match cookie.max_age() {
        Some(max_age) => !max_age.is_positive(),
        None => cookie.expires_datetime().is_some_and(|at| at <= now),
    }
}

#[cfg(test)]
mod tests;
