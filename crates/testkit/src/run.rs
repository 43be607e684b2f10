//! Drives the real binary against a test stack, and checks the exit code
//! a test expects of it ([`Run::exits`]).

use std::panic::Location;
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
/// let done = BIN.run(&db, &aim).refresh_all_json().succeeds().output().await;
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
            expected: None,
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
    expected: Option<Expected>,
}

/// The exit code a test expects, and the line of the test that said so:
/// checked when the run ends, which is in an async fn, where
/// `#[track_caller]` no longer tells the test's line.
#[derive(Clone, Copy, Debug)]
struct Expected {
    code: i32,
    at: &'static Location<'static>,
}

/// A finished run: its exit code (-1 if a signal ended it), what it
/// printed, and its folder.
pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run's working folder, kept for files it wrote.
    pub dir: tempfile::TempDir,
    /// What the binary was given, for the failure messages.
    invocation: String,
}

impl Done {
    /// The check [`Run::exits`] asked for.
    fn expect(self, expected: Option<Expected>) -> Self {
        let Some(expected) = expected else {
            return self;
        };
        if self.code != expected.code {
            panic!(
                "{}: expected exit code {}, got {}\n{}\n--- stdout\n{}\n--- stderr\n{}",
                expected.at, expected.code, self.code, self.invocation, self.stdout, self.stderr
            );
        }
        self
    }

    /// Stdout as JSON (panics, showing both streams, if it is not).
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
    /// Expects the run to exit with `code`: [`Run::output`] and
    /// [`Running::finish`] panic otherwise, naming this call's line, the
    /// arguments and environment, both codes, stdout and stderr.
    #[track_caller]
    pub fn exits(mut self, code: i32) -> Self {
        self.expected = Some(Expected {
            code,
            at: Location::caller(),
        });
        self
    }

    /// Expects the run to exit 0 (see [`Run::exits`]).
    #[track_caller]
    pub fn succeeds(self) -> Self {
        self.exits(0)
    }

    /// `refresh-all --rate 0`: every due session, unpaced.
    pub fn refresh_all(self) -> Self {
        self.args(&["refresh-all", "--rate", "0"])
    }

    /// `refresh-all --json --rate 0`: every due session, unpaced, as a
    /// document ([`Done::json`], [`Done::session`]).
    pub fn refresh_all_json(self) -> Self {
        self.args(&["refresh-all", "--json", "--rate", "0"])
    }

    /// `refresh-one --id <id>`.
    pub fn refresh_one(self, id: &str) -> Self {
        self.args(&["refresh-one", "--id", id])
    }

    /// `refresh-one --id <id> --json`.
    pub fn refresh_one_json(self, id: &str) -> Self {
        self.args(&["refresh-one", "--id", id, "--json"])
    }

    /// `status --json`.
    pub fn status_json(self) -> Self {
        self.args(&["status", "--json"])
    }

    /// `probe --all --rate 0`: every session asked whoami, unpaced.
    pub fn probe_all(self) -> Self {
        self.args(&["probe", "--all", "--rate", "0"])
    }

    /// `probe --all --rate 0 --json`.
    pub fn probe_all_json(self) -> Self {
        self.args(&["probe", "--all", "--rate", "0", "--json"])
    }

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

    /// The command line and environment, as a failure message shows them.
    fn invocation(&self) -> String {
        let mut envs: Vec<String> = self.envs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        envs.sort();
        format!(
            "run: aimharder-refresh {}\nenv: {}",
            self.args.join(" "),
            envs.join(" ")
        )
    }

    /// Starts the binary as a child a test can signal (stdout and stderr
    /// piped; stderr readable while it runs).
    pub fn spawn(self) -> Running {
        let invocation = self.invocation();
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
            invocation,
            expected: self.expected,
        }
    }

    /// Runs the binary to its end (checking the code [`Run::exits`] set).
    pub async fn output(self) -> Done {
        let invocation = self.invocation();
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
            invocation,
        }
        .expect(self.expected)
    }
}

/// A binary started by [`Run::spawn`].
pub struct Running {
    child: tokio::process::Child,
    log: std::sync::Arc<(std::sync::Mutex<String>, tokio::sync::Notify)>,
    reader: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
    invocation: String,
    expected: Option<Expected>,
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

    /// Waits for the exit (checking the code [`Run::exits`] set).
    pub async fn finish(self) -> Done {
        let Running {
            child,
            log,
            reader,
            dir,
            invocation,
            expected,
        } = self;
        let out = child.wait_with_output().await.expect("wait for the binary");
        let _ = reader.await;
        let stderr = log.0.lock().unwrap().clone();
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
            dir,
            invocation,
        }
        .expect(expected)
    }
}
