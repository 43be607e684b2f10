//! Refreshing sessions: one session end to end (call, retries, write-back),
//! and the pipeline that runs many under a concurrency bound and a pace.

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, Attempt};
use crate::aimharder::cookies::CookieJar;
use crate::aimharder::parser::RefreshedSession;
use crate::domain::outcome::{Outcome, SessionReport};
use crate::domain::session::SessionRow;
use crate::domain::stamp::stamped_error;
use crate::domain::timefmt;
use crate::engine::breaker::Trip;
use crate::engine::caller::{Called, Caller};
use crate::engine::due::{give_back, Claim, DueStream, Taking};
use crate::engine::journal::{credentials_digest, Entry, Journal};
use crate::output::report::Output;
use crate::supabase::rest::StoreError;
use crate::supabase::store::{Patch, Store};

/// Re-reads after a conditional write missed because someone else wrote.
const WRITE_CONFLICT_ROUNDS: usize = 5;

pub struct EngineSettings {
    pub default_fingerprint: String,
    pub output: Output,
    /// The run's claims: every row handed to the engine is claimed by it.
    pub claim: Claim,
    /// Where a result Supabase would not record is kept for the next run
    /// (settings give every refresh run one).
    pub journal: Option<Journal>,
}

pub struct Engine {
    store: Store,
    aimharder: AimHarder,
    caller: Caller,
    settings: EngineSettings,
}

/// How the pipeline ended; each session's report went to `on_done`.
pub struct Pipeline {
    /// Due sessions were left unstarted because the run was stopped.
    pub left: bool,
    /// Reading further pages failed; the sessions before it were reported.
    pub read_error: Option<StoreError>,
}

impl Engine {
    pub fn new(
        store: Store,
        aimharder: AimHarder,
        caller: Caller,
        settings: EngineSettings,
    ) -> Self {
        Self {
            store,
            aimharder,
            caller,
            settings,
        }
    }

    /// Why the circuit breaker stopped the run, if it did.
    pub fn tripped(&self) -> Option<Trip> {
        self.caller.tripped()
    }

