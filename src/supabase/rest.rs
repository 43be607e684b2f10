//! A small typed PostgREST client on reqwest: the queries the store needs,
//! the key in the headers its kind calls for, no redirects, and transient
//! failures retried within a time budget.
//!
//! The `postgrest` crate was the first choice; its last release (1.6) is
//! built on reqwest 0.11, whose hyper 0.14 / rustls 0.21 stack carries
//! advisories with no fix on that line. The store wrote most filters by
//! hand already, so what it used of the crate fits in this file.

use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};
use reqwest::redirect::Policy;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret;
use url::Url;

use crate::backoff::RetryBudget;
use crate::domain::stamp::truncate;
use crate::http::{
    client_builder, describe_transport, join_path, read_capped, retry_after, BodyError,
};
pub(crate) use crate::supabase::error::StoreError;
use crate::supabase::error::{grant_for, missing_column, printable, PgError};
use crate::supabase::key::SupabaseKey;

/// How long one request may keep failing transiently before it is given
/// up: a short Supabase outage (a restart, a deploy) costs a run nothing.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

const USER_AGENT: &str = concat!("aimharder-refresh/", env!("CARGO_PKG_VERSION"));

/// One request to the table: query parameters in PostgREST's syntax.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    params: Vec<(&'static str, String)>,
    filters: Vec<(String, String)>,
}

impl Query {
    /// A query that reads `columns` (PostgREST's `select`).
    pub(crate) fn select(columns: &str) -> Self {
        Self {
            params: vec![("select", columns.to_string())],
            ..Self::default()
        }
    }

    /// Adds the condition `column=op.value`: `eq("id", …)` is `id=eq.…`.
    pub(crate) fn filter(mut self, column: &str, op: &str, value: &str) -> Self {
        self.filters
            .push((column.to_string(), format!("{op}.{value}")));
        self
    }

    /// Adds the condition `column=eq.value`.
    pub(crate) fn eq(self, column: &str, value: &str) -> Self {
        self.filter(column, "eq", value)
    }

    /// Every condition of a logic tree (`a.eq.1,or(b.gt.2,…)`) must hold.
    pub(crate) fn and(mut self, tree: &str) -> Self {
        if !tree.is_empty() {
            self.params.push(("and", format!("({tree})")));
        }
        self
    }

    /// Orders by `columns`, written like `created_at.asc,id.asc`.
    pub(crate) fn order(mut self, columns: &str) -> Self {
        self.params.push(("order", columns.to_string()));
        self
    }

    /// Asks for `n` rows at most.
    pub(crate) fn limit(mut self, n: usize) -> Self {
        self.params.push(("limit", n.to_string()));
        self
    }

    fn apply(&self, req: RequestBuilder) -> RequestBuilder {
        req.query(&self.params).query(&self.filters)
    }
}

/// One table over PostgREST.
#[derive(Clone)]
pub(crate) struct Rest {
    http: reqwest::Client,
    key: SupabaseKey,
    table_url: Url,
    rest_url: Url,
    table: String,
}

impl Rest {
    /// The table `table` under `rest_url`, reached with `key`. Nothing is sent
    /// yet; it fails only when the key cannot go in a header.
    pub(crate) fn new(rest_url: &Url, table: &str, key: &SupabaseKey) -> Result<Self, StoreError> {
        Ok(Self {
            http: client(key)?,
            key: key.clone(),
            table_url: join_path(rest_url, table),
            rest_url: rest_url.clone(),
            table: table.to_string(),
        })
    }

    /// The same table on connections of their own.
    pub(crate) fn on_own_connections(&self) -> Result<Self, StoreError> {
        Ok(Self {
            http: client(&self.key)?,
            ..self.clone()
        })
    }

    /// Returns the table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Reads the rows of the table that `query` selects.
    pub(crate) async fn get(&self, query: &Query) -> Result<Response, StoreError> {
        self.send(|| query.apply(self.http.get(self.table_url.clone())), false)
            .await
    }

