//! Results written back in batches, through one database function that
//! applies each result's conditional update and says what became of it.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::supabase::rest::{read_json, StoreError};
use crate::supabase::store::Store;

const WRITE: &str = "refresh_write";

/// What AimHarder's answer came to, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Written {
    Refreshed,
    Failed,
    /// Also turns auto refresh off.
    Expired,
}

/// One result to write. The database stamps it with its own clock.
#[derive(Clone, Serialize)]
pub(crate) struct WriteItem {
    pub(crate) id: String,
    pub(crate) outcome: Written,
    /// `refresh_count` as the claim read it: a success is written only
    /// while it is unchanged (and adds one).
    pub(crate) expected_count: Option<i64>,
    /// A rotated token, fingerprint or changed cookies; absent: unchanged.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub(crate) token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cookies: Option<serde_json::Value>,
    /// The reason of a failure (the database prefixes its time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// How long ago AimHarder answered (a run's own result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) answered_ms_ago: Option<u64>,
    /// When AimHarder answered, by the runner's clock (a journaled result);
    /// the database takes no later than its own now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refreshed_at: Option<String>,
    /// A success on a session the tool disabled: turn auto refresh back on
    /// (the database does only while the row still has an error).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) re_enable: bool,
}

/// What became of one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Written, and the claim released; the row's count now.
    Written {
        count: Option<i64>,
    },
    /// New credentials were stored meanwhile (the member logged in again),
    /// or the claim was lost: dropped, the row left as it is.
    Changed,
    Deleted,
    /// `refresh_count` moved on (to this) while the claim held: read again.
    Conflict {
        count: Option<i64>,
    },
    /// The database refused the values (a careful write only).
    Rejected(String),
}

#[derive(Deserialize)]
struct FateRow {
    session_id: String,
    fate: String,
    current_count: Option<i64>,
    detail: Option<String>,
}

/// Serializes a secret that is to be written (to Supabase, to the journal):
/// the one place its value leaves the `SecretString` for serde.
pub(crate) fn expose_opt<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Store {
    /// Writes run `run`'s results in one request and releases their
    /// claims. `careful`: a result the database refuses comes back
    /// [`Fate::Rejected`] instead of failing the batch (each result then
    /// costs the database a subtransaction, so only for a batch that was
    /// refused).
    pub(crate) async fn write(
        &self,
        run: &str,
        items: &[WriteItem],
        careful: bool,
    ) -> Result<Vec<(String, Fate)>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let args = serde_json::json!({
            "p_table": self.rest().table(),
            "p_run": run,
            "p_results": items,
            "p_careful": careful,
        });
        let rows: Vec<FateRow> = read_json(self.rest().rpc(WRITE, &args).await?).await?;
        rows.into_iter()
            .map(|r| {
                let fate = match r.fate.as_str() {
                    "written" => Fate::Written {
                        count: r.current_count,
                    },
                    "changed" => Fate::Changed,
                    "deleted" => Fate::Deleted,
                    "conflict" => Fate::Conflict {
                        count: r.current_count,
                    },
                    "rejected" => Fate::Rejected(r.detail.unwrap_or_default()),
                    other => {
                        return Err(StoreError::Rejected {
                            status: 200,
                            message: format!("unexpected fate {other:?} from {WRITE}"),
                        })
                    }
                };
                Ok((r.session_id, fate))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_is_sent() {
        let item = WriteItem {
            id: "a".into(),
            outcome: Written::Refreshed,
            expected_count: Some(3),
            token: Some(SecretString::from("1|2|new")),
            fingerprint: None,
            cookies: None,
            error: None,
            answered_ms_ago: Some(12),
            refreshed_at: None,
            re_enable: false,
        };
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "a", "outcome": "refreshed", "expected_count": 3,
                               "token": "1|2|new", "answered_ms_ago": 12})
        );
    }
}
