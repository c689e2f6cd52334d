//! Slot lists kept for a second: a centre's page is read by everyone near
//! it at once on launch day, and one query a second per centre and replica
//! answers them all. An entry is dropped as soon as the availability
//! follower sees any slot of its centre change (on any replica), so it is
//! only ever stale by a hold taken or expired within the second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use creneau_proto::slot_inventory::v1 as pb;

const FRESH_FOR: Duration = Duration::from_secs(1);
/// Past this many centres, the cache starts afresh: it bounds memory, and
/// what is read often is back within a second.
const MAX_CENTRES: usize = 20_000;

/// What a list depends on besides its centre.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub available_only: bool,
}

type Entry = (ListKey, Instant, Arc<pb::ListSlotsResponse>);

#[derive(Clone, Default)]
pub struct SlotLists {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    centres: HashMap<String, Vec<Entry>>,
    /// When each centre was last seen changing, for a second: a list read
    /// before that and kept after it would be stale.
    changed: HashMap<String, Instant>,
}

impl SlotLists {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, centre: &str, key: &ListKey) -> Option<Arc<pb::ListSlotsResponse>> {
        let inner = self.lock();
        let (_, at, list) = inner.centres.get(centre)?.iter().find(|(k, _, _)| k == key)?;
        (at.elapsed() < FRESH_FOR).then(|| list.clone())
    }

    /// Keeps `list`, read at `read_at` (before the query: a change that
    /// lands during the query drops it).
    pub fn put(&self, centre: &str, key: ListKey, read_at: Instant, list: Arc<pb::ListSlotsResponse>) {
        let mut inner = self.lock();
        if inner.changed.get(centre).is_some_and(|changed| *changed >= read_at) {
            return;
        }
        let centres = &mut inner.centres;
        if centres.len() >= MAX_CENTRES && !centres.contains_key(centre) {
            centres.clear();
        }
        let entries = centres.entry(centre.to_owned()).or_default();
        entries.retain(|(k, at, _)| *k != key && at.elapsed() < FRESH_FOR);
        entries.push((key, read_at, list));
    }

    /// Forgets the lists of centres whose slots changed.
    pub fn invalidate<'a>(&self, changed: impl IntoIterator<Item = &'a String>) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.changed.retain(|_, at| at.elapsed() < FRESH_FOR);
        for centre in changed {
            inner.centres.remove(centre);
            inner.changed.insert(centre.clone(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ListKey {
        ListKey { start: DateTime::UNIX_EPOCH, end: DateTime::UNIX_EPOCH, available_only: false }
    }

    #[test]
    fn a_list_is_kept_until_its_centre_changes() {
        let cache = SlotLists::default();
        let list = Arc::new(pb::ListSlotsResponse::default());
        cache.put("metz", key(), Instant::now(), list.clone());
        assert!(cache.get("metz", &key()).is_some());
        assert!(cache.get("nancy", &key()).is_none());
        assert!(cache.get("metz", &ListKey { available_only: true, ..key() }).is_none());
        cache.invalidate([&"metz".to_owned()]);
        assert!(cache.get("metz", &key()).is_none());
    }

    #[test]
    fn a_list_read_before_a_change_is_not_kept_after_it() {
        let cache = SlotLists::default();
        let read_at = Instant::now();
        cache.invalidate([&"metz".to_owned()]);
        cache.put("metz", key(), read_at, Arc::new(pb::ListSlotsResponse::default()));
        assert!(cache.get("metz", &key()).is_none());
        cache.put("metz", key(), Instant::now(), Arc::new(pb::ListSlotsResponse::default()));
        assert!(cache.get("metz", &key()).is_some());
    }
}
