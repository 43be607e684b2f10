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
//!
//! The parts: [`TestDb`] (`test_db.rs`) is one test's schema and `postrust`;
//! the cluster (`cluster.rs`) is started once per process; `process.rs` holds
//! the lifeline and the small process helpers; `host.rs` finds the server
//! binaries and the OS user to run them as; `keys.rs` the JWT secret and keys.

use std::path::Path;
use std::time::Duration;

mod cluster;
mod host;
mod keys;
mod process;
mod test_db;

pub use cluster::cluster_start_time;
pub use keys::{ANON_KEY, JWT_SECRET, POSTRUST_VERSION, SERVICE_KEY, WRONG_KEY};
pub use test_db::TestDb;

const INSTALL_HINT: &str = "run scripts/test-deps.sh to install the test dependencies";

/// How long a server may take to come up before the test gives up on it.
/// Generous, because a loaded CI machine runs many tests at once.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Between two readiness probes. This is a poll interval, not a guess at how
/// long start-up takes: the probe decides when we go on.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The workspace's root folder (where `migrations/` is): relative paths given
/// to [`TestDb::apply_migration`] are taken from here, whichever package's
/// test, bench or example calls it.
pub fn workspace_root() -> &'static Path {
    // This crate lives at `<root>/crates/testkit`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the test kit lives at crates/testkit")
}
