//! Runs the release binary as an operator would, and measures it: wall
//! time, CPU time and peak RSS from `wait4` and /proc, and the totals of its
//! JSON output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The release binary (`cargo bench` builds it with the bench profile).
const BIN: &str = env!("CARGO_BIN_EXE_aimharder-refresh");

pub struct BinRun {
    pub code: i32,
    pub wall: Duration,
    pub rss_kib: i64,
    pub cpu: Duration,
    /// VmRSS (KiB) sampled while it ran, to tell steady growth from a
    /// plateau.
    pub rss_samples: Vec<(Duration, u64)>,
}

/// How often the binary's VmRSS is sampled.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Runs the binary with only `envs`, from `dir` (no stray `.env`), output to
/// `dir/stdout` and `dir/stderr`. `wait4` gives this child's own CPU time
/// (`RUSAGE_CHILDREN` would mix in psql and the servers). Its `ru_maxrss` is
/// not used: Linux folds the pre-exec image, a copy of this (large) bench
/// process, into it. The peak is the child's own `VmHWM` instead, read from
/// /proc while it runs (it only grows, so the last sample is within 20 ms of
/// the true peak).
pub async fn run_binary(args: &[String], envs: &[(String, String)], dir: &Path) -> BinRun {
    let stdout = File::create(dir.join("stdout")).expect("stdout file");
    let stderr = File::create(dir.join("stderr")).expect("stderr file");
    // For profiling runs only: `AIMHARDER_BENCH_ENV="MALLOC_ARENA_MAX=2 ..."`
    // adds variables to the binary's otherwise clean environment.
    let extra = std::env::var("AIMHARDER_BENCH_ENV").unwrap_or_default();
    let extra = extra.split_whitespace().filter_map(|kv| kv.split_once('='));
    let mut command = std::process::Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // Blocking wait off the runtime, which must keep serving the fake and
    // the proxy meanwhile.
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let child = command.spawn().expect("run the binary");
        let pid = child.id() as libc::pid_t;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            let status_file = format!("/proc/{pid}/status");
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut hwm = 0u64;
                let field = |status: &str, name: &str| {
                    let line = status.lines().find(|l| l.starts_with(name))?;
                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                };
                while !done.load(Ordering::SeqCst) {
                    if let Ok(status) = std::fs::read_to_string(&status_file) {
                        if let Some(rss) = field(&status, "VmRSS:") {
                            samples.push((started.elapsed(), rss));
                        }
                        hwm = hwm.max(field(&status, "VmHWM:").unwrap_or(0));
                    }
                    std::thread::sleep(RSS_SAMPLE_EVERY);
                }
                (samples, hwm)
            })
        };
        let mut status = 0;
        // SAFETY: a plain syscall on our own child, with valid out-pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let wall = started.elapsed();
        assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
        // Reaped above; dropping `Child` neither waits nor kills.
        drop(child);
        done.store(true, Ordering::SeqCst);
        let (rss_samples, hwm_kib) = sampler.join().expect("RSS sampler");
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        BinRun {
            code,
            wall,
            rss_kib: hwm_kib as i64,
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            rss_samples,
        }
    })
    .await
    .expect("waiting for the binary")
}

pub fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// The counts of a `refresh-all --json` document. It is streamed with the
/// counts after the session array, so for 100k sessions only the end of the
/// file is read; should the shape change, the whole document is parsed.
pub fn run_totals(path: &Path) -> serde_json::Value {
    let mut file = File::open(path).expect("stdout of the run");
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    file.seek(SeekFrom::Start(len.saturating_sub(4096)))
        .unwrap();
    let mut end = String::new();
    file.read_to_string(&mut end).unwrap_or_default();
    if let Some(at) = end.rfind("\"duration_ms\"") {
        if let Ok(doc) = serde_json::from_str(&format!("{{{}", &end[at..])) {
            return doc;
        }
    }
    let whole = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&whole).unwrap_or_else(|e| {
        panic!(
            "stdout is not a refresh-all document ({e}): ...{}",
            &whole[whole.len().saturating_sub(300)..]
        )
    })
}

pub fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(&text).to_string()
}
