//! `probe` results as they come: one line per session that is not alive
//! (every line when one session was asked about), or one JSON document.

use std::io::Write;

use serde::Serialize;

use crate::domain::probe::{Liveness, ProbeReport, ProbeTotals};
use crate::output::report::Output;

/// Streams a probe's results; in JSON the sessions come first and the
/// counts after them (same keys as the documented shape).
pub struct ProbeSink {
    json: bool,
    every_line: bool,
    totals: ProbeTotals,
    first: bool,
}

impl ProbeSink {
    /// `every_line`: print alive sessions too (a probe of one session).
    pub fn start(output: Output, every_line: bool) -> std::io::Result<Self> {
        if output.json {
            write!(std::io::stdout().lock(), "{{\"sessions\":[")?;
        }
        Ok(Self {
            json: output.json,
            every_line,
            totals: ProbeTotals::default(),
            first: true,
        })
    }

    pub fn session(&mut self, report: &ProbeReport) -> std::io::Result<()> {
        self.totals.add(report.outcome);
        let first = std::mem::replace(&mut self.first, false);
        let mut out = std::io::stdout().lock();
        if self.json {
            if !first {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut out, report)?;
        } else if self.every_line || report.outcome != Liveness::Alive {
            writeln!(out, "{}", line(report))?;
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
        if self.json {
            let tail = serde_json::to_string(&Tail { totals: t })?;
            writeln!(out, "],{}", tail.trim_start_matches('{'))?;
        } else {
            writeln!(out, "{summary}")?;
        }
        Ok((self.totals, summary))
    }
}

#[derive(Serialize)]
struct Tail<'a> {
    #[serde(flatten)]
    totals: &'a ProbeTotals,
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
