//! The journal of unrecorded results: a refresh AimHarder accepted but
//! Supabase would not record (its rotated token would otherwise be lost) is
//! appended here, one JSON line per result, and written by the next run.
//! The only place outside Supabase where the tool writes a token: the folder
//! is this user's and 0700, the file 0600, and no symlink is followed.
//!
//! Two runs on one machine: the one that takes the journal holds a lock
//! (`<journal>.lock`, `flock`) until it has rewritten it, so no other
//! replays the same entries meanwhile; appends take the journal file's own
//! lock for the moment they write, and the rewrite keeps what was appended
//! while the replay ran.

mod entry;
mod files;

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use url::Url;

pub use entry::credentials_digest;
use entry::sha256_hex;
pub(crate) use entry::{Entry, Failure};
pub(crate) use files::{check_state_dir, StateDirError};

/// A file an older binary's run took (by renaming it) is taken over after
/// this long: that run, if alive, is done with it well before.
const ABANDONED_AFTER: Duration = Duration::from_secs(15 * 60);
const TAKEN: &str = ".taken-";

/// The journal of one sessions table in the state folder `dir`: named after
/// the REST URL and the table, so that two projects never write (or
/// replay) each other's.
pub fn file_in(dir: &Path, rest_url: &Url, table: &str) -> Journal {
    let named = |url: &str| {
        let name = sha256_hex(format!("{url}\n{table}").as_bytes(), 8);
        dir.join(format!("unrecorded-{name}.jsonl"))
    };
    let file = named(normalized(rest_url).as_str());
    // Binaries before this one named it after the URL as written.
    let old = named(rest_url.as_str());
    Journal {
        legacy: (old != file).then_some(old),
        file,
    }
}

/// The REST URL as it names the journal, so that one URL written two ways
/// finds one journal: parsing already lowercased the host and dropped a
/// default port; a trailing slash (the only difference left between
/// `SUPABASE_URL` and `SUPABASE_REST_URL` written with `/rest/v1/`) goes
/// here. The path itself stays: a PostgREST at `/` and one at `/rest/v1`
/// may be two databases, and one's replay would drop the other's results.
fn normalized(rest_url: &Url) -> Url {
    let mut url = rest_url.clone();
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    url.set_fragment(None);
    url
}

/// The journal file of one sessions table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    file: PathBuf,
    /// The name an older binary gave the same journal, if another.
    legacy: Option<PathBuf>,
}

/// What [`Journal::take`] found.
pub enum Take {
    Nothing,
    /// Another run on this machine is writing the journal right now.
    Busy,
    Entries(Vec<Entry>, Taken),
}

/// The journal taken by this run: no other run takes it until
/// [`Taken::finish`] (or this process ends, however it ends).
pub struct Taken {
    _lock: File,
    /// How much of the file was read: what lies beyond was appended since.
    read: u64,
}

impl Journal {
    /// A journal at `file`, with no older name (runs name theirs with
    /// [`file_in`]).
    #[cfg(test)]
    fn new(file: PathBuf) -> Self {
        Self { file, legacy: None }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Appends one entry, under the file's lock (runs on one machine may
    /// append at once, and a replay may be rewriting it).
    pub fn append(&self, entry: &Entry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.append_bytes(&line)
    }

    fn append_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        if let Some(dir) = self.file.parent() {
            files::create_private_dir(dir)?;
        }
        files::lock_for_append(&self.file)?.write_all(bytes)
    }

    /// Takes every entry of the journal: the file stays as it is (a run
    /// that dies leaves it whole) until [`Taken::finish`] rewrites it.
    pub fn take(&self) -> io::Result<Take> {
        self.take_leaving(ABANDONED_AFTER)
    }

    /// [`Journal::take`], adopting older binaries' takes left for `after`.
    fn take_leaving(&self, after: Duration) -> io::Result<Take> {
        if let Some(dir) = self.file.parent() {
            files::create_private_dir(dir)?;
        }
        let Some(lock) = files::try_lock(&self.sibling(".lock"))? else {
            return Ok(Take::Busy);
        };
        self.adopt_leftovers(after)?;
        let Some(mut file) = files::lock_existing(&self.file)? else {
            return Ok(Take::Nothing);
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut entries = Vec::new();
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice(line) {
                Ok(entry) => entries.push(entry),
                Err(e) => tracing::warn!(
                    "skipping a line of the journal {} that cannot be read: {e}",
                    self.file.display()
                ),
            }
        }
        Ok(Take::Entries(
            entries,
            Taken {
                _lock: lock,
                read: bytes.len() as u64,
            },
        ))
    }

