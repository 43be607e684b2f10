//! Splitting the sessions between runners: shard I of N is a range of ids.
//!
//! Ids are uuids from `gen_random_uuid()` (Supabase's default), so ranges of
//! equal width hold about as many sessions each. A range is a plain
//! condition on the id (`id >= A AND id < B`) that the server evaluates, so
//! a runner reads only its own shard's rows, never the whole due set.

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

impl Shard {
    /// Whether `id` falls in this shard: what the server's range says.
    #[cfg(test)]
    fn holds(&self, id: &str) -> bool {
        shard_of(id, self.count) == self.index
    }

    /// The ids of this shard: from the first bound (inclusive) to the
    /// second (exclusive), as uuids; `None` where the range is open (the
    /// first shard has no lower bound, the last no upper one).
    pub(crate) fn bounds(&self) -> (Option<String>, Option<String>) {
        let count = self.count.max(1);
        let index = self.index.clamp(1, count);
        let lower = (index > 1).then(|| bound_uuid(index - 1, count));
        let upper = (index < count).then(|| bound_uuid(index, count));
        (lower, upper)
    }
}

/// Shard (1-based) of an id, by the first 64 bits of the uuid: the same
/// rule as [`Shard::bounds`], which the server applies. An id that is not
/// a uuid falls in shard 1.
pub fn shard_of(id: &str, count: u32) -> u32 {
    let count = count.max(1);
    let high = id_prefix(id).unwrap_or(0);
    ((u128::from(high) * u128::from(count)) >> 64) as u32 + 1
}

/// The first 64 bits of a uuid, whatever its case and dashes.
fn id_prefix(id: &str) -> Option<u64> {
    let hex: String = id.trim().chars().filter(|c| *c != '-').take(16).collect();
    if hex.len() < 16 {
        return None;
    }
    u64::from_str_radix(&hex, 16).ok()
}

/// The smallest id of shard `k + 1` of `count` (0 < k < count):
/// ceil(k × 2^64 / count) as the uuid's first 64 bits, the rest zero.
fn bound_uuid(k: u32, count: u32) -> String {
    let count = u128::from(count);
    let high = (u128::from(k) << 64).div_ceil(count);
    let hex = format!("{:016x}", high as u64);
    format!(
        "{}-{}-{}-0000-000000000000",
        &hex[..8],
        &hex[8..12],
        &hex[12..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(high: u64, low: u64) -> String {
        let hex = format!("{high:016x}{low:016x}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    #[test]
    fn every_id_falls_in_exactly_one_shard_and_inside_its_bounds() {
        let mut ids: Vec<String> = (0..400u64)
            .map(|i| uuid(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i))
            .collect();
        ids.extend([uuid(0, 0), uuid(u64::MAX, u64::MAX)]);
        for n in 1..=7u32 {
            for id in &ids {
                let s = shard_of(id, n);
                assert!((1..=n).contains(&s));
                assert_eq!(s, shard_of(&id.to_uppercase(), n));
                let holders = (1..=n)
                    .filter(|&i| Shard { index: i, count: n }.holds(id))
                    .count();
                assert_eq!(holders, 1, "{id} in {holders} shards of {n}");
                // The server's rule: uuids compare as bytes, like these strings.
                let (lower, upper) = Shard { index: s, count: n }.bounds();
                assert!(lower.is_none_or(|l| id.as_str() >= l.as_str()), "{id} {n}");
                assert!(upper.is_none_or(|u| id.as_str() < u.as_str()), "{id} {n}");
            }
        }
    }

    #[test]
    fn bounds_split_the_id_space_evenly() {
        assert_eq!(Shard { index: 1, count: 1 }.bounds(), (None, None));
        let (lower, upper) = Shard { index: 2, count: 4 }.bounds();
        assert_eq!(
            lower.as_deref(),
            Some("40000000-0000-0000-0000-000000000000")
        );
        assert_eq!(
            upper.as_deref(),
            Some("80000000-0000-0000-0000-000000000000")
        );
        let (lower, upper) = Shard { index: 3, count: 3 }.bounds();
        assert_eq!(
            lower.as_deref(),
            Some("aaaaaaaa-aaaa-aaab-0000-000000000000")
        );
        assert_eq!(upper, None);
    }

    #[test]
    fn random_ids_spread_evenly() {
        let mut counts = [0u32; 4];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..4000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            counts[(shard_of(&uuid(x, i), 4) - 1) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..=1200).contains(&c)),
            "{counts:?}"
        );
    }
}
