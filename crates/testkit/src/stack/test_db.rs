//! One test's slice of the stack: a schema and a `postrust` of its own.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cluster::{cluster, Cluster, Input};
use super::keys::{ANON_KEY, JWT_SECRET, POSTRUST_VERSION, SERVICE_KEY, WRONG_KEY};
use super::process::{free_port, read_log, spawn_with_lifeline, LIFELINE_SH};
use super::{workspace_root, INSTALL_HINT, POLL_INTERVAL, STARTUP_TIMEOUT};

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
    /// The role `postrust` logs in as.
    login: &'static str,
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
        Self::with_login("authenticator")
    }

    /// [`TestDb::new`], whose `postrust` has the plan of every statement it
    /// runs (and of every statement inside the functions it calls) written
    /// to the server log: see [`TestDb::plans`].
    pub async fn explaining() -> TestDb {
        Self::with_login("authenticator_explain")
    }

    /// The plans the server logged for this test's `postrust`, oldest
    /// first, each with its query text (auto_explain's entries that name
    /// this test's schema).
    pub fn plans(&self) -> Vec<String> {
        let log = self.cluster.log();
        let mut entries: Vec<String> = Vec::new();
        for line in log.lines() {
            let continues = line.starts_with('\t') || line.starts_with(' ');
            if continues {
                if let Some(last) = entries.last_mut() {
                    last.push('\n');
                    last.push_str(line);
                }
            } else if line.contains("LOG:  duration:") && line.contains("plan:") {
                entries.push(line.to_string());
            } else {
                entries.push(String::new());
            }
        }
        let mine = format!("{}.", self.schema);
        entries
            .into_iter()
            .filter(|e| e.contains("plan:") && e.contains(&mine))
            .collect()
    }

    fn with_login(login: &'static str) -> TestDb {
        static NEXT_SCHEMA: AtomicUsize = AtomicUsize::new(1);

        let cluster = cluster();
        let schema = format!("test_{}", NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed));

        // One psql run for all of it: each one costs a process start.
        // As Supabase has it since 2026-10-30: the API roles may use the
        // schema, and nothing a migration creates in it is granted to them
        // (no default privileges here, and the cluster's default EXECUTE
        // for PUBLIC is revoked): a migration grants what it needs.
        let setup = format!(
            "create schema {schema};\n\
             grant usage on schema {schema} to anon, authenticated, service_role;\n\
             set search_path to {schema};\n\
             {}",
            include_str!("../../fixtures/auth_sessions.sql")
        );
        cluster.psql(None, Input::Text(&setup));

        let db = TestDb {
            cluster,
            schema,
            port: AtomicU16::new(free_port()),
            rest: Mutex::new(None),
            rest_start_time: Mutex::new(Duration::ZERO),
            login,
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
    /// this test's table. A relative path is taken from the workspace root
    /// ([`super::workspace_root`]), so `migrations/…` works from any package.
    ///
    /// `postrust` reads the database's shape once, at start-up, so a running
    /// one is restarted (same port) to see what the migration changed; the
    /// return means the new shape is being served.
    pub fn apply_migration(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let path = if path.is_relative() {
            workspace_root().join(path)
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

    /// Every file of the workspace's `migrations/`, in file-name order, as
    /// an operator applies them; the REST server is restarted once after.
    pub fn apply_migrations(&self) {
        let dir = workspace_root().join("migrations");
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("apply_migrations: {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no migrations in {}", dir.display());
        for file in &files {
            self.cluster.psql(Some(&self.schema), Input::File(file));
        }
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
                        "postgres://{}@127.0.0.1:{}/postgres",
                        self.login, self.cluster.port
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
