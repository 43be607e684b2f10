//! Processes tied to the test process by a lifeline, and small helpers to
//! run commands, read logs and find free ports.

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use super::INSTALL_HINT;

/// Runs `"$@"` and stops it with SIGTERM once stdin reaches end of file; exits
/// with the server's status once the server is gone, whichever way it went.
///
/// The server gets neither stdin nor the lifeline (fd 3), so only the
/// background subshell is waiting on it.
pub(super) const LIFELINE_SH: &str = r#"
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
pub(super) const CLUSTER_WATCHDOG_SH: &str = r#"
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
pub(super) fn spawn_with_lifeline(mut command: Command, log: File) -> (Child, ChildStdin) {
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
pub(super) fn run(command: &mut Command, what: &str) {
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

pub(super) fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// A port nothing listens on right now. Another process may take it before
/// the server binds it; the callers retry on "Address already in use".
pub(super) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("cannot find a free port")
        .port()
}
