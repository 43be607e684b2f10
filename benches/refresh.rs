//! Throughput and memory of `refresh-all`, and the speed of `status`, on the
//! same local stack the integration tests use: a throwaway PostgreSQL, a
//! `postrust` (PostgREST-compatible) per scenario, and the simulated AimHarder
//! with a fixed latency. Everything runs on 127.0.0.1.
//!
//! ```sh
//! cargo bench --bench refresh            # full: the figures of docs/PERFORMANCE.md
//! cargo bench --bench refresh -- quick   # smaller smoke version, under a minute
//! cargo bench --bench refresh -- tail    # only some scenarios: base tail rss status
//! AIMHARDER_BENCH_N=2000 AIMHARDER_BENCH_CONCURRENCY=8 \
//!     cargo bench --bench refresh -- custom   # any N, L, C (see `custom()`)
//! ```
//!
//! `scripts/bench` does the same after installing PostgreSQL and postrust.
//!
//! The release binary is run as an operator would run it, with
//! `refresh-all --concurrency C --rate 0 --json`. Between it and `postrust`
//! sits a small counting proxy (REST requests by method, and how long each
//! took to answer). Peak RSS and CPU time of the binary come from `wait4`.
//!
//! This is a benchmark, not a test: missed targets are reported (`MISSED`),
//! and only a functional failure (a wrong exit code, rows not recorded)
//! stops it.

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use aimharder_refresh::select::PAGE_SIZE;
use support::aimharder::FakeAimHarder;
use support::stack::TestDb;

/// The release binary (`cargo bench` builds it with the bench profile).
const BIN: &str = env!("CARGO_BIN_EXE_aimharder-refresh");
const MIGRATION: &str = "migrations/20261126000000_refresh_tracking.sql";
/// The heavy tail: one AimHarder answer in `TAIL_EVERY` takes `TAIL`.
const TAIL_EVERY: usize = 50;
const TAIL: Duration = Duration::from_secs(1);
/// How often `status` is timed on the big table (the figure is the worst).
const STATUS_RUNS: usize = 5;

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Throughput against the N×L/C bound.
    Base,
    /// The same with a heavy tail of slow answers.
    Tail,
    /// Peak RSS, small table (the reference for the big one).
    RssSmall,
    /// Peak RSS, big table; `status` is timed on this table too.
    RssBig,
    /// Any N, L, C from the environment, for profiling (see `custom()`).
    Custom,
}

#[derive(Clone, Copy)]
struct Scenario {
    kind: Kind,
    name: &'static str,
    n: usize,
    latency: Duration,
    concurrency: usize,
    tail: bool,
}

impl Scenario {
    /// The best any runner could do: N calls of mean latency, C at a time.
    /// With the tail, the mean is L×49/50 + 1s/50.
    fn bound(&self) -> Duration {
        let mean = if self.tail {
            let every = TAIL_EVERY as u32;
            self.latency * (every - 1) / every + TAIL / every
        } else {
            self.latency
        };
        mean * self.n as u32 / self.concurrency as u32
    }
}

fn scenarios(quick: bool, only: &[String]) -> Vec<Scenario> {
    let ms = Duration::from_millis;
    // Quick keeps the shapes and shrinks N so the whole run takes under a
    // minute; its ratios carry more fixed start-up cost, so the targets are
    // only meant for the full sizes.
    let (small, big) = if quick {
        (1_000, 10_000)
    } else {
        (10_000, 100_000)
    };
    let all = [
        Scenario {
            kind: Kind::Base,
            name: "base",
            n: small,
            latency: ms(50),
            concurrency: 32,
            tail: false,
        },
        Scenario {
            kind: Kind::Tail,
            name: "tail",
            n: small,
            latency: ms(50),
            concurrency: 32,
            tail: true,
        },
        // The memory pair uses a short latency to keep the big run short;
        // both use the same L and C, so only N differs between them.
        Scenario {
            kind: Kind::RssSmall,
            name: "rss-small",
            n: small,
            latency: ms(5),
            concurrency: 64,
            tail: false,
        },
        Scenario {
            kind: Kind::RssBig,
            name: "rss-big",
            n: big,
            latency: ms(5),
            concurrency: 64,
            tail: false,
        },
    ];
    let wanted = |s: &Scenario| {
        only.is_empty()
            || only.iter().any(|w| match w.as_str() {
                "base" => s.kind == Kind::Base,
                "tail" => s.kind == Kind::Tail,
                "rss" => matches!(s.kind, Kind::RssSmall | Kind::RssBig),
                // `status` is timed on the big table, so it needs that run.
                "status" => s.kind == Kind::RssBig,
                _ => false,
            })
    };
    let mut chosen: Vec<Scenario> = all.into_iter().filter(wanted).collect();
    if only.iter().any(|w| w == "custom") {
        chosen.push(custom());
    }
    chosen
}

