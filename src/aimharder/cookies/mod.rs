//! The stored cookie jar of one AimHarder session.
//!
//! The Supabase column `aimharder_cookies` holds a jsonb array of
//! `{"name": ..., "value": ...}` objects. Whoever wrote the row may have added
//! other keys (`domain`, `path`, ...); we never interpret them, but we write
//! them back untouched so that a refresh does not lose information.
//!
//! Cookie values are session credentials: nothing in this module prints them,
//! neither `Debug` nor any error message.

use std::fmt;

use cookie::Cookie;
use secrecy::SecretString;
use serde_json::{Map, Value};
use time::OffsetDateTime;

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
}

/// The cookies of one session, in stored order.
///
/// Cookies are matched by name only: the server's `Domain`/`Path` attributes
/// are not tracked, because every request goes to the same AimHarder host.
#[derive(Clone, Default)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
}

#[derive(Clone, PartialEq)]
struct StoredCookie {
    name: String,
    value: String,
    /// The stored object's other keys, written back as they were.
    extra: Map<String, Value>,
}

impl CookieJar {
    /// Reads the stored column. `serde_json::Value::Null` → empty jar.
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
    /// appended as `{"name", "value"}`. An empty jar gives `[]`, not `null`.
    pub fn to_json(&self) -> Value {
        Value::Array(self.cookies.iter().map(StoredCookie::to_json).collect())
    }

    /// `Cookie:` header value `"a=1; b=2"`, or `None` when the jar is empty.
    pub fn header_value(&self) -> Option<SecretString> {
        if self.cookies.is_empty() {
            return None;
        }
        let header = self
            .cookies
            .iter()
            .map(|cookie| format!("{}={}", cookie.name, cookie.value))
            .collect::<Vec<_>>()
            .join("; ");
        Some(SecretString::from(header))
    }

    /// Merges the `Set-Cookie` header values of one response, by name.
    ///
    /// A changed value replaces the stored one (keeping its extra keys), a new
    /// name is appended, a cookie the server expires is removed, and every
    /// other stored cookie is kept. Set-Cookie values that do not parse, or
    /// whose name or value `from_json` would reject, are ignored. Each header
    /// value must be passed separately: `Expires` dates contain commas.
    ///
    /// Returns true when the stored form changed.
    pub fn merge_set_cookies<'a>(
        &mut self,
        set_cookies: impl IntoIterator<Item = &'a str>,
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
            if is_expired(&cookie, now) {
                self.cookies.retain(|stored| stored.name != name);
            } else if self.cookies.iter().any(|stored| stored.name == name) {
                // A hand-written row may repeat a name (e.g. for two paths);
                // the server's new value applies to all of them.
                for stored in self.cookies.iter_mut().filter(|stored| stored.name == name) {
                    value.clone_into(&mut stored.value);
                }
            } else {
                self.cookies.push(StoredCookie {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    extra: Map::new(),
                });
            }
        }
        self.cookies != before
    }

    pub fn len(&self) -> usize {
        self.cookies.len()
    }

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
        Ok(Self { name, value, extra })
    }

    fn to_json(&self) -> Value {
        let mut object = self.extra.clone();
        object.insert("name".to_owned(), Value::String(self.name.clone()));
        object.insert("value".to_owned(), Value::String(self.value.clone()));
        Value::Object(object)
    }
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
