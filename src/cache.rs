//! A small in-process cache of registry reads (clients, agents, grants) with a
//! time to live, so a busy client or agent costs no database round trip.
//!
//! It is never the authority on anything that must bite at once: revocation,
//! consent withdrawal and an agent's kill switch are checked in the revocation
//! store on every use. What it may serve stale, for at most its TTL, is what an
//! administrator changes in a registration (ceilings, redirect URIs, keys).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this are dropped all at once (a bound on memory, not an LRU).
const MAX_ENTRIES: usize = 100_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A zero `ttl` disables the cache: every lookup misses.
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (v, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    /// Forgets expired entries; called periodically.
    pub fn purge(&self) {
        let ttl = self.ttl;
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_zero_ttl_caches_nothing() {
        let c = TtlCache::new(Duration::from_millis(30));
        c.insert("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&"a"), None);
        c.purge();
        assert!(c.entries.lock().map(|e| e.is_empty()).unwrap_or(false));

        let off = TtlCache::new(Duration::ZERO);
        off.insert("a", 1);
        assert_eq!(off.get(&"a"), None);
    }
}
