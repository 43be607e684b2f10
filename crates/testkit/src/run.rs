//! Drives the real binary against a test stack, and seeds rows.

use std::process::Stdio;

use serde_json::Value;

use crate::aimharder::FakeAimHarder;
use crate::gateway::Gateway;
use crate::stack::TestDb;

/// The binary under test. Cargo tells where it built `aimharder-refresh` only
/// to the root package's own integration tests and benches, at compile time
/// (`CARGO_BIN_EXE_aimharder-refresh`), so they make the value, once:
///
/// ```ignore
/// pub const BIN: Bin = Bin::new(env!("CARGO_BIN_EXE_aimharder-refresh"));
///
/// let done = BIN.run(&db, &aim).arg("refresh-all").output().await;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Bin {
    path: &'static str,
}

impl Bin {
    pub const fn new(path: &'static str) -> Self {
        Self { path }
    }

    /// Where the binary is.
    pub fn path(self) -> &'static str {
        self.path
    }

    /// A run with nothing set: no arguments, an empty environment.
    pub fn bare(self) -> Run {
        let dir = tempfile::tempdir().unwrap();
        // A home of its own, as every login has: the journal's default
        // folder is under it.
        let home = dir.path().to_string_lossy().into_owned();
        Run {
            bin: self,
            args: vec![],
            envs: vec![("HOME".into(), home)],
            dir,
            subdir: String::new(),
        }
    }

    /// Settings for `db` and `aim` through the environment, as an operator would.
    pub fn run(self, db: &TestDb, aim: &FakeAimHarder) -> Run {
        self.bare()
            .env("SUPABASE_REST_URL", &db.rest_url())
            .env("SUPABASE_SERVICE_ROLE_KEY", db.service_key())
            .env("AIMHARDER_BASE_URL", &aim.url())
    }

    /// Settings for a Supabase project behind `gw`, as a project set up
    /// today hands them out: its URL and its secret key.
    pub fn via_gateway(self, gw: &Gateway, aim: &FakeAimHarder) -> Run {
        self.bare()
            .env("SUPABASE_URL", &gw.supabase_url())
            .env("SUPABASE_SECRET_KEY", gw.secret_key())
            .env("AIMHARDER_BASE_URL", &aim.url())
    }
}

/// One invocation of the binary with a clean environment: only what the
/// test sets (and `HOME`, the run's own folder), run from an empty folder so
/// no `.env` is picked up. Made by
/// [`Bin::bare`], [`Bin::run`] or [`Bin::via_gateway`].
pub struct Run {
    bin: Bin,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dir: tempfile::TempDir,
    /// Where the binary runs, below `dir` (empty: `dir` itself).
    subdir: String,
}

pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run's working folder, kept for files it wrote.
    pub dir: tempfile::TempDir,
}

impl Done {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The session object of `id` in a `refresh-all --json` document.
    pub fn session(&self, id: &str) -> Value {
        let doc = self.json();
        doc["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("session {id} not in {doc}"))
    }

    /// The ids of the `sessions` array of a `--json` document, sorted.
    pub fn session_ids(&self) -> Vec<String> {
        let doc = self.json();
        let mut ids: Vec<String> = doc["sessions"]
            .as_array()
            .unwrap_or_else(|| panic!("no sessions array in {doc}"))
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    }
}

impl Run {
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn without_env(mut self, key: &str) -> Self {
        self.envs.retain(|(k, _)| k != key);
        self
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Run in `name`, a folder made below the run's own folder (which then
    /// is its parent: where a stray `.env` could lie).
    pub fn in_subdir(mut self, name: &str) -> Self {
        std::fs::create_dir_all(self.dir.path().join(name)).unwrap();
        self.subdir = name.to_string();
        self
    }

    /// Starts the binary as a child a test can signal (stdout and stderr
    /// piped; stderr readable while it runs).
    pub fn spawn(self) -> Running {
        let mut child = tokio::process::Command::new(self.bin.path)
            .args(&self.args)
            .env_clear()
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path().join(&self.subdir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let log = std::sync::Arc::new((
            std::sync::Mutex::new(String::new()),
            tokio::sync::Notify::new(),
        ));
        let stderr = child.stderr.take().expect("piped stderr");
        let reader = {
            let log = log.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut text = log.0.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                    log.1.notify_waiters();
                }
                log.1.notify_waiters();
            })
        };
        Running {
            child,
            log,
            reader,
            dir: self.dir,
        }
    }

    pub async fn output(self) -> Done {
        let out = tokio::process::Command::new(self.bin.path)
            .args(&self.args)
            .env_clear()
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path().join(&self.subdir))
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run the binary");
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
        }
    }
}

