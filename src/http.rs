//! What every HTTP client of the tool shares: the TLS set-up, URLs under a
//! base, transport errors in words, and `Retry-After`.

use std::time::Duration;

use reqwest::header::HeaderValue;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;
use url::Url;

/// A client builder on rustls with ring. reqwest is built without a crypto
/// provider (`rustls-no-provider`) so that aws-lc-rs and its C build stay
/// out of the tree; it then takes the process default, which must be
/// installed before the first client is built.
pub fn client_builder() -> reqwest::ClientBuilder {
    // `Err` means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A transport error in words, without the URL (it may carry filters).
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer cut short"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// The longest `Retry-After` read as given: anything longer is read as
/// this, so that no sum of times with it can overflow (every caller waits
/// far less anyway).
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

/// Reads `Retry-After`, as seconds or an HTTP date, at most
/// [`RETRY_AFTER_MAX`].
pub(crate) fn retry_after(value: Option<&HeaderValue>, now: OffsetDateTime) -> Option<Duration> {
    let raw = value?.to_str().ok()?.trim();
    let wait = match raw.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = OffsetDateTime::parse(raw, &Rfc2822).ok()?;
            (at - now).try_into().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(RETRY_AFTER_MAX))
}

/// Why a body was not read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the cap: the server sent more than any answer of its
    /// should hold.
    TooLarge(usize),
    /// The connection failed mid-body.
    Transport(reqwest::Error),
}

/// The body of `resp`, read chunk by chunk up to `cap` bytes: a server
/// (or whatever sits in its place) cannot make the tool hold more.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `base` with `segment` appended to its path, whatever trailing slash it had.
pub fn join_path(base: &Url, segment: &str) -> Url {
    let mut url = base.clone();
    let path = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        segment.trim_start_matches('/')
    );
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_url_is_derived_from_the_project_url() {
        let base = Url::parse("https://abc.supabase.co/").unwrap();
        assert_eq!(
            join_path(&base, "rest/v1").as_str(),
            "https://abc.supabase.co/rest/v1"
        );
        let api = Url::parse("http://127.0.0.1:3000/api").unwrap();
        assert_eq!(
            join_path(&api, "auth_sessions").as_str(),
            "http://127.0.0.1:3000/api/auth_sessions"
        );
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_cap_and_no_further() {
        let answer = |body: Vec<u8>| reqwest::Response::from(::http::Response::new(body));
        let body = read_capped(answer(vec![b'x'; 10]), 10).await.unwrap();
        assert_eq!(body.len(), 10);
        assert!(matches!(
            read_capped(answer(vec![b'x'; 11]), 10).await,
            Err(BodyError::TooLarge(10))
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = time::macros::datetime!(2026-11-26 15:00:00 UTC);
        let secs = HeaderValue::from_static("7");
        assert_eq!(retry_after(Some(&secs), now), Some(Duration::from_secs(7)));
        let date = HeaderValue::from_static("Thu, 26 Nov 2026 15:00:30 GMT");
        assert_eq!(retry_after(Some(&date), now), Some(Duration::from_secs(30)));
        let past = HeaderValue::from_static("Thu, 26 Nov 2026 14:00:00 GMT");
        assert_eq!(retry_after(Some(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(None, now), None);
        let absurd = HeaderValue::from_static("18446744073709551615");
        assert_eq!(retry_after(Some(&absurd), now), Some(RETRY_AFTER_MAX));
        let far = HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(retry_after(Some(&far), now), Some(RETRY_AFTER_MAX));
    }
}
