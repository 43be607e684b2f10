//! Reads the answer to AimHarder's `/setrefresh`.
//!
//! AimHarder has no JSON endpoint for renewing a session: `/setrefresh`
//! answers with an HTML page whose inline script writes the new
//! `refreshToken` (and `fingerprint`) into `localStorage`. We read those
//! values out of the script text instead of running it. When the session is
//! already dead the same URL serves a login form instead, which the caller
//! must tell apart from a page it does not understand at all.

use scraper::{ElementRef, Html};
use secrecy::SecretString;

/// What `/setrefresh` told the browser to store.
#[derive(Debug)]
pub struct RefreshedSession {
    /// The new `refreshToken`.
    pub token: SecretString,
    /// The `fingerprint` the page stored, if it stored one.
    pub(crate) fingerprint: Option<String>,
}

/// What a `/setrefresh` answer is.
#[derive(Debug)]
pub enum Page {
    /// The page stored a `refreshToken`.
    Refreshed(RefreshedSession),
    /// A login form: the session is dead.
    Login,
    /// Neither a refresh nor a login page.
    Unexpected,
}

/// Classifies a `/setrefresh` answer. Never panics, whatever the input.
pub fn parse_page(html: &str) -> Page {
    let document = Html::parse_document(html);
    let mut stored = Stored::default();
    let mut login_form = false;

    // Walk from the tree root rather than using `root_element()`, which
    // panics if there is no `<html>` element.
    for element in document
        .tree
        .root()
        .descendants()
        .filter_map(ElementRef::wrap)
    {
        match element.value().name() {
            "script" => stored.scan_script(&element.text().collect::<String>()),
            "input" => {
                login_form |= element
                    .attr("type")
                    .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("password"));
            }
            "form" => {
                login_form |= element
                    .attr("action")
                    .is_some_and(|action| action.to_ascii_lowercase().contains("login"));
            }
            _ => {}
        }
    }

    match stored.token {
        Some(token) => Page::Refreshed(RefreshedSession {
            token: SecretString::from(token),
            fingerprint: stored.fingerprint,
        }),
        None if login_form => Page::Login,
        None => Page::Unexpected,
    }
}

/// The `localStorage` entries we care about, as the scripts left them.
#[derive(Default)]
struct Stored {
    token: Option<String>,
    fingerprint: Option<String>,
}

