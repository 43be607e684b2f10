//! How a command ended: its exit code, a one-line summary (for the
//! healthcheck), and what the metrics file carries. Built one way, from a
//! verdict; nothing here prints (`app::run` says the error line).

use crate::app::exit::{verdict_code, RunVerdict};
use crate::domain::outcome::Totals;
use crate::domain::schedule::Schedule;
use crate::engine::breaker::Trip;

/// How a command ended: its exit code, its summary and what the metrics
/// file records of it.
pub(crate) struct Finished {
    /// The process's exit code.
    pub(crate) code: u8,
    /// The one-line summary the healthcheck's finish ping carries.
    pub(crate) summary: String,
    /// The session counts, when the command counted sessions.
    pub(crate) totals: Option<Totals>,
    /// The circuit breaker stopped the run.
    pub(crate) tripped: bool,
    /// The schedule the command checked (`status`, `refresh-all`).
    pub(crate) schedule: Option<Schedule>,
    /// One line for stderr, when the run ended for a reason of the
    /// runner's rather than of the sessions' (the breaker tripped).
    pub(crate) complaint: Option<String>,
}

impl Finished {
    /// A command that ended with `verdict`.
    pub(crate) fn with(verdict: RunVerdict, summary: String) -> Self {
        Self {
            code: verdict_code(verdict),
            summary,
            totals: None,
            tripped: false,
            schedule: None,
            complaint: None,
        }
    }

    /// A refresh run: 1 when any session failed, expired or went
    /// unrecorded (that wins: a lost result matters more than work left
    /// for the next run), else 75 when due sessions were left, else 0.
    pub(crate) fn refreshing(totals: Totals, summary: String, left: bool) -> Self {
        let verdict = if totals.has_problems() {
            RunVerdict::Problems
        } else if left {
            RunVerdict::Interrupted
        } else {
            RunVerdict::Clean
        };
        Self::with(verdict, summary).counting(totals)
    }

    /// The session counts the run reports (metrics).
    pub(crate) fn counting(mut self, totals: Totals) -> Self {
        self.totals = Some(totals);
        self
    }

    /// Records the schedule the command checked (metrics).
    pub(crate) fn checking(mut self, schedule: Schedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// The circuit breaker stopped the run: AimHarder is unavailable from
    /// here, whatever the sessions' outcomes; the trip's one line is the
    /// complaint.
    pub(crate) fn tripped(self, trip: &Trip) -> Self {
        let message = trip.message();
        Self {
            code: verdict_code(RunVerdict::Unavailable),
            summary: format!("{}; {message}", self.summary),
            tripped: true,
            complaint: Some(message),
            ..self
        }
    }
}
