//! Refreshing sessions: one session end to end (call, retries, write-back),
//! and the pipeline that runs many under a concurrency bound and a pace.

use std::future::Future;
use std::num::NonZeroU32;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, Attempt};
use crate::aimharder::cookies::CookieJar;
use crate::aimharder::parser::RefreshedSession;
use crate::backoff::Backoff;
use crate::domain::outcome::{Outcome, SessionReport};
use crate::domain::session::SessionRow;
use crate::domain::stamp::stamped_error;
use crate::domain::timefmt;
use crate::engine::due::{give_back, Claim, DueStream};
use crate::output::report::Output;
use crate::supabase::rest::StoreError;
use crate::supabase::store::{Patch, Store};

pub const MAX_ATTEMPTS: usize = 3;
/// A `Retry-After` longer than this is not waited for in full.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Re-reads after a conditional write missed because someone else wrote.
const WRITE_CONFLICT_ROUNDS: usize = 5;

pub struct EngineSettings {
    pub concurrency: usize,
    /// Requests per second to AimHarder; `None` for no limit.
    pub rate: Option<f64>,
    pub default_fingerprint: String,
    pub output: Output,
    pub first_retry_delay: Duration,
    /// The run's claims: every row handed to the engine is claimed by it.
    pub claim: Claim,
}

pub struct Engine {
    store: Store,
    aimharder: AimHarder,
    slots: Semaphore,
    pace: Option<DefaultDirectRateLimiter>,
    stop: CancellationToken,
    deadline: Option<Instant>,
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
        settings: EngineSettings,
        stop: CancellationToken,
        deadline: Option<Instant>,
    ) -> Self {
        let pace = settings.rate.filter(|r| *r > 0.0).map(|rate| {
            // One token at a time: a steady pace, no initial burst.
            let period = Duration::from_secs_f64(1.0 / rate);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::MIN);
            RateLimiter::direct(quota)
        });
        Self {
            store,
            aimharder,
            slots: Semaphore::new(settings.concurrency.max(1)),
            pace,
            stop,
            deadline,
            settings,
        }
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
        let mut read_error = None;
        let mut taken = 0u64;
        // Polled with the rows, so a stop ends the stream even while a
        // page read is still under way.
        let mut stopped = std::pin::pin!(self.stop.cancelled());
        let rows = futures::stream::poll_fn(|cx| {
            if stopped.as_mut().poll(cx).is_ready() || limit.is_some_and(|l| taken >= l) {
                return Poll::Ready(None);
            }
            match due.poll_next(cx) {
                Poll::Ready(Some(Ok(row))) => {
                    taken += 1;
                    Poll::Ready(Some(row))
                }
                Poll::Ready(Some(Err(e))) => {
                    read_error = Some(e);
                    Poll::Ready(None)
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        });
        let in_flight = self.settings.concurrency.max(1) * 2;
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
        let limited = limit.is_some_and(|l| taken >= l);
        let left = abort.is_cancelled()
            || (self.stop.is_cancelled() && !limited && (unstarted || !due.is_exhausted()));
        due.release_untaken(&self.store, &self.settings.claim).await;
        Pipeline { left, read_error }
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

        let (attempt, attempts) = self.call_with_retries(&token, &fingerprint, &jar).await;
        let mut report = report;
        report.attempts = attempts;
        match attempt {
            None => {
                give_back(&self.store, &self.settings.claim, [row]).await;
                report.with_error("stopped before it started")
            }
            Some(Attempt::Refreshed {
                session,
                set_cookies,
            }) => {
                self.record_success(row, report, &token, &fingerprint, session, &set_cookies)
                    .await
            }
            Some(Attempt::Expired(reason)) => {
                self.record_failure(&row, report, Outcome::Expired, &reason)
                    .await
            }
            Some(Attempt::Failed(reason)) | Some(Attempt::Retry { reason, .. }) => {
                self.record_failure(&row, report, Outcome::Failed, &reason)
                    .await
            }
        }
    }

    /// `None` when stopped before the first request went out.
    async fn call_with_retries(
        &self,
        token: &SecretString,
        fingerprint: &str,
        jar: &CookieJar,
    ) -> (Option<Attempt>, u32) {
        let cookie_header = jar.header_value();
        let mut backoff = Backoff::new(
            self.settings.first_retry_delay,
            Duration::from_secs(30),
            MAX_ATTEMPTS,
        );
        let stopping =
            |reason: &str| Attempt::Failed(format!("{reason} (no retry: the run is stopping)"));
        let mut attempts = 0u32;
        let mut last_reason = String::new();
        loop {
            let permit = tokio::select! {
                biased;
                _ = self.stop.cancelled() => None,
                permit = self.start_request() => permit,
            };
            let Some(permit) = permit else {
                return ((attempts > 0).then(|| stopping(&last_reason)), attempts);
            };
            attempts += 1;
            let attempt = self
                .aimharder
                .refresh(token, fingerprint, cookie_header.as_ref())
                .await;
            drop(permit);
            let Attempt::Retry {
                reason,
                retry_after,
            } = attempt
            else {
                return (Some(attempt), attempts);
            };
            let Some(jittered) = backoff.next_delay() else {
                let failed = Attempt::Failed(format!("{reason} (after {attempts} attempts)"));
                return (Some(failed), attempts);
            };
            let delay = retry_after.map_or(jittered, |ra| ra.min(RETRY_AFTER_CAP).max(jittered));
            let wake = Instant::now() + delay;
            if self.stop.is_cancelled() || self.deadline.is_some_and(|d| wake >= d) {
                return (Some(stopping(&reason)), attempts);
            }
            tracing::debug!(%reason, ?delay, attempt = attempts, "AimHarder call failed; retrying");
            tokio::select! {
                _ = self.stop.cancelled() => return (Some(stopping(&reason)), attempts),
                _ = tokio::time::sleep_until(wake) => {}
            }
            last_reason = reason;
        }
    }

    /// Waits for a free slot, then for the pace; `None` if stopped meanwhile.
    async fn start_request(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        if let Some(pace) = &self.pace {
            pace.until_ready().await;
        }
        (!self.stop.is_cancelled()).then_some(permit)
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
        let mut current = row;
        for _ in 0..WRITE_CONFLICT_ROUNDS {
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
                    report.outcome = Outcome::Unrecorded;
                    return report
                        .with_error(format!("refreshed at AimHarder but not recorded: {e}"));
                }
            }
        }
        report.outcome = Outcome::Unrecorded;
        report.with_error("refreshed at AimHarder but not recorded: the row kept changing under concurrent writers")
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
