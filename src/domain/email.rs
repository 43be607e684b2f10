//! A member's email as stored, which only output shows, masked unless the
//! operator asks for it whole.

use serde::Deserialize;

/// An email address from the sessions table. It has no `Display`: whatever
/// prints it says how (see [`Email::masked`] and [`Email::stored`]), and its
/// `Debug` masks, so a log line that carries a report cannot harvest
/// addresses.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub(crate) struct Email(String);

impl Email {
    /// Wraps an address, as the table's rows are read.
    #[cfg(test)]
    pub(crate) fn new(stored: impl Into<String>) -> Self {
        Self(stored.into())
    }

    /// The address as stored: for `--show-emails`, and for matching.
    pub(crate) fn stored(&self) -> &str {
        &self.0
    }

    /// `j***@example.com`: enough to recognise a member, not to harvest
    /// addresses.
    pub(crate) fn masked(&self) -> String {
        let (local, domain) = match self.0.split_once('@') {
            Some((l, d)) => (l, Some(d)),
            None => (self.0.as_str(), None),
        };
        let first: String = local.chars().take(1).collect();
        match domain {
            Some(d) => format!("{first}***@{d}"),
            None => format!("{first}***"),
        }
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_to_first_letter_and_domain() {
        assert_eq!(Email::new("john@example.com").masked(), "j***@example.com");
        assert_eq!(Email::new("no-at-sign").masked(), "n***");
        assert_eq!(Email::new("").masked(), "***");
    }

    #[test]
    fn debug_never_shows_the_whole_address() {
        let shown = format!("{:?}", Email::new("john@example.com"));
        assert_eq!(shown, "Email(j***@example.com)");
    }
}
