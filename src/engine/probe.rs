//! Asking AimHarder whether sessions are alive, under the same bounds as a
//! refresh run; nothing is written anywhere.

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, Whoami};
use crate::aimharder::cookies::CookieJar;
use crate::domain::age::since_keepalive;
use crate::domain::probe::{Liveness, ProbeReport};
use crate::domain::session::SessionRow;
use crate::domain::timefmt;
use crate::engine::breaker::Trip;
use crate::engine::caller::{Called, Caller};
use crate::engine::taking::{take_until, Taking};
use crate::supabase::pager::Pager;
use crate::supabase::rest::StoreError;

/// Asks AimHarder whether sessions are alive, under the run's pace and
/// circuit breaker; it writes nothing.
pub(crate) struct Prober {
    aimharder: AimHarder,
    caller: Caller,
}

impl Prober {
    /// A prober calling through `caller`.
    pub(crate) fn new(aimharder: AimHarder, caller: Caller) -> Self {
        Self { aimharder, caller }
    }

    /// Returns why the circuit breaker stopped the probe, if it did.
    pub(crate) fn tripped(&self) -> Option<Trip> {
        self.caller.tripped()
    }

    /// Probes every row of `rows` (at most `limit`), each report to
    /// `on_done` as it comes; `Err` if reading further rows failed (the
    /// sessions before were reported). `abort` ends it at once: questions
    /// in flight are dropped (a probe writes nothing), so the caller can
    /// end its document whole.
    pub(crate) async fn probe_all(
        &self,
        mut rows: Pager,
        limit: Option<u64>,
        abort: &CancellationToken,
        mut on_done: impl FnMut(ProbeReport),
    ) -> Result<(), StoreError> {
        let mut taking = Taking::default();
        let rows = take_until(&mut rows, self.caller.stop(), limit, &mut taking);
        let mut reports = rows
            .map(|row| async move { self.probe(&row).await })
            .buffer_unordered(self.caller.concurrency() * 2);
        loop {
            let next = tokio::select! {
                biased;
                _ = abort.cancelled() => break,
                next = reports.next() => next,
            };
            match next {
                // Sessions the breaker kept from being asked are not listed.
                Some(Some(report)) => on_done(report),
                Some(None) => {}
                None => break,
            }
        }
        drop(reports);
        taking.read_error.map_or(Ok(()), Err)
    }

    /// Asks `/api/whoami` about one session, with its stored cookies;
    /// `None` when the run stopped (the circuit breaker) before asking.
    /// The session's age is taken when the answer comes: the pace may hold
    /// a question back for minutes on a large table.
    pub(crate) async fn probe(&self, row: &SessionRow) -> Option<ProbeReport> {
        let report = |outcome, error: Option<String>| ProbeReport {
            id: row.id.clone(),
            email: row.user_email.clone(),
            outcome,
            error,
            since_keepalive: since_keepalive(row, timefmt::now()),
        };
        let cookies = match CookieJar::from_json(&row.aimharder_cookies) {
            Ok(jar) => jar,
            Err(e) => return Some(report(Liveness::Failed, Some(e.to_string()))),
        };
        let (outcome, error) = match self.caller.call(|| self.aimharder.whoami(&cookies)).await {
            Called::NotStarted => return None,
            Called::Answered { answer, .. } => match answer {
                Whoami::Alive => (Liveness::Alive, None),
                Whoami::Dead(reason) => (Liveness::Dead, Some(reason)),
                Whoami::Failed(reason) | Whoami::Blocked(reason) => {
                    (Liveness::Failed, Some(reason))
                }
            },
            Called::Failed { reason, .. } => (Liveness::Failed, Some(reason)),
        };
        Some(report(outcome, error))
    }
}
