//! Results, and the one place that decides between human and JSON output.

use std::io::Write;

use serde::Serialize;

use crate::github;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Refreshed,
    Failed,
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
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Refreshed => "refreshed",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Unrecorded => "unrecorded",
            Outcome::Skipped => "skipped",
            Outcome::Due => "due",
        }
    }

    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Expired | Outcome::Unrecorded
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub id: String,
    pub email: Option<String>,
    pub outcome: Outcome,
    pub attempts: u32,
    pub error: Option<String>,
    pub token_changed: bool,
    pub cookies_changed: bool,
}

impl SessionReport {
    pub fn new(id: &str, email: Option<&str>, outcome: Outcome) -> Self {
        Self {
            id: id.to_string(),
            email: email.map(str::to_string),
            outcome,
            attempts: 0,
            error: None,
            token_changed: false,
            cookies_changed: false,
        }
    }

    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// Counts of one run, by outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub selected: u64,
    pub refreshed: u64,
    pub failed: u64,
    pub expired: u64,
    pub unrecorded: u64,
    pub skipped: u64,
}

impl Totals {
    pub fn add(&mut self, outcome: Outcome) {
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

    pub fn has_problems(&self) -> bool {
        self.failed + self.expired + self.unrecorded > 0
    }
}

/// The tail of a `refresh-all` document, written once the run is over.
#[derive(Serialize)]
struct RunTail<'a> {
    duration_ms: u128,
    #[serde(flatten)]
    totals: &'a Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<&'a str>,
}

/// Writes a `refresh-all` result as sessions finish, so memory stays flat
/// however many sessions run. In JSON the per-session array comes first and
/// the counts after it: same keys as the documented shape, streamable.
pub struct RunSink {
    output: Output,
    dry_run: bool,
    totals: Totals,
    first: bool,
    /// The first failed, expired and unrecorded sessions, for the GitHub
    /// step summary (kept only under GitHub Actions, and bounded).
    problems: Vec<SessionReport>,
}

impl RunSink {
    pub fn start(output: Output, dry_run: bool, started_at: &str) -> std::io::Result<Self> {
        if output.json {
            let mut out = std::io::stdout().lock();
            write!(
                out,
                "{{\"dry_run\":{dry_run},\"started_at\":{},\"sessions\":[",
                serde_json::to_string(started_at)?
            )?;
        }
        Ok(Self {
            output,
            dry_run,
            totals: Totals::default(),
            first: true,
            problems: Vec::new(),
        })
    }

