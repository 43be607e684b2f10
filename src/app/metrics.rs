//! Run metrics in Prometheus text format, for node_exporter's textfile
//! collector: written to a temporary file in the same folder and renamed
//! over the target, so the collector never reads half a file.

use std::fmt::Write as _;
use std::path::Path;

use crate::domain::outcome::Totals;
use crate::domain::status::StatusReport;

const LAST_SUCCESS: &str = "aimharder_refresh_last_success_timestamp_seconds";

pub struct RunMetrics<'a> {
    pub command: &'a str,
    pub finished_at: i64,
    pub duration_secs: f64,
    pub exit_code: u8,
    pub totals: Option<&'a Totals>,
    /// The circuit breaker stopped the run.
    pub tripped: bool,
    /// Sessions by state once the run was over, as `status` counts them.
    pub states: Option<&'a StatusReport>,
}

pub fn write(path: &Path, run: &RunMetrics<'_>) -> std::io::Result<()> {
    // A failed run keeps the last success time of the previous file.
    let last_success = if run.exit_code == 0 {
        Some(run.finished_at)
    } else {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|old| previous(&old, LAST_SUCCESS))
    };
    let text = render(run, last_success);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("aimharder_refresh.prom");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn previous(text: &str, metric: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(metric))
        .and_then(|rest| rest.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

fn render(run: &RunMetrics<'_>, last_success: Option<i64>) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let cmd = format!("{{command=\"{}\"}}", run.command);
    let by = |label: &str, value: &str, n: u64| (format!("{{{label}=\"{value}\"}}"), n.to_string());
    gauge(
        "aimharder_refresh_last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        &[(cmd.clone(), run.finished_at.to_string())],
    );
    if let Some(ts) = last_success {
        gauge(
            LAST_SUCCESS,
            "When the last run that exited 0 ended (Unix time).",
            &[(String::new(), ts.to_string())],
        );
    }
    gauge(
        "aimharder_refresh_last_run_duration_seconds",
        "How long the last run took.",
        &[(cmd.clone(), format!("{:.3}", run.duration_secs))],
    );
    gauge(
        "aimharder_refresh_last_run_exit_code",
        "Exit code of the last run (0 = all refreshed).",
        &[(cmd.clone(), run.exit_code.to_string())],
    );
    gauge(
        "aimharder_refresh_circuit_breaker_tripped",
        "1 when the circuit breaker stopped the last run (AimHarder refused or failed sessions in a row).",
        &[(cmd, u8::from(run.tripped).to_string())],
    );
    if let Some(s) = run.states {
        gauge(
            "aimharder_refresh_sessions_by_state",
            "Sessions in the table by state when the last run ended (as `status` counts them; stale: not refreshed in 24h).",
            &[
                by("state", "total", s.total),
                by("state", "enabled", s.auto_refresh_enabled),
                by("state", "fresh", s.fresh),
                by("state", "stale", s.stale),
                by("state", "never_refreshed", s.never_refreshed),
                by("state", "with_errors", s.with_errors),
                by("state", "due", s.due),
            ],
        );
    }
    if let Some(t) = run.totals {
        gauge(
            "aimharder_refresh_sessions",
            "Sessions handled by the last run, by outcome.",
            &[
                by("outcome", "refreshed", t.refreshed),
                by("outcome", "failed", t.failed),
                by("outcome", "expired", t.expired),
                by("outcome", "unrecorded", t.unrecorded),
                by("outcome", "skipped", t.skipped),
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_keeps_the_previous_success_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let totals = Totals {
            selected: 3,
            refreshed: 3,
            ..Totals::default()
        };
        let ok = RunMetrics {
            command: "refresh-all",
            finished_at: 1000,
            duration_secs: 1.5,
            exit_code: 0,
            totals: Some(&totals),
            tripped: false,
            states: None,
        };
        write(&path, &ok).unwrap();
        let failed = RunMetrics {
            finished_at: 2000,
            exit_code: 1,
            ..ok
        };
        write(&path, &failed).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("aimharder_refresh_last_success_timestamp_seconds 1000"),
            "{text}"
        );
        assert!(
            text.contains(
                "aimharder_refresh_last_run_timestamp_seconds{command=\"refresh-all\"} 2000"
            ),
            "{text}"
        );
        assert!(
            text.contains("aimharder_refresh_sessions{outcome=\"refreshed\"} 3"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
