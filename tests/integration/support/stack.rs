//! A throwaway, Supabase-shaped stack that the tests start by themselves: one
//! PostgreSQL cluster per test process, and per test a schema of its own with
//! its own `postrust` (a PostgREST-compatible server) in front of it.
//!
//! ```ignore
//! let db = TestDb::new().await;
//! db.apply_migration("migrations/20261126000000_refresh_tracking.sql");
//! db.sql("insert into auth_sessions (user_email, aimharder_token) values ('a@b.c', 't')");
//! // point the app at db.rest_url() with db.service_key()
//! ```
//!
//! Nothing here is shared between tests except the cluster and its roles, so
//! tests run in parallel in one process without seeing each other's rows.
//!
//! Nothing outlives the test process either. Statics are never dropped, so the
//! cluster and every `postrust` are tied to the process through a *lifeline*:
//! a pipe whose write end only this process holds, read by a small `sh`
//! watchdog. However the process ends -- normally, by a panic, by Ctrl-C, by
//! SIGKILL -- the kernel closes the pipe, the watchdog's `read` returns, and
//! it stops the server and removes the temporary directory.
//!
//! Needs PostgreSQL's server binaries and `postrust`; `scripts/test-deps.sh`
//! installs both.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// The JWT secret every `postrust` of the stack is started with (HS256).
pub const JWT_SECRET: &str = "aimharder-refresh-test-jwt-secret-0123456789";

/// `{"role":"service_role","iss":"supabase"}` signed with [`JWT_SECRET`], no
/// `exp`: what a Supabase project's service key is. Its role has BYPASSRLS.
pub const SERVICE_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ.\
HVtf3587Z-YsZLHYihVpNlC-CtjEX-7SOeNT9D3yxBc";

/// `{"role":"anon","iss":"supabase"}` signed with [`JWT_SECRET`]: the public
/// key. Row level security leaves it no rows of `auth_sessions`.
pub const ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlIn0.\
F6NTwsXnmISrnYO-N7fIXEAmZZPEURpEhtKXte6Aap8";

/// The service key's claims signed with another secret
/// (`some-other-project-jwt-secret-9876543210abcd`): a key from the wrong
/// project, which the server must refuse.
pub const WRONG_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ.\
7v_1G7B7-9Zg6pkMI0oNeZyFThX8QwYEFXKRBLbdRFM";

/// The `postrust` release the tests are written against; `scripts/test-deps.sh`
/// installs exactly this one, and [`TestDb`] refuses any other.
pub const POSTRUST_VERSION: &str = "3.1.0";

const INSTALL_HINT: &str = "run scripts/test-deps.sh to install the test dependencies";

/// How long a server may take to come up before the test gives up on it.
/// Generous, because a loaded CI machine runs many tests at once.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Between two readiness probes. This is a poll interval, not a guess at how
/// long start-up takes: the probe decides when we go on.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------
// TestDb
// ---------------------------------------------------------------------------

/// One test's slice of the stack: a fresh schema holding `auth_sessions`,
/// served by a `postrust` of its own at [`TestDb::rest_url`].
///
/// Dropping it stops the `postrust`. The schema is left behind; the whole
/// cluster is thrown away when the test process exits.
pub struct TestDb {
    cluster: &'static Cluster,
    schema: String,
    /// The REST port, kept across restarts so `rest_url()` stays valid.
    port: AtomicU16,
    rest: Mutex<Option<RestServer>>,
    rest_start_time: Mutex<Duration>,
}

impl TestDb {
    /// Create a schema of its own with `auth_sessions` in it (without the
    /// app's tracking columns -- see [`TestDb::apply_migration`]) and start a
    /// `postrust` serving it. The first call in a process also starts the
    /// cluster.
    ///
    /// `async` because it is called from `#[tokio::test]`s. The waiting is
    /// done by blocking the calling thread: each tokio test has a runtime of
    /// its own, so that holds up nothing else.
    pub async fn new() -> TestDb {
        static NEXT_SCHEMA: AtomicUsize = AtomicUsize::new(1);

        let cluster = cluster();
        let schema = format!("test_{}", NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed));

        // One psql run for all of it: each one costs a process start.
        let setup = format!(
            "create schema {schema};\n\
             grant usage on schema {schema} to anon, authenticated, service_role;\n\
             -- As Supabase does for `public`: whatever a migration creates here\n\
             -- is usable through the API without grants of its own.\n\
             alter default privileges in schema {schema}\n\
             \x20 grant all on tables to anon, authenticated, service_role;\n\
             alter default privileges in schema {schema}\n\
             \x20 grant all on sequences to anon, authenticated, service_role;\n\
             alter default privileges in schema {schema}\n\
             \x20 grant all on functions to anon, authenticated, service_role;\n\
             set search_path to {schema};\n\
             {}",
            include_str!("fixtures/auth_sessions.sql")
        );
        cluster.psql(None, Input::Text(&setup));

