//! Run ids: a random version-4 uuid from the OS's CSPRNG, for the
//! healthcheck's `rid` and for the claims a run takes (nothing else tells
//! two runs' claims apart, so they must not be guessable or repeat).

/// Returns a new run id.
pub(crate) fn new_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_version_4_uuids_and_differ() {
        let a = new_run_id();
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!(
            matches!(&a[19..20], "8" | "9" | "a" | "b"),
            "RFC 4122 variant: {a}"
        );
        assert_ne!(a, new_run_id());
    }
}
