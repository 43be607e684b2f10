//! The journal's files on disk: a state folder that is this user's alone,
//! files opened without following a symlink (another user who could plant
//! one would have tokens written where they read), and the advisory locks
//! (`flock`) that keep two runs on one machine apart.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A state folder the journal cannot be kept in: a configuration error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateDirError {
    #[error(
        "the state folder {} belongs to another user (uid {owner}; this run is uid {me}): \
         the journal in it holds session tokens. Set AIMHARDER_STATE_DIR (--state-dir) to a \
         folder of this user's, or to one not there yet (it is created 0700)",
        dir.display()
    )]
    NotOurs { dir: PathBuf, owner: u32, me: u32 },
    #[error(
        "the state folder {} is not a folder: set AIMHARDER_STATE_DIR (--state-dir) to a folder",
        dir.display()
    )]
    NotAFolder { dir: PathBuf },
    #[error("cannot use the state folder {}: {source}", dir.display())]
    Io { dir: PathBuf, source: io::Error },
}

/// Checks the state folder `dir` if it is there (it is created 0700 when
/// first needed): it must be this user's. One of this user's that others
/// may enter is made 0700, with a warning: the fix is certain and ours to
/// make, and refusing would stop keeping sessions alive over it.
pub(crate) fn check_state_dir(dir: &Path) -> Result<(), StateDirError> {
    check_state_dir_as(dir, effective_uid())
}

fn check_state_dir_as(dir: &Path, me: u32) -> Result<(), StateDirError> {
    let io = |source| StateDirError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    // Followed if a symlink: an operator may link the folder elsewhere; it
    // is the folder itself that must be ours.
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if !meta.is_dir() {
        return Err(StateDirError::NotAFolder {
            dir: dir.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if meta.uid() != me {
            return Err(StateDirError::NotOurs {
                dir: dir.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
            tracing::warn!(
                "the state folder {} was open to other users (mode {mode:04o}): made 0700, \
                 as the journal in it holds session tokens",
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = me;
    Ok(())
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
fn effective_uid() -> u32 {
    0
}

/// Creates `dir` (and its missing parents) 0700.
pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// `options` for a private file: created 0600, never through a symlink
/// (opening one fails with ELOOP).
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    options
}

/// Opens `path` to read, without following a symlink; `None` if absent.
pub(super) fn open_read(path: &Path) -> io::Result<Option<File>> {
    match private(OpenOptions::new().read(true)).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates (or empties) `path` to write it anew.
pub(super) fn create(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().write(true).create(true).truncate(true)).open(path)
}

/// Takes the lock file `path` (created if needed) without waiting: `None`
/// while another holds it. Held until the file is dropped, or the process
/// ends however it ends.
pub(super) fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = private(OpenOptions::new().read(true).write(true).create(true)).open(path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(file)),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => Err(e),
    }
}

/// Opens `path` to append, created if needed, and locks it, waiting (its
/// holders only append a line or rewrite the file). The file found locked
/// is the one at `path`: a rewrite replaces the file under the lock, so a
/// lock won on the file it replaced is let go and taken on the new one.
pub(super) fn lock_for_append(path: &Path) -> io::Result<File> {
    loop {
        let file = private(OpenOptions::new().read(true).append(true).create(true)).open(path)?;
        fs4::FileExt::lock(&file)?;
        if is_at(&file, path)? {
            return Ok(file);
        }
    }
}

/// Opens `path` to read and locks it as [`lock_for_append`] does; `None`
/// if there is no such file.
pub(super) fn lock_existing(path: &Path) -> io::Result<Option<File>> {
    loop {
        let Some(file) = open_read(path)? else {
            return Ok(None);
        };
        fs4::FileExt::lock(&file)?;
        if is_at(&file, path)? {
            return Ok(Some(file));
        }
    }
}

/// Whether `file` is still the file at `path` (not replaced nor removed).
#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn is_at(_file: &File, path: &Path) -> io::Result<bool> {
    Ok(path.exists())
}

/// How long ago `meta`'s file was last renamed or written: its status
/// change time, which a rename sets (its modification time it keeps).
pub(super) fn changed_ago(meta: &fs::Metadata) -> std::time::Duration {
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        std::time::UNIX_EPOCH
            + std::time::Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32)
    };
    #[cfg(not(unix))]
    let changed = meta
        .modified()
        .unwrap_or_else(|_| std::time::SystemTime::now());
    std::time::SystemTime::now()
        .duration_since(changed)
        .unwrap_or_default()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_state_folder_of_another_user_is_refused_and_ours_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        check_state_dir(&state).unwrap();
        assert!(!state.exists(), "created when first needed, not here");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        check_state_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700, "ours: made private");

        let owner = fs::metadata(&state).unwrap().uid();
        let err = check_state_dir_as(&state, owner + 1).unwrap_err();
        assert!(matches!(err, StateDirError::NotOurs { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&state.display().to_string())
                && message.contains("AIMHARDER_STATE_DIR"),
            "{message}"
        );

        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            check_state_dir(&file),
            Err(StateDirError::NotAFolder { .. })
        ));
    }

    #[test]
    fn a_symlink_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "theirs\n").unwrap();
        let link = dir.path().join("journal.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for result in [
            lock_for_append(&link).map(drop),
            open_read(&link).map(drop),
            create(&link).map(drop),
            try_lock(&link).map(drop),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs\n");
    }

    #[test]
    fn one_lock_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = try_lock(&path).unwrap().expect("free");
        assert!(try_lock(&path).unwrap().is_none(), "held");
        drop(first);
        assert!(try_lock(&path).unwrap().is_some(), "let go");
        assert_eq!(mode(&path), 0o600);
    }
}
