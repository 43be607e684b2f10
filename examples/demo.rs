//! A local demo that needs no Supabase account and no AimHarder login.
//!
//! Starts the throwaway stack the integration tests use (the test kit,
//! `crates/testkit`: PostgreSQL + `postrust`, a PostgREST-compatible server,
//! on 127.0.0.1), applies the
//! shipped migration, starts a simulated AimHarder, seeds six sessions in
//! different states, then runs `status`, `refresh-all` and `status --sessions`
//! through the library, exactly as the binary would.
//!
//! Run it with `scripts/demo` (installs PostgreSQL and postrust first when
//! missing), or `cargo run --example demo` once they are installed. Nothing
//! outside this machine is contacted, and everything it starts is stopped and
//! deleted when it exits.

use aimharder_testkit::aimharder::{FakeAimHarder, Reply};
use aimharder_testkit::seed::Seed;
use aimharder_testkit::stack::TestDb;
use clap::Parser;

fn main() -> std::process::ExitCode {
    // The demo talks to its own stack only: settings from the caller's
    // environment (a real SUPABASE_URL, a healthcheck, RUST_LOG, ...) must
    // not leak into it. Done before the runtime starts any thread.
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("SUPABASE_")
            || name.starts_with("AIMHARDER_")
            || name.starts_with("GITHUB_")
            || name == "RUST_LOG"
        {
            std::env::remove_var(&key);
        }
    }
    demo()
}

#[tokio::main]
async fn demo() -> std::process::ExitCode {
    println!("aimharder-refresh demo: a local Supabase-like stack and a simulated AimHarder.\n");
    println!("Starting PostgreSQL and postrust on 127.0.0.1 (a few seconds)...");
    let db = TestDb::new().await;
    db.apply_migrations();
    let aim = FakeAimHarder::start().await;
    println!("  REST API (PostgREST): {}", db.rest_url());
    println!("  simulated AimHarder:  {}\n", aim.url());

    seed(&db, &aim);

    let connection = [
        "--rest-url".to_string(),
        db.rest_url(),
        "--service-role-key".to_string(),
        db.service_key().to_string(),
        "--aimharder-url".to_string(),
        aim.url(),
    ];
    let steps: [(&str, &[&str]); 3] = [
        ("What is in the table", &["status"]),
        ("Refresh what is due", &["refresh-all"]),
        (
            "The table afterwards, one line per session",
            &["status", "--sessions"],
        ),
    ];
    for (n, (what, args)) in steps.iter().enumerate() {
        println!(
            "\n=== {}/{}: {what}: aimharder-refresh {} ===",
            n + 1,
            steps.len(),
            args.join(" ")
        );
        let argv = std::iter::once("aimharder-refresh".to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .chain(connection.iter().cloned());
        let code = aimharder_refresh::run(aimharder_refresh::Cli::parse_from(argv)).await;
        println!("--> exit code {code}: {}", meaning(code, args[0]));
    }

    // What the human summary does not show: the rotated values written back.
    let bruno = db.query_json(
        "SELECT aimharder_token, aimharder_cookies FROM auth_sessions \
         WHERE user_email = 'bruno@example.com'",
    );
    let cookie = |name: &str| {
        bruno[0]["aimharder_cookies"]
            .as_array()
            .and_then(|jar| jar.iter().find(|c| c["name"] == name))
            .and_then(|c| c["value"].as_str())
            .unwrap_or("(none)")
            .to_string()
    };
    println!(
        "\nStraight from the database: bruno's row now holds the rotated token\n  {}\n\
         and AWSALB={} (was alb-old), and it kept PHPSESSID={}.",
        bruno[0]["aimharder_token"],
        cookie("AWSALB"),
        cookie("PHPSESSID"),
    );

    println!(
        "\nDone. Each command above also took --rest-url, --service-role-key and \
         --aimharder-url,\nwhich point it at the local stack; against a real project \
         set SUPABASE_URL and\nSUPABASE_SECRET_KEY instead (see README.md). \
         The stack is removed on exit."
    );
    std::process::ExitCode::SUCCESS
}

/// Six sessions, and what the simulated AimHarder answers for each.
fn seed(db: &TestDb, aim: &FakeAimHarder) {
    // Tokens look like AimHarder's: USERID|EXPIRY (unix time)|HASH.
    let ana = "10001|1802563200|4f0c2a9be1d7a3c8f6e5b4a392817d60";
    Seed::new("ana@example.com", ana).insert(db);
    aim.script(ana, vec![Reply::ok()]);

    let bruno = "10002|1802563200|9ab1c0d2e3f4a5b6c7d8e9f0a1b2c3d4";
    Seed::new("bruno@example.com", bruno)
        .cookies(
            r#"[{"name":"AWSALB","value":"alb-old"},{"name":"PHPSESSID","value":"php-bruno"},{"name":"amhrdrauth","value":"auth-bruno"}]"#,
        )
        .insert(db);
    aim.script(
        bruno,
        vec![Reply::Refresh {
            token: Some("10002|1803427200|0e1d2c3b4a5968778695a4b3c2d1e0f9".into()),
            fingerprint: None,
            set_cookies: vec![
                "AWSALB=alb-new; Expires=Thu, 03 Dec 2026 15:00:00 GMT; Path=/".into(),
            ],
        }],
    );

    let carla = "10003|1802563200|c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
    Seed::new("carla@example.com", carla).insert(db);
    aim.script(carla, vec![Reply::LoginPage]);

    let diego = "10004|1802563200|d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4";
    Seed::new("diego@example.com", diego).insert(db);
    aim.script(diego, vec![Reply::Status(403)]);

    Seed::new(
        "elena@example.com",
        "10005|1802563200|e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5",
    )
    .refreshed("now() - interval '1 hour'")
    .insert(db);

    Seed::new(
        "fede@example.com",
        "10006|1802563200|f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6",
    )
    .disabled()
    .insert(db);

    println!("Seeded six sessions (emails are masked in the output, as in production):");
    for (who, state) in [
        (
            "ana",
            "refreshed 7 h ago, due     -> AimHarder answers normally",
        ),
        (
            "bruno",
            "refreshed 7 h ago, due     -> AimHarder rotates the token and the AWSALB cookie",
        ),
        (
            "carla",
            "refreshed 7 h ago, due     -> AimHarder answers with its login page (expired)",
        ),
        (
            "diego",
            "refreshed 7 h ago, due     -> AimHarder answers HTTP 403 (blocked)",
        ),
        ("elena", "refreshed 1 h ago, not due -> left alone"),
        ("fede", "auto refresh turned off   -> left alone"),
    ] {
        println!("  {who:<6} {state}");
    }
}

fn meaning(code: u8, command: &str) -> &'static str {
    match code {
        0 => "success",
        1 if command == "status" => "status --check found a stale or failing session",
        1 => "at least one session failed or expired",
        64 => "usage error",
        66 => "no such session",
        69 => "Supabase unreachable",
        75 => "out of time with due sessions left",
        77 => "Supabase refused the key",
        78 => "configuration error",
        _ => "see the exit code table in README.md",
    }
}
