//! Results, and the one place that decides between human and JSON output.

use std::io::Write;

use serde::Serialize;

use crate::domain::email::mask_email;
use crate::domain::outcome::{Outcome, SessionReport, Totals};
use crate::output::github;
use crate::output::stream::SessionsDocument;

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
    dry_run: bool,
    /// `-q`: in text, only problems are printed.
    quiet: bool,
    totals: Totals,
    /// The JSON document being written (`--json`).
    document: Option<SessionsDocument>,
    /// The first failed, expired and unrecorded sessions, for the GitHub
    /// step summary (kept only under GitHub Actions, and bounded).
    problems: Vec<SessionReport>,
}

impl RunSink {
    pub fn start(output: Output, dry_run: bool, started_at: &str) -> std::io::Result<Self> {
        let document = if output.json {
            let head = format!(
                "\"dry_run\":{dry_run},\"started_at\":{},",
                serde_json::to_string(started_at)?
            );
            Some(SessionsDocument::start(
                &mut std::io::stdout().lock(),
                &head,
            )?)
        } else {
            None
        };
        Ok(Self {
            dry_run,
            quiet: output.quiet,
            totals: Totals::default(),
            document,
            problems: Vec::new(),
        })
    }

    pub fn session(&mut self, report: &SessionReport) -> std::io::Result<()> {
        self.totals.add(report.outcome);
        if report.outcome.is_problem() && github::enabled() {
            let problems = self.totals.failed + self.totals.expired + self.totals.unrecorded;
            if problems <= github::ANNOTATIONS {
                github::annotate(report);
            }
            if self.problems.len() < github::SUMMARY_ROWS {
                self.problems.push(report.clone());
            }
        }
        let document = &mut self.document;
        let shown = if self.quiet {
            report.outcome.is_problem()
        } else {
            report.outcome != Outcome::Refreshed
        };
        crate::output::logging::suspended(|| {
            let mut out = std::io::stdout().lock();
            match document {
                Some(document) => document.item(&mut out, report)?,
                None if shown => writeln!(out, "{}", session_line(report))?,
                None => {}
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
        match self.document {
            Some(document) => document.finish(
                &mut out,
                &RunTail {
                    duration_ms,
                    totals: t,
                    stopped,
                },
            )?,
            // `-q`: nothing on success (a stop is not one).
            None if self.quiet && !t.has_problems() && stopped.is_none() => {}
            None => writeln!(out, "{summary}")?,
        }
        let title = if self.dry_run {
            "refresh-all (dry run)"
        } else {
            "refresh-all"
        };
        github::annotate_rest(
            (t.failed + t.expired + t.unrecorded).saturating_sub(github::ANNOTATIONS),
        );
        github::step_summary(title, t, &self.problems, stopped);
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

/// Where results go: stdout, as text or as one JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub show_emails: bool,
    /// `-q`: text output prints nothing on success, only problems.
    pub quiet: bool,
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
        } else if !self.quiet || report.outcome.is_problem() {
            writeln!(std::io::stdout().lock(), "{line}")?;
        }
        Ok(line)
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
