//! Settings: where they are read from (a `.env` of the working directory
//! only) and their ranges, checked when parsed.

use aimharder_testkit::seed::Seed;
use aimharder_testkit::start::stack;

use crate::BIN;

#[tokio::test]
async fn dotenv_is_read_from_the_working_directory_only() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    // A `.env` planted in the parent folder would point the tool at a stack.
    let run = BIN.bare().in_subdir("work");
    std::fs::write(
        run.dir().join(".env"),
        format!(
            "SUPABASE_REST_URL={}\nSUPABASE_SERVICE_ROLE_KEY={}\nAIMHARDER_BASE_URL={}\n",
            db.rest_url(),
            db.service_key(),
            aim.url()
        ),
    )
    .unwrap();
    let done = run.status_json().exits(78).output().await;
    assert!(done.stderr.contains("SUPABASE_URL"), "{}", done.stderr);
    assert_eq!(done.stdout, "");

    // A malformed one in the working directory names its line, not its text.
    let run = BIN.bare();
    std::fs::write(
        run.dir().join(".env"),
        "SUPABASE_URL=http://127.0.0.1:9\nsb_secret_leaked oops\n",
    )
    .unwrap();
    let done = run.args(&["status"]).exits(78).output().await;
    assert!(done.stderr.contains(".env line 2"), "{}", done.stderr);
    assert!(!done.stderr.contains("sb_secret_leaked"), "{}", done.stderr);
}

#[tokio::test]
async fn out_of_range_values_are_usage_errors_not_panics() {
    for args in [
        &["refresh-all", "--rate", "1e-30"][..],
        &["refresh-all", "--rate", "20000"][..],
        &["refresh-all", "--max-duration", "500000000000y"][..],
        &["refresh-all", "--older-than", "20000y"][..],
        &["refresh-all", "--retry-errors-after", "367d"][..],
        &[
            "refresh-one",
            "--id",
            "0a1b2c3d-0000-4000-8000-00000000abcd",
            "--if-older-than",
            "400d",
        ][..],
        &["status", "--stale-after", "20000y"][..],
    ] {
        let done = BIN.bare().args(args).exits(64).output().await;
        assert!(
            !done.stderr.contains("panicked"),
            "{args:?}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "");
    }
}
