//! The GitHub Actions workflows and the crontab example: every workflow
//! passes `action-validator` (the pinned npm package that
//! `scripts/test-deps.sh` installs), and the scheduled refresh keeps the
//! properties an operator relies on. No YAML crate here: the shape checks are
//! plain string checks on the files as written.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `scripts/test-deps.sh` installs (`ACTION_VALIDATOR_VERSION` there).
const ACTION_VALIDATOR_VERSION: &str = "0.6.0";

const INSTALL_HINT: &str = "run scripts/test-deps.sh to install it";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn workflows_dir() -> PathBuf {
    repo().join(".github/workflows")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `$ACTION_VALIDATOR`, else the copy `scripts/test-deps.sh` installs. Never
/// skips: a missing validator fails the test with what to do.
fn action_validator() -> PathBuf {
    if let Some(path) = std::env::var_os("ACTION_VALIDATOR") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "ACTION_VALIDATOR={} does not exist; unset it and {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("HOME is not set, so action-validator cannot be found; set ACTION_VALIDATOR or {INSTALL_HINT}"));
    let tools = home.join(".cache/aimharder-refresh-tools/node_modules");
    let bin = tools.join(".bin/action-validator");
    let manifest = tools.join("@action-validator/cli/package.json");
    let version = std::fs::read_to_string(&manifest).ok().and_then(|text| {
        let (_, rest) = text.split_once("\"version\"")?;
        let (_, rest) = rest.split_once('"')?;
        rest.split_once('"').map(|(v, _)| v.to_string())
    });
    match version {
        Some(v) if v == ACTION_VALIDATOR_VERSION && bin.is_file() => bin,
        Some(v) => panic!(
            "action-validator {v} found in {}, the tests want {ACTION_VALIDATOR_VERSION}; {INSTALL_HINT}",
            tools.display()
        ),
        None => panic!(
            "action-validator {ACTION_VALIDATOR_VERSION} not found at {}; {INSTALL_HINT}",
            bin.display()
        ),
    }
}

/// Runs the validator on one file: `Ok` or its report.
fn validate(validator: &Path, file: &Path) -> Result<(), String> {
    let out = Command::new(validator)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (it needs node on the PATH): {e}; {INSTALL_HINT}",
                validator.display()
            )
        });
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}):\n{}{}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The lines of a YAML file that are not comments, so that the commented-out
/// examples in a workflow cannot satisfy a check.
fn live_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .collect()
}

/// The value of `key:` on a live line, unquoted: `timeout-minutes: 75` → `75`.
fn values<'a>(lines: &[&'a str], key: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            let value = value.split(" #").next().unwrap_or(value).trim();
            Some(value.trim_matches(|c| c == '"' || c == '\''))
        })
        .collect()
}

/// The lines under `header` (a live line as written, indentation included:
/// `"  keepalive:"`), up to the next line indented no deeper; empty if there
/// is no such line.
fn under<'a>(lines: &[&'a str], header: &str) -> Vec<&'a str> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(at) = lines.iter().position(|l| l.trim_end() == header) else {
        return Vec::new();
    };
    lines[at + 1..]
        .iter()
        .take_while(|l| indent(l) > indent(header))
        .copied()
        .collect()
}

