//! Asking AimHarder whether sessions are alive, under the same bounds as a
//! refresh run; nothing is written anywhere.

use futures::StreamExt;

use crate::aimharder::client::{AimHarder, Whoami};
use crate::aimharder::cookies::CookieJar;
use crate::domain::probe::{Liveness, ProbeReport};
use crate::domain::session::SessionRow;
use crate::engine::caller::{Called, Caller};
use crate::engine::due::DueStream;
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

    /// Probes every row of `rows` (at most `limit`), each report to
    /// `on_done` as it comes; `Err` if reading further rows failed (the
    /// sessions before were reported).
    pub async fn probe_all(
        &self,
        mut rows: DueStream,
        limit: Option<u64>,
        mut on_done: impl FnMut(ProbeReport),
    ) -> Result<(), StoreError> {
        let mut read_error = None;
        let mut taken = 0u64;
        let rows = futures::stream::poll_fn(|cx| {
            if limit.is_some_and(|l| taken >= l) {
                return std::task::Poll::Ready(None);
            }
            rows.poll_next(cx).map(|next| match next {
                Some(Ok(row)) => {
                    taken += 1;
                    Some(row)
                }
                Some(Err(e)) => {
                    read_error = Some(e);
                    None
                }
                None => None,
            })
        });
        let mut reports = rows
            .map(|row| async move { self.probe(&row).await })
            .buffer_unordered(self.caller.concurrency() * 2);
        while let Some(report) = reports.next().await {
            on_done(report);
        }
        drop(reports);
        read_error.map_or(Ok(()), Err)
    }

    /// Asks `/api/whoami` about one session, with its stored cookies.
    pub async fn probe(&self, row: &SessionRow) -> ProbeReport {
        let report = |outcome, error: Option<String>| ProbeReport {
            id: row.id.clone(),
            email: self.output.email(row.user_email.as_deref()),
            outcome,
            error,
        };
        let cookies = match CookieJar::from_json(&row.aimharder_cookies) {
            Ok(jar) => jar.header_value(),
            Err(e) => return report(Liveness::Failed, Some(e.to_string())),
        };
        match self
            .caller
            .call(|| self.aimharder.whoami(cookies.as_ref()))
            .await
        {
            Called::Answered { answer, .. } => match answer {
                Whoami::Alive => report(Liveness::Alive, None),
                Whoami::Dead(reason) => report(Liveness::Dead, Some(reason)),
                Whoami::Failed(reason) => report(Liveness::Failed, Some(reason)),
            },
            Called::GaveUp { reason, .. } => report(Liveness::Failed, Some(reason)),
            Called::NotStarted => report(
                Liveness::Failed,
                Some("not asked: the run was stopped".into()),
            ),
        }
    }
}
