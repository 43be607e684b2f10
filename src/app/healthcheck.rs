//! healthchecks.io-style pings: `GET {url}/start?rid=…` when a run starts,
//! `POST {url}/{exit code}?rid=…` with the summary when it ends. A ping that
//! fails is a warning; it never fails the run.

use std::time::Duration;

use url::Url;

use crate::http::join_path;

/// Pings a healthchecks.io-style URL when a run starts and when it ends.
pub(crate) struct Healthcheck {
    http: reqwest::Client,
    base: Url,
    rid: String,
}

impl Healthcheck {
    /// Makes the pinger for `base`, with a new run id (`rid`) that pairs the
    /// start ping with the finish ping, and a 10-second timeout per ping.
    pub(crate) fn new(base: &Url) -> Result<Self, String> {
        let base = base.clone();
        let http = crate::http::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the healthcheck client: {e}"))?;
        let rid = crate::domain::run_id::new_run_id();
        Ok(Self { http, base, rid })
    }

    /// Pings `{url}/start`; a failure is only a warning.
    pub(crate) async fn start(&self) {
        let url = self.url("start");
        self.report("start", self.http.get(url)).await;
    }

    /// Pings `{url}/{code}` with `summary` as the body; a failure is only a
    /// warning.
    pub(crate) async fn finish(&self, code: u8, summary: String) {
        let url = self.url(&code.to_string());
        self.report("finish", self.http.post(url).body(summary))
            .await;
    }

    fn url(&self, segment: &str) -> Url {
        let mut url = join_path(&self.base, segment);
        url.query_pairs_mut().append_pair("rid", &self.rid);
        url
    }

    async fn report(&self, what: &str, req: reqwest::RequestBuilder) {
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::warn!(
                "healthcheck {what} ping answered HTTP {}",
                resp.status().as_u16()
            ),
            Err(e) => tracing::warn!(
                "healthcheck {what} ping failed: {}",
                crate::http::describe_transport(&e)
            ),
        }
    }
}
