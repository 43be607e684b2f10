//! Emails as output shows them.

/// `j***@example.com`: enough to recognise a member, not to harvest addresses.
pub fn mask_email(email: &str) -> String {
    let (local, domain) = match email.split_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (email, None),
    };
    let first: String = local.chars().take(1).collect();
    match domain {
        Some(d) => format!("{first}***@{d}"),
        None => format!("{first}***"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_to_first_letter_and_domain() {
        assert_eq!(mask_email("john@example.com"), "j***@example.com");
        assert_eq!(mask_email("no-at-sign"), "n***");
        assert_eq!(mask_email(""), "***");
    }
}
