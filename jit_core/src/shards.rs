//! A map keyed by token, split into shards so that growing it never moves the whole table
//! at once. The answers and holds maps gain an entry per decision; as one hash table, each
//! doubling copied every entry in one call (tens of milliseconds at a million tokens).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SHARD_BITS: u32 = 6;

/// A token-keyed map in `1 << SHARD_BITS` FxHash maps. Written sorted by token, exactly as
/// one map would be, so snapshots and digests do not depend on the split.
#[derive(Debug, Clone)]
pub struct ShardedMap<V> {
    shards: Vec<FxHashMap<String, V>>,
}

impl<V> Default for ShardedMap<V> {
    fn default() -> ShardedMap<V> {
        ShardedMap {
            shards: (0..1 << SHARD_BITS).map(|_| FxHashMap::default()).collect(),
        }
    }
}

/// The shard of `key`, by FNV-1a: a hash unrelated to FxHash, so the keys of one shard
/// still spread over all of its buckets.
fn shard_of(key: &str) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (hash >> (32 - SHARD_BITS)) as usize
}

impl<V> ShardedMap<V> {
    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[shard_of(key)].get(key)
    }

    /// Sets the value for `key`, returning the previous one.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.shards[shard_of(&key)].insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.shards[shard_of(key)].remove(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(FxHashMap::len).sum()
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(FxHashMap::is_empty)
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|shard| shard.values())
    }
}

impl<V: Serialize> Serialize for ShardedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.iter()
            .collect::<BTreeMap<_, _>>()
            .serialize(serializer)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for ShardedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ShardedMap<V>, D::Error> {
        let flat = BTreeMap::<String, V>::deserialize(deserializer)?;
        let mut map = ShardedMap::default();
        for (key, value) in flat {
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map_and_writes_sorted() {
        let mut map = ShardedMap::default();
        for index in (0..1_000).rev() {
            assert_eq!(map.insert(format!("t{index:04}"), index), None);
        }
        assert_eq!(map.insert("t0007".to_owned(), 7_000), Some(7));
        assert_eq!(map.remove("t0008"), Some(8));
        assert_eq!(map.get("t0007"), Some(&7_000));
        assert_eq!(map.get("t0008"), None);
        assert_eq!(map.len(), 999);
        let written = serde_json::to_string(&map).unwrap_or_default();
        assert!(written.starts_with(r#"{"t0000":0,"t0001":1,"#));
        let read: ShardedMap<i32> = serde_json::from_str(&written).unwrap_or_default();
        assert_eq!(read.len(), 999);
        assert_eq!(read.get("t0999"), Some(&999));
    }
}
