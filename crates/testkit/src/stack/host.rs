//! What the machine provides: the PostgreSQL server binaries, `postrust`,
//! and the OS user to run PostgreSQL as.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::keys::POSTRUST_VERSION;
use super::INSTALL_HINT;

/// Who runs the PostgreSQL server binaries. `initdb` and `postgres` refuse to
/// run as root, so when the tests do, they run as the `postgres` OS user that
/// the Debian package creates.
pub(super) enum ServerUser {
    Me,
    Postgres { uid: u32, gid: u32 },
}

impl ServerUser {
    pub(super) fn detect() -> ServerUser {
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
    pub(super) fn command(&self, program: PathBuf, cwd: &Path) -> Command {
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

    pub(super) fn give(&self, path: &Path) {
        if let ServerUser::Postgres { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
        }
    }
}

/// `$PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's
/// layout), else wherever `initdb` is on the PATH.
pub(super) fn find_pg_bin() -> PathBuf {
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
pub(super) fn find_postrust() -> PathBuf {
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