#[test]
fn every_workflow_passes_action_validator() {
    let validator = action_validator();

    // The validator must tell a broken workflow apart, or passing means nothing.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout-minutes: soon\n    steps:\n      - run: true\n",
    )
    .unwrap();
    assert!(
        validate(&validator, &broken).is_err(),
        "{} accepted a workflow with `timeout-minutes: soon`",
        validator.display()
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(workflows_dir())
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", workflows_dir().display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["ci.yml", "refresh-sessions.yml"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from .github/workflows ({names:?})"
        );
    }
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            name.ends_with(".yml") || name.ends_with(".yaml"),
            "{name} in .github/workflows is not a workflow file (GitHub reads only .yml/.yaml)"
        );
    }

    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| validate(&validator, path).err())
        .collect();
    assert!(
        failures.is_empty(),
        "action-validator rejected {} of {} workflow(s):\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn refresh_workflow_runs_off_the_hour_one_at_a_time_within_a_time_limit() {
    let text = read(&workflows_dir().join("refresh-sessions.yml"));
    let lines = live_lines(&text);

    // Scheduled, at a fixed minute that is not :00 (GitHub's busiest moment).
    assert!(
        lines.iter().any(|l| l.trim() == "schedule:"),
        "no schedule trigger"
    );
    let crons = values(&lines, "cron");
    assert!(!crons.is_empty(), "schedule has no cron entry");
    for cron in &crons {
        let fields: Vec<&str> = cron.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "cron {cron:?} does not have 5 fields");
        let minute: u32 = fields[0].parse().unwrap_or_else(|_| {
            panic!(
                "cron {cron:?}: the minute must be one fixed number, not {:?}",
                fields[0]
            )
        });
        assert!(
            (1..60).contains(&minute),
            "cron {cron:?}: minute {minute} must be 1..59, off the hour"
        );
    }
    assert!(
        lines.iter().any(|l| l.trim() == "workflow_dispatch:"),
        "no workflow_dispatch trigger"
    );

    // Never two runs at once, and a running one is never cancelled.
    let concurrency = lines
        .iter()
        .position(|l| l.trim_end() == "concurrency:" || l.trim_start().starts_with("concurrency:"))
        .expect("no concurrency setting");
    let block: Vec<&str> = lines[concurrency..].iter().take(3).copied().collect();
    assert!(
        values(&block, "group").iter().any(|g| !g.is_empty()),
        "concurrency has no group: {block:?}"
    );
    assert_eq!(
        values(&block, "cancel-in-progress"),
        ["false"],
        "concurrency must say cancel-in-progress: false: {block:?}"
    );

    // A time limit on the job, beyond the run's own --max-duration.
    let timeouts = values(&under(&lines, "  refresh:"), "timeout-minutes");
    assert!(!timeouts.is_empty(), "no timeout-minutes");
    for t in &timeouts {
        let minutes: u32 = t
            .parse()
            .unwrap_or_else(|_| panic!("timeout-minutes {t:?} is not a number"));
        assert!(
            (51..=360).contains(&minutes),
            "timeout-minutes {minutes} must leave room for --max-duration 50m and end before the next run"
        );
    }
    assert!(
        text.contains("--max-duration 50m"),
        "refresh-all runs without --max-duration 50m"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("= schedule ]; then args+=(--jitter ")),
        "a scheduled run does not spread its start with --jitter"
    );

    // The key comes from the repository's secrets, never from the file.
    let live = lines.join("\n");
    for secret in [
        "secrets.SUPABASE_SECRET_KEY",
        "secrets.SUPABASE_SERVICE_ROLE_KEY",
        "secrets.SUPABASE_URL",
        "secrets.AIMHARDER_PROXY",
    ] {
        assert!(live.contains(secret), "the workflow does not use {secret}");
    }
    // GitHub-hosted runners may be refused: the way out is documented in
    // the file, with the self-hosted runner line ready to uncomment.
    assert!(
        text.contains("# runs-on: self-hosted"),
        "no self-hosted runs-on line"
    );
    assert!(
        text.contains("HTTP 403"),
        "the refused-range problem is not explained"
    );
    assert!(
        !live.contains("eyJ"),
        "the workflow seems to hold a JWT; keys belong in secrets"
    );

    // The binary is built once per source change and otherwise restored.
    assert!(live.contains("actions/cache"), "the binary is not cached");
    assert!(
        live.contains("hashFiles('Cargo.lock'"),
        "the cache key does not follow Cargo.lock"
    );
    assert!(
        live.contains("cargo build --release --locked"),
        "the build is not `cargo build --release --locked`"
    );

    // Manual inputs reach the shell through env:, never pasted into a script
    // (where `older_than: "6h; curl …"` would run).
    for line in &lines {
        if line.contains("inputs.") && line.contains("${{") {
            let (key, _) = line.trim_start().split_once(':').unwrap_or(("", ""));
            assert!(
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "an input is used outside an env: mapping: {line:?}"
            );
        }
    }
}