    /// How many rows `query` matches, counted by the server (`Prefer:
    /// count=exact`, read from `Content-Range`); give it `limit(0)` so that
    /// no row comes along.
    pub(crate) async fn count(&self, query: &Query) -> Result<u64, StoreError> {
        let resp = self
            .send(
                || {
                    query
                        .apply(self.http.get(self.table_url.clone()))
                        .header("Prefer", "count=exact")
                },
                false,
            )
            .await?;
        let range = resp.headers().get(CONTENT_RANGE);
        range
            .and_then(|v| v.to_str().ok())
            .and_then(total_of_range)
            .ok_or_else(|| StoreError::Rejected {
                status: resp.status().as_u16(),
                message: format!("a count came without its total (Content-Range {range:?})"),
            })
    }

    /// Calls the database function `name` with a JSON object of arguments.
    pub(crate) async fn rpc(
        &self,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<Response, StoreError> {
        let url = join_path(&self.rest_url, &format!("rpc/{name}"));
        let body = args.to_string();
        let sent = self
            .send(
                || {
                    self.http
                        .post(url.clone())
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.clone())
                },
                true,
            )
            .await;
        match sent {
            Err(StoreError::MissingFunction { .. }) => Err(StoreError::MissingFunction {
                name: name.to_string(),
            }),
            other => other,
        }
    }

    /// Sends, retrying connection failures, 429 and 502–504 (honouring
    /// `Retry-After`) for up to [`RETRY_FOR`]; turns PostgREST's error
    /// answers into typed errors.
    /// `rpc`: a database function's call, whose 404 means the function is
    /// missing (not the table).
    async fn send(
        &self,
        request: impl Fn() -> RequestBuilder,
        rpc: bool,
    ) -> Result<Response, StoreError> {
        let mut budget = RetryBudget::new(RETRY_FOR);
        loop {
            let (failure, wait) = match request().send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status().is_redirection() => return Err(redirected(&resp)),
                Ok(resp) if transient(resp.status()) => (
                    format!("HTTP {}", resp.status().as_u16()),
                    retry_after(
                        resp.headers().get(RETRY_AFTER),
                        crate::domain::timefmt::now(),
                    ),
                ),
                Ok(resp) => return Err(self.classify(resp, rpc).await),
                Err(e) if e.is_builder() => {
                    return Err(StoreError::Unreachable(describe_transport(&e)))
                }
                Err(e) => (describe_transport(&e), None),
            };
            match budget.next_delay(wait) {
                Some(delay) => {
                    tracing::debug!(%failure, ?delay, "Supabase request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(StoreError::Unreachable(format!(
                        "{failure}, still after {} attempts in {}s",
                        budget.attempts(),
                        budget.elapsed().as_secs()
                    )))
                }
            }
        }
    }

    async fn classify(&self, resp: Response, rpc: bool) -> StoreError {
        let status = resp.status();
        let sb_code = resp
            .headers()
            .get("sb-error-code")
            .and_then(|v| v.to_str().ok())
            .map(printable);
        let body = read_capped(resp, MAX_ERROR_ANSWER)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let err: PgError = serde_json::from_str(&body).unwrap_or_default();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            && err.code.as_deref() != Some("42501")
        {
            return StoreError::KeyRefused {
                status: status.as_u16(),
                code: sb_code.filter(|c| !c.is_empty()),
                message: err
                    .message
                    .as_deref()
                    .map(printable)
                    .filter(|m| !m.is_empty()),
            };
        }
        let message = err.message.clone().unwrap_or_else(|| truncate(&body, 200));
        match err.code.as_deref() {
            Some("42501") => StoreError::PermissionDenied {
                grant: grant_for(&message, &self.table),
                message,
            },
            Some("42703") | Some("PGRST204") => StoreError::MissingColumn {
                table: self.table.clone(),
                column: missing_column(&message),
            },
            // A function PostgREST does not know (its name is the caller's
            // to give); 42883 is also what postrust says for a function its
            // cache still lists but the database dropped.
            Some("PGRST202") => StoreError::MissingFunction {
                name: String::new(),
            },
            Some("42883") if rpc => StoreError::MissingFunction {
                name: String::new(),
            },
            Some("42P01") | Some("PGRST205") | Some("42883") => StoreError::MissingTable {
                table: self.table.clone(),
            },
            _ if status == StatusCode::NOT_FOUND && rpc => StoreError::MissingFunction {
                name: String::new(),
            },
            _ if status == StatusCode::NOT_FOUND => StoreError::MissingTable {
                table: self.table.clone(),
            },
            _ if status.is_server_error() => StoreError::ServerError {
                status: status.as_u16(),
                message,
            },
            _ => StoreError::Rejected {
                status: status.as_u16(),
                message,
            },
        }
    }
}