impl Stored {
    /// Scripts are scanned in document order and each later write replaces
    /// the earlier one, as it would in a browser. Calls whose value we could
    /// not read, and empty values, are ignored rather than clearing what an
    /// earlier call stored.
    fn scan_script(&mut self, script: &str) {
        const NEEDLE: &str = "localStorage";
        let mut cursor = Cursor {
            text: script,
            pos: 0,
        };
        while let Some(offset) = cursor.rest().find(NEEDLE) {
            let start = cursor.pos + offset;
            cursor.pos = start + NEEDLE.len();
            // `my_localStorage.setItem(...)` is some other object.
            let preceded_by_identifier = script
                .get(..start)
                .and_then(|before| before.chars().next_back())
                .is_some_and(is_identifier_char);
            if preceded_by_identifier {
                continue;
            }
            // A failed attempt leaves the cursor where reading stopped, so
            // text already consumed is never rescanned and the scan stays
            // linear even on pathological input.
            let Some((key, value)) = cursor.set_item_args() else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                "refreshToken" => self.token = Some(value),
                "fingerprint" => self.fingerprint = Some(value),
                _ => {}
            }
        }
    }
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// A position in a script's text. `pos` only ever moves by the length of
/// something just matched at it, so it always sits on a char boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Skips whitespace, then consumes `token` if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_whitespace();
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    /// Reads `.setItem(<literal>, <literal>)` right after `localStorage`.
    /// Anything else in an argument (a variable, a concatenation) means we
    /// cannot know the stored value, so the whole call is rejected.
    fn set_item_args(&mut self) -> Option<(String, String)> {
        if !(self.eat(".") && self.eat("setItem") && self.eat("(")) {
            return None;
        }
        let key = self.string_literal()?;
        if !self.eat(",") {
            return None;
        }
        let value = self.string_literal()?;
        // Formatters such as Prettier add a trailing comma to multi-line calls.
        self.eat(",");
        self.eat(")").then_some((key, value))
    }

    /// Reads a '…' or "…" literal. Only the escapes a server would plausibly
    /// emit in a token are understood; any other escape, or a literal cut
    /// short by a line break or the end of the script, yields `None`.
    fn string_literal(&mut self) -> Option<String> {
        self.skip_whitespace();
        let rest = self.rest();
        let mut chars = rest.char_indices();
        let Some((_, quote @ ('"' | '\''))) = chars.next() else {
            return None;
        };
        let mut value = String::new();
        while let Some((at, c)) = chars.next() {
            match c {
                _ if c == quote => {
                    self.pos += at + c.len_utf8();
                    return Some(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\'' | '\\' | '/'))) => value.push(escaped),
                    _ => break,
                },
                '\n' | '\r' => break,
                _ => value.push(c),
            }
        }
        // Skip what was read so the caller does not rescan it.
        self.pos += rest.len() - chars.as_str().len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    /// Unwraps a `Refreshed` page into `(token, fingerprint)`.
    fn refreshed(html: &str) -> (String, Option<String>) {
        match parse_page(html) {
            Page::Refreshed(session) => (
                session.token.expose_secret().to_owned(),
                session.fingerprint,
            ),
            other => panic!("expected Refreshed, got {other:?}"),
        }
    }

    fn script(body: &str) -> String {
        format!("<script>{body}</script>")
    }

    #[test]
    fn observed_page() {
        let (token, fingerprint) =
            refreshed(include_str!("../../tests/fixtures/page_observed.html"));
        assert_eq!(token, "69232|1766731601|03485f300f1a53a7e34143a0af9d2592");
        assert_eq!(
            fingerprint.as_deref(),
            Some("my0pz7di4kr8nuq718uecu4ev23fbosfp20z1q6smntm42ideb")
        );
    }

    /// Third script, single quotes, tabs and newlines inside the call,
    /// `window.localStorage`, and an unrelated `setItem` in an earlier script.
    #[test]
    fn full_page() {
        let (token, fingerprint) = refreshed(include_str!("../../tests/fixtures/page_full.html"));
        assert_eq!(token, "12345|1766731601|0123456789abcdef0123456789abcdef");
        assert_eq!(fingerprint.as_deref(), Some("abcdefghij0123456789"));
    }

    #[test]
    fn token_without_fingerprint() {
        let (token, fingerprint) =
            refreshed(&script(r#"localStorage.setItem("refreshToken", "1|2|3");"#));
        assert_eq!(token, "1|2|3");
        assert_eq!(fingerprint, None);
    }

    #[test]
    fn escaped_characters_in_values() {
        let (token, fingerprint) = refreshed(&script(
            r#"localStorage.setItem("refreshToken", "a\"b\\c\/d");
               localStorage.setItem('fingerprint', 'it\'s');"#,
        ));
        assert_eq!(token, r#"a"b\c/d"#);
        assert_eq!(fingerprint.as_deref(), Some("it's"));
    }

    #[test]
    fn last_refresh_token_wins_across_scripts() {
        let html = format!(
            "{}{}",
            script(
                r#"localStorage.setItem("refreshToken", "first"); localStorage.setItem("refreshToken", "second");"#
            ),
            script(r#"localStorage.setItem("refreshToken", "third");"#),
        );
        assert_eq!(refreshed(&html).0, "third");
    }

    #[test]
    fn unreadable_or_empty_later_value_keeps_earlier_one() {
        let html = script(
            r#"localStorage.setItem("refreshToken", "good");
               localStorage.setItem("refreshToken", "bad\u0041");
               localStorage.setItem("refreshToken", "");"#,
        );
        assert_eq!(refreshed(&html).0, "good");
    }

    #[test]
    fn trailing_comma_is_accepted() {
        let html = script("localStorage.setItem(\n  \"refreshToken\",\n  \"tok\",\n);");
        assert_eq!(refreshed(&html).0, "tok");
    }

    #[test]
    fn other_objects_are_ignored() {
        let html = script(r#"my_localStorage.setItem("refreshToken", "nope");"#);
        assert!(matches!(parse_page(&html), Page::Unexpected));
    }

    #[test]
    fn page_without_calls_is_unexpected() {
        let page = parse_page(include_str!("../../tests/fixtures/page_no_calls.html"));
        assert!(matches!(page, Page::Unexpected), "{page:?}");
    }

    #[test]
    fn empty_input_is_unexpected() {
        assert!(matches!(parse_page(""), Page::Unexpected));
    }

    #[test]
    fn empty_token_is_absent() {
        let html = script(
            r#"localStorage.setItem("refreshToken", ""); localStorage.setItem("fingerprint", "f");"#,
        );
        assert!(matches!(parse_page(&html), Page::Unexpected));
    }

    #[test]
    fn password_input_is_login() {
        let page = parse_page(include_str!("../../tests/fixtures/page_login.html"));
        assert!(matches!(page, Page::Login), "{page:?}");
    }

    #[test]
    fn login_form_action_is_login() {
        let html = r#"<form method="post" action="/Es/LOGIN?next=%2F"><input name="mail"></form>"#;
        assert!(matches!(parse_page(html), Page::Login));
    }

    #[test]
    fn refresh_wins_over_login_form() {
        let html = format!(
            r#"<form action="/login"><input type="password"></form>{}"#,
            script(r#"localStorage.setItem("refreshToken", "tok");"#)
        );
        assert_eq!(refreshed(&html).0, "tok");
    }

    #[test]
    fn unterminated_garbage_is_not_refreshed() {
        let page = parse_page("\u{0}\u{fffd}<script>localStorage.setItem(\"refreshToken\"");
        assert!(!matches!(page, Page::Refreshed(_)), "{page:?}");
        let page = parse_page("<script>localStorage.setItem(\"refreshToken\", \"abc");
        assert!(!matches!(page, Page::Refreshed(_)), "{page:?}");
    }

    #[test]
    fn non_literal_value_is_not_refreshed() {
        for body in [
            r#"localStorage.setItem("refreshToken", someVariable);"#,
            r#"localStorage.setItem("refreshToken", "a" + b);"#,
        ] {
            let page = parse_page(&script(body));
            assert!(!matches!(page, Page::Refreshed(_)), "{body}: {page:?}");
        }
    }

    #[test]
    fn debug_does_not_leak_token() {
        let html = script(r#"localStorage.setItem("refreshToken", "supersecret");"#);
        assert!(!format!("{:?}", parse_page(&html)).contains("supersecret"));
    }

    /// Whitespace as it may appear between tokens of the call.
    fn gap() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just(' '), Just('\t'), Just('\n'), Just('\r')],
            0..4,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    /// A `setItem` call with random whitespace, quote style and receiver.
    fn set_item_call(key: &'static str) -> impl Strategy<Value = (String, String)> {
        (
            "[A-Za-z0-9|]{1,80}",
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(gap(), 7),
        )
            .prop_map(move |(value, single_quotes, window, gaps)| {
                let q = if single_quotes { '\'' } else { '"' };
                let receiver = if window {
                    "window.localStorage"
                } else {
                    "localStorage"
                };
                let call = format!(
                    "{receiver}{}.{}setItem{}({}{q}{key}{q}{},{}{q}{value}{q}{})",
                    gaps[0], gaps[1], gaps[2], gaps[3], gaps[4], gaps[5], gaps[6],
                );
                (call, value)
            })
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>()) {
            let _ = parse_page(&input);
        }

        #[test]
        fn never_panics_on_near_miss_scripts(body in r#"(localStorage|setItem|[.(),'"\\ \n]|refreshToken|[a-z|]){0,40}"#) {
            let _ = parse_page(&script(&body));
        }

        #[test]
        fn finds_generated_values(
            (token_call, token) in set_item_call("refreshToken"),
            (fingerprint_call, fingerprint) in set_item_call("fingerprint"),
            separator in gap(),
        ) {
            let html = format!(
                "<!DOCTYPE html><html><head><script>var a = 1;</script></head><body>{}</body></html>",
                script(&format!("{token_call};{separator}{fingerprint_call};")),
            );
            let (found_token, found_fingerprint) = refreshed(&html);
            prop_assert_eq!(found_token, token);
            prop_assert_eq!(found_fingerprint, Some(fingerprint));
        }
    }
}
