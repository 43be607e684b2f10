//! Timestamps as PostgREST writes them and as operators read them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Parses an RFC 3339 timestamp; `None` for anything else.
pub(crate) fn parse(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339).ok()
}

/// Full precision, for writing and for filters.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Second precision in UTC, fixed width so stamped text sorts by time.
pub(crate) fn utc_seconds(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// AimHarder tokens look like `USERID|UNIXTIME|HASH`; the middle part appears
/// to be the expiry. Shown to operators only, never used for decisions.
pub(crate) fn token_expiry(token: &str) -> Option<OffsetDateTime> {
    let mut parts = token.split('|');
    let (_user, secs, _hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(secs.parse().ok()?).ok()
}

/// Now, at the database's precision (microseconds), so a time we write
/// reads back equal.
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgrest_timestamps_parse_with_microseconds() {
        let t = parse("2026-11-26T14:52:24.123456+00:00").unwrap();
        assert_eq!(t.microsecond(), 123_456);
        assert_eq!(utc_seconds(t), "2026-11-26T14:52:24Z");
    }

    #[test]
    fn token_expiry_reads_the_middle_part() {
        let t = token_expiry("69232|1766731601|03485f300f1a53a7e34143a0af9d2592").unwrap();
        assert_eq!(t.unix_timestamp(), 1_766_731_601);
        assert!(token_expiry("opaque").is_none());
        assert!(token_expiry("1|x|y").is_none());
    }
}
