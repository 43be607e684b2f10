//! Writing journaled results, first thing in a run: each one conditionally,
//! like any write. A result is written only while the row is as the call
//! found it (same credentials, same count, not refreshed since); a row that
//! moved on makes it moot, and it is dropped. Of several answers for one
//! session the newest wins, and none lands over a newer one ([`order`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::domain::session::SessionRow;
use crate::domain::timefmt;
use crate::engine::journal::{credentials_digest, Entry, Journal, Take};
use crate::supabase::claims::ClaimSpec;
use crate::supabase::rest::StoreError;
use crate::supabase::store::Store;
use crate::supabase::write::{Fate as WriteFate, WriteItem, Written};

/// What became of the journal's entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    pub(crate) written: usize,
    /// The row moved on (a new login, a later refresh) or is gone.
    pub(crate) dropped: usize,
    /// A later answer for the same session, called with the same
    /// credentials, is written instead (see [`order`]).
    pub(crate) superseded: usize,
    /// Not written yet (Supabase unavailable, the row claimed by a run
    /// right now): back in the journal for the next run.
    pub(crate) kept: usize,
}

/// Writes what `journal` holds; logs what happened. A journal that cannot
/// be read or written back only warns: the run goes on.
pub(crate) async fn replay(journal: &Journal, store: &Store) -> Replayed {
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
    let (entries, superseded) = order(entries);
    done.superseded = superseded;
    let mut keep = Vec::new();
    // Sessions with an entry kept: their later entries are kept too, so
    // that none is written before the one it follows.
    let mut held = HashSet::new();
    let mut unavailable: Option<StoreError> = None;
    for entry in entries {
        if unavailable.is_some() || held.contains(&entry.id) {
            keep.push(entry);
            continue;
        }
        match write_one(store, &entry).await {
            Ok(Fate::Written) => done.written += 1,
            Ok(Fate::Moot) => done.dropped += 1,
            Ok(Fate::Later) => {
                held.insert(entry.id.clone());
                keep.push(entry);
            }
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
        superseded = done.superseded,
        kept = done.kept,
        "journal of unrecorded results from earlier runs"
    );
    done
}

/// The entries to write, in the order to write them, and how many were
/// superseded. Each is written only while the row is as its call found it
/// (its credentials and count: its precondition), so:
/// - Of a session's entries with one precondition (calls made with the
///   same credentials), one is written: the newest success, else the newest
///   failure. With a rotating endpoint only the newest token can be alive,
///   and a failure never costs the token of a success (it was most likely
///   the old token's death); the next call tells again.
/// - The others are written oldest first: an entry called with what an
///   earlier one stored matches only once that one is written, so a chain
///   lands in order, and an older token never lands over a newer one (the
///   newer one's row has moved on).
fn order(entries: Vec<Entry>) -> (Vec<Entry>, usize) {
    let total = entries.len();
    // A time that cannot be read is taken for the oldest.
    let when: Vec<Option<OffsetDateTime>> = entries
        .iter()
        .map(|e| timefmt::parse(e.answered_at()))
        .collect();
    // The one entry written for each precondition: a success over a
    // failure, then the later answer, then the later line.
    let rank = |i: usize| (entries[i].failed.is_none(), when[i], i);
    let mut chosen: HashMap<(&str, &str, Option<i64>), usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        chosen
            .entry((&e.id, &e.credentials, e.refresh_count))
            .and_modify(|j| {
                if rank(i) > rank(*j) {
                    *j = i;
                }
            })
            .or_insert(i);
    }
    let chosen: HashSet<usize> = chosen.into_values().collect();
    // Sessions in the order they first appear; each one's by answer time.
    let mut sessions: Vec<Vec<(Option<OffsetDateTime>, usize, Entry)>> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    for (i, entry) in entries.into_iter().enumerate() {
        if !chosen.contains(&i) {
            tracing::info!(
                "a journaled result for {} (answered {}) is superseded: another answer to the same credentials is written (the newest success, else the newest failure)",
                entry.id,
                entry.answered_at()
            );
            continue;
        }
        let slot = *slots.entry(entry.id.clone()).or_insert_with(|| {
            sessions.push(Vec::new());
            sessions.len() - 1
        });
        sessions[slot].push((when[i], i, entry));
    }
    let ordered: Vec<Entry> = sessions
        .into_iter()
        .flat_map(|mut list| {
            list.sort_by_key(|(when, i, _)| (*when, *i));
            list.into_iter().map(|(_, _, entry)| entry)
        })
        .collect();
    let superseded = total - ordered.len();
    (ordered, superseded)
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
        re_enable: entry.failed.is_none() && row.disabled_by_tool(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::Failure;
    use secrecy::SecretString;

    /// An answer for session `id` at 04:`minute`, called with `credentials`
    /// at `count`; a success brings `token`, else it failed.
    fn answer(id: &str, minute: u8, credentials: &str, count: i64, token: Option<&str>) -> Entry {
        let at = format!("2026-11-27T04:{minute:02}:00Z");
        Entry {
            refreshed_at: token.is_some().then(|| at.clone()),
            failed: token.is_none().then(|| Failure {
                at,
                error: "answered logout".into(),
                expired: true,
            }),
            refresh_count: Some(count),
            credentials: credentials.into(),
            aimharder_token: token.map(SecretString::from),
            ..Entry::sample(id)
        }
    }

    fn ordered(entries: Vec<Entry>) -> (Vec<String>, usize) {
        let (entries, superseded) = order(entries);
        let told = entries
            .iter()
            .map(|e| match &e.aimharder_token {
                Some(t) => format!("{}:{}", e.id, t.expose_secret()),
                None => format!("{}:failed@{}", e.id, e.answered_at()),
            })
            .collect();
        (told, superseded)
    }

    #[test]
    fn of_two_answers_to_one_call_the_newer_token_is_written() {
        let entries = vec![
            answer("s", 10, "c0", 3, Some("older")),
            answer("s", 20, "c0", 3, Some("newer")),
        ];
        assert_eq!(ordered(entries), (vec!["s:newer".into()], 1));
        // Also when the lines come the other way round (two files, two runs).
        let entries = vec![
            answer("s", 20, "c0", 3, Some("newer")),
            answer("s", 10, "c0", 3, Some("older")),
        ];
        assert_eq!(ordered(entries), (vec!["s:newer".into()], 1));
    }

    #[test]
    fn a_failure_never_costs_a_success_its_token() {
        for entries in [
            vec![
                answer("s", 10, "c0", 3, Some("rotated")),
                answer("s", 20, "c0", 3, None),
            ],
            vec![
                answer("s", 20, "c0", 3, None),
                answer("s", 10, "c0", 3, Some("rotated")),
            ],
            vec![
                answer("s", 5, "c0", 3, None),
                answer("s", 10, "c0", 3, Some("rotated")),
            ],
        ] {
            assert_eq!(ordered(entries), (vec!["s:rotated".into()], 1));
        }
        // Of failures alone, the newest tells.
        let entries = vec![
            answer("s", 20, "c0", 3, None),
            answer("s", 10, "c0", 3, None),
        ];
        assert_eq!(
            ordered(entries),
            (vec!["s:failed@2026-11-27T04:20:00Z".into()], 1)
        );
    }

    #[test]
    fn a_chain_is_written_in_answer_order_and_sessions_stay_apart() {
        // `b` was called with what `a` stored (credentials c1, count 4);
        // the failure after it with what `b` stored.
        let entries = vec![
            answer("s", 30, "c2", 5, None),
            answer("t", 15, "c0", 3, Some("t-only")),
            answer("s", 20, "c1", 4, Some("b")),
            answer("s", 10, "c0", 3, Some("a")),
        ];
        assert_eq!(
            ordered(entries),
            (
                vec![
                    "s:a".into(),
                    "s:b".into(),
                    "s:failed@2026-11-27T04:30:00Z".into(),
                    "t:t-only".into()
                ],
                0
            )
        );
    }
}
