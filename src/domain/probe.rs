//! What `probe` found out about sessions: alive, dead or no answer.

use serde::Serialize;

use crate::domain::email::Email;

/// What a probe found out about one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Liveness {
    /// AimHarder knows a member for the session's cookies: it is logged in.
    Alive,
    /// Logged out at AimHarder: the member must log in again.
    Dead,
    /// AimHarder gave no answer about the session (blocked, retries used up,
    /// an unexpected page), or the run stopped before asking.
    Failed,
}

impl Liveness {
    /// The name the output uses for the outcome.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Failed => "failed",
        }
    }
}

/// What a probe found out about one session. Output writes the id and the
/// email (masked unless asked otherwise) ahead of the rest.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProbeReport {
    #[serde(skip)]
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) email: Option<Email>,
    pub(crate) outcome: Liveness,
    pub(crate) error: Option<String>,
    /// Since the session's last keep-alive, when the answer came (`None`:
    /// no date on the row); counted by age, not listed per session.
    #[serde(skip)]
    pub(crate) since_keepalive: Option<std::time::Duration>,
}

/// Counts of one probe run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ProbeTotals {
    /// Sessions asked about, whatever the answer.
    pub(crate) probed: u64,
    pub(crate) alive: u64,
    pub(crate) dead: u64,
    pub(crate) failed: u64,
}

impl ProbeTotals {
    /// Counts one session's answer.
    pub(crate) fn add(&mut self, outcome: Liveness) {
        self.probed += 1;
        match outcome {
            Liveness::Alive => self.alive += 1,
            Liveness::Dead => self.dead += 1,
            Liveness::Failed => self.failed += 1,
        }
    }

    /// Whether every probed session is alive (none probed counts as all).
    pub(crate) fn all_alive(&self) -> bool {
        self.alive == self.probed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_alive_only_without_dead_or_failed() {
        let mut t = ProbeTotals::default();
        assert!(t.all_alive());
        t.add(Liveness::Alive);
        assert!(t.all_alive());
        t.add(Liveness::Failed);
        assert!(!t.all_alive());
        assert_eq!((t.probed, t.alive, t.dead, t.failed), (2, 1, 0, 1));
    }
}
