//! What became of one session, and the counts of a run.

use serde::Serialize;

use crate::domain::email::Email;

/// What became of one session in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Refreshed,
    /// The refresh failed; the report's error says why.
    Failed,
    /// The session is dead at AimHarder: the member must log in again.
    Expired,
    /// Refreshed at AimHarder but the result could not be written back.
    Unrecorded,
    /// Not attempted: refreshed recently enough, stopped before it started,
    /// or deleted while it was refreshed.
    Skipped,
    /// Would be refreshed (`--dry-run`).
    Due,
}

impl Outcome {
    /// The name used in JSON and annotations.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Refreshed => "refreshed",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Unrecorded => "unrecorded",
            Outcome::Skipped => "skipped",
            Outcome::Due => "due",
        }
    }

    /// Returns true for the outcomes that fail a run: failed, expired and
    /// unrecorded.
    pub(crate) fn is_problem(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Expired | Outcome::Unrecorded
        )
    }
}

/// What became of one session. Output writes the id and the email (masked
/// unless asked otherwise) ahead of the rest, so they are not serialized
/// here.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionReport {
    #[serde(skip)]
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) email: Option<Email>,
    pub(crate) outcome: Outcome,
    /// Calls made to AimHarder for the session, retries included.
    pub(crate) attempts: u32,
    pub(crate) error: Option<String>,
    /// The refresh changed the stored token or fingerprint.
    pub(crate) token_changed: bool,
    /// The refresh changed the stored cookies.
    pub(crate) cookies_changed: bool,
}

impl SessionReport {
    /// A report of `outcome` with no attempt, error or change counted yet.
    pub(crate) fn new(id: &str, email: Option<Email>, outcome: Outcome) -> Self {
        Self {
            id: id.to_string(),
            email,
            outcome,
            attempts: 0,
            error: None,
            token_changed: false,
            cookies_changed: false,
        }
    }

    /// Returns the report with `error`: what went wrong, or why the session
    /// was skipped.
    pub(crate) fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// Counts of one run, by outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Totals {
    /// Sessions the run took, whatever became of them.
    pub(crate) selected: u64,
    pub(crate) refreshed: u64,
    pub(crate) failed: u64,
    pub(crate) expired: u64,
    pub(crate) unrecorded: u64,
    pub(crate) skipped: u64,
}

impl Totals {
    /// Counts one session's outcome; a due one counts only as selected.
    pub(crate) fn add(&mut self, outcome: Outcome) {
        self.selected += 1;
        match outcome {
            Outcome::Refreshed => self.refreshed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Expired => self.expired += 1,
            Outcome::Unrecorded => self.unrecorded += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Due => {}
        }
    }

    /// Returns true when any session failed, expired or went unrecorded.
    pub(crate) fn has_problems(&self) -> bool {
        self.failed + self.expired + self.unrecorded > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_outcomes() {
        let mut t = Totals::default();
        for o in [Outcome::Refreshed, Outcome::Expired, Outcome::Skipped] {
            t.add(o);
        }
        assert_eq!(
            (t.selected, t.refreshed, t.expired, t.skipped),
            (3, 1, 1, 1)
        );
        assert!(t.has_problems());
    }
}
