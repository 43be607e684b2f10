//! A member as output shows them: the one place an email is masked, or
//! shown whole under `--show-emails`, when it is printed.

use serde::Serialize;

use crate::domain::email::Email;
use crate::domain::outcome::SessionReport;
use crate::domain::presentation::Presentation;
use crate::domain::probe::ProbeReport;
use crate::domain::status::StatusLine;

/// A result about one session, which carries its id and stored email.
pub(crate) trait Member: Serialize {
    /// The session's id.
    fn id(&self) -> &str;
    /// The member's email as stored, if the row has one.
    fn email(&self) -> Option<&Email>;
}

/// The email as `presentation` shows it.
pub(crate) fn email(presentation: Presentation, email: Option<&Email>) -> Option<String> {
    email.map(|e| {
        if presentation.show_emails {
            e.stored().to_string()
        } else {
            e.masked()
        }
    })
}

/// The email for a line of text: `-` when the row has none.
pub(crate) fn who(presentation: Presentation, member: &impl Member) -> String {
    email(presentation, member.email()).unwrap_or_else(|| "-".into())
}

/// A result as JSON: its id and shown email first, then its own members,
/// in the documented order.
#[derive(Serialize)]
pub(crate) struct Shown<'a, T: Member> {
    id: &'a str,
    email: Option<String>,
    #[serde(flatten)]
    rest: &'a T,
}

impl<'a, T: Member> Shown<'a, T> {
    /// `member` with its email as `presentation` shows it.
    pub(crate) fn new(presentation: Presentation, member: &'a T) -> Self {
        Self {
            id: member.id(),
            email: email(presentation, member.email()),
            rest: member,
        }
    }
}

macro_rules! members {
    ($($t:ty),*) => {$(
        impl Member for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn email(&self) -> Option<&Email> {
                self.email.as_ref()
            }
        }
    )*};
}

members!(SessionReport, ProbeReport, StatusLine);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::Outcome;

    fn shown(show_emails: bool) -> serde_json::Value {
        let presentation = Presentation {
            json: true,
            show_emails,
            quiet: false,
        };
        let report = SessionReport::new(
            "s1",
            Some(Email::new("john@example.com")),
            Outcome::Refreshed,
        );
        serde_json::to_value(Shown::new(presentation, &report)).unwrap()
    }

    #[test]
    fn json_masks_the_email_unless_asked_and_keeps_every_member() {
        let masked = shown(false);
        assert_eq!(masked["id"], "s1");
        assert_eq!(masked["email"], "j***@example.com");
        assert_eq!(masked["outcome"], "refreshed");
        assert_eq!(masked["attempts"], 0);
        assert_eq!(shown(true)["email"], "john@example.com");
        let keys: Vec<&String> = masked.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 7, "{masked}");
    }
}