    pub fn session(&mut self, report: &SessionReport) -> std::io::Result<()> {
        self.totals.add(report.outcome);
        if report.outcome.is_problem() && github::enabled() {
            github::annotate(report);
            if self.problems.len() < github::SUMMARY_ROWS {
                self.problems.push(report.clone());
            }
        }
        let first = std::mem::replace(&mut self.first, false);
        let json = self.output.json;
        crate::logging::suspended(|| {
            let mut out = std::io::stdout().lock();
            if json {
                if !first {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, report)?;
            } else if report.outcome != Outcome::Refreshed {
                writeln!(out, "{}", session_line(report))?;
            }
            Ok(())
        })
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Ends the document (or prints the summary line); returns the totals
    /// and that summary line, for the healthcheck and the step summary.
    pub fn finish(
        self,
        duration_ms: u128,
        stopped: Option<&str>,
    ) -> std::io::Result<(Totals, String)> {
        let mut out = std::io::stdout().lock();
        let t = &self.totals;
        let (shown, verb) = if self.dry_run {
            (t.selected, "would refresh")
        } else {
            (t.refreshed, "refreshed")
        };
        let mut summary = format!(
            "{} sessions selected: {shown} {verb}, {} failed, {} expired, {} unrecorded, {} skipped in {:.1}s",
            t.selected,
            t.failed,
            t.expired,
            t.unrecorded,
            t.skipped,
            duration_ms as f64 / 1000.0
        );
        if let Some(why) = stopped {
            summary.push_str(&format!(" (stopped: {why})"));
        }
        if self.output.json {
            let tail = serde_json::to_string(&RunTail {
                duration_ms,
                totals: t,
                stopped,
            })?;
            // `tail` is an object; splice its members after the array.
            writeln!(out, "],{}", tail.trim_start_matches('{'))?;
        } else {
            writeln!(out, "{summary}")?;
        }
        let title = if self.dry_run {
            "refresh-all (dry run)"
        } else {
            "refresh-all"
        };
        github::step_summary(title, t, &self.problems);
        Ok((self.totals, summary))
    }
}

fn session_line(s: &SessionReport) -> String {
    let who = s.email.as_deref().unwrap_or("-");
    match &s.error {
        Some(err) => format!("{:<10} {} {} — {}", label(s.outcome), s.id, who, err),
        None => format!("{:<10} {} {}", label(s.outcome), s.id, who),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub total: u64,
    pub auto_refresh_enabled: u64,
    pub fresh: u64,
    pub stale: u64,
    pub never_refreshed: u64,
    pub with_errors: u64,
    pub due: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<StatusLine>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusLine {
    pub id: String,
    pub email: Option<String>,
    pub auto_refresh_enabled: bool,
    pub last_refresh_date: Option<String>,
    pub refresh_count: i64,
    pub error: Option<String>,
    pub token_expires_at: Option<String>,
}

/// `j***@example.com`: enough to recognise a member, not to harvest addresses.
pub fn mask_email(email: &str) -> String {
    let (local, domain) = match email.split_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (email, None),
    };
    let first: String = local.chars().take(1).collect();
    match domain {
        Some(d) => format!("{first}***@{d}"),
        None => format!("{first}***"),
    }
}

/// Where results go: stdout, as text or as one JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub show_emails: bool,
}

impl Output {
    pub fn email(&self, email: Option<&str>) -> Option<String> {
        email.map(|e| {
            if self.show_emails {
                e.to_string()
            } else {
                mask_email(e)
            }
        })
    }

    /// Prints one session's result; returns it as one line of text.
    pub fn session(&self, report: &SessionReport) -> std::io::Result<String> {
        let line = session_line(report);
        if self.json {
            self.print_json(report)?;
        } else {
            writeln!(std::io::stdout().lock(), "{line}")?;
        }
        Ok(line)
    }

    /// Prints the status; returns its counts as one line of text.
    pub fn status(&self, report: &StatusReport) -> std::io::Result<String> {
        let summary = format!(
            "{} sessions: {} auto-refresh enabled, {} fresh, {} stale, {} never refreshed, {} with errors, {} due now",
            report.total,
            report.auto_refresh_enabled,
            report.fresh,
            report.stale,
            report.never_refreshed,
            report.with_errors,
            report.due
        );
        if self.json {
            self.print_json(report)?;
            return Ok(summary);
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{summary}")?;
        for line in report.sessions.iter().flatten() {
            writeln!(
                out,
                "{}  {:<28} {:<8} last={:<32} count={:<5} expires={:<20} {}",
                line.id,
                line.email.as_deref().unwrap_or("-"),
                if line.auto_refresh_enabled {
                    "enabled"
                } else {
                    "disabled"
                },
                line.last_refresh_date.as_deref().unwrap_or("never"),
                line.refresh_count,
                line.token_expires_at.as_deref().unwrap_or("-"),
                line.error.as_deref().unwrap_or("")
            )?;
        }
        Ok(summary)
    }

    fn print_json<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)
    }
}

/// Problems in capitals, so they stand out in a cron mail.
fn label(outcome: Outcome) -> String {
    if outcome.is_problem() {
        outcome.as_str().to_ascii_uppercase()
    } else {
        outcome.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_to_first_letter_and_domain() {
        assert_eq!(mask_email("john@example.com"), "j***@example.com");
        assert_eq!(mask_email("no-at-sign"), "n***");
        assert_eq!(mask_email(""), "***");
    }

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