/// A binary started by [`Run::spawn`].
pub struct Running {
    child: tokio::process::Child,
    log: std::sync::Arc<(std::sync::Mutex<String>, tokio::sync::Notify)>,
    reader: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Running {
    /// Closes the child's stdout, as a reader that has read enough does
    /// (`| head -1`).
    pub fn close_stdout(&mut self) {
        drop(self.child.stdout.take());
    }

    /// Sends `signal` (`libc::SIGTERM`, ...) to the child.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("still running") as i32;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, signal) };
    }

    /// Returns once stderr has a line containing `needle` (or stderr
    /// closed: the caller's assertions then tell).
    pub async fn wait_for_log(&self, needle: &str) {
        loop {
            let notified = self.log.1.notified();
            if self.log.0.lock().unwrap().contains(needle) || self.reader.is_finished() {
                return;
            }
            notified.await;
        }
    }

    /// Waits for the exit.
    pub async fn finish(self) -> Done {
        let Running {
            child,
            log,
            reader,
            dir,
        } = self;
        let out = child.wait_with_output().await.expect("wait for the binary");
        let _ = reader.await;
        let stderr = log.0.lock().unwrap().clone();
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
            dir,
        }
    }
}

/// A session row to insert; timestamps are SQL expressions.
pub struct Seed {
    email: String,
    token: String,
    cookies: String,
    fingerprint: Option<String>,
    created_at: String,
    last_refresh: Option<String>,
    refresh_count: i64,
    error: Option<String>,
    enabled: bool,
}

impl Seed {
    pub fn new(email: &str, token: &str) -> Self {
        Self {
            email: email.into(),
            token: token.into(),
            cookies: r#"[{"name":"PHPSESSID","value":"php-secret-1"},{"name":"amhrdrauth","value":"auth-secret-1"}]"#
                .into(),
            fingerprint: None,
            created_at: "now() - interval '30 days'".into(),
            last_refresh: Some("now() - interval '7 hours'".into()),
            refresh_count: 3,
            error: None,
            enabled: true,
        }
    }

    pub fn cookies(mut self, json: &str) -> Self {
        self.cookies = json.into();
        self
    }

    /// Cookies naming their own session (the simulated AimHarder's
    /// `PHPSESSID`), which whoami scripts and the liveness model key on.
    pub fn session(self, name: &str) -> Self {
        self.cookies(&format!(
            r#"[{{"name":"PHPSESSID","value":"{name}"}},{{"name":"amhrdrauth","value":"auth-{name}"}}]"#
        ))
    }

    pub fn fingerprint(mut self, fp: &str) -> Self {
        self.fingerprint = Some(fp.into());
        self
    }

    pub fn never_refreshed(mut self, created: &str) -> Self {
        self.last_refresh = None;
        self.created_at = created.into();
        self
    }

    pub fn refreshed(mut self, when: &str) -> Self {
        self.last_refresh = Some(when.into());
        self
    }

    pub fn count(mut self, n: i64) -> Self {
        self.refresh_count = n;
        self
    }

    pub fn error(mut self, text: &str) -> Self {
        self.error = Some(text.into());
        self
    }

    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Inserts the row and returns its id.
    pub fn insert(self, db: &TestDb) -> String {
        self.insert_into(db, true)
    }

    /// For a table without the optional fingerprint column.
    pub fn insert_without_fingerprint(self, db: &TestDb) -> String {
        self.insert_into(db, false)
    }

    fn insert_into(self, db: &TestDb, with_fingerprint: bool) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let cookies = if self.cookies == "NULL" {
            "NULL".to_string()
        } else {
            format!("{}::jsonb", q(&self.cookies))
        };
        let (fp_column, fp_value) = if with_fingerprint {
            (
                ", fingerprint",
                format!(", {}", self.fingerprint.as_deref().map_or("NULL".into(), q)),
            )
        } else {
            ("", String::new())
        };
        db.sql(&format!(
            "INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies{fp_column}, created_at, \
             last_refresh_date, refresh_count, last_refresh_error, auto_refresh_enabled) \
             VALUES ({}, {}, {cookies}{fp_value}, {}, {}, {}, {}, {}) RETURNING id",
            q(&self.email),
            q(&self.token),
            self.created_at,
            self.last_refresh.as_deref().unwrap_or("NULL"),
            self.refresh_count,
            self.error.as_deref().map_or("NULL".into(), q),
            self.enabled,
        ))
        .lines()
        .next()
        .unwrap()
        .to_string()
    }
}

/// The row of `id` as JSON.
pub fn row(db: &TestDb, id: &str) -> Value {
    let rows = db.query_json(&format!("SELECT * FROM auth_sessions WHERE id = '{id}'"));
    rows[0].clone()
}
