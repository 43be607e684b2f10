//! The gateway's requests counted by what they ask of Supabase, from their
//! method and path alone: how many REST requests a run spends on reading
//! pages, claiming, writing back, renewing and releasing.

use super::{GatewayRequest, REST_PREFIX};

/// Requests by kind ([`super::Gateway::counts_by_kind`]). Each request is
/// counted once, however it was answered (a 503 or a 401 counts too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestKinds {
    /// `GET /rest/v1/<table>?…`: pages of rows (or any other read of a
    /// table).
    pub pages: usize,
    /// `POST /rest/v1/rpc/refresh_claim`.
    pub claims: usize,
    /// `POST /rest/v1/rpc/refresh_write`.
    pub writes: usize,
    /// `POST /rest/v1/rpc/refresh_renew`.
    pub renewals: usize,
    /// `POST /rest/v1/rpc/refresh_release`.
    pub releases: usize,
    /// Anything else: other functions (counts, lookups by email), other
    /// methods, paths outside `/rest/v1`.
    pub other: usize,
}

impl RequestKinds {
    pub fn of(requests: &[GatewayRequest]) -> Self {
        let mut kinds = Self::default();
        for request in requests {
            *kinds.slot(&request.method, &request.target) += 1;
        }
        kinds
    }

    /// Every request, of any kind.
    pub fn total(&self) -> usize {
        self.pages + self.claims + self.writes + self.renewals + self.releases + self.other
    }

    fn slot(&mut self, method: &str, target: &str) -> &mut usize {
        let path = target.split('?').next().unwrap_or_default();
        let rest = path
            .strip_prefix(REST_PREFIX)
            .and_then(|rest| rest.strip_prefix('/'));
        match (method, rest) {
            ("POST", Some("rpc/refresh_claim")) => &mut self.claims,
            ("POST", Some("rpc/refresh_write")) => &mut self.writes,
            ("POST", Some("rpc/refresh_renew")) => &mut self.renewals,
            ("POST", Some("rpc/refresh_release")) => &mut self.releases,
            // A table is one path segment; `rpc/…` is not a table.
            ("GET", Some(table)) if !table.is_empty() && !table.contains('/') => &mut self.pages,
            _ => &mut self.other,
        }
    }
}
