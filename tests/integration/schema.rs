//! The schema the tool needs (issue 17): migrations applied where nothing
//! is granted by default (Supabase since 2026-10-30), a missing grant named
//! (exit 78, never 77), an install still on the old claims schema told
//! which migration to apply, and the upgrade itself.

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::seed::{row, Seed};
use aimharder_testkit::stack::TestDb;
use aimharder_testkit::start::gateway_stack;
use aimharder_testkit::start::stack;
use aimharder_testkit::wire::send;

use crate::BIN;

const CLAIMS_MIGRATION: &str = "migrations/20261201000000_claims_table.sql";
const COUNTS_MIGRATION: &str = "migrations/20261201000100_counts_and_lookup.sql";

fn one_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_string()
}

#[tokio::test]
async fn the_tools_functions_and_claims_are_the_secret_keys_alone() {
    let (db, aim, gw) = gateway_stack().await;
    // The test stack grants nothing by default, as Supabase now: what the
    // tool can do below, the migrations granted.
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace \
             WHERE n.nspname = '{}'",
            db.schema()
        )),
        "0"
    );
    let id = Seed::new("a@example.com", "1|1|a").insert(&db);
    BIN.via_gateway(&gw, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(row(&db, &id)["refresh_count"], 4);
    BIN.via_gateway(&gw, &aim)
        .status_json()
        .succeeds()
        .output()
        .await;
    // A publishable key (anon) reaches neither the functions nor the claims.
    let key = gw.publishable_key().to_string();
    let headers = [
        ("apikey", key.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body = r#"{"p_table":"auth_sessions","p_stale_cutoff":"2026-01-01T00:00:00Z","p_due_cutoff":"2026-01-01T00:00:00Z","p_error_bound":"["}"#;
    let answer = send(
        gw.addr(),
        "POST",
        "/rest/v1/rpc/refresh_counts",
        &headers,
        body,
    )
    .await;
    assert!(
        matches!(answer.status, Some(401 | 403)),
        "anon called the counts: {:?} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    assert!(String::from_utf8_lossy(&answer.body).contains("42501"));
    let claims = send(
        gw.addr(),
        "GET",
        "/rest/v1/refresh_claims?select=*",
        &headers,
        "",
    )
    .await;
    assert!(
        matches!(claims.status, Some(401 | 403)),
        "anon read the claims: {:?}",
        claims.status
    );
}

#[tokio::test]
async fn a_missing_grant_is_exit_78_naming_it_not_a_refused_key() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|a").insert(&db);
    db.sql(
        "REVOKE EXECUTE ON FUNCTION refresh_claim(text, uuid, jsonb, bigint, integer, boolean) \
         FROM service_role",
    );
    let done = BIN.run(&db, &aim).refresh_all().exits(78).output().await;
    let line = one_line(&done.stderr);
    assert!(
        line.contains("GRANT EXECUTE ON FUNCTION refresh_claim TO service_role"),
        "{line}"
    );
    assert!(line.contains(CLAIMS_MIGRATION), "{line}");
    assert!(!line.contains("refused the key"), "{line}");
    assert!(aim.seen().is_empty(), "nothing called before the claim");

    // The same for a table privilege the write needs.
    db.sql(
        "GRANT EXECUTE ON FUNCTION refresh_claim(text, uuid, jsonb, bigint, integer, boolean) \
         TO service_role; REVOKE UPDATE ON auth_sessions FROM service_role",
    );
    let done = BIN.run(&db, &aim).refresh_all().exits(78).output().await;
    let line = one_line(&done.stderr);
    assert!(
        line.contains("GRANT SELECT, UPDATE ON auth_sessions TO service_role"),
        "{line}"
    );
}

#[tokio::test]
async fn an_install_on_the_old_claims_schema_is_told_to_apply_the_new_migration() {
    let db = TestDb::new().await;
    // An install of 2026-11-27: the first two migrations and the claims
    // migration as it shipped then.
    db.apply_migration("migrations/20261126000000_refresh_tracking.sql");
    db.apply_migration("migrations/20261127000000_re_enable_on_login.sql");
    db.apply_migration("tests/fixtures/claims_migration_of_20261127.sql");
    let aim = FakeAimHarder::start().await;
    let id = Seed::new("a@example.com", "1|1|old").insert(&db);
    for (args, migration) in [
        (&["refresh-all", "--rate", "0"][..], CLAIMS_MIGRATION),
        (&["refresh-one", "--id", &id], CLAIMS_MIGRATION),
        (&["status"], COUNTS_MIGRATION),
    ] {
        let done = BIN.run(&db, &aim).args(args).exits(78).output().await;
        let line = one_line(&done.stderr);
        assert!(line.contains(migration), "{args:?}: {line}");
    }
    assert!(aim.seen().is_empty(), "nothing called on the old schema");

    // The upgrade: run the new migrations. The claim columns, the trigger
    // and the stored due key are gone; the row is as the web app left it.
    db.apply_migration(CLAIMS_MIGRATION);
    db.apply_migration(COUNTS_MIGRATION);
    let columns = db.sql(&format!(
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns \
         WHERE table_schema = '{}' AND table_name = 'auth_sessions' \
         AND column_name IN ('refresh_claim_run', 'refresh_claim_until', 'refresh_due_at')",
        db.schema()
    ));
    assert_eq!(columns, "", "retired columns left: {columns}");
    assert_eq!(
        db.sql(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'auth_sessions_void_claim_on_login'"
        ),
        "0"
    );
    BIN.run(&db, &aim)
        .refresh_all_json()
        .succeeds()
        .output()
        .await;
    assert_eq!(row(&db, &id)["refresh_count"], 4);
    // And again: the migrations are idempotent.
    db.apply_migration(CLAIMS_MIGRATION);
    db.apply_migrations();
    BIN.run(&db, &aim)
        .refresh_all_json()
        .args(&["--force"])
        .succeeds()
        .output()
        .await;
    assert_eq!(row(&db, &id)["refresh_count"], 5);
}
