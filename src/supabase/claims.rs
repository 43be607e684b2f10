//! Claims, in the tool's own table (see the claims-table migration): one
//! caller per session, with a lease that ends by itself if the runner dies.
//! Each function is one request for any number of sessions.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::session::SessionRow;
use crate::supabase::rest::{read_json, StoreError};
use crate::supabase::store::Store;

const CLAIM: &str = "refresh_claim";
const RENEW: &str = "refresh_renew";
const RELEASE: &str = "refresh_release";

/// Who claims: the run's id, and the run's start (a session refreshed
/// since is not claimed again).
#[derive(Debug, Clone)]
pub(crate) struct ClaimSpec {
    pub(crate) run: String,
    /// When the run started, by the runner's steady clock: the database
    /// takes "refreshed since" as that long before its own now.
    pub(crate) started: std::time::Instant,
    pub(crate) lease: Duration,
    /// Only sessions with auto refresh on (a walk's sessions; `refresh-one`
    /// takes any).
    pub(crate) enabled_only: bool,
}

#[derive(Deserialize)]
struct Held {
    session_id: String,
}

#[derive(Deserialize)]
struct Released {
    released: u64,
}

impl Store {
    /// Claims the sessions of `ids` that no other run holds (and, see
    /// [`ClaimSpec`], that are still to be refreshed), as they are now: the
    /// credentials returned are those the claim records.
    pub(crate) async fn claim(
        &self,
        ids: &[&str],
        spec: &ClaimSpec,
    ) -> Result<Vec<SessionRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args = serde_json::json!({
            "p_table": self.rest().table(),
            "p_run": spec.run,
            "p_ids": ids,
            "p_started_ms_ago": spec.started.elapsed().as_millis() as u64,
            "p_lease_seconds": lease_seconds(spec.lease),
            "p_enabled_only": spec.enabled_only,
        });
        read_json(self.rest().rpc(CLAIM, &args).await?).await
    }

    /// Renews run `run`'s claims on `ids` for `lease` from now; returns the
    /// ids it still holds.
    pub(crate) async fn renew(
        &self,
        ids: &[&str],
        run: &str,
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args = serde_json::json!({
            "p_run": run,
            "p_ids": ids,
            "p_lease_seconds": lease_seconds(lease),
        });
        let held: Vec<Held> = read_json(self.rest().rpc(RENEW, &args).await?).await?;
        Ok(held.into_iter().map(|h| h.session_id).collect())
    }

    /// Gives back run `run`'s claims on `ids` (sessions it will not call).
    pub(crate) async fn release(&self, ids: &[&str], run: &str) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let args = serde_json::json!({ "p_run": run, "p_ids": ids });
        let released: Vec<Released> = read_json(self.rest().rpc(RELEASE, &args).await?).await?;
        Ok(released.iter().map(|r| r.released).sum())
    }
}

/// Whole seconds, at least one.
fn lease_seconds(lease: Duration) -> u64 {
    lease.as_secs().max(1)
}