fn client(key: &SupabaseKey) -> Result<reqwest::Client, StoreError> {
    let secret = key.secret().expose_secret();
    let unusable = || StoreError::Unreachable("the key cannot be sent in a header".into());
    let mut headers = HeaderMap::new();
    let mut apikey = HeaderValue::from_str(secret).map_err(|_| unusable())?;
    apikey.set_sensitive(true);
    headers.insert("apikey", apikey);
    if key.is_bearer() {
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| unusable())?;
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
    }
    client_builder()
        .default_headers(headers)
        // Our own name: the browser string meant for AimHarder would make
        // Supabase refuse a secret key.
        .user_agent(USER_AGENT)
        // A redirect would carry `apikey` to wherever it points.
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| StoreError::Unreachable(format!("cannot build the HTTP client: {e}")))
}

/// Worth another try: the gateway or the database is briefly away. A plain
/// 500 is PostgREST reporting an error in the query, which a retry repeats.
fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// The redirect's target host (and port), never its path or query.
fn redirected(resp: &Response) -> StoreError {
    let target = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| resp.url().join(location).ok());
    let host = match target {
        Some(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => "an address without a host".into(),
        },
        None => "an unreadable Location".into(),
    };
    StoreError::Redirected {
        status: resp.status().as_u16(),
        host,
    }
}

/// The most of a Supabase answer read: pages of rows and batches of fates
/// are far smaller; more is not an answer of PostgREST's.
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// The most of an error answer read: its message is all that is used.
const MAX_ERROR_ANSWER: usize = 64 * 1024;

/// The total of a `Content-Range` like `*/42` or `0-9/42`.
fn total_of_range(range: &str) -> Option<u64> {
    range.rsplit_once('/')?.1.trim().parse().ok()
}

/// Reads `resp`'s body as JSON of type `T`; a body over 64 MiB, or of
/// another shape, is a rejection.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    resp: Response,
) -> Result<T, StoreError> {
    let bytes = match read_capped(resp, MAX_ANSWER).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge(cap)) => {
            return Err(StoreError::Rejected {
                status: 200,
                message: format!(
                    "unexpected answer from Supabase: more than {} MiB",
                    cap >> 20
                ),
            })
        }
        Err(BodyError::Transport(e)) => {
            return Err(StoreError::Unreachable(describe_transport(&e)))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Rejected {
        status: 200,
        message: format!("unexpected answer from Supabase: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_the_total_of_the_content_range() {
        assert_eq!(total_of_range("*/42"), Some(42));
        assert_eq!(total_of_range("0-9/1000"), Some(1000));
        assert_eq!(total_of_range("0-9/*"), None);
        assert_eq!(total_of_range("bytes"), None);
    }

    #[test]
    fn only_gateway_and_rate_answers_are_transient() {
        for code in [429, 502, 503, 504] {
            assert!(transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 404, 409, 500, 501] {
            assert!(!transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
