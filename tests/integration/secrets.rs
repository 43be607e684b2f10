//! The service key, tokens and cookie values never reach any output, at the
//! most verbose logging, as text or JSON, whatever happens to the session.

use aimharder_testkit::aimharder::Reply;
use aimharder_testkit::seed::Seed;
use aimharder_testkit::start::stack;

use crate::BIN;

#[tokio::test]
async fn no_secret_appears_in_any_output_at_any_verbosity() {
    let (db, aim) = stack().await;
    let tokens = [
        "111|1766731601|tok-ok",
        "222|1766731601|tok-rot",
        "333|1|tok-403",
        "444|1|tok-503",
        "555|1|tok-login",
    ];
    let cookie_values = ["cookie-secret-php", "cookie-secret-auth"];
    let cookies = format!(
        r#"[{{"name":"PHPSESSID","value":"{}"}},{{"name":"amhrdrauth","value":"{}"}}]"#,
        cookie_values[0], cookie_values[1]
    );
    for (i, t) in tokens.iter().enumerate() {
        Seed::new(&format!("m{i}@example.com"), t)
            .cookies(&cookies)
            .insert(&db);
    }
    aim.script(
        tokens[1],
        vec![Reply::Refresh {
            token: Some("999|1799999999|tok-new-secret".into()),
            fingerprint: None,
            set_cookies: vec!["AWSALB=cookie-secret-alb; Path=/".into()],
        }],
    );
    aim.script(tokens[2], vec![Reply::Status(403)]);
    aim.script(tokens[3], vec![Reply::Status(503)]);
    aim.script(
        tokens[4],
        vec![Reply::Redirect(302, "/login?token=555|1|tok-login")],
    );

    let secrets: Vec<&str> = tokens
        .iter()
        .copied()
        .chain(cookie_values)
        .chain(["tok-new-secret", "cookie-secret-alb", db.service_key()])
        .collect();
    aim.script("666|1|tok-hang", vec![Reply::Hang]);
    Seed::new("hang@example.com", "666|1|tok-hang")
        .cookies(&cookies)
        .insert(&db);
    let secrets: Vec<&str> = secrets.into_iter().chain(["tok-hang"]).collect();
    for format in ["text", "json"] {
        let run = BIN
            .run(&db, &aim)
            .env("RUST_LOG", "trace")
            .env("GITHUB_ACTIONS", "true");
        let summary = run.dir().join("summary.md");
        let metrics = run.dir().join("metrics.prom");
        let done = run
            .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
            .env("AIMHARDER_METRICS_FILE", metrics.to_str().unwrap())
            .refresh_all_json()
            .args(&[
                "--force",
                "-vv",
                "--log-format",
                format,
                "--request-timeout",
                "1s",
            ])
            .exits(1)
            .output()
            .await;
        assert!(done.stderr.len() > 200, "trace logging produced output");
        // The runner's own mask command is the one line that must name the key.
        let (mask, stderr) = done.stderr.split_once('\n').unwrap();
        assert_eq!(mask, format!("::add-mask::{}", db.service_key()));
        let files = [
            std::fs::read_to_string(done.dir.path().join("summary.md")).unwrap(),
            std::fs::read_to_string(done.dir.path().join("metrics.prom")).unwrap(),
        ];
        assert!(files[0].contains("failed"), "{}", files[0]);
        for secret in &secrets {
            let fragment = secret.rsplit('|').next().unwrap();
            assert!(
                !done.stdout.contains(fragment),
                "{secret} in stdout:\n{}",
                done.stdout
            );
            assert!(!stderr.contains(fragment), "{secret} in stderr:\n{stderr}");
            for file in &files {
                assert!(
                    !file.contains(fragment),
                    "{secret} in a written file:\n{file}"
                );
            }
        }
        let status = BIN
            .run(&db, &aim)
            .args(&["status", "--sessions", "-vv", "--json"])
            .output()
            .await;
        for secret in &secrets {
            let fragment = secret.rsplit('|').next().unwrap();
            assert!(
                !status.stdout.contains(fragment) && !status.stderr.contains(fragment),
                "{secret} in status"
            );
        }
    }
}

/// `--help` of every command, with every variable set to a value of its
/// own: the variables are named, none of the values is shown.
#[tokio::test]
async fn help_with_every_variable_set_shows_none_of_their_values() {
    let cli = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli.rs")).unwrap();
    let vars: Vec<&str> = cli
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(vars.len() >= 20, "{vars:?}");
    let value = |var: &str| format!("value-of-{}", var.to_ascii_lowercase());
    for command in ["refresh-all", "refresh-one", "probe", "status"] {
        let mut run = BIN.bare().args(&[command, "--help"]);
        for var in &vars {
            run = run.env(var, &value(var));
        }
        let done = run.succeeds().output().await;
        assert!(
            done.stdout.contains("AIMHARDER_HEALTHCHECK_URL"),
            "{command}"
        );
        for var in &vars {
            assert!(
                !done.stdout.contains(&value(var)) && !done.stderr.contains(&value(var)),
                "{command} --help shows {var}'s value"
            );
        }
    }
}

#[tokio::test]
async fn under_github_actions_a_key_read_from_a_file_is_masked_once_before_any_output() {
    let (db, aim) = stack().await;
    Seed::new("a@example.com", "1|1|x").insert(&db);
    let run = BIN
        .run(&db, &aim)
        .without_env("SUPABASE_SERVICE_ROLE_KEY")
        .env("GITHUB_ACTIONS", "true");
    let key_file = run.dir().join("key");
    std::fs::write(&key_file, format!("{}\n", db.service_key())).unwrap();
    let done = run
        .env("SUPABASE_SERVICE_ROLE_KEY_FILE", key_file.to_str().unwrap())
        .status_json()
        .arg("-v")
        .succeeds()
        .output()
        .await;
    let mask = format!("::add-mask::{}", db.service_key());
    assert_eq!(
        done.stderr.lines().next(),
        Some(mask.as_str()),
        "{}",
        done.stderr
    );
    assert_eq!(
        done.stderr.matches(db.service_key()).count(),
        1,
        "{}",
        done.stderr
    );
}
