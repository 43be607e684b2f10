//! `probe` results as they come: one line per session that is not alive
//! (every line when one session was asked about), or one JSON document.

use std::io::Write;

use crate::domain::probe::{Liveness, ProbeReport, ProbeTotals};
use crate::output::report::Output;
use crate::output::stream::SessionsDocument;

/// Streams a probe's results; in JSON the sessions come first and the
/// counts after them (same keys as the documented shape).
pub struct ProbeSink {
    /// The JSON document being written (`--json`).
    document: Option<SessionsDocument>,
    every_line: bool,
    /// `-q`: nothing printed when every session is alive.
    quiet: bool,
    totals: ProbeTotals,
}

impl ProbeSink {
    /// `every_line`: print alive sessions too (a probe of one session).
    pub fn start(output: Output, every_line: bool) -> std::io::Result<Self> {
        let document = if output.json {
            Some(SessionsDocument::start(&mut std::io::stdout().lock(), "")?)
        } else {
            None
        };
        Ok(Self {
            document,
            every_line: every_line && !output.quiet,
            quiet: output.quiet,
            totals: ProbeTotals::default(),
        })
    }

    pub fn session(&mut self, report: &ProbeReport) -> std::io::Result<()> {
        self.totals.add(report.outcome);
        let mut out = std::io::stdout().lock();
        match &mut self.document {
            Some(document) => document.item(&mut out, report)?,
            None if self.every_line || report.outcome != Liveness::Alive => {
                writeln!(out, "{}", line(report))?
            }
            None => {}
        }
        Ok(())
    }

    /// Ends the document (or prints the summary); returns the counts and
    /// the summary line.
    pub fn finish(self, duration_ms: u128) -> std::io::Result<(ProbeTotals, String)> {
        let t = &self.totals;
        let summary = format!(
            "{} sessions probed: {} alive, {} dead, {} failed in {:.1}s",
            t.probed,
            t.alive,
            t.dead,
            t.failed,
            duration_ms as f64 / 1000.0
        );
        let mut out = std::io::stdout().lock();
        match self.document {
            Some(document) => document.finish(&mut out, t)?,
            None if self.quiet && t.all_alive() => {}
            None => writeln!(out, "{summary}")?,
        }
        Ok((self.totals, summary))
    }
}

fn line(report: &ProbeReport) -> String {
    let label = match report.outcome {
        Liveness::Alive => "alive".to_string(),
        other => other.as_str().to_ascii_uppercase(),
    };
    let who = report.email.as_deref().unwrap_or("-");
    match &report.error {
        Some(err) => format!("{label:<7} {} {who} — {err}", report.id),
        None => format!("{label:<7} {} {who}", report.id),
    }
}
