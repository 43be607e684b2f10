//! The journal of unrecorded results: a refresh AimHarder accepted but
//! Supabase would not record (its rotated token would otherwise be lost) is
//! appended here, one JSON line per result, and written by the next run.
//! The only place outside Supabase where the tool writes a token: the folder
//! is created 0700 and the file 0600.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ring::digest::{digest, SHA256};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::supabase::write::expose_opt;

/// A journal taken by a run that died while writing it is taken again
/// after this long (a live run is done with it well before).
const ABANDONED_AFTER: Duration = Duration::from_secs(15 * 60);
const TAKEN: &str = ".taken-";

/// One unrecorded result: the row as the call found it, and what the call
/// brought back.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// The run that called: its claim may still hold the row (the write
    /// that failed would have released it), and the replay claims as it.
    pub run: String,
    /// When AimHarder accepted the refresh (by the runner's clock), for a
    /// success. A failure has none, so that a binary from before failures
    /// were journaled skips its line rather than take it for a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
    /// AimHarder's answer was a failure (or a logout): what to record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failure>,
    /// The row's `refresh_count` when it was called.
    pub refresh_count: Option<i64>,
    /// [`credentials_digest`] of the token and cookies it was called with:
    /// a row whose credentials changed since (a new login) is not written.
    pub credentials: String,
    #[serde(serialize_with = "expose_opt")]
    pub aimharder_token: Option<SecretString>,
    pub fingerprint: Option<String>,
    pub aimharder_cookies: Option<serde_json::Value>,
}

/// A failure to record: when AimHarder answered (the runner's clock), why,
/// and whether it turns auto refresh off.
#[derive(Serialize, Deserialize, Clone)]
pub struct Failure {
    pub at: String,
    pub error: String,
    pub expired: bool,
}

impl Entry {
    /// When AimHarder answered.
    pub fn answered_at(&self) -> &str {
        match (&self.refreshed_at, &self.failed) {
            (Some(at), _) => at,
            (None, Some(f)) => &f.at,
            (None, None) => "",
        }
    }
}

/// SHA-256 of a row's token and cookies: compares credentials without
/// keeping the old ones.
pub fn credentials_digest(token: Option<&SecretString>, cookies: &serde_json::Value) -> String {
    let mut bytes = token
        .map(|t| t.expose_secret().as_bytes().to_vec())
        .unwrap_or_default();
    bytes.push(0);
    bytes.extend_from_slice(cookies.to_string().as_bytes());
    sha256_hex(&bytes, 32)
}