    /// Moves into the journal what older binaries left: the journal under
    /// its old name, and the files their runs took by renaming and did not
    /// finish (renamed longer than `after` ago: a rename sets the status
    /// change time, not the modification time; a younger one may be an
    /// older binary's at work). Each is then removed: adopted once.
    fn adopt_leftovers(&self, after: Duration) -> io::Result<()> {
        let mut leftovers = Vec::new();
        if let Some(legacy) = &self.legacy {
            // Renamed, as an older binary's take would: one running
            // meanwhile starts a new file rather than append to this one.
            let mine = taken_name(legacy);
            match fs::rename(legacy, &mine) {
                Ok(()) => leftovers.push(mine),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for name in std::iter::once(&self.file).chain(&self.legacy) {
            leftovers.extend(abandoned_takes(name, after)?);
        }
        for leftover in leftovers {
            let Some(mut file) = files::open_read(&leftover)? else {
                continue;
            };
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            if !bytes.is_empty() {
                if !bytes.ends_with(b"\n") {
                    bytes.push(b'\n');
                }
                self.append_bytes(&bytes)?;
            }
            fs::remove_file(&leftover)?;
            tracing::info!(
                "took over the results an earlier run left in {}",
                leftover.display()
            );
        }
        Ok(())
    }

    /// A file beside the journal: its name and `suffix`.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.file.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }
}

/// The takes of older binaries' runs of the journal `file`, renamed longer
/// than `after` ago.
fn abandoned_takes(file: &Path, after: Duration) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}{TAKEN}", name.to_string_lossy());
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.metadata().is_ok_and(|m| files::changed_ago(&m) >= after))
        .map(|e| e.path())
        .collect())
}

/// The name an older binary's take gave `file`.
fn taken_name(file: &Path) -> PathBuf {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut name = file.to_path_buf().into_os_string();
    name.push(format!("{TAKEN}{}-{stamp}", std::process::id()));
    PathBuf::from(name)
}

impl Taken {
    /// Rewrites the journal with `keep` and what other runs appended since
    /// it was taken (removed if that is nothing), then lets it go.
    pub fn finish(self, journal: &Journal, keep: &[Entry]) -> io::Result<()> {
        let mut rest = Vec::new();
        for entry in keep {
            serde_json::to_writer(&mut rest, entry)?;
            rest.push(b'\n');
        }
        let Some(mut file) = files::lock_existing(&journal.file)? else {
            // Removed meanwhile by hand: what is kept starts a new one.
            return if rest.is_empty() {
                Ok(())
            } else {
                journal.append_bytes(&rest)
            };
        };
        file.seek(SeekFrom::Start(self.read))?;
        file.read_to_end(&mut rest)?;
        if rest.is_empty() {
            fs::remove_file(&journal.file)?;
        } else {
            // Replaced whole, so that a run dying here leaves the old file
            // or the new one, never half of one.
            let new = journal.sibling(".new");
            let mut out = files::create(&new)?;
            out.write_all(&rest)?;
            out.sync_all()?;
            fs::rename(&new, &journal.file)?;
        }
        // Appenders waiting on the old file's lock find it replaced and
        // take the new one's.
        drop(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn entry(id: &str) -> Entry {
        Entry::sample(id)
    }

    fn taken(journal: &Journal) -> (Vec<String>, Taken) {
        match journal.take().unwrap() {
            Take::Entries(entries, taken) => (entries.into_iter().map(|e| e.id).collect(), taken),
            Take::Nothing => panic!("nothing taken"),
            Take::Busy => panic!("busy"),
        }
    }

    fn is_nothing(take: Take) -> bool {
        matches!(take, Take::Nothing)
    }

    #[test]
    fn entries_survive_a_round_trip_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("state/sub/unrecorded.jsonl"));
        assert!(is_nothing(journal.take().unwrap()), "nothing yet");
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
        let Take::Entries(entries, taken) = journal.take().unwrap() else {
            panic!("taken");
        };
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            entries[0].aimharder_token.as_ref().unwrap().expose_secret(),
            "1|2|new"
        );
        assert!(journal.path().exists(), "left whole until finished");
        let keep = [entry("b")];
        taken.finish(&journal, &keep).unwrap();
        let (ids, again) = self::taken(&journal);
        assert_eq!(ids, ["b"]);
        again.finish(&journal, &[]).unwrap();
        assert!(is_nothing(journal.take().unwrap()), "all written");
        let left: Vec<_> = fs::read_dir(dir.path().join("state/sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["unrecorded.jsonl.lock"], "no other file left behind");
    }

    #[test]
    fn a_second_taker_waits_its_turn_and_appends_meanwhile_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unrecorded.jsonl");
        // Two runs: two handles on one file.
        let (first, second) = (Journal::new(path.clone()), Journal::new(path));
        first.append(&entry("a")).unwrap();
        let (ids, taken) = self::taken(&first);
        assert_eq!(ids, ["a"]);
        assert!(
            matches!(second.take().unwrap(), Take::Busy),
            "the same entries are never replayed twice at once"
        );
        second.append(&entry("b")).unwrap();
        taken.finish(&first, &[entry("kept")]).unwrap();
        let (ids, taken) = self::taken(&second);
        assert_eq!(ids, ["kept", "b"], "the append made meanwhile is not lost");
        taken.finish(&second, &[]).unwrap();
        assert!(is_nothing(first.take().unwrap()));
    }

