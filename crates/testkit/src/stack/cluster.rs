//! The PostgreSQL cluster of the process: started on first use, with the
//! roles of a Supabase project, stopped and removed by its watchdog when the
//! process ends.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::host::{find_pg_bin, find_postrust, ServerUser};
use super::process::{free_port, read_log, run, spawn_with_lifeline, CLUSTER_WATCHDOG_SH};
use super::STARTUP_TIMEOUT;

/// The PostgreSQL cluster of this test process.
pub(super) struct Cluster {
    /// Temporary directory holding the data directory, the unix socket and
    /// the server logs; the watchdog removes it when the process exits.
    pub(super) dir: PathBuf,
    socket_dir: PathBuf,
    pub(super) port: u16,
    bin: PathBuf,
    pub(super) postrust: PathBuf,
    start_time: Duration,
    /// Kept, never waited for: it outlives this process to clean up.
    #[allow(dead_code)]
    watchdog: Mutex<Child>,
    /// Never written to, and never closed while the process lives: the
    /// kernel closes it when the process ends, which sets the watchdog off.
    /// (If the start panics, unwinding drops it, which cleans up at once.)
    #[allow(dead_code)]
    lifeline: Mutex<ChildStdin>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster, started on first use. A failed start panics in the test that
/// asked, and the next test tries again.
pub(super) fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// How long this process's cluster took to start (starting it if needed).
pub fn cluster_start_time() -> Duration {
    cluster().start_time
}

/// Roles as a Supabase project has them. `authenticator` is what `postrust`
/// logs in as; it switches to the role a key names, so it must be granted
/// them, and NOINHERIT keeps it from using their rights without switching.
/// Functions the superuser creates are executable by no one else unless
/// granted, as on Supabase since 2026-10-30 (PostgreSQL's own default
/// grants EXECUTE to PUBLIC).
const CLUSTER_SETUP_SQL: &str = "
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
alter default privileges for role postgres revoke execute on functions from public;
-- The same, with every plan its sessions execute written to the server
-- log (auto_explain, statements inside functions too): what a test that
-- checks the tool's queries use indexes serves postrust with.
create role authenticator_explain login noinherit;
grant anon, authenticated, service_role to authenticator_explain;
alter role authenticator_explain set session_preload_libraries = 'auto_explain';
alter role authenticator_explain set auto_explain.log_min_duration = 0;
alter role authenticator_explain set auto_explain.log_nested_statements = on;
alter role authenticator_explain set auto_explain.log_verbose = on;
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

    /// The server log: everything PostgreSQL logged so far, every test's.
    pub(super) fn log(&self) -> String {
        read_log(&self.dir.join("postgres.log"))
    }

    /// Run SQL through psql as the superuser, over the unix socket, with
    /// `search_path` set to `schema` when given. Panics with psql's stderr.
    pub(super) fn psql(&self, schema: Option<&str>, input: Input) -> String {
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
pub(super) enum Input<'a> {
    Text(&'a str),
    File(&'a Path),
}