/// GitHub switches off a public repository's schedules after 60 days
/// without activity: a job re-enables the workflow through the API on each
/// scheduled run, alone in holding `actions: write`.
#[test]
fn refresh_workflow_keeps_its_schedule_enabled_with_the_least_permission() {
    let text = read(&workflows_dir().join("refresh-sessions.yml"));
    let lines = live_lines(&text);
    let trimmed =
        |block: Vec<&str>| -> Vec<String> { block.iter().map(|l| l.trim().to_string()).collect() };
    assert_eq!(
        trimmed(under(&lines, "permissions:")),
        ["contents: read"],
        "the workflow's own permissions"
    );
    let refresh = under(&lines, "  refresh:");
    assert!(!refresh.is_empty(), "no refresh job");
    assert!(
        under(&refresh, "    permissions:").is_empty(),
        "the refresh job must keep the workflow's read-only token"
    );

    let keepalive = under(&lines, "  keepalive:");
    assert!(!keepalive.is_empty(), "no keepalive job");
    assert_eq!(
        trimmed(under(&keepalive, "    permissions:")),
        ["actions: write"],
        "the keepalive job's permissions"
    );
    assert!(
        keepalive
            .iter()
            .any(|l| l.trim() == "if: github.event_name == 'schedule'"),
        "the keepalive job runs on the schedule: {keepalive:#?}"
    );
    assert!(
        values(&keepalive, "needs").is_empty(),
        "the keepalive job must not wait on the refresh: a failing schedule stays scheduled"
    );
    let minutes: u32 = values(&keepalive, "timeout-minutes")
        .first()
        .expect("the keepalive job has no timeout-minutes")
        .parse()
        .unwrap();
    assert!(minutes <= 10, "a single API call: {minutes} minutes");
    let job = keepalive.join("\n");
    for unwanted in ["secrets.", "actions/checkout", "${{ inputs."] {
        assert!(!job.contains(unwanted), "the keepalive job uses {unwanted}");
    }
    assert_eq!(values(&keepalive, "GH_TOKEN"), ["${{ github.token }}"]);
    let call = keepalive
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("gh api"))
        .expect("the keepalive step makes no `gh api` call");
    assert_eq!(
        call,
        r#"gh api --method PUT "repos/${GITHUB_REPOSITORY}/actions/workflows/${file}/enable""#
    );
    // The workflow's id is its own file name, from GITHUB_WORKFLOW_REF.
    assert!(
        job.contains(r#"file="${GITHUB_WORKFLOW_REF%%@*}""#),
        "{job}"
    );
    assert!(job.contains(r#"file="${file##*/}""#), "{job}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("actions: write"))
            .count(),
        1,
        "only the keepalive job holds actions: write"
    );
}

#[test]
fn crontab_example_lines_are_installable() {
    let text = read(&repo().join("crontab.example"));
    let lines = live_lines(&text);
    let assignments: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.split_whitespace().next().is_some_and(|w| w.contains('=')))
        .collect();
    for var in ["PATH=", "MAILTO="] {
        assert!(
            assignments.iter().any(|l| l.starts_with(var)),
            "crontab.example sets no {var}"
        );
    }
    let jobs: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !assignments.contains(l))
        .collect();
    assert!(
        jobs.len() >= 2,
        "expected a refresh and a status line: {jobs:?}"
    );
    for job in &jobs {
        let fields: Vec<&str> = job.split_whitespace().collect();
        // Five time fields, the user (it is an /etc/cron.d file), a command.
        assert!(fields.len() > 6, "not a cron.d line: {job:?}");
        assert!(
            fields[..5]
                .iter()
                .all(|f| f.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c))),
            "bad time fields: {job:?}"
        );
        assert_eq!(fields[5], "aimharder", "user field: {job:?}");
        // cron turns a bare % into a newline.
        assert!(!job.contains('%'), "unescaped % in {job:?}");
        assert!(
            job.contains(". /etc/aimharder-refresh.env"),
            "secrets are not read from the env file: {job:?}"
        );
    }
    let refresh = jobs
        .iter()
        .find(|j| j.contains("refresh-all"))
        .expect("no refresh-all line");
    let minute: u32 = refresh.split_whitespace().next().unwrap().parse().unwrap();
    assert!(minute != 0, "refresh runs on the hour: {refresh}");
    for part in [
        "flock -n",
        "--max-duration",
        "--jitter",
        "--metrics-file /var/lib/node_exporter/textfile_collector/aimharder_refresh.prom",
        ">>",
        "2>&1",
    ] {
        assert!(refresh.contains(part), "refresh line lacks {part:?}");
    }
    assert!(
        text.contains("AIMHARDER_HEALTHCHECK_URL="),
        "no healthcheck setting"
    );
    assert!(
        jobs.iter().any(|j| j.contains("status --check")),
        "no status --check line"
    );
}
