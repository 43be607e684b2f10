//! `refresh-all`'s results as sessions finish, and its summary line.

use std::io::Write;

use serde::Serialize;

use crate::domain::outcome::{Outcome, SessionReport, Totals};
use crate::domain::presentation::Presentation;
use crate::output::github;
use crate::output::session::session_line;
use crate::output::shown::Shown;
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
pub(crate) struct RunSink {
    dry_run: bool,
    presentation: Presentation,
    totals: Totals,
    /// The JSON document being written (`--json`).
    document: Option<SessionsDocument>,
    /// The first failed, expired and unrecorded sessions, for the GitHub
    /// step summary (kept only under GitHub Actions, and bounded).
    problems: Vec<SessionReport>,
}

impl RunSink {
    /// Opens the JSON document (`--json`); text has no head.
    pub(crate) fn start(
        presentation: Presentation,
        dry_run: bool,
        started_at: &str,
    ) -> std::io::Result<Self> {
        let document = if presentation.json {
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
            presentation,
            totals: Totals::default(),
            document,
            problems: Vec::new(),
        })
    }

    /// Counts one session's result and prints it: in text only what is not
    /// refreshed (only problems under `-q`), in JSON every session.
    pub(crate) fn session(&mut self, report: &SessionReport) -> std::io::Result<()> {
        self.totals.add(report.outcome);
        if report.outcome.is_problem() && github::enabled() {
            let problems = self.totals.failed + self.totals.expired + self.totals.unrecorded;
            if problems <= github::ANNOTATIONS {
                github::annotate(self.presentation, report);
            }
            if self.problems.len() < github::SUMMARY_ROWS {
                self.problems.push(report.clone());
            }
        }
        let document = &mut self.document;
        let presentation = self.presentation;
        let shown = if presentation.quiet {
            report.outcome.is_problem()
        } else {
            report.outcome != Outcome::Refreshed
        };
        crate::output::logging::suspended(|| {
            let mut out = std::io::stdout().lock();
            match document {
                Some(document) => document.item(&mut out, &Shown::new(presentation, report))?,
                None if shown => writeln!(out, "{}", session_line(presentation, report))?,
                None => {}
            }
            Ok(())
        })
    }

    /// The counts so far.
    pub(crate) fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Ends the document (or prints the summary line); returns the totals
    /// and that summary line, for the healthcheck and the step summary.
    pub(crate) fn finish(
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
            None if self.presentation.quiet && !t.has_problems() && stopped.is_none() => {}
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
        github::step_summary(self.presentation, title, t, &self.problems, stopped);
        Ok((self.totals, summary))
    }
}
