//! The journal of unrecorded results: a refresh AimHarder accepted while
//! Supabase took no writes is kept on the machine (0700 folder, 0600 file)
//! and written first by the next run, conditionally: a member's new login
//! made meanwhile wins over it.

use std::path::{Path, PathBuf};

use aimharder_testkit::aimharder::{rotated, Reply};
use aimharder_testkit::gateway::Gateway;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::gateway_stack;

use crate::BIN;

/// The journals in `state` (beside them stays each one's lock file).
fn journal_files(state: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(state) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_rotated_token_reaches_the_row_after_a_write_outage() {
    let (db, aim, gw) = gateway_stack().await;
    let kept_token = "69232|1766731601|kept";
    let relogged_token = "69233|1766731601|relogged";
    let kept = Seed::new("kept@example.com", kept_token)
        .session("kept")
        .insert(&db);
    let relogged = Seed::new("relogged@example.com", relogged_token)
        .session("relogged")
        .insert(&db);
    // Supabase stops taking writes once AimHarder accepted the first refresh.
    let writes_down = {
        let gw = gw.clone();
        std::sync::Arc::new(move || gw.fail_method("rpc/refresh_write", usize::MAX))
    };
    aim.script(
        kept_token,
        vec![Reply::Then(writes_down, Box::new(Reply::ok()))],
    );
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state/aimharder");
    let run = |args: &[&str]| {
        BIN.via_gateway(&gw, &aim)
            .env("AIMHARDER_STATE_DIR", state.to_str().unwrap())
            .env("AIMHARDER_REFRESH_ENDPOINT", "token-update")
            .args(args)
    };

    let lost = run(&["refresh-all", "--json", "--rate", "0", "--concurrency", "1"])
        .exits(69)
        .output()
        .await;
    for id in [&kept, &relogged] {
        let s = lost.session(id);
        assert_eq!(s["outcome"], "unrecorded", "{s}");
        assert!(
            s["error"].as_str().unwrap().contains("kept in the journal"),
            "{s}"
        );
    }
    assert_eq!(
        row(&db, &kept)["aimharder_token"],
        kept_token,
        "not written"
    );
    let files = journal_files(&state);
    assert_eq!(files.len(), 1, "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(state.parent().unwrap()), 0o700);
    }
    let journal = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(journal.lines().count(), 2);
    assert!(
        journal.contains(&rotated(kept_token)),
        "the rotated token is kept"
    );
    assert!(
        !journal.contains(kept_token),
        "the old token is not: {journal}"
    );

    // Writes come back; meanwhile the second member logged in again.
    gw.heal_method("rpc/refresh_write");
    db.sql(&format!(
        "UPDATE auth_sessions SET aimharder_token = 'new-login', \
         aimharder_cookies = '[{{\"name\":\"PHPSESSID\",\"value\":\"relogged\"}}]' WHERE id = '{relogged}'"
    ));

    // Any run that calls AimHarder writes the journal first; a probe too.
    let probe = run(&["probe", "--all", "--rate", "0", "--json"])
        .succeeds()
        .output()
        .await;
    assert!(probe.stderr.contains("written=1"), "{}", probe.stderr);
    let r = row(&db, &kept);
    assert_eq!(r["aimharder_token"], rotated(kept_token).as_str());
    assert_eq!(r["refresh_count"], 4);
    assert!(r["last_refresh_error"].is_null());
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM refresh_claims WHERE session_id = '{kept}' AND credentials <> 'written'"
        )),
        "0",
        "the replay's claim is released"
    );
    let r = row(&db, &relogged);
    assert_eq!(r["aimharder_token"], "new-login", "the new login wins");
    assert_eq!(r["refresh_count"], 3);
    assert_eq!(r["auto_refresh_enabled"], true);
    assert!(
        journal_files(&state).is_empty(),
        "{:?}",
        journal_files(&state)
    );

    // The next refresh finds the kept session refreshed; the other one due.
    let next = run(&["refresh-all", "--json", "--rate", "0"])
        .succeeds()
        .output()
        .await;
    assert_eq!(next.json()["selected"], 1, "{}", next.stdout);
    assert_eq!(next.session(&relogged)["outcome"], "refreshed");
    assert_eq!(
        aim.calls_for(kept_token),
        1,
        "the kept session was not called again"
    );
    assert_eq!(aim.calls_for("new-login"), 1);
}

/// Keeping sessions alive matters more than the journal: with no folder for
/// it the run goes on, and says so.
#[tokio::test]
async fn no_folder_for_the_journal_is_said_and_the_run_goes_on() {
    let (db, aim, _gw) = gateway_stack().await;
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    let done = BIN
        .run(&db, &aim)
        .without_env("HOME")
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(done.session(&id)["outcome"], "refreshed");
    assert!(
        done.stderr.contains("no folder for the journal")
            && done.stderr.contains("AIMHARDER_STATE_DIR"),
        "{}",
        done.stderr
    );
    let status = BIN
        .run(&db, &aim)
        .without_env("HOME")
        .args(&["status"])
        .succeeds()
        .output()
        .await;
    assert!(
        !status.stderr.contains("journal"),
        "status keeps no journal: {}",
        status.stderr
    );
}

