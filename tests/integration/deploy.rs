//! The deploy/ artefacts and the release files, each checked by the tool its
//! platform checks it with: `systemd-analyze verify` (units),
//! `kubernetes-validate --strict` (manifests, offline against the
//! Kubernetes schemas), `promtool check rules` / `test rules` / `check
//! metrics` (alerts, their unit tests, the metrics file the binary writes).
//! `scripts/test-deps.sh` installs all three; a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::seed::Seed;
use aimharder_testkit::start::stack;

use crate::BIN;

const INSTALL_HINT: &str = "run scripts/test-deps.sh to install it";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A checker on the PATH (or at `$env_var`): never skipped.
fn tool(name: &str, env_var: &str, fallback: Option<PathBuf>) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    if let Some(path) = fallback.filter(|p| p.is_file()) {
        return path;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("{name} not found (PATH or ${env_var}); {INSTALL_HINT}"))
}

/// Runs a checker; panics with its output unless it succeeds.
fn check(program: &Path, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{text}",
        program.display()
    );
    text
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let analyze = tool("systemd-analyze", "SYSTEMD_ANALYZE", None);
    let dir = tempfile::tempdir().unwrap();
    let units = repo().join("deploy/systemd");
    let service = read(&units.join("aimharder-refresh.service"));
    let timer = read(&units.join("aimharder-refresh.timer"));
    // verify wants the ExecStart binary to exist: the one just built stands
    // in for /usr/local/bin's.
    assert!(service.contains("ExecStart=/usr/local/bin/aimharder-refresh refresh-all"));
    std::fs::write(
        dir.path().join("aimharder-refresh.service"),
        service.replace("/usr/local/bin/aimharder-refresh", BIN.path()),
    )
    .unwrap();
    std::fs::write(dir.path().join("aimharder-refresh.timer"), &timer).unwrap();
    let out = Command::new(&analyze)
        .args([
            "verify",
            "aimharder-refresh.service",
            "aimharder-refresh.timer",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze: {e}; {INSTALL_HINT}"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // A warning (an unknown key, a bad value) is a failure too.
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warned:\n{said}"
    );
    for line in [
        "Type=oneshot",
        "EnvironmentFile=/etc/aimharder-refresh.env",
        "StateDirectory=aimharder-refresh",
        "Environment=AIMHARDER_STATE_DIR=%S/aimharder-refresh",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "SuccessExitStatus=75",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "the service lacks {line}"
        );
    }
    for line in [
        "OnCalendar=*-*-* 00/6:17:00",
        "# OnCalendar=*:07/15",
        "Persistent=true",
        "RandomizedDelaySec=5m",
    ] {
        assert!(timer.lines().any(|l| l == line), "the timer lacks {line}");
    }
}

#[test]
fn the_kubernetes_manifests_validate_and_split_the_work_consistently() {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let validate = tool(
        "kubernetes-validate",
        "KUBERNETES_VALIDATE",
        home.map(|h| h.join(".cache/aimharder-refresh-tools/venv/bin/kubernetes-validate")),
    );
    let dir = repo().join("deploy/kubernetes");
    check(
        &validate,
        &["--strict", "cronjob.yaml", "secret.example.yaml"],
        &dir,
    );
    let cronjob = read(&dir.join("cronjob.yaml"));
    let value = |key: &str| -> String {
        cronjob
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key} in cronjob.yaml"))
            .trim()
            .to_string()
    };
    assert_eq!(value("concurrencyPolicy"), "Forbid");
    let minute = value("schedule")
        .trim_matches('"')
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        minute.parse::<u32>().is_ok_and(|m| m > 0),
        "off the hour: {minute}"
    );
    assert!(
        value("args").contains(r#""--jitter", "#),
        "the pods do not spread their start: {}",
        value("args")
    );
    assert_eq!(value("completionMode"), "Indexed");
    assert_eq!(value("runAsNonRoot"), "true");
    assert!(value("activeDeadlineSeconds").parse::<u32>().unwrap() > 0);
    let shards = value("value")
        .strip_prefix("job/")
        .expect("AIMHARDER_SHARD is job/N")
        .to_string();
    assert_eq!(value("completions"), shards, "completions = N of job/N");
    assert_eq!(value("parallelism"), shards, "parallelism = N of job/N");
    let image = value("image");
    assert!(
        image.ends_with(&format!("/aimharder-refresh:{}", env!("CARGO_PKG_VERSION"))),
        "the manifest's image {image} is not this version's"
    );
}

