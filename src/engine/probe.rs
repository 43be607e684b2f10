//! Asking AimHarder whether sessions are alive, under the same bounds as a
//! refresh run; nothing is written anywhere.

use futures::StreamExt;

use crate::aimharder::client::{AimHarder, Whoami};
use crate::aimharder::cookies::CookieJar;
use crate::domain::probe::{Liveness, ProbeReport};
use crate::domain::session::SessionRow;
use crate::engine::breaker::Trip;
use crate::engine::caller::{Called, Caller};
use crate::engine::due::{take_until, DueStream, Taking};
use crate::output::report::Output;
use crate::supabase::rest::StoreError;

pub struct Prober {
    aimharder: AimHarder,
    caller: Caller,
    output: Output,
}

impl Prober {
    pub fn new(aimharder: AimHarder, caller: Caller, output: Output) -> Self {
        Self {
            aimharder,
            caller,
            output,
        }
    }

    pub fn tripped(&self) -> Option<Trip> {
        self.caller.tripped()
    }

    /// Probes every row of `rows` (at most `limit`), each report to
    /// `on_done` as it comes; `Err` if reading further rows failed (the
    /// sessions before were reported).
    pub async fn probe_all(
        &self,
        mut rows: DueStream,
        limit: Option<u64>,
        mut on_done: impl FnMut(ProbeReport),
    ) -> Result<(), StoreError> {
        let mut taking = Taking::default();
        let rows = take_until(&mut rows, self.caller.stop(), limit, &mut taking);
        let mut reports = rows
            .map(|row| async move { self.probe(&row).await })
            .buffer_unordered(self.caller.concurrency() * 2);
        while let Some(report) = reports.next().await {
            // Sessions the breaker kept from being asked are not listed.
            if let Some(report) = report {
                on_done(report);
            }
        }
        drop(reports);
        taking.read_error.map_or(Ok(()), Err)
    }

    /// Asks `/api/whoami` about one session, with its stored cookies;
    /// `None` when the run stopped (the circuit breaker) before asking.
    pub async fn probe(&self, row: &SessionRow) -> Option<ProbeReport> {
        let report = |outcome, error: Option<String>| ProbeReport {
            id: row.id.clone(),
            email: self.output.email(row.user_email.as_deref()),
            outcome,
            error,
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
