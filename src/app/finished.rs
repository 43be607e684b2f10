//! How a command ended: its exit code, a one-line summary (for the
//! healthcheck), and session counts where it refreshed any.

use crate::app::exit::{verdict_code, RunVerdict};
use crate::domain::outcome::Totals;
use crate::domain::schedule::Schedule;
use crate::engine::breaker::Trip;

pub struct Finished {
    pub code: u8,
    pub summary: String,
    pub totals: Option<Totals>,
    /// The circuit breaker stopped the run.
    pub tripped: bool,
    /// The schedule the command checked (`status`).
    pub schedule: Option<Schedule>,
}

impl Finished {
    /// 1 when any session failed, expired or went unrecorded (that wins:
    /// a lost result matters more than work left for the next run), else 75
    /// when due sessions were left, else 0.
    pub fn refreshing(totals: Totals, summary: String, left: bool) -> Self {
        let verdict = if totals.has_problems() {
            RunVerdict::Problems
        } else if left {
            RunVerdict::Interrupted
        } else {
            RunVerdict::Clean
        };
        Self {
            code: verdict_code(verdict),
            summary,
            totals: Some(totals),
            tripped: false,
            schedule: None,
        }
    }

    /// The circuit breaker stopped the run: AimHarder is unavailable from
    /// here, whatever the sessions' outcomes. Says so on stderr, in one line.
    pub fn tripped(trip: &Trip, totals: Option<Totals>, summary: &str) -> Self {
        let message = trip.message();
        eprintln!("error: {message}");
        Self {
            code: verdict_code(RunVerdict::Unavailable),
            summary: format!("{summary}; {message}"),
            totals,
            tripped: true,
            schedule: None,
        }
    }
}