#[tokio::test]
async fn an_indexed_job_pod_takes_its_shard_from_its_index() {
    let (db, aim) = stack().await;
    let ids: Vec<String> = (0..8)
        .map(|i| Seed::new(&format!("k{i}@example.com"), &format!("{i}|1|k")).insert(&db))
        .collect();
    let done = BIN
        .run(&db, &aim)
        .env("AIMHARDER_SHARD", "job/2")
        .env("JOB_COMPLETION_INDEX", "1")
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    let mut second: Vec<String> = ids
        .into_iter()
        .filter(|id| aimharder_refresh::internals::shard_of(id, 2) == 2)
        .collect();
    second.sort();
    let refreshed = done.session_ids();
    assert_eq!(refreshed, second, "index 1 is shard 2 of 2");
    let outside = BIN
        .run(&db, &aim)
        .env("AIMHARDER_SHARD", "job/2")
        .refresh_all()
        .exits(78)
        .output()
        .await;
    assert!(
        outside.stderr.contains("JOB_COMPLETION_INDEX"),
        "{}",
        outside.stderr
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let promtool = tool("promtool", "PROMTOOL", None);
    let dir = repo().join("deploy/prometheus");
    let checked = check(
        &promtool,
        &["check", "rules", "aimharder-refresh.rules.yml"],
        &dir,
    );
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = check(
        &promtool,
        &["test", "rules", "aimharder-refresh.rules.test.yml"],
        &dir,
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
    let rules = read(&dir.join("aimharder-refresh.rules.yml"));
    for alert in [
        "AimHarderRefreshNoRecentSuccess",
        "AimHarderRefreshSessionsFailing",
        "AimHarderRefreshCircuitBreakerTripped",
        "AimHarderRefreshLastRunFailed",
        "AimHarderRefreshScheduleCannotKeepUp",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "no {alert}");
    }
}

/// Every metric the rules and the dashboard read is one the binary writes,
/// and what it writes passes `promtool check metrics`.
#[tokio::test]
async fn the_rules_and_the_dashboard_read_metrics_the_tool_writes() {
    let promtool = tool("promtool", "PROMTOOL", None);
    let (db, aim) = stack().await;
    let m1 = Seed::new("m1@example.com", "1|1|m").insert(&db);
    Seed::new("m2@example.com", "2|1|m").insert(&db);
    // A first run that succeeds, then one where a session is refused, then
    // a refresh-one beside them in the same file.
    aim.script("2|1|m", vec![Reply::ok(), Reply::Status(403)]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aimharder_refresh.prom");
    for (args, code) in [
        (&["refresh-all", "--rate", "0"][..], 0),
        (&["refresh-all", "--rate", "0", "--force"][..], 1),
        (&["refresh-one", "--id", &m1][..], 0),
        // The schedule at the default pace, whose capacity the rules read.
        (&["status"][..], 0),
    ] {
        BIN.run(&db, &aim)
            .env("AIMHARDER_METRICS_FILE", file.to_str().unwrap())
            .args(args)
            .exits(code)
            .output()
            .await;
    }
    let metrics = read(&file);
    let out = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for sample in [
        "aimharder_refresh_circuit_breaker_tripped{command=\"refresh-all\"} 0",
        "aimharder_refresh_sessions_by_state{command=\"refresh-all\",state=\"total\"} 2",
        "aimharder_refresh_sessions_by_state{command=\"refresh-all\",state=\"with_errors\"} 1",
        "aimharder_refresh_sessions{command=\"refresh-all\",outcome=\"failed\"} 1",
        "aimharder_refresh_sessions{command=\"refresh-one\",outcome=\"refreshed\"} 1",
        "aimharder_refresh_last_run_exit_code{command=\"refresh-one\"} 0",
        // 2 sessions every 6h; 7,200 an hour at --rate 2.
        "aimharder_refresh_schedule_needed_per_hour{command=\"refresh-all\"} 1",
        "aimharder_refresh_schedule_needed_per_hour{command=\"status\"} 1",
        "aimharder_refresh_schedule_capacity_per_hour{command=\"status\"} 7200",
    ] {
        assert!(
            metrics.lines().any(|l| l == sample),
            "no {sample} in:\n{metrics}"
        );
    }
    let written: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dashboard = read(&repo().join("deploy/grafana/aimharder-refresh.json"));
    let parsed: serde_json::Value =
        serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let titles: Vec<&str> = parsed["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for title in [
        "Last successful run",
        "Outcomes per run",
        "Run duration",
        "Sessions by state",
    ] {
        assert!(titles.contains(&title), "no panel {title}: {titles:?}");
    }
    let rules = read(&repo().join("deploy/prometheus/aimharder-refresh.rules.yml"));
    for (name, text) in [("dashboard", &dashboard), ("rules", &rules)] {
        let used = metric_names(text);
        assert!(!used.is_empty(), "the {name} reads no metric");
        for metric in used {
            assert!(
                written.contains(&metric.as_str()),
                "the {name} reads {metric}, which the tool does not write"
            );
        }
        // The commands they select on are ones whose series the file holds.
        for command in text.split("command=").skip(1) {
            let command = command.trim_start_matches('\\').trim_start_matches('"');
            let command = &command[..command.find(['"', '\\']).unwrap_or(command.len())];
            assert!(
                metrics.contains(&format!("{{command=\"{command}\"")),
                "the {name} selects command {command:?}, which the file does not hold"
            );
        }
    }
}

fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("aimharder_refresh_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_container_image_is_static_multi_stage_and_non_root() {
    let file = read(&repo().join("Containerfile"));
    let live: Vec<&str> = file
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    let stages: Vec<usize> = live
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "not multi-stage");
    let runtime = &live[*stages.last().unwrap()..];
    assert!(
        runtime[0].contains("distroless/static") || runtime[0].contains("scratch"),
        "the runtime stage is not minimal: {}",
        runtime[0]
    );
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets no USER");
    assert!(
        !matches!(user.split(':').next(), Some("0" | "root")),
        "runs as root"
    );
    assert!(runtime
        .iter()
        .any(|l| l
            .starts_with("COPY --from=build /aimharder-refresh /usr/local/bin/aimharder-refresh")));
    assert!(runtime
        .iter()
        .any(|l| l.contains(r#"ENTRYPOINT ["/usr/local/bin/aimharder-refresh"]"#)));
    let build = live[..*stages.last().unwrap()].join("\n");
    assert!(build.contains("unknown-linux-musl") && build.contains("--locked"));

    let release = read(&repo().join(".github/workflows/release.yml"));
    for needle in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "file: Containerfile",
        "linux/amd64,linux/arm64",
        "sha256sum",
        "/aimharder-refresh",
    ] {
        assert!(release.contains(needle), "release.yml lacks {needle}");
    }
    // The refresh workflow can run a release binary: it asks for the name
    // the release workflow gives its assets.
    assert!(release.contains(r#"name="aimharder-refresh-${GITHUB_REF_NAME}-${TARGET}""#));
    let refresh = read(&repo().join(".github/workflows/refresh-sessions.yml"));
    assert!(refresh.contains(r#"name="aimharder-refresh-${RELEASE}-${target}""#));
    assert!(refresh.contains(r#"sha256sum -c "$name.sha256""#));
}
