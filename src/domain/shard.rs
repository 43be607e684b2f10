//! Splitting the sessions between runners: shard I of N by a hash of the id.

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `id` falls in this shard.
    pub fn holds(&self, id: &str) -> bool {
        shard_of(id, self.count) == self.index
    }
}

/// Shard (1-based) of an id: FNV-1a of the lower-cased id, so every runner
/// agrees whatever the database's order or the id's case.
pub fn shard_of(id: &str, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.trim().to_ascii_lowercase().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(count.max(1))) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_falls_in_exactly_one_shard() {
        for n in 1..=7u32 {
            for i in 0..200 {
                let id = format!("00000000-0000-4000-8000-{i:012}");
                let s = shard_of(&id, n);
                assert!((1..=n).contains(&s));
                assert_eq!(s, shard_of(&id.to_uppercase(), n));
            }
        }
    }

    #[test]
    fn shards_spread_ids_evenly() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[(shard_of(&format!("id-{i}"), 4) - 1) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..=1200).contains(&c)),
            "{counts:?}"
        );
    }
}