        let db = TestDb {
            cluster,
            schema,
            port: AtomicU16::new(free_port()),
            rest: Mutex::new(None),
            rest_start_time: Mutex::new(Duration::ZERO),
        };
        db.restart_rest();
        db
    }

    /// The REST base URL, as the app expects it: `http://127.0.0.1:PORT/api`.
    /// Stays the same across [`TestDb::stop_rest`] and restarts -- unless
    /// another process took the port meanwhile, so read it again after one.
    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port.load(Ordering::SeqCst))
    }

    /// The `service_role` key ([`SERVICE_KEY`]).
    pub fn service_key(&self) -> &str {
        SERVICE_KEY
    }

    /// The `anon` key ([`ANON_KEY`]).
    pub fn anon_key(&self) -> &str {
        ANON_KEY
    }

    /// A service key signed with the wrong secret ([`WRONG_KEY`]).
    pub fn wrong_key(&self) -> &str {
        WRONG_KEY
    }

    /// The schema this test's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Run SQL (any number of statements) as the superuser with `search_path`
    /// set to this test's schema, so `auth_sessions` means this test's table.
    /// Returns what `psql -At` prints, trimmed; panics with psql's error.
    pub fn sql(&self, sql: &str) -> String {
        self.cluster.psql(Some(&self.schema), Input::Text(sql))
    }

    /// SQL to run later from elsewhere (a simulated server's hook), against
    /// this test's schema.
    pub fn sql_hook(&self, sql: &str) -> std::sync::Arc<dyn Fn() + Send + Sync> {
        let (cluster, schema, sql) = (self.cluster, self.schema.clone(), sql.to_string());
        std::sync::Arc::new(move || {
            cluster.psql(Some(&schema), Input::Text(&sql));
        })
    }

    /// Run a query and return its rows as a JSON array of objects, one key per
    /// column, with PostgreSQL's own JSON rendering of each value (so a
    /// `timestamptz` reads as `2026-11-26T14:57:06.521045+00:00`).
    pub fn query_json(&self, sql: &str) -> serde_json::Value {
        let query = sql.trim().trim_end_matches(';');
        let out = self.sql(&format!(
            "select coalesce(json_agg(t), '[]'::json) from (\n{query}\n) t"
        ));
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("query_json: psql printed {out:?}, not JSON: {e}"))
    }

    /// Run a SQL file against this test's schema, as the superuser, the way a
    /// migration is run on Supabase: an unqualified `auth_sessions` in it is
    /// this test's table. A relative path is taken from the crate root.
    ///
    /// `postrust` reads the database's shape once, at start-up, so a running
    /// one is restarted (same port) to see what the migration changed; the
    /// return means the new shape is being served.
    pub fn apply_migration(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let path = if path.is_relative() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
        } else {
            path.to_path_buf()
        };
        assert!(
            path.is_file(),
            "apply_migration: no such file: {}",
            path.display()
        );
        self.cluster.psql(Some(&self.schema), Input::File(&path));

        let running = self.rest.lock().unwrap().is_some();
        if running {
            self.restart_rest();
        }
    }

    /// Stop this test's `postrust`, so the REST URL refuses connections: an
    /// unreachable Supabase. [`TestDb::restart_rest`] brings it back.
    pub fn stop_rest(&mut self) {
        // Dropping the server stops it and waits for it to be gone.
        self.rest.get_mut().unwrap().take();
    }

    /// Start this test's `postrust`, stopping the running one first if there
    /// is one, and wait until it answers. Also picks up schema changes made
    /// with [`TestDb::sql`] since it last started.
    pub fn restart_rest(&self) {
        let mut rest = self.rest.lock().unwrap();
        rest.take();
        let started = Instant::now();
        *rest = Some(self.spawn_rest());
        *self.rest_start_time.lock().unwrap() = started.elapsed();
    }

    /// How long the last `postrust` start took, until it answered.
    pub fn rest_start_time(&self) -> Duration {
        *self.rest_start_time.lock().unwrap()
    }

    /// Start `postrust` for this schema on our port. Should the port have been
    /// taken meanwhile by something else, move to another one.
    fn spawn_rest(&self) -> RestServer {
        let log_path = self
            .cluster
            .dir
            .join(format!("postrust-{}.log", self.schema));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = self.port.load(Ordering::SeqCst);
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("cannot open the postrust log");
            let mut command = Command::new("/bin/sh");
            command
                .args(["-c", LIFELINE_SH, "sh"])
                .arg(&self.cluster.postrust)
                // Only what we set: a developer's RUST_LOG or PGRST_* must not
                // reconfigure the server under the tests.
                .env_clear()
                .env(
                    "DATABASE_URL",
                    format!(
                        "postgres://authenticator@127.0.0.1:{}/postgres",
                        self.cluster.port
                    ),
                )
                .env("PGRST_DB_SCHEMAS", &self.schema)
                .env("PGRST_DB_ANON_ROLE", "anon")
                .env("PGRST_JWT_SECRET", JWT_SECRET)
                .env("PGRST_SERVER_HOST", "127.0.0.1")
                .env("PGRST_SERVER_PORT", port.to_string())
                // Small: the cluster's connections are shared by every test.
                .env("PGRST_DB_POOL", "4")
                // Database errors in PostgreSQL's own words (code 42703, its
                // message, ...), as PostgREST and so Supabase answer them;
                // postrust otherwise says only {"code":"PGRST504",
                // "message":"Database error"}.
                .env("PGRST_DB_ERRORS_VERBATIM", "true")
                .env("PGRST_LOG_LEVEL", "warn");
            let (wrapper, lifeline) = spawn_with_lifeline(command, log);
            let mut server = RestServer {
                wrapper,
                lifeline: Some(lifeline),
            };

            match wait_for_postrust(&mut server.wrapper, port) {
                Ok(()) => return server,
                Err(exited) => {
                    drop(server);
                    let log = read_log(&log_path);
                    if exited && log.contains("Address already in use") && attempts < 5 {
                        self.port.store(free_port(), Ordering::SeqCst);
                        continue;
                    }
                    panic!(
                        "postrust for schema {} did not come up on port {port} \
                         ({}); its log ({}):\n{log}",
                        self.schema,
                        if exited { "it exited" } else { "timed out" },
                        log_path.display(),
                    );
                }
            }
        }
    }
}

