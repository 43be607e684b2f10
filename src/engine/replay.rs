//! Writing journaled results, first thing in a run: each one conditionally,
//! like any write. A result is written only while the row is as the call
//! found it (same credentials, same count, not refreshed since); a row that
//! moved on makes it moot, and it is dropped.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use crate::domain::session::SessionRow;
use crate::domain::timefmt;
use crate::engine::journal::{credentials_digest, Entry, Journal, Take};
use crate::supabase::claims::ClaimSpec;
use crate::supabase::rest::StoreError;
use crate::supabase::store::Store;
use crate::supabase::write::{Fate as WriteFate, WriteItem, Written};

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
        Ok(Take::Entries(entries, taken)) => (entries, taken),
        Ok(Take::Nothing) => return Replayed::default(),
        Ok(Take::Busy) => {
            tracing::info!(
                "another run on this machine is writing the journal {} right now: left to it",
                journal.path().display()
            );
            return Replayed::default();
        }
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

/// How long a claim of the replay lasts: it writes at once.
const REPLAY_LEASE: Duration = Duration::from_secs(60);

async fn write_one(store: &Store, entry: &Entry) -> Result<Fate, StoreError> {
    // As the run that called: its claim may still hold the row (it lapses
    // by itself, but a run on this machine need not wait for that). Not
    // claimed when refreshed since the journaled answer.
    let answered = timefmt::parse(entry.answered_at());
    let ago = answered
        .map(|t| timefmt::now() - t)
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default();
    let spec = ClaimSpec {
        run: entry.run.clone(),
        started: Instant::now().checked_sub(ago).unwrap_or_else(Instant::now),
        lease: REPLAY_LEASE,
        enabled_only: false,
    };
    let claimed = store.claim(&[entry.id.as_str()], &spec).await?;
    let Some(row) = claimed.into_iter().next() else {
        let Some(row) = store.by_id(&entry.id).await? else {
            return Ok(Fate::Moot);
        };
        let refreshed_since = row
            .last_refresh_date
            .as_deref()
            .and_then(timefmt::parse)
            .zip(answered)
            .is_some_and(|(last, ours)| last >= ours);
        return Ok(if refreshed_since || !as_called(&row, entry) {
            Fate::Moot
        } else {
            Fate::Later
        });
    };
    if !as_called(&row, entry) {
        store.release(&[row.id.as_str()], &spec.run).await?;
        return Ok(Fate::Moot);
    }
    let (outcome, error) = match &entry.failed {
        None => (Written::Refreshed, None),
        Some(f) if f.expired => (Written::Expired, Some(f.error.clone())),
        Some(f) => (Written::Failed, Some(f.error.clone())),
    };
    let item = WriteItem {
        id: row.id.clone(),
        outcome,
        expected_count: entry.refresh_count,
        token: entry.aimharder_token.clone(),
        fingerprint: entry.fingerprint.clone(),
        cookies: entry.aimharder_cookies.clone(),
        error,
        answered_ms_ago: None,
        refreshed_at: Some(entry.answered_at().to_string()),
    };
    let fates = store
        .write(&spec.run, std::slice::from_ref(&item), false)
        .await?;
    Ok(match fates.first() {
        Some((_, WriteFate::Written { .. })) => Fate::Written,
        // The row moved on (a new login, a later refresh) or is gone.
        Some((_, WriteFate::Conflict { .. })) => {
            store.release(&[row.id.as_str()], &spec.run).await?;
            Fate::Moot
        }
        _ => Fate::Moot,
    })
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
