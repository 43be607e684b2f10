//! Refreshing sessions: one session end to end (the lease checked, the
//! call, its result handed to the writer), and the pipeline that runs many
//! under a concurrency bound and a pace while the writer writes beside it.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, Attempt};
use crate::aimharder::cookies::{CookieJar, SetCookies};
use crate::aimharder::parser::RefreshedSession;
use crate::domain::outcome::{Outcome, SessionReport};
use crate::domain::session::SessionRow;
use crate::domain::timefmt;
use crate::engine::breaker::Trip;
use crate::engine::caller::{Begun, Called, Caller};
use crate::engine::confirm::confirm_logout;
use crate::engine::holds::Holds;
use crate::engine::journal::{credentials_digest, Journal};
use crate::engine::writer::{Pending, Writer, WriterInput, WriterSetup, BATCH};
use crate::supabase::claims::ClaimSpec;
use crate::supabase::rest::StoreError;
use crate::supabase::store::Store;
use crate::supabase::write::{WriteItem, Written};

/// What a refresh run's engine works with besides its parts.
pub(crate) struct EngineSettings {
    /// The fingerprint sent for a session that has none stored.
    pub(crate) default_fingerprint: String,
    /// The run's claims: every row handed to the engine is claimed by it.
    pub(crate) claim: ClaimSpec,
    /// Where a result Supabase would not record is kept for the next run
    /// (settings give every refresh run one).
    pub(crate) journal: Option<Journal>,
}

/// Refreshes a run's claimed sessions: calls AimHarder under the caller's
/// bounds and hands each result to the writer.
pub(crate) struct Engine {
    store: Store,
    aimharder: AimHarder,
    caller: Caller,
    settings: EngineSettings,
    holds: Arc<Holds>,
}

/// How a run of the pipeline ended; each session's report went to `on_done`.
pub(crate) struct Ran {
    /// Writes failed for good: the run stopped, what it held was journaled.
    pub(crate) write_error: Option<StoreError>,
}

impl Engine {
    /// An engine that holds no claim yet; its claims last the lease of
    /// `settings.claim`.
    pub(crate) fn new(
        store: Store,
        aimharder: AimHarder,
        caller: Caller,
        settings: EngineSettings,
    ) -> Self {
        let holds = Arc::new(Holds::new(settings.claim.lease));
        Self {
            store,
            aimharder,
            caller,
            settings,
            holds,
        }
    }

    /// The claims this run holds (the claimer adds to them).
    pub(crate) fn holds(&self) -> Arc<Holds> {
        self.holds.clone()
    }

    /// Returns the spec the run claims with; the claimer claims by it too.
    pub(crate) fn claim_spec(&self) -> &ClaimSpec {
        &self.settings.claim
    }

    /// Why the circuit breaker stopped the run, if it did.
    pub(crate) fn tripped(&self) -> Option<Trip> {
        self.caller.tripped()
    }

    /// Returns the run's stop: once cancelled, no new request starts.
    pub(crate) fn stop(&self) -> &CancellationToken {
        self.caller.stop()
    }

