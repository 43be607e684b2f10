//! Session rows for a test to start from: one at a time ([`Seed`]), or
//! many due ones in one statement ([`due_in_bulk`]); and [`row`] to read
//! one back.

use serde_json::Value;

use crate::stack::TestDb;

/// A session row to insert; timestamps are SQL expressions.
pub struct Seed {
    email: String,
    token: String,
    cookies: String,
    fingerprint: Option<String>,
    created_at: String,
    last_refresh: Option<String>,
    refresh_count: i64,
    error: Option<String>,
    enabled: bool,
}

impl Seed {
    pub fn new(email: &str, token: &str) -> Self {
        Self {
            email: email.into(),
            token: token.into(),
            cookies: r#"[{"name":"PHPSESSID","value":"php-secret-1"},{"name":"amhrdrauth","value":"auth-secret-1"}]"#
                .into(),
            fingerprint: None,
            created_at: "now() - interval '30 days'".into(),
            last_refresh: Some("now() - interval '7 hours'".into()),
            refresh_count: 3,
            error: None,
            enabled: true,
        }
    }

    pub fn cookies(mut self, json: &str) -> Self {
        self.cookies = json.into();
        self
    }

    /// Cookies naming their own session (the simulated AimHarder's
    /// `PHPSESSID`), which whoami scripts and the liveness model key on.
    pub fn session(self, name: &str) -> Self {
        self.cookies(&format!(
            r#"[{{"name":"PHPSESSID","value":"{name}"}},{{"name":"amhrdrauth","value":"auth-{name}"}}]"#
        ))
    }

    pub fn fingerprint(mut self, fp: &str) -> Self {
        self.fingerprint = Some(fp.into());
        self
    }

    pub fn never_refreshed(mut self, created: &str) -> Self {
        self.last_refresh = None;
        self.created_at = created.into();
        self
    }

    pub fn refreshed(mut self, when: &str) -> Self {
        self.last_refresh = Some(when.into());
        self
    }

    pub fn count(mut self, n: i64) -> Self {
        self.refresh_count = n;
        self
    }

    pub fn error(mut self, text: &str) -> Self {
        self.error = Some(text.into());
        self
    }

    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Inserts the row and returns its id.
    pub fn insert(self, db: &TestDb) -> String {
        self.insert_into(db, true)
    }

    /// For a table without the optional fingerprint column.
    pub fn insert_without_fingerprint(self, db: &TestDb) -> String {
        self.insert_into(db, false)
    }

    fn insert_into(self, db: &TestDb, with_fingerprint: bool) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let cookies = if self.cookies == "NULL" {
            "NULL".to_string()
        } else {
            format!("{}::jsonb", q(&self.cookies))
        };
        let (fp_column, fp_value) = if with_fingerprint {
            (
                ", fingerprint",
                format!(", {}", self.fingerprint.as_deref().map_or("NULL".into(), q)),
            )
        } else {
            ("", String::new())
        };
        db.sql(&format!(
            "INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies{fp_column}, created_at, \
             last_refresh_date, refresh_count, last_refresh_error, auto_refresh_enabled) \
             VALUES ({}, {}, {cookies}{fp_value}, {}, {}, {}, {}, {}) RETURNING id",
            q(&self.email),
            q(&self.token),
            self.created_at,
            self.last_refresh.as_deref().unwrap_or("NULL"),
            self.refresh_count,
            self.error.as_deref().map_or("NULL".into(), q),
            self.enabled,
        ))
        .lines()
        .next()
        .unwrap()
        .to_string()
    }
}

/// The row of `id` as JSON.
pub fn row(db: &TestDb, id: &str) -> Value {
    let rows = db.query_json(&format!("SELECT * FROM auth_sessions WHERE id = '{id}'"));
    rows[0].clone()
}

/// `n` due sessions tagged `tag` in one statement, for tests that count
/// rows rather than name them: row `g` (from 1) is `{tag}{g}@example.com`
/// with token `{g}|1|{tag}`, no cookies, never counted, refreshed 7 hours
/// and `g` seconds ago.
pub fn due_in_bulk(db: &TestDb, n: usize, tag: &str) {
    db.sql(&format!(
        "INSERT INTO auth_sessions (user_email, aimharder_token, aimharder_cookies, created_at, \
         last_refresh_date, refresh_count) \
         SELECT '{tag}' || g || '@example.com', g || '|1|{tag}', '[]', now() - interval '30 days', \
                now() - interval '7 hours' - (g || ' seconds')::interval, 0 \
         FROM generate_series(1, {n}) g"
    ));
}