    #[test]
    fn one_rest_url_written_several_ways_names_one_journal() {
        let dir = Path::new("/state");
        let url = |u: &str| Url::parse(u).unwrap();
        let journal = |u: &str| file_in(dir, &url(u), "auth_sessions");
        let canonical = journal("https://abc.supabase.co/rest/v1");
        assert_eq!(canonical.legacy, None, "the name older binaries gave it");
        let from_base = crate::http::join_path(&url("https://abc.supabase.co/"), "rest/v1");
        for spelling in [
            "https://abc.supabase.co/rest/v1/",
            "HTTPS://ABC.Supabase.CO:443/rest/v1",
            "https://abc.supabase.co/rest/v1//#x",
            from_base.as_str(),
        ] {
            assert_eq!(journal(spelling).path(), canonical.path(), "{spelling}");
        }
        let slashed = journal("https://abc.supabase.co/rest/v1/");
        let old = sha256_hex(b"https://abc.supabase.co/rest/v1/\nauth_sessions", 8);
        assert_eq!(
            slashed.legacy,
            Some(dir.join(format!("unrecorded-{old}.jsonl"))),
            "its old name is looked at too"
        );
        for other in [
            journal("http://abc.supabase.co/rest/v1"),
            journal("https://abc.supabase.co:8443/rest/v1"),
            journal("https://abd.supabase.co/rest/v1"),
            journal("https://abc.supabase.co/"),
            file_in(dir, &url("https://abc.supabase.co/rest/v1"), "other"),
        ] {
            assert_ne!(other.path(), canonical.path(), "{other:?}");
        }
    }

    #[test]
    fn an_older_binarys_journal_and_abandoned_takes_are_taken_over_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::parse("https://abc.supabase.co/rest/v1/").unwrap();
        let journal = file_in(dir.path(), &url, "auth_sessions");
        let legacy = Journal::new(journal.legacy.clone().unwrap());
        legacy.append(&entry("old-name")).unwrap();
        let mut take = journal.file.clone().into_os_string();
        take.push(".taken-1-2");
        fs::write(
            &take,
            format!("{}\n", serde_json::to_string(&entry("old-take")).unwrap()),
        )
        .unwrap();
        journal.append(&entry("new")).unwrap();

        // A take renamed a moment ago may be an older binary's at work.
        let (ids, taken) = self::taken(&journal);
        assert_eq!(ids, ["new", "old-name"]);
        taken.finish(&journal, &[]).unwrap();
        assert!(Path::new(&take).exists());
        assert!(!legacy.path().exists(), "adopted once");

        let Take::Entries(entries, taken) = journal.take_leaving(Duration::ZERO).unwrap() else {
            panic!("taken");
        };
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["old-take"]);
        taken.finish(&journal, &[]).unwrap();
        assert!(!Path::new(&take).exists(), "adopted once");
        assert!(is_nothing(journal.take_leaving(Duration::ZERO).unwrap()));
    }
}