    /// Calls every claimed row of `rows`, at most `concurrency` at once;
    /// each session starts as soon as a slot frees, and its result goes to
    /// the writer, which writes beside the calls. `abort` ends the run at
    /// once: calls in flight are dropped (their claims lapse), every result
    /// AimHarder answered and not yet written goes to the journal (the
    /// writer journals what it holds, and takes what is handed over after).
    /// `rows` must end once the run stops (`abort` comes after a stop).
    pub(crate) async fn run(
        &self,
        rows: impl Stream<Item = SessionRow>,
        abort: &CancellationToken,
        mut on_done: impl FnMut(SessionReport),
    ) -> Ran {
        let (input, mut writer) = Writer::start(WriterSetup {
            store: self.store.clone(),
            run: self.settings.claim.run.clone(),
            journal: self.settings.journal.clone(),
            holds: self.holds.clone(),
            stop: self.caller.stop().clone(),
            abort: abort.clone(),
            capacity: BATCH + 2 * self.caller.concurrency(),
            handed: self.caller.concurrency(),
        });
        let renewing = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            self.store.clone(),
            self.holds.clone(),
            self.settings.claim.run.clone(),
            renewing.clone(),
        ));
        {
            // Twice the slots: a session waits ready for the next free slot
            // (its lease is checked once it has one).
            let sessions = rows
                .map(|row| self.refresh(row, &input, abort))
                .buffer_unordered(2 * self.caller.concurrency());
            let mut sessions = std::pin::pin!(sessions);
            let mut reports_open = true;
            loop {
                tokio::select! {
                    biased;
                    report = writer.next_report(), if reports_open => match report {
                        Some(report) => on_done(report),
                        None => reports_open = false,
                    },
                    next = sessions.next() => match next {
                        Some(Some(report)) => on_done(report),
                        Some(None) => {}
                        None => break,
                    },
                }
            }
        }
        // Every call is over (or dropped): the writer writes what it holds.
        drop(input);
        while let Some(report) = writer.next_report().await {
            on_done(report);
        }
        renewing.cancel();
        if abort.is_cancelled() {
            // Its request may be in Supabase's retries: the claims lapse.
            renewer.abort();
        }
        let _ = renewer.await;
        Ran {
            write_error: writer.finish().await,
        }
    }

    /// Refreshes one claimed session; its report, or `None` when its result
    /// went to the writer (which reports it once written).
    async fn refresh(
        &self,
        row: SessionRow,
        writer: &WriterInput,
        abort: &CancellationToken,
    ) -> Option<SessionReport> {
        let report = SessionReport::new(&row.id, row.user_email.clone(), Outcome::Skipped);
        let Some(begun) = self.caller.begin().await else {
            return Some(report.with_error("stopped before it started"));
        };
        // Right before the call: the claim must still be the run's.
        let claimed = tokio::select! {
            biased;
            _ = abort.cancelled() => Err("the run was ended before its call".to_string()),
            claimed = self.claimed_now(row) => claimed,
        };
        let row = match claimed {
            Ok(row) => row,
            Err(why) => return Some(report.with_error(why)),
        };
        let (id, email_of) = (row.id.clone(), row.user_email.clone());
        let pending = tokio::select! {
            biased;
            _ = abort.cancelled() => {
                // The request may have reached AimHarder: with
                // `tokenUpdate`, a token may have rotated unseen.
                self.holds.done(&id);
                // Not the session's failure: the operator ended the run.
                let mut report = SessionReport::new(&id, email_of, Outcome::Skipped)
                    .with_error(
                        "the run was ended by a second signal during its call: AimHarder may \
                         have taken it (its claim lapses by itself)",
                    );
                report.attempts = 1;
                return Some(report);
            }
            called = self.call(row, report, begun) => match called {
                Ok(pending) => pending,
                Err(report) => return Some(report),
            },
        };
        self.hand_over(writer, pending).await
    }

    /// The call itself, from its slot to the result to write; `Err` gives
    /// the report of a session not called after all.
    async fn call(
        &self,
        row: SessionRow,
        report: SessionReport,
        begun: Begun<'_>,
    ) -> Result<Pending, SessionReport> {
        let Some(token) = row
            .aimharder_token
            .as_ref()
            .filter(|t| !t.expose_secret().trim().is_empty())
            .cloned()
        else {
            return Ok(self.failure(&row, report, Written::Failed, "stored token is empty", 0));
        };
        let jar = match CookieJar::from_json(&row.aimharder_cookies) {
            Ok(jar) => jar,
            Err(e) => return Ok(self.failure(&row, report, Written::Failed, &e.to_string(), 0)),
        };
        let fingerprint = row
            .fingerprint
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .unwrap_or(&self.settings.default_fingerprint)
            .to_string();

        self.holds.start(&row.id);
        let called = self
            .caller
            .call_from(begun, || self.aimharder.refresh(&token, &fingerprint, &jar))
            .await;
        let (attempt, attempts, after_unseen) = match called {
            // A begun call makes its first attempt; were it not to, the
            // session is simply not called.
            Called::NotStarted => {
                self.holds.done(&row.id);
                return Err(report.with_error("stopped before it started"));
            }
            Called::Answered {
                answer,
                attempts,
                after_unseen,
            } => (answer, attempts, after_unseen),
            Called::Failed { reason, attempts } => (Attempt::Failed(reason), attempts, false),
        };
        let pending = match attempt {
            Attempt::Refreshed {
                session,
                set_cookies,
            } => self.success(
                &row,
                report,
                &token,
                &fingerprint,
                session,
                &set_cookies,
                attempts,
            ),
            Attempt::Expired(logout) => {
                let checked =
                    confirm_logout(&self.caller, &self.aimharder, &jar, &logout, after_unseen)
                        .await;
                self.failure(&row, report, checked.outcome, &checked.reason, attempts)
            }
            Attempt::Failed(reason) | Attempt::Blocked(reason) => {
                self.failure(&row, report, Written::Failed, &reason, attempts)
            }
        };
        Ok(pending)
    }

    /// The row, claimed by this run with time to spare: as it is when its
    /// lease holds, else claimed again (and read again); an error saying
    /// why not when another run took it.
    async fn claimed_now(&self, row: SessionRow) -> Result<SessionRow, String> {
        if self.holds.fresh(&row.id) {
            return Ok(row);
        }
        let sent = Instant::now();
        let again = self
            .store
            .claim(&[row.id.as_str()], &self.settings.claim)
            .await;
        match again {
            Ok(rows) => match rows.into_iter().next() {
                Some(fresh) => {
                    self.holds.claimed([fresh.id.as_str()], sent);
                    Ok(fresh)
                }
                None => {
                    self.holds.done(&row.id);
                    Err("its claim lapsed before the call and another run holds it now (or it was refreshed or deleted meanwhile)".into())
                }
            },
            Err(e) => {
                self.holds.done(&row.id);
                Err(format!(
                    "its claim lapsed before the call and could not be renewed: {e}"
                ))
            }
        }
    }

    async fn hand_over(&self, writer: &WriterInput, pending: Pending) -> Option<SessionReport> {
        match writer.submit(pending).await {
            Ok(()) => None,
            Err(pending) => {
                let mut report = pending.report;
                report.outcome = match pending.item.outcome {
                    Written::Refreshed => Outcome::Unrecorded,
                    _ => report.outcome,
                };
                Some(report.with_error("the run ended before its result could be written"))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn success(
        &self,
        row: &SessionRow,
        mut report: SessionReport,
        sent_token: &SecretString,
        sent_fingerprint: &str,
        session: RefreshedSession,
        set_cookies: &SetCookies,
        attempts: u32,
    ) -> Pending {
        let now = timefmt::now();
        let token_changed = session.token.expose_secret() != sent_token.expose_secret();
        let new_fingerprint = session.fingerprint.filter(|fp| {
            fp != sent_fingerprint && !fp.trim().is_empty() && self.store.has_fingerprint()
        });
        // The claim guarantees the row's cookies are those the call was
        // made with: the write applies only while they still are.
        let mut jar = CookieJar::from_json(&row.aimharder_cookies).unwrap_or_default();
        let cookies_changed = jar.merge_set_cookies(set_cookies.values(), set_cookies.url(), now);
        report.outcome = Outcome::Refreshed;
        report.attempts = attempts;
        report.token_changed = token_changed || new_fingerprint.is_some();
        report.cookies_changed = cookies_changed;
        let item = WriteItem {
            id: row.id.clone(),
            outcome: Written::Refreshed,
            expected_count: row.refresh_count,
            token: token_changed.then(|| session.token.clone()),
            fingerprint: new_fingerprint,
            cookies: cookies_changed.then(|| jar.to_json()),
            error: None,
            answered_ms_ago: None,
            refreshed_at: None,
            re_enable: row.disabled_by_tool(),
        };
        self.pending(row, report, item, now)
    }

    fn failure(
        &self,
        row: &SessionRow,
        mut report: SessionReport,
        outcome: Written,
        reason: &str,
        attempts: u32,
    ) -> Pending {
        report.outcome = match outcome {
            Written::Expired => Outcome::Expired,
            _ => Outcome::Failed,
        };
        report.attempts = attempts;
        let item = WriteItem {
            id: row.id.clone(),
            outcome,
            expected_count: row.refresh_count,
            token: None,
            fingerprint: None,
            cookies: None,
            error: Some(reason.to_string()),
            answered_ms_ago: None,
            refreshed_at: None,
            re_enable: false,
        };
        self.pending(row, report.with_error(reason), item, timefmt::now())
    }

    fn pending(
        &self,
        row: &SessionRow,
        report: SessionReport,
        item: WriteItem,
        now: time::OffsetDateTime,
    ) -> Pending {
        Pending {
            item,
            report,
            answered: Instant::now(),
            answered_at: timefmt::rfc3339(now),
            called_count: row.refresh_count,
            credentials: credentials_digest(row.aimharder_token.as_ref(), &row.aimharder_cookies),
            rounds: 0,
        }
    }
}

/// Keeps the run's claims: every quarter lease, one request renews those
/// with less than three quarters left (long calls, rows held up by a
/// pause), until `done`.
async fn renew(store: Store, holds: Arc<Holds>, run: String, done: CancellationToken) {
    let every = (holds.lease() / 4).max(std::time::Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let ids = holds.to_renew();
        if ids.is_empty() {
            continue;
        }
        let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
        let sent = Instant::now();
        match store.renew(&asked, &run, holds.lease()).await {
            Ok(kept) => holds.renewed(&ids, &kept, sent),
            Err(e) => tracing::warn!("could not renew {} claims: {e}", ids.len()),
        }
    }
}