/// A running `postrust` and the lifeline that keeps it running.
struct RestServer {
    wrapper: Child,
    lifeline: Option<ChildStdin>,
}

impl Drop for RestServer {
    fn drop(&mut self) {
        // Closing the lifeline is what stops the server (see LIFELINE_SH);
        // waiting for the wrapper means the port is free when we return.
        drop(self.lifeline.take());
        let _ = self.wrapper.wait();
    }
}

/// Wait until `postrust` answers on `port`. `Err(true)` if it exited,
/// `Err(false)` on timeout.
///
/// `postrust` connects to the database and loads the schema before it binds
/// its port, so the first answer means it is ready. `/_/health` also says
/// which version answered, which catches a wrong install (`postrust` has no
/// `--version`) and most servers that could have taken the port.
fn wait_for_postrust(wrapper: &mut Child, port: u16) -> Result<(), bool> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if wrapper
            .try_wait()
            .expect("cannot poll the postrust wrapper")
            .is_some()
        {
            return Err(true);
        }
        if let Some(response) = http_get(port, "/_/health") {
            // `{"status":"ok","version":"3.1.0"}`
            let version = response
                .split_once("\"version\":\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(version, _)| version);
            match version {
                Some(POSTRUST_VERSION) => return Ok(()),
                // Our server failing to bind exits right after; let the
                // next turn of the loop see that.
                _ if wrapper.try_wait().ok().flatten().is_some() => return Err(true),
                other => panic!(
                    "port {port} answered as postrust {other:?}, expected \
                     {POSTRUST_VERSION}; {INSTALL_HINT}.\n{response}"
                ),
            }
        }
        if Instant::now() > deadline {
            return Err(false);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A bare HTTP/1.1 GET, enough for a readiness probe without pulling an async
/// client into blocking code. `None` when nothing listens yet.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

/// The PostgreSQL cluster of this test process.
struct Cluster {
    /// Temporary directory holding the data directory, the unix socket and
    /// the server logs; the watchdog removes it when the process exits.
    dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    bin: PathBuf,
    postrust: PathBuf,
    start_time: Duration,
    watchdog: Mutex<Child>,
    /// Never written to, and never closed while the process lives: the
    /// kernel closes it when the process ends, which sets the watchdog off.
    /// (If the start panics, unwinding drops it, which cleans up at once.)
    lifeline: Mutex<ChildStdin>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster, started on first use. A failed start panics in the test that
/// asked, and the next test tries again.
fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// How long this process's cluster took to start (starting it if needed).
pub fn cluster_start_time() -> Duration {
    cluster().start_time
}

/// Roles as a Supabase project has them. `authenticator` is what `postrust`
/// logs in as; it switches to the role a key names, so it must be granted
/// them, and NOINHERIT keeps it from using their rights without switching.
const CLUSTER_SETUP_SQL: &str = "
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
";

impl Cluster {
    fn start() -> Cluster {
        let started = Instant::now();
        let bin = find_pg_bin();
        let postrust = find_postrust();
        let owner = ServerUser::detect();

        let dir = tempfile::Builder::new()
            .prefix("aimharder-stack-")
            .tempdir()
            .expect("cannot create a temporary directory")
            .keep();
        let data = dir.join("data");
        let socket_dir = dir.join("sock");

        // The watchdog goes first, so that whatever fails below leaves nothing
        // behind: it removes `dir` at exit, and stops the server if one runs.
        let mut stop = owner.command(bin.join("pg_ctl"), &dir);
        stop.args([OsStr::new("-D"), data.as_os_str()])
            .args(["-m", "immediate", "-w", "stop"]);
        let mut watchdog = Command::new("/bin/sh");
        watchdog
            .current_dir("/")
            .args(["-c", CLUSTER_WATCHDOG_SH, "sh"])
            .arg(&dir)
            .arg(&data)
            .arg(stop.get_program())
            .args(stop.get_args());
        let (watchdog, lifeline) =
            spawn_with_lifeline(watchdog, File::create("/dev/null").unwrap());

        fs::create_dir(&socket_dir).expect("cannot create the socket directory");
        owner.give(&dir);
        owner.give(&socket_dir);

        let mut initdb = owner.command(bin.join("initdb"), &dir);
        initdb
            .args([OsStr::new("-D"), data.as_os_str()])
            // -N: no fsync; the cluster is gone at the end of the run anyway.
            .args([
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-N",
            ]);
        run(&mut initdb, "initdb");

        // Appended last, so these win over initdb's defaults.
        let settings = format!(
            "\n# aimharder-refresh test stack\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             # Every test's postrust holds a few connections.\n\
             max_connections = 400\n\
             shared_buffers = 64MB\n\
             # Durability buys nothing for a cluster thrown away after the run.\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             # Timestamps read back the same wherever the tests run.\n\
             timezone = 'UTC'\n\
             log_timezone = 'UTC'\n",
            socket_dir.display()
        );
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .expect("cannot write postgresql.conf");

        let log = dir.join("postgres.log");
        let mut attempts = 0;
        let port = loop {
            attempts += 1;
            let port = free_port();
            let mut pg_ctl = owner.command(bin.join("pg_ctl"), &dir);
            pg_ctl
                .args([
                    OsStr::new("-D"),
                    data.as_os_str(),
                    OsStr::new("-l"),
                    log.as_os_str(),
                ])
                .args(["-o", &format!("-p {port}")])
                .args(["-w", "-t", &STARTUP_TIMEOUT.as_secs().to_string(), "start"]);
            let output = pg_ctl.output().expect("cannot run pg_ctl");
            if output.status.success() {
                break port;
            }
            let log = read_log(&log);
            if log.contains("Address already in use") && attempts < 5 {
                continue;
            }
            panic!(
                "PostgreSQL did not start: {}{}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        };

        let cluster = Cluster {
            dir,
            socket_dir,
            port,
            bin,
            postrust,
            start_time: Duration::ZERO,
            watchdog: Mutex::new(watchdog),
            lifeline: Mutex::new(lifeline),
        };
        cluster.psql(None, Input::Text(CLUSTER_SETUP_SQL));
        Cluster {
            start_time: started.elapsed(),
            ..cluster
        }
    }

    /// Run SQL through psql as the superuser, over the unix socket, with
    /// `search_path` set to `schema` when given. Panics with psql's stderr.
    fn psql(&self, schema: Option<&str>, input: Input) -> String {
        let mut command = Command::new(self.bin.join("psql"));
        command
            // -X: no ~/.psqlrc; -q: no command tags in the output.
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .env_remove("PGOPTIONS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(schema) = schema {
            command.env("PGOPTIONS", format!("-c search_path={schema},public"));
        }
        let text = match input {
            Input::Text(sql) => Some(sql.to_owned()),
            Input::File(path) => {
                command.arg("-f").arg(path);
                None
            }
        };
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.join("psql").display()));
        // Written from a thread: psql may fill its stdout pipe before it has
        // read all of a long script, and we only read stdout afterwards.
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            if let Some(text) = text {
                let _ = stdin.write_all(text.as_bytes());
            }
        });
        let output = child.wait_with_output().expect("cannot wait for psql");
        writer.join().unwrap();
        if !output.status.success() {
            let what = match input {
                Input::Text(sql) => sql.to_owned(),
                Input::File(path) => format!("file {}", path.display()),
            };
            panic!(
                "psql failed ({}):\n{}\n--- while running:\n{what}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end(),
            );
        }
        String::from_utf8(output.stdout)
            .expect("psql printed non-UTF-8")
            .trim()
            .to_owned()
    }
}

#[derive(Clone, Copy)]
enum Input<'a> {
    Text(&'a str),
    File(&'a Path),
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// Runs `"$@"` and stops it with SIGTERM once stdin reaches end of file; exits
/// with the server's status once the server is gone, whichever way it went.
///
/// The server gets neither stdin nor the lifeline (fd 3), so only the
/// background subshell is waiting on it.
const LIFELINE_SH: &str = r#"
exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
( read -r _ <&3; kill -TERM "$server" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// The cluster's watchdog. PostgreSQL runs detached (pg_ctl daemonizes it),
/// so this does not wait on it: it waits for end of file, then stops the
/// server if there is one ($3... is the pg_ctl stop command) and removes the
/// temporary directory ($1; the data directory is $2).
const CLUSTER_WATCHDOG_SH: &str = r#"
dir=$1
data=$2
shift 2
read -r _ || :
if [ -f "$data/postmaster.pid" ]; then "$@" >/dev/null 2>&1 || :; fi
rm -rf "$dir"
"#;

/// Spawn `command` with stdin a pipe we keep the write end of, and output to
/// `log`.
///
/// In a process group of its own, so that a Ctrl-C in the terminal goes to
/// the test process only: the watchdog has to outlive it to clean up.
fn spawn_with_lifeline(mut command: Command, log: File) -> (Child, ChildStdin) {
    let err = log.try_clone().expect("cannot duplicate a log file handle");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
    let lifeline = child.stdin.take().unwrap();
    (child, lifeline)
}

/// Run to completion, panicking with the output on failure.
fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; {INSTALL_HINT}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// A port nothing listens on right now. Another process may take it before
/// the server binds it; the callers retry on "Address already in use".
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("cannot find a free port")
        .port()
}

/// Who runs the PostgreSQL server binaries. `initdb` and `postgres` refuse to
/// run as root, so when the tests do, they run as the `postgres` OS user that
/// the Debian package creates.
enum ServerUser {
    Me,
    Postgres { uid: u32, gid: u32 },
}

impl ServerUser {
    fn detect() -> ServerUser {
        // /proc/self belongs to the effective user; no libc call needed.
        let root = fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if !root {
            return ServerUser::Me;
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "postgres"]).output().ok();
            out.filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "the tests run as root, so PostgreSQL must run as the \
                         `postgres` OS user, which does not exist; {INSTALL_HINT}"
                    )
                })
        };
        ServerUser::Postgres {
            uid: id("-u"),
            gid: id("-g"),
        }
    }

    /// A command running `program` as this user, from `cwd` (the user must be
    /// able to enter the directory it starts in).
    fn command(&self, program: PathBuf, cwd: &Path) -> Command {
        let mut command = match self {
            ServerUser::Me => Command::new(program),
            ServerUser::Postgres { uid, gid } => {
                // setpriv execs the program itself, unlike su/runuser which
                // keep a parent process around.
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--init-groups", "--"])
                    .arg(program);
                c
            }
        };
        command.current_dir(cwd);
        command
    }

    fn give(&self, path: &Path) {
        if let ServerUser::Postgres { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
        }
    }
}

// ---------------------------------------------------------------------------
// Finding the binaries
// ---------------------------------------------------------------------------

/// `$PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's
/// layout), else wherever `initdb` is on the PATH.
fn find_pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "PG_BIN={} has no initdb in it; {INSTALL_HINT}",
            dir.display()
        );
        return dir;
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    newest
        .or_else(|| on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)))
        .unwrap_or_else(|| panic!("PostgreSQL server binaries (initdb) not found; {INSTALL_HINT}"))
}

/// `$POSTRUST_BIN`, else cargo's bin directory, else the PATH.
fn find_postrust() -> PathBuf {
    if let Some(path) = std::env::var_os("POSTRUST_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "POSTRUST_BIN={} does not exist; {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo"));
    cargo_home
        .into_iter()
        .chain(home)
        .map(|dir| dir.join("bin").join("postrust"))
        .find(|path| path.is_file())
        .or_else(|| on_path("postrust"))
        .unwrap_or_else(|| panic!("postrust {POSTRUST_VERSION} not found; {INSTALL_HINT}"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
