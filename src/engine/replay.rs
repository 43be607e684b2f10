//! Writing journaled results, first thing in a run: each one conditionally,
//! like any write. A result is written only while the row is as the call
//! found it (same credentials, same count, not refreshed since); a row that
//! moved on makes it moot, and it is dropped.

use secrecy::ExposeSecret;

use crate::domain::session::SessionRow;
use crate::domain::timefmt;
use crate::engine::due::CLAIM_LEASE;
use crate::engine::journal::{credentials_digest, Entry, Journal};
use crate::supabase::rest::StoreError;
use crate::supabase::store::{Patch, Store};

/// What became of the journal's entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub written: usize,
    /// The row moved on (a new login, a later refresh) or is gone.
    pub dropped: usize,
    /// Not written yet (Supabase unavailable, the row claimed by a run
    /// right now): back in the journal for the next run.
    pub kept: usize,
}

/// Writes what `journal` holds; logs what happened. A journal that cannot
/// be read or written back only warns: the run goes on.
pub async fn replay(journal: &Journal, store: &Store) -> Replayed {
    let (entries, taken) = match journal.take() {
        Ok(Some(taken)) => taken,
        Ok(None) => return Replayed::default(),
        Err(e) => {
            tracing::warn!("cannot read the journal {}: {e}", journal.path().display());
            return Replayed::default();
        }
    };
    let mut done = Replayed::default();
    let mut keep = Vec::new();
    let mut unavailable: Option<StoreError> = None;
    for entry in entries {
        if unavailable.is_some() {
            keep.push(entry);
            continue;
        }
        match write_one(store, &entry).await {
            Ok(Fate::Written) => done.written += 1,
            Ok(Fate::Moot) => done.dropped += 1,
            Ok(Fate::Later) => keep.push(entry),
            // Supabase took the request and refused it: trying again would
            // not help.
            Err(e @ StoreError::Rejected { .. }) => {
                tracing::warn!("a journaled result for {} was refused: {e}", entry.id);
                done.dropped += 1;
            }
            Err(e) => {
                unavailable = Some(e);
                keep.push(entry);
            }
        }
    }
    done.kept = keep.len();
    if let Err(e) = taken.finish(journal, &keep) {
        tracing::warn!(
            "cannot write the journal {} back: {e}",
            journal.path().display()
        );
    }
    match unavailable {
        Some(e) => tracing::warn!(
            "{} journaled results not written yet ({e}); the next run tries again",
            done.kept
        ),
        None if done.kept > 0 => tracing::warn!(
            "{} journaled results kept for the next run: their sessions are claimed by a run right now",
            done.kept
        ),
        None => {}
    }
    tracing::info!(
        written = done.written,
        dropped = done.dropped,
        kept = done.kept,
        "journal of unrecorded results from earlier runs"
    );
    done
}

enum Fate {
    Written,
    Moot,
    Later,
}

async fn write_one(store: &Store, entry: &Entry) -> Result<Fate, StoreError> {
    // As the run that called: its claim may still hold the row. Not claimed
    // when refreshed at or after the journaled refresh.
    let run = &entry.run;
    let claimed = store
        .claim(&[entry.id.as_str()], run, &entry.refreshed_at, CLAIM_LEASE)
        .await?;
    let Some(row) = claimed.into_iter().next() else {
        let Some(row) = store.by_id(&entry.id).await? else {
            return Ok(Fate::Moot);
        };
        let refreshed_since = row
            .last_refresh_date
            .as_deref()
            .and_then(timefmt::parse)
            .zip(timefmt::parse(&entry.refreshed_at))
            .is_some_and(|(last, ours)| last >= ours);
        return Ok(if refreshed_since || !as_called(&row, entry) {
            Fate::Moot
        } else {
            Fate::Later
        });
    };
    if !as_called(&row, entry) {
        store.release(&row.id, run).await?;
        return Ok(Fate::Moot);
    }
    let patch = Patch {
        refresh_count: Some(entry.refresh_count.unwrap_or(0) + 1),
        last_refresh_date: Some(entry.refreshed_at.clone()),
        last_refresh_error: Some(None),
        aimharder_token: entry.aimharder_token.clone(),
        fingerprint: entry.fingerprint.clone(),
        aimharder_cookies: entry.aimharder_cookies.clone(),
        ..Patch::default()
    };
    let written = store
        .update_if_unchanged(&row.id, run, entry.refresh_count, &patch)
        .await?;
    Ok(if written { Fate::Written } else { Fate::Moot })
}

/// The row still holds what the journaled call was made with.
fn as_called(row: &SessionRow, entry: &Entry) -> bool {
    row.refresh_count == entry.refresh_count
        && credentials_digest(row.aimharder_token.as_ref(), &row.aimharder_cookies)
            == entry.credentials
        && row
            .aimharder_token
            .as_ref()
            .is_some_and(|t| !t.expose_secret().is_empty())
}
