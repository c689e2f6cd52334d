//! Every centre id ever seen, numbered from 0. The directory keeps each
//! centre's number beside it and the availability is an array indexed by
//! it, so a search that weighs thousands of candidates reads their
//! availability without hashing a single id.

use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

/// Shared by a directory and the availability it is searched with; numbers
/// are never reused, so a number read from one is valid in the other.
#[derive(Debug, Default)]
pub struct Numbers {
    /// Keyed by the directory's own copy of each id where it has one.
    ids: RwLock<FxHashMap<Arc<str>, u32>>,
}

impl Numbers {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The id's number, given it now if it has none.
    pub fn of(&self, id: &str) -> u32 {
        self.get(id).unwrap_or_else(|| self.give(id.into()))
    }

    /// The same, keeping `id` itself rather than a copy if it is new.
    pub fn of_shared(&self, id: &Arc<str>) -> u32 {
        self.get(id).unwrap_or_else(|| self.give(id.clone()))
    }

    fn give(&self, id: Arc<str>) -> u32 {
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        let next = u32::try_from(ids.len()).expect("fewer than 2^32 centres");
        *ids.entry(id).or_insert(next)
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        self.ids.read().unwrap_or_else(|e| e.into_inner()).get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_keeps_its_number() {
        let numbers = Numbers::default();
        assert_eq!((numbers.of("metz"), numbers.of("nancy"), numbers.of("metz")), (0, 1, 0));
        assert_eq!((numbers.get("nancy"), numbers.get("toul")), (Some(1), None));
    }
}