/// `custom`: N, L, C and the tail from `AIMHARDER_BENCH_N`, `_LATENCY_MS`,
/// `_CONCURRENCY` and `_TAIL` (`1` for on); defaults are the base scenario's.
fn custom() -> Scenario {
    let var = |name: &str, default: u64| {
        std::env::var(format!("AIMHARDER_BENCH_{name}"))
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("AIMHARDER_BENCH_{name}={v:?}"))
            })
            .unwrap_or(default)
    };
    Scenario {
        kind: Kind::Custom,
        name: "custom",
        n: var("N", 10_000) as usize,
        latency: Duration::from_millis(var("LATENCY_MS", 50)),
        concurrency: var("CONCURRENCY", 32).max(1) as usize,
        tail: var("TAIL", 0) == 1,
    }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench` (and any filter after `--`); flags are
    // cargo's, words are ours.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let known = ["quick", "full", "base", "tail", "rss", "status", "custom"];
    if let Some(bad) = words.iter().find(|w| !known.contains(&w.as_str())) {
        eprintln!("unknown scenario {bad:?}; use any of: {}", known.join(" "));
        std::process::exit(64);
    }
    let quick = words.iter().any(|w| w == "quick");
    let only: Vec<String> = words
        .into_iter()
        .filter(|w| w != "quick" && w != "full")
        .collect();
    let scenarios = scenarios(quick, &only);

    // Two workers: the fake AimHarder and the proxy are light, and the
    // machine's cores are better left to the binary and the stack.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for scenario in &scenarios {
            eprintln!(
                "bench: {} (N={}, L={:?}, C={}{})...",
                scenario.name,
                scenario.n,
                scenario.latency,
                scenario.concurrency,
                if scenario.tail { ", tail" } else { "" }
            );
            results.push(run_scenario(*scenario).await);
        }
        results
    });
    report(quick, &results);
}

// ---------------------------------------------------------------------------
// One scenario
// ---------------------------------------------------------------------------

struct Measured {
    scenario: Scenario,
    wall: Duration,
    rss_kib: i64,
    /// VmRSS (MiB) at a quarter, half, three quarters and the end of the run.
    rss_quarters: [f64; 4],
    /// User + system CPU of the binary.
    cpu_bin: Duration,
    /// CPU burnt meanwhile by `postrust`, by PostgreSQL (all its processes),
    /// and by this process (fake AimHarder + proxy).
    cpu_postrust: Duration,
    cpu_postgres: Duration,
    cpu_bench: Duration,
    /// Busy CPU time of the whole machine during the run: what is neither
    /// ours above nor interrupt work was someone else's (a test run, a build).
    cpu_machine: Duration,
    /// Kernel interrupt work (irq + softirq), charged to no process.
    cpu_irq: Duration,
    rest: Counts,
    /// Rows with `refresh_count = 1` after the run.
    recorded: usize,
    refreshed: u64,
    /// From spawn to the first AimHarder call (start-up and first page).
    first_call: Duration,
    max_in_flight: usize,
    /// `status --json` wall times on this table, before and after the run.
    status_before: Vec<Duration>,
    status_after: Vec<Duration>,
}

async fn run_scenario(s: Scenario) -> Measured {
    let db = TestDb::new().await;
    db.apply_migration(MIGRATION);
    seed(&db, s.n);

    let aim = if s.tail {
        FakeAimHarder::with_latency_and_tail(s.latency, TAIL_EVERY, TAIL).await
    } else {
        FakeAimHarder::with_latency(s.latency).await
    };
    let rest_addr: SocketAddr = db
        .rest_url()
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .parse()
        .expect("REST address");
    let proxy = CountingProxy::start(rest_addr).await;
    let dir = tempfile::tempdir().expect("temp dir");

    let status_before = if s.kind == Kind::RssBig {
        time_status(&db, dir.path()).await
    } else {
        vec![]
    };

    let envs = vec![
        (
            "SUPABASE_REST_URL".to_string(),
            format!("http://{}/api", proxy.addr),
        ),
        (
            "SUPABASE_SERVICE_ROLE_KEY".to_string(),
            db.service_key().to_string(),
        ),
        ("AIMHARDER_BASE_URL".to_string(), aim.url()),
    ];
    let args: Vec<String> = [
        "refresh-all",
        "--concurrency",
        &s.concurrency.to_string(),
        "--rate",
        "0",
        "--json",
    ]
    .map(str::to_string)
    .to_vec();

    let postmaster = postmaster_pid(&db);
    let stack_before = cpu_sample(postmaster);
    let bench_before = self_cpu();
    let started = Instant::now();
    let run = run_binary(&args, &envs, dir.path()).await;
    let cpu_bench = self_cpu() - bench_before;
    let stack_after = cpu_sample(postmaster);

    let doc = run_totals(&dir.path().join("stdout"));
    assert_eq!(
        run.code,
        0,
        "{}: refresh-all exited {}; totals {doc}; stderr:\n{}",
        s.name,
        run.code,
        tail_of(&dir.path().join("stderr"))
    );
    let refreshed = doc["refreshed"].as_u64().unwrap_or(0);
    let recorded: usize = db
        .sql("SELECT count(*) FROM auth_sessions WHERE refresh_count = 1")
        .parse()
        .expect("a count");
    assert_eq!(
        (recorded, refreshed),
        (s.n, s.n as u64),
        "{}: not everything was refreshed and recorded; totals {doc}",
        s.name
    );

    let status_after = if s.kind == Kind::RssBig {
        time_status(&db, dir.path()).await
    } else {
        vec![]
    };
    let first_call = aim
        .arrival_times()
        .first()
        .map_or(Duration::ZERO, |t| t.duration_since(started));

    // Dropping the table now keeps its autovacuum out of the next scenario.
    db.sql("DROP TABLE auth_sessions");
    Measured {
        scenario: s,
        wall: run.wall,
        rss_kib: run.rss_kib,
        rss_quarters: quarters(&run.rss_samples, run.wall),
        cpu_bin: run.cpu,
        cpu_postrust: stack_after.postrust.saturating_sub(stack_before.postrust),
        cpu_postgres: stack_after.postgres.saturating_sub(stack_before.postgres),
        cpu_bench,
        cpu_machine: stack_after.machine.saturating_sub(stack_before.machine),
        cpu_irq: stack_after.irq.saturating_sub(stack_before.irq),
        rest: proxy.counts.snapshot(),
        recorded,
        refreshed,
        first_call,
        max_in_flight: aim.max_in_flight(),
        status_before,
        status_after,
    }
}

/// N due sessions in one statement: odd rows were refreshed 7 h ago (the
/// default cutoff is 6 h), even ones never were; half carry two cookies,
/// a third a fingerprint of their own. All start at `refresh_count = 0`, so
/// "recorded" is simply `refresh_count = 1` afterwards.
fn seed(db: &TestDb, n: usize) {
    db.sql(&format!(
        "INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, fingerprint, \
                                    created_at, last_refresh_date, refresh_count)
         SELECT 'member' || i || '@example.com',
                i || '|1766731601|' || md5(i::text),
                CASE WHEN i % 2 = 0 THEN '[]'::jsonb
                     ELSE ('[{{\"name\":\"PHPSESSID\",\"value\":\"php-' || i || '\"}},'
                           '{{\"name\":\"AWSALB\",\"value\":\"alb-' || i || '\"}}]')::jsonb END,
                CASE WHEN i % 3 = 0 THEN 'fp-' || i END,
                now() - interval '30 days' + i * interval '1 ms',
                CASE WHEN i % 2 = 1 THEN now() - interval '7 hours' - i * interval '1 ms' END,
                0
         FROM generate_series(1, {n}) AS i;"
    ));
    // As a long-lived Supabase table would be: statistics in place, so the
    // planner sees the real table and not an empty one.
    db.sql("VACUUM ANALYZE auth_sessions");
}

/// `status --json` straight against `postrust` (no proxy), a few times.
async fn time_status(db: &TestDb, dir: &Path) -> Vec<Duration> {
    let envs = vec![
        ("SUPABASE_REST_URL".to_string(), db.rest_url()),
        (
            "SUPABASE_SERVICE_ROLE_KEY".to_string(),
            db.service_key().to_string(),
        ),
    ];
    let args = vec!["status".to_string(), "--json".to_string()];
    let mut times = Vec::new();
    for _ in 0..STATUS_RUNS {
        let run = run_binary(&args, &envs, dir).await;
        assert_eq!(
            run.code,
            0,
            "status exited {}; stderr:\n{}",
            run.code,
            tail_of(&dir.join("stderr"))
        );
        times.push(run.wall);
    }
    times
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

struct BinRun {
    code: i32,
    wall: Duration,
    rss_kib: i64,
    cpu: Duration,
    /// VmRSS (KiB) sampled while it ran, to tell steady growth from a
    /// plateau.
    rss_samples: Vec<(Duration, u64)>,
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
async fn run_binary(args: &[String], envs: &[(String, String)], dir: &Path) -> BinRun {
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

/// The largest VmRSS sampled up to each quarter of the run, in MiB.
fn quarters(samples: &[(Duration, u64)], wall: Duration) -> [f64; 4] {
    [1u32, 2, 3, 4].map(|q| {
        let until = wall * q / 4;
        samples
            .iter()
            .filter(|(at, _)| *at <= until)
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    })
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// The counts of a `refresh-all --json` document. It is streamed with the
/// counts after the session array, so for 100k sessions only the end of the
/// file is read; should the shape change, the whole document is parsed.
fn run_totals(path: &Path) -> serde_json::Value {
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

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(&text).to_string()
}

// ---------------------------------------------------------------------------
// CPU accounting
// ---------------------------------------------------------------------------

/// CPU time (user + system), from `/proc`, of this bench's `postrust`
/// (started under this process) and of its PostgreSQL cluster (the
/// postmaster `postmaster_pid` and its children), and of the whole machine.
/// Other engineers' test runs may start clusters and servers of their own;
/// those are not counted as ours, and show up in `machine`.
///
/// PostgreSQL backends hold on to postrust's pooled connections, so they
/// live through the run; a short-lived autovacuum worker would be missed.
#[derive(Clone, Copy, Default)]
struct CpuSample {
    postrust: Duration,
    postgres: Duration,
    /// Busy time of all CPUs (everything but idle and iowait).
    machine: Duration,
    /// Of which interrupt handling (irq + softirq): on loopback, mostly TCP
    /// processing, charged to no process.
    irq: Duration,
}

fn cpu_sample(postmaster_pid: u32) -> CpuSample {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let time = |ticks: u64| Duration::from_millis(ticks * 1000 / hz);
    let me = std::process::id();

    // pid -> (parent, comm, CPU ticks)
    let mut procs = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..." -- comm may hold spaces, so split at
        // the last ')'; ppid is field 4, utime and stime are 14 and 15.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        procs.insert(pid, (num(1) as u32, comm, num(11) + num(12)));
    }
    let under_me = |mut pid: u32| {
        while let Some((parent, _, _)) = procs.get(&pid) {
            if *parent == me {
                return true;
            }
            pid = *parent;
        }
        false
    };
    let mut sample = CpuSample::default();
    for (pid, (parent, comm, ticks)) in &procs {
        if comm == "postrust" && under_me(*pid) {
            sample.postrust += time(*ticks);
        } else if *pid == postmaster_pid || *parent == postmaster_pid {
            sample.postgres += time(*ticks);
        }
    }
    // First line of /proc/stat: "cpu user nice system idle iowait irq ...".
    let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = all
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    sample.machine = time(ticks.iter().sum::<u64>() - idle);
    sample.irq = time(ticks.get(5).copied().unwrap_or(0) + ticks.get(6).copied().unwrap_or(0));
    sample
}

/// The pid of the cluster's postmaster, from `postmaster.pid` in its data
/// directory.
fn postmaster_pid(db: &TestDb) -> u32 {
    let data = db.sql("SHOW data_directory");
    std::fs::read_to_string(Path::new(&data).join("postmaster.pid"))
        .ok()
        .and_then(|pidfile| pidfile.lines().next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no postmaster.pid in {data}"))
}

/// CPU time of this process (the fake AimHarder and the proxy).
fn self_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

// ---------------------------------------------------------------------------
// Counting proxy
// ---------------------------------------------------------------------------

const METHODS: [&str; 4] = ["GET", "PATCH", "POST", "other"];

/// REST requests by method, and the summed time until `postrust` began to
/// answer each (as seen from the proxy).
#[derive(Default)]
struct Counters {
    requests: [AtomicU64; 4],
    wait_micros: [AtomicU64; 4],
    answered: [AtomicU64; 4],
    connections: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    requests: [u64; 4],
    /// Mean time to the first byte of the answer.
    mean_wait: [Duration; 4],
    /// Connections the binary opened to the REST server.
    connections: u64,
}

impl Counts {
    fn get(&self) -> u64 {
        self.requests[0]
    }
    fn patch(&self) -> u64 {
        self.requests[1]
    }
    fn total(&self) -> u64 {
        self.requests.iter().sum()
    }
}

impl Counters {
    fn snapshot(&self) -> Counts {
        let mut counts = Counts {
            connections: self.connections.load(Ordering::SeqCst),
            ..Counts::default()
        };
        for i in 0..METHODS.len() {
            counts.requests[i] = self.requests[i].load(Ordering::SeqCst);
            let answered = self.answered[i].load(Ordering::SeqCst).max(1);
            counts.mean_wait[i] =
                Duration::from_micros(self.wait_micros[i].load(Ordering::SeqCst) / answered);
        }
        counts
    }
}

/// A TCP proxy in front of `postrust` that reads the request lines going
/// through it. The binary talks HTTP/1.1 without pipelining, so the first
/// bytes back after a request are that request's answer.
struct CountingProxy {
    addr: SocketAddr,
    counts: Arc<Counters>,
}

impl CountingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counters::default());
        let shared = counts.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = shared.clone();
                counts.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, counts).await;
                    }
                });
            }
        });
        Self { addr, counts }
    }
}

async fn relay(client: TcpStream, server: TcpStream, counts: Arc<Counters>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Requests sent and not yet answered: (method index, when it was sent).
    let pending: Arc<Mutex<VecDeque<(usize, Instant)>>> = Arc::default();

    let (sent, up_counts) = (pending.clone(), counts.clone());
    let upstream = async move {
        let mut scanner = RequestScanner::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            scanner.feed(&buf[..n], |method| {
                up_counts.requests[method].fetch_add(1, Ordering::SeqCst);
                sent.lock().unwrap().push_back((method, Instant::now()));
            });
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some((method, at)) = pending.lock().unwrap().pop_front() {
                let waited = at.elapsed().as_micros() as u64;
                counts.wait_micros[method].fetch_add(waited, Ordering::SeqCst);
                counts.answered[method].fetch_add(1, Ordering::SeqCst);
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Finds request heads in a client→server byte stream, skipping bodies by
/// their `Content-Length`, so a body can never be mistaken for a request.
#[derive(Default)]
struct RequestScanner {
    head: Vec<u8>,
    body_left: usize,
}

impl RequestScanner {
    fn feed(&mut self, mut data: &[u8], mut on_request: impl FnMut(usize)) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(data.len());
                self.body_left -= skip;
                data = &data[skip..];
                continue;
            }
            // Append up to the end of the head, if it is in this chunk.
            let before = self.head.len();
            self.head.extend_from_slice(data);
            let search_from = before.saturating_sub(3);
            let Some(end) = self.head[search_from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| search_from + p + 4)
            else {
                return;
            };
            data = &data[end - before..];
            let head = String::from_utf8_lossy(&self.head[..end]).into_owned();
            self.head.clear();
            let method = head.split(' ').next().unwrap_or("");
            on_request(METHODS.iter().position(|m| *m == method).unwrap_or(3));
            for line in head.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" {
                    self.body_left = value.trim().parse().unwrap_or(0);
                }
                assert!(
                    !(name == "transfer-encoding" && value.contains("chunked")),
                    "the counting proxy does not follow chunked request bodies"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn report(quick: bool, results: &[Measured]) {
    let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let mib = |kib: i64| format!("{:.1}", kib as f64 / 1024.0);
    let latency = |d: Duration| format!("{}ms", d.as_millis());

    println!();
    println!(
        "refresh-all --rate 0 --json, release binary ({})",
        if quick { "quick sizes" } else { "full sizes" }
    );
    println!();
    println!("| scenario | N | L | C | tail | wall s | bound s | ratio | REST/session | GET | PATCH | other | peak RSS MiB | recorded |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let s = &m.scenario;
        let other = m.rest.total() - m.rest.get() - m.rest.patch();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {} | {}/{} |",
            s.name,
            s.n,
            latency(s.latency),
            s.concurrency,
            if s.tail { "1/50 × 1s" } else { "off" },
            secs(m.wall),
            secs(s.bound()),
            m.wall.as_secs_f64() / s.bound().as_secs_f64(),
            m.rest.total() as f64 / s.n as f64,
            m.rest.get(),
            m.rest.patch(),
            other,
            mib(m.rss_kib),
            m.recorded,
            s.n,
        );
    }
    println!();
    println!(
        "Where the time and CPU went: CPU seconds during the run ({} cores × wall available; \
         irq = kernel interrupt work, mostly loopback TCP; others = anything else on the machine), \
         REST waits (to the first byte of the answer) as seen by the proxy:",
        cores()
    );
    println!();
    println!("| scenario | first call ms | max in flight | CPU binary | CPU postrust | CPU postgres | CPU bench | CPU irq | CPU others | CPU idle | GET wait ms | PATCH wait ms | REST conns | RSS ¼ ½ ¾ end MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for m in results {
        let ours = m.cpu_bin + m.cpu_postrust + m.cpu_postgres + m.cpu_bench + m.cpu_irq;
        let capacity = m.wall * cores();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.scenario.name,
            ms(m.first_call),
            m.max_in_flight,
            secs(m.cpu_bin),
            secs(m.cpu_postrust),
            secs(m.cpu_postgres),
            secs(m.cpu_bench),
            secs(m.cpu_irq),
            secs(m.cpu_machine.saturating_sub(ours)),
            secs(capacity.saturating_sub(m.cpu_machine)),
            ms(m.rest.mean_wait[0]),
            ms(m.rest.mean_wait[1]),
            m.rest.connections,
            m.rss_quarters.map(|q| format!("{q:.1}")).join(" "),
        );
    }
    for m in results.iter().filter(|m| !m.status_before.is_empty()) {
        let show = |t: &[Duration]| t.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ");
        println!();
        println!(
            "status --json on {} rows, wall ms: all due: {}; all fresh: {}",
            m.scenario.n,
            show(&m.status_before),
            show(&m.status_after)
        );
    }

    // Targets (they are stated for the full sizes).
    println!();
    if quick {
        // With N = 1,000 the last slow answers (up to 1 s) weigh on a 2 s
        // bound, and a 10× smaller N gives memory less time to settle.
        println!("(quick sizes: the timing and memory targets are meant for the full run)");
    }
    let mut missed = 0;
    let mut check = |ok: bool, what: String| {
        println!("{} {what}", if ok { "ok    " } else { "MISSED" });
        missed += usize::from(!ok);
    };
    let find = |k: Kind| results.iter().find(|m| m.scenario.kind == k);
    let ratio = |m: &Measured| m.wall.as_secs_f64() / m.scenario.bound().as_secs_f64();
    if let Some(m) = find(Kind::Base) {
        check(
            ratio(m) <= 1.15,
            format!("base: ratio {:.3} <= 1.15", ratio(m)),
        );
    }
    if let Some(m) = find(Kind::Tail) {
        check(
            ratio(m) <= 1.3,
            format!("tail: ratio {:.3} <= 1.3", ratio(m)),
        );
    }
    if let Some(big) = find(Kind::RssBig) {
        check(
            big.rss_kib <= 32 * 1024,
            format!(
                "rss: {} MiB at N={} <= 32 MiB",
                mib(big.rss_kib),
                big.scenario.n
            ),
        );
        if let Some(small) = find(Kind::RssSmall) {
            let growth = big.rss_kib as f64 / small.rss_kib as f64;
            check(
                growth <= 1.2,
                format!(
                    "rss: N={} / N={} = {growth:.2} <= 1.2 (same L and C)",
                    big.scenario.n, small.scenario.n
                ),
            );
        }
        let worst = big
            .status_before
            .iter()
            .chain(&big.status_after)
            .max()
            .copied()
            .unwrap_or_default();
        check(
            worst < Duration::from_millis(500),
            format!(
                "status on {} rows: worst {} ms < 500 ms",
                big.scenario.n,
                ms(worst)
            ),
        );
    }
    for m in results {
        let n = m.scenario.n;
        // Every refreshed session writes once; a conflict would show up as
        // an extra PATCH after a GET by id (none here: nobody else writes).
        check(
            m.rest.patch() <= m.refreshed,
            format!(
                "{}: {} PATCH <= {} refreshed",
                m.scenario.name,
                m.rest.patch(),
                m.refreshed
            ),
        );
        let bound = n / PAGE_SIZE + 2;
        check(
            m.rest.get() <= bound as u64,
            format!(
                "{}: {} GET <= N/{PAGE_SIZE} + 2 = {bound}",
                m.scenario.name,
                m.rest.get()
            ),
        );
    }
    println!();
    if missed == 0 {
        println!("all targets met");
    } else {
        println!("{missed} target(s) missed");
    }
}
