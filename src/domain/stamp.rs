//! Stored errors start with their time, so "no error newer than X" can be
//! decided by the server without a column of its own.

use time::OffsetDateTime;

use crate::domain::timefmt;

/// The lower bound a stamped error must reach to count as newer than `cutoff`.
pub(crate) fn error_stamp_bound(cutoff: OffsetDateTime) -> String {
    format!("[{}", timefmt::utc_seconds(cutoff))
}

/// At most `max_chars` characters of `text`.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error as `refresh_write_one` stores it: its time first, at most
    /// 500 characters in all.
    fn stamped_error(now: OffsetDateTime, message: &str) -> String {
        let stamp = format!("[{}] ", timefmt::utc_seconds(now));
        let room = 500usize.saturating_sub(stamp.chars().count());
        format!("{stamp}{}", truncate(message, room))
    }

    #[test]
    fn stamped_errors_fit_500_characters_and_sort_by_time() {
        let now = time::macros::datetime!(2026-11-26 15:00:00 UTC);
        let long = "é".repeat(800);
        let stamped = stamped_error(now, &long);
        assert_eq!(stamped.chars().count(), 500);
        assert!(stamped.starts_with("[2026-11-26T15:00:00Z] "));
        let older = error_stamp_bound(time::macros::datetime!(2026-11-26 14:00:00 UTC));
        assert!(older.as_str() < stamped.as_str());
    }
}