    /// Runs every session of `due` with at most `concurrency` AimHarder calls in
    /// flight. Each session starts as soon as a slot frees; Supabase writes of
    /// finished sessions overlap the calls of others. `abort` ends the run at
    /// once: sessions still in flight are dropped unreported (their claims
    /// lapse).
    pub async fn run_all(
        &self,
        mut due: DueStream,
        limit: Option<u64>,
        abort: &CancellationToken,
        mut on_done: impl FnMut(SessionReport),
    ) -> Pipeline {
        let stop = self.caller.stop();
        let mut taking = Taking::default();
        let rows = due.take_until(stop, limit, &mut taking);
        let in_flight = self.caller.concurrency() * 2;
        let mut results = rows
            .map(|row| self.refresh(row))
            .buffer_unordered(in_flight);
        let mut unstarted = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = abort.cancelled() => break,
                next = results.next() => next,
            };
            let Some(report) = next else { break };
            unstarted |= report.outcome == Outcome::Skipped && report.attempts == 0;
            on_done(report);
        }
        drop(results);
        let limited = limit.is_some_and(|l| taking.taken >= l);
        let left = abort.is_cancelled()
            || (stop.is_cancelled() && !limited && (unstarted || !due.is_exhausted()));
        due.release_untaken(&self.store, &self.settings.claim).await;
        Pipeline {
            left,
            read_error: taking.read_error,
        }
    }

    /// Refreshes one session now and records the result.
    pub async fn refresh(&self, row: SessionRow) -> SessionReport {
        let email = self.settings.output.email(row.user_email.as_deref());
        let report = SessionReport::new(&row.id, email.as_deref(), Outcome::Skipped);
        let token = match row
            .aimharder_token
            .as_ref()
            .filter(|t| !t.expose_secret().trim().is_empty())
        {
            Some(t) => t.clone(),
            None => {
                return self
                    .record_failure(&row, report, Outcome::Failed, "stored token is empty")
                    .await
            }
        };
        let jar = match CookieJar::from_json(&row.aimharder_cookies) {
            Ok(jar) => jar,
            Err(e) => {
                return self
                    .record_failure(&row, report, Outcome::Failed, &e.to_string())
                    .await
            }
        };
        let fingerprint = row
            .fingerprint
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .unwrap_or(&self.settings.default_fingerprint)
            .to_string();

        let cookie_header = jar.header_value();
        let called = self
            .caller
            .call(|| {
                self.aimharder
                    .refresh(&token, &fingerprint, cookie_header.as_ref())
            })
            .await;
        let mut report = report;
        let attempt = match called {
            Called::NotStarted => {
                give_back(&self.store, &self.settings.claim, [row]).await;
                return report.with_error("stopped before it started");
            }
            Called::Answered { answer, attempts } => {
                report.attempts = attempts;
                answer
            }
            Called::Failed { reason, attempts } => {
                report.attempts = attempts;
                Attempt::Failed(reason)
            }
        };
        match attempt {
            Attempt::Refreshed {
                session,
                set_cookies,
            } => {
                self.record_success(row, report, &token, &fingerprint, session, &set_cookies)
                    .await
            }
            Attempt::Expired(reason) => {
                self.record_failure(&row, report, Outcome::Expired, &reason)
                    .await
            }
            Attempt::Failed(reason) | Attempt::Blocked(reason) => {
                self.record_failure(&row, report, Outcome::Failed, &reason)
                    .await
            }
        }
    }

    async fn record_success(
        &self,
        row: SessionRow,
        mut report: SessionReport,
        sent_token: &SecretString,
        sent_fingerprint: &str,
        session: RefreshedSession,
        set_cookies: &[String],
    ) -> SessionReport {
        let now = timefmt::now();
        let stamp = timefmt::rfc3339(now);
        let token_changed = session.token.expose_secret() != sent_token.expose_secret();
        let new_fingerprint = session.fingerprint.filter(|fp| {
            fp != sent_fingerprint && !fp.trim().is_empty() && self.store.has_fingerprint()
        });
        // The success columns on top of `current`, the row as last read.
        let success = |current: &SessionRow| {
            let mut jar = CookieJar::from_json(&current.aimharder_cookies).unwrap_or_default();
            let cookies_changed =
                jar.merge_set_cookies(set_cookies.iter().map(String::as_str), now);
            let patch = Patch {
                refresh_count: Some(current.refresh_count.unwrap_or(0) + 1),
                last_refresh_date: Some(stamp.clone()),
                last_refresh_error: Some(None),
                aimharder_token: token_changed.then(|| session.token.clone()),
                fingerprint: new_fingerprint.clone(),
                aimharder_cookies: cookies_changed.then(|| jar.to_json()),
                ..Patch::default()
            };
            (patch, cookies_changed)
        };
        let mut current = row;
        for _ in 0..WRITE_CONFLICT_ROUNDS {
            let (patch, cookies_changed) = success(&current);
            match self.write(&current, &patch, &stamp).await {
                Ok(Written::Yes) => {
                    report.outcome = Outcome::Refreshed;
                    report.token_changed = token_changed || new_fingerprint.is_some();
                    report.cookies_changed = cookies_changed;
                    return report;
                }
                Ok(Written::Conflict(fresh)) => current = *fresh,
                Ok(Written::Lost) => return report.with_error(CHANGED_MEANWHILE),
                Ok(Written::Gone) => {
                    return report.with_error("refreshed, but the session was deleted meanwhile")
                }
                // Supabase took the request and refused the values (say, a
                // rotated fingerprint longer than the column): say so on the row.
                Err(e @ StoreError::Rejected { .. }) => {
                    let reason = format!("refreshed, but the new values could not be stored: {e}");
                    return self
                        .record_failure(&current, report, Outcome::Failed, &reason)
                        .await;
                }
                Err(e) => {
                    let why = format!("refreshed at AimHarder but not recorded: {e}");
                    return self.unrecorded(report, &current, &stamp, patch, why);
                }
            }
        }
        let why =
            "refreshed at AimHarder but not recorded: the row kept changing under concurrent writers";
        let (patch, _) = success(&current);
        self.unrecorded(report, &current, &stamp, patch, why.into())
    }

    /// A result Supabase would not record goes to the journal, for the next
    /// run to write: with a rotated token it is the only copy left.
    fn unrecorded(
        &self,
        mut report: SessionReport,
        called: &SessionRow,
        refreshed_at: &str,
        patch: Patch,
        why: String,
    ) -> SessionReport {
        report.outcome = Outcome::Unrecorded;
        let entry = Entry {
            id: called.id.clone(),
            run: self.settings.claim.run.clone(),
            refreshed_at: refreshed_at.to_string(),
            refresh_count: called.refresh_count,
            credentials: credentials_digest(
                called.aimharder_token.as_ref(),
                &called.aimharder_cookies,
            ),
            aimharder_token: patch.aimharder_token,
            fingerprint: patch.fingerprint,
            aimharder_cookies: patch.aimharder_cookies,
        };
        let Some(journal) = &self.settings.journal else {
            return report.with_error(format!("{why}; no journal to keep it in"));
        };
        match journal.append(&entry) {
            Ok(()) => report.with_error(format!(
                "{why}; kept in the journal {}, which the next run writes first",
                journal.path().display()
            )),
            Err(e) => report.with_error(format!(
                "{why}; and it could not be journaled ({}: {e})",
                journal.path().display()
            )),
        }
    }

    async fn record_failure(
        &self,
        row: &SessionRow,
        mut report: SessionReport,
        outcome: Outcome,
        reason: &str,
    ) -> SessionReport {
        report.outcome = outcome;
        let message = stamped_error(timefmt::now(), reason);
        let patch = Patch {
            last_refresh_error: Some(Some(message)),
            auto_refresh_enabled: (outcome == Outcome::Expired).then_some(false),
            ..Patch::default()
        };
        let mut current = row.clone();
        for _ in 0..WRITE_CONFLICT_ROUNDS {
            match self.write(&current, &patch, "").await {
                Ok(Written::Yes) | Ok(Written::Gone) => return report.with_error(reason),
                Ok(Written::Lost) => {
                    report.outcome = Outcome::Skipped;
                    return report.with_error(format!("{CHANGED_MEANWHILE} ({reason})"));
                }
                Ok(Written::Conflict(fresh)) => current = *fresh,
                Err(e) => return report.with_error(format!("{reason} (could not record it: {e})")),
            }
        }
        report.with_error(format!(
            "{reason} (could not record it: the row kept changing)"
        ))
    }

    /// One conditional write; on a miss, tells whether our own earlier try
    /// landed (same `last_refresh_date`), the row moved on, or it is gone.
    async fn write(
        &self,
        current: &SessionRow,
        patch: &Patch,
        our_stamp: &str,
    ) -> Result<Written, StoreError> {
        let run = &self.settings.claim.run;
        if self
            .store
            .update_if_unchanged(&current.id, run, current.refresh_count, patch)
            .await?
        {
            return Ok(Written::Yes);
        }
        let Some(fresh) = self.store.by_id(&current.id).await? else {
            return Ok(Written::Gone);
        };
        let landed = if our_stamp.is_empty() {
            matches!(&patch.last_refresh_error, Some(Some(ours)) if fresh.last_refresh_error.as_deref() == Some(ours))
        } else {
            same_instant(fresh.last_refresh_date.as_deref(), our_stamp)
                && fresh.refresh_count == patch.refresh_count
        };
        Ok(if landed {
            Written::Yes
        } else if fresh.refresh_claim_run.as_deref() != Some(run.as_str()) {
            // The web app stored new credentials (voiding the claim): the
            // member's login wins over a result for the old ones.
            Written::Lost
        } else {
            Written::Conflict(Box::new(fresh))
        })
    }
}

enum Written {
    Yes,
    Conflict(Box<SessionRow>),
    /// The claim was voided or taken over: the result is dropped.
    Lost,
    Gone,
}

const CHANGED_MEANWHILE: &str =
    "changed meanwhile: new credentials were stored while AimHarder was called; the result for the old ones was dropped";

fn same_instant(stored: Option<&str>, ours: &str) -> bool {
    let parse = |s: &str| timefmt::parse(s).map(OffsetDateTime::unix_timestamp_nanos);
    matches!((stored.and_then(parse), parse(ours)), (Some(a), Some(b)) if a == b)
}
