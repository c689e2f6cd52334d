//! Slot lists kept while nothing changes them: a centre's page is read by
//! everyone near it at once on launch day, and one query per centre and
//! replica answers them all. An entry is dropped as soon as the
//! availability follower sees any slot of its centre change (on any
//! replica), and is not served past the instant its first slot starts or
//! its first hold expires. Kept longer than a second only while the
//! follower keeps up: a list is then stale by at most a change committed
//! within the second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use creneau_proto::slot_inventory::v1 as pb;

/// How stale a list may be.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a list is kept while the follower keeps up: what is read often
/// is read again well within it.
const KEEP_FOR: Duration = Duration::from_secs(60);
/// Past this many centres, the cache starts afresh: it bounds memory (a
/// week's list is a few kilobytes).
const MAX_CENTRES: usize = 10_000;

/// What a list depends on besides its centre.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub available_only: bool,
}

struct Entry {
    key: ListKey,
    read_at: Instant,
    /// The list changes by time alone then.
    changes_at: Option<DateTime<Utc>>,
    list: Arc<pb::ListSlotsResponse>,
}

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
    /// When the follower's last complete pass began: every change
    /// committed before then has dropped the lists it touches.
    followed_from: Option<Instant>,
}

impl Inner {
    fn serves(&self, e: &Entry, now: DateTime<Utc>) -> bool {
        let age = e.read_at.elapsed();
        let following = self.followed_from.is_some_and(|at| at.elapsed() < FRESH_FOR);
        e.changes_at.is_none_or(|at| now < at) && (age < FRESH_FOR || (following && age < KEEP_FOR))
    }
}

impl SlotLists {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, centre: &str, key: &ListKey, now: DateTime<Utc>) -> Option<Arc<pb::ListSlotsResponse>> {
        let inner = self.lock();
        let entry = inner.centres.get(centre)?.iter().find(|e| e.key == *key)?;
        inner.serves(entry, now).then(|| entry.list.clone())
    }

    /// Keeps `list`, read at `read_at` (before the query: a change that
    /// lands during the query drops it), changing by time alone at
    /// `changes_at`.
    pub fn put(
        &self,
        centre: &str,
        key: ListKey,
        (read_at, changes_at): (Instant, Option<DateTime<Utc>>),
        list: Arc<pb::ListSlotsResponse>,
    ) {
        let mut inner = self.lock();
        // A change during a read that took longer than a second may have
        // been forgotten already.
        if read_at.elapsed() >= FRESH_FOR || inner.changed.get(centre).is_some_and(|changed| *changed >= read_at) {
            return;
        }
        if inner.centres.len() >= MAX_CENTRES && !inner.centres.contains_key(centre) {
            inner.centres.clear();
        }
        let now = Utc::now();
        let Inner { centres, followed_from, changed: _ } = &mut *inner;
        let following = followed_from.is_some_and(|at| at.elapsed() < FRESH_FOR);
        let entries = centres.entry(centre.to_owned()).or_default();
        entries.retain(|e| {
            e.key != key
                && e.changes_at.is_none_or(|at| now < at)
                && e.read_at.elapsed() < if following { KEEP_FOR } else { FRESH_FOR }
        });
        entries.push(Entry { key, read_at, changes_at, list });
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

    /// The follower completed a pass that began at `began`.
    pub fn followed(&self, began: Instant) {
        self.lock().followed_from = Some(began);
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
        cache.put("metz", key(), (Instant::now(), None), list.clone());
        assert!(cache.get("metz", &key(), Utc::now()).is_some());
        assert!(cache.get("nancy", &key(), Utc::now()).is_none());
        assert!(cache.get("metz", &ListKey { available_only: true, ..key() }, Utc::now()).is_none());
        cache.invalidate([&"metz".to_owned()]);
        assert!(cache.get("metz", &key(), Utc::now()).is_none());
    }

    #[test]
    fn a_list_read_before_a_change_is_not_kept_after_it() {
        let cache = SlotLists::default();
        let read_at = Instant::now();
        cache.invalidate([&"metz".to_owned()]);
        cache.put("metz", key(), (read_at, None), Arc::new(pb::ListSlotsResponse::default()));
        assert!(cache.get("metz", &key(), Utc::now()).is_none());
        cache.put("metz", key(), (Instant::now(), None), Arc::new(pb::ListSlotsResponse::default()));
        assert!(cache.get("metz", &key(), Utc::now()).is_some());
    }

    #[test]
    fn a_list_is_not_served_once_its_first_slot_starts_or_a_hold_expires() {
        let cache = SlotLists::default();
        let now = Utc::now();
        let changes_at = now + chrono::Duration::seconds(30);
        cache.put("metz", key(), (Instant::now(), Some(changes_at)), Arc::new(pb::ListSlotsResponse::default()));
        assert!(cache.get("metz", &key(), now).is_some());
        assert!(cache.get("metz", &key(), changes_at).is_none());
    }

    #[test]
    fn past_a_second_a_list_is_served_only_while_the_follower_keeps_up() {
        let cache = SlotLists::default();
        let read_at = Instant::now() - Duration::from_millis(1500);
        let old = Entry { key: key(), read_at, changes_at: None, list: Arc::default() };
        cache.lock().centres.insert("metz".into(), vec![old]);
        assert!(cache.get("metz", &key(), Utc::now()).is_none(), "no pass of the follower yet");
        cache.followed(Instant::now() - Duration::from_millis(1200));
        assert!(cache.get("metz", &key(), Utc::now()).is_none(), "the follower is behind");
        cache.followed(Instant::now());
        assert!(cache.get("metz", &key(), Utc::now()).is_some(), "the follower keeps up");
        // A read that took over a second is not kept at all.
        cache.put("nancy", key(), (read_at, None), Arc::default());
        assert!(cache.get("nancy", &key(), Utc::now()).is_none());
    }
}
