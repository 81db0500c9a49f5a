//! FNV-1a, the hasher of the type index: event types are short strings, and
//! SipHash's resistance to chosen keys buys nothing for a process's own types
//! while costing a good part of the per-event budget.

use std::hash::{BuildHasherDefault, Hasher};

/// The 64-bit FNV-1a hasher.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` keyed by FNV-1a.
pub type FnvHashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;