/// The first `bytes` bytes of the SHA-256 of `data`, in hex.
fn sha256_hex(data: &[u8], bytes: usize) -> String {
    digest(&SHA256, data).as_ref()[..bytes]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The journal of one sessions table in the state folder `dir`: named after
/// the REST URL and the table, so that two projects never write (or
/// replay) each other's.
pub fn file_in(dir: &Path, rest_url: &str, table: &str) -> PathBuf {
    let name = sha256_hex(format!("{rest_url}\n{table}").as_bytes(), 8);
    dir.join(format!("unrecorded-{name}.jsonl"))
}

/// The journal file of one sessions table.
#[derive(Debug, Clone)]
pub struct Journal {
    file: PathBuf,
}

/// Files of entries taken out of the journal, on disk until [`Taken::finish`].
pub struct Taken {
    files: Vec<PathBuf>,
}

impl Journal {
    pub fn new(file: PathBuf) -> Self {
        Self { file }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Appends one entry in a single write (runs on one machine may append
    /// at once).
    pub fn append(&self, entry: &Entry) -> io::Result<()> {
        if let Some(dir) = self.file.parent() {
            create_private_dir(dir)?;
        }
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&self.file)?.write_all(&line)
    }

    /// Takes every entry out of the journal: renamed away first, so a run
    /// starting meanwhile does not take them too. `None` when there are none.
    pub fn take(&self) -> io::Result<Option<(Vec<Entry>, Taken)>> {
        let mut files = self.abandoned()?;
        let mine = self.taken_name();
        match fs::rename(&self.file, &mine) {
            Ok(()) => files.push(mine),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if files.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for file in &files {
            for line in io::BufReader::new(fs::File::open(file)?).lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str(&line) {
                    Ok(entry) => entries.push(entry),
                    Err(e) => tracing::warn!(
                        "skipping a line of the journal {} that cannot be read: {e}",
                        file.display()
                    ),
                }
            }
        }
        Ok(Some((entries, Taken { files })))
    }

    /// Takes of runs that died before finishing them.
    fn abandoned(&self) -> io::Result<Vec<PathBuf>> {
        let (Some(dir), Some(name)) = (self.file.parent(), self.file.file_name()) else {
            return Ok(Vec::new());
        };
        let prefix = format!("{}{TAKEN}", name.to_string_lossy());
        let entries = match fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let now = SystemTime::now();
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > ABANDONED_AFTER);
            if old && entry.file_name().to_string_lossy().starts_with(&prefix) {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    fn taken_name(&self) -> PathBuf {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut name = self.file.clone().into_os_string();
        name.push(format!("{TAKEN}{}-{stamp}", std::process::id()));
        PathBuf::from(name)
    }
}

impl Taken {
    /// Puts `keep` back in the journal, then removes what was taken.
    pub fn finish(self, journal: &Journal, keep: &[Entry]) -> io::Result<()> {
        for entry in keep {
            journal.append(entry)?;
        }
        for file in &self.files {
            fs::remove_file(file)?;
        }
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            run: "0a1b2c3d-0000-4000-8000-00000000abcd".into(),
            refreshed_at: Some("2026-11-27T04:00:00Z".into()),
            failed: None,
            refresh_count: Some(3),
            credentials: credentials_digest(None, &serde_json::Value::Null),
            aimharder_token: Some(SecretString::from("1|2|new")),
            fingerprint: None,
            aimharder_cookies: None,
        }
    }

    #[test]
    fn entries_survive_a_round_trip_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("state/sub/unrecorded.jsonl"));
        assert!(journal.take().unwrap().is_none(), "nothing yet");
        journal.append(&entry("a")).unwrap();
        journal.append(&entry("b")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(journal.path()), 0o600);
            assert_eq!(mode(&dir.path().join("state/sub")), 0o700);
            assert_eq!(mode(&dir.path().join("state")), 0o700);
        }
        let (entries, taken) = journal.take().unwrap().unwrap();
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            entries[0].aimharder_token.as_ref().unwrap().expose_secret(),
            "1|2|new"
        );
        assert!(!journal.path().exists(), "taken away");
        let keep = [entry("b")];
        taken.finish(&journal, &keep).unwrap();
        let (entries, again) = journal.take().unwrap().unwrap();
        assert_eq!(entries.len(), 1);
        again.finish(&journal, &[]).unwrap();
        assert!(journal.take().unwrap().is_none(), "all written");
        let left: Vec<_> = fs::read_dir(dir.path().join("state/sub"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "no file left behind");
    }

    #[test]
    fn a_failure_has_no_refresh_time_so_older_binaries_skip_it() {
        let failure = Entry {
            refreshed_at: None,
            failed: Some(Failure {
                at: "2026-11-27T04:00:00Z".into(),
                error: "answered logout".into(),
                expired: true,
            }),
            aimharder_token: None,
            ..entry("f")
        };
        let line = serde_json::to_value(&failure).unwrap();
        assert!(line.get("refreshed_at").is_none(), "{line}");
        assert_eq!(failure.answered_at(), "2026-11-27T04:00:00Z");
        // A line of an older binary reads as a success.
        let old = r#"{"id":"a","run":"r","refreshed_at":"2026-11-27T04:00:00Z","refresh_count":1,
                      "credentials":"c","aimharder_token":"t","fingerprint":null,"aimharder_cookies":null}"#;
        let old: Entry = serde_json::from_str(old).unwrap();
        assert!(old.failed.is_none() && old.refreshed_at.is_some());
    }

    #[test]
    fn the_digest_tells_credentials_apart() {
        let cookies = serde_json::json!([{"name": "PHPSESSID", "value": "a"}]);
        let token = SecretString::from("1|2|3");
        let d = credentials_digest(Some(&token), &cookies);
        assert_eq!(d.len(), 64);
        assert_eq!(d, credentials_digest(Some(&token), &cookies.clone()));
        assert_ne!(
            d,
            credentials_digest(Some(&SecretString::from("1|2|4")), &cookies)
        );
        assert_ne!(
            d,
            credentials_digest(
                Some(&token),
                &serde_json::json!([{"name": "PHPSESSID", "value": "b"}])
            )
        );
    }
}