/// Seeds the journal that a run against `gw` replays with `lines`, in
/// that order, in a state folder made with `mode`.
pub(crate) fn seed_journal(gw: &Gateway, state: &Path, mode: u32, lines: &[serde_json::Value]) {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, mode);
    dir.create(state).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let base = url::Url::parse(&gw.supabase_url()).unwrap();
    let rest = aimharder_refresh::internals::join_path(&base, "rest/v1");
    let journal = aimharder_refresh::internals::file_in(state, &rest, "auth_sessions");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(journal.path(), text).unwrap();
}

/// A journal line for the row `id` as it is in `db` now (its credentials
/// and count), answered `hours_ago`: a success bringing `token`, or (with
/// none) a logout.
pub(crate) fn answer(
    db: &TestDb,
    id: &str,
    hours_ago: i64,
    token: Option<&str>,
) -> serde_json::Value {
    let r = row(db, id);
    let called = secrecy::SecretString::from(r["aimharder_token"].as_str().unwrap());
    let credentials =
        aimharder_refresh::internals::credentials_digest(Some(&called), &r["aimharder_cookies"]);
    let at = aimharder_refresh::internals::rfc3339(
        time::OffsetDateTime::now_utc() - time::Duration::hours(hours_ago),
    );
    let mut line = serde_json::json!({
        "id": id,
        "run": format!("0a1b2c3d-0000-4000-8000-{:012}", hours_ago),
        "refresh_count": r["refresh_count"],
        "credentials": credentials,
        "aimharder_token": token,
        "fingerprint": null,
        "aimharder_cookies": null,
    });
    match token {
        Some(_) => line["refreshed_at"] = at.into(),
        None => {
            line["failed"] =
                serde_json::json!({"at": at, "error": "AimHarder answered logout", "expired": true})
        }
    }
    line
}

/// Two runs' answers to one call's credentials (say, from two journals
/// merged): the newer token is stored, not the first line's; and a logout
/// answered after a success, though listed first, costs it neither its
/// token nor its auto refresh.
#[tokio::test]
async fn a_replay_of_two_journaled_results_for_one_session_stores_the_newer_token() {
    let (db, aim, gw) = gateway_stack().await;
    let twice = Seed::new("twice@example.com", "69240|1766731601|twice")
        .session("twice")
        .insert(&db);
    let failed_after = Seed::new("after@example.com", "69241|1766731601|after")
        .session("after")
        .insert(&db);
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    seed_journal(
        &gw,
        &state,
        0o755,
        &[
            answer(&db, &twice, 2, Some("69240|1766818001|older")),
            answer(&db, &twice, 1, Some("69240|1766904401|newer")),
            answer(&db, &failed_after, 1, None),
            answer(&db, &failed_after, 2, Some("69241|1766818001|rotated")),
        ],
    );

    // Not due: the run only writes the journal.
    let done = BIN
        .via_gateway(&gw, &aim)
        .env("AIMHARDER_STATE_DIR", state.to_str().unwrap())
        .refresh_all_json()
        .args(&["--older-than", "1d"])
        .succeeds()
        .output()
        .await;
    assert!(
        done.stderr.contains("written=2") && done.stderr.contains("superseded=2"),
        "{}",
        done.stderr
    );
    let r = row(&db, &twice);
    assert_eq!(r["aimharder_token"], "69240|1766904401|newer");
    assert_eq!(r["refresh_count"], 4);
    let r = row(&db, &failed_after);
    assert_eq!(r["aimharder_token"], "69241|1766818001|rotated");
    assert_eq!(r["auto_refresh_enabled"], true, "{r}");
    assert!(r["last_refresh_error"].is_null(), "{r}");
    assert_eq!(aim.seen().len(), 0, "nothing called");

    // The folder was made this user's alone; the journal is gone.
    assert!(done.stderr.contains("made 0700"), "{}", done.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    assert!(
        journal_files(&state).is_empty(),
        "{:?}",
        journal_files(&state)
    );
}

/// The journal holds tokens: a state folder of another user's is refused
/// before anything is called, naming the folder and the setting.
#[cfg(unix)]
#[tokio::test]
async fn a_state_folder_of_another_user_stops_the_run() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("theirs");
    std::fs::create_dir(&state).unwrap();
    // Root may give it away; anyone else finds one that is not theirs.
    let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(home.path()).unwrap());
    let theirs = if me == 0 {
        std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
        state.clone()
    } else {
        PathBuf::from("/")
    };
    let done = BIN
        .bare()
        .env("SUPABASE_URL", "http://127.0.0.1:9")
        .env("SUPABASE_SECRET_KEY", "sb_secret_0123456789abcdef")
        .env("AIMHARDER_BASE_URL", "http://127.0.0.1:9")
        .env("AIMHARDER_STATE_DIR", theirs.to_str().unwrap())
        .refresh_all()
        .exits(78)
        .output()
        .await;
    assert!(
        done.stderr.contains(&format!(
            "the state folder {} belongs to another user",
            theirs.display()
        )) && done.stderr.contains("AIMHARDER_STATE_DIR"),
        "{}",
        done.stderr
    );
}
