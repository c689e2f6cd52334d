//! What every replica answers from: the directory and the availability of
//! every centre, in memory, kept current by two feeds (see `feeds`).
//! Searches take read locks for microseconds; the feeds write in batches.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::availability::Availability;
use crate::domain::{Directory, Gazetteer, NewCentre, Numbers};

pub struct Memory {
    pub(crate) directory: RwLock<Directory>,
    pub(crate) places: RwLock<Gazetteer>,
    pub(crate) availability: RwLock<Availability>,
    pub(crate) stream: RwLock<StreamPosition>,
}

impl Default for Memory {
    fn default() -> Self {
        let numbers = Numbers::shared();
        Self {
            directory: RwLock::new(Directory::new(numbers.clone())),
            places: RwLock::default(),
            availability: RwLock::new(Availability::new(numbers)),
            stream: RwLock::default(),
        }
    }
}

/// Where the availability stream is.
#[derive(Debug, Clone, Default)]
pub struct StreamPosition {
    pub directory_loaded: bool,
    pub epoch: String,
    pub sequence: u64,
    /// The availability is exact as of this instant (none before the first snapshot).
    pub as_of: Option<DateTime<Utc>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Memory {
    pub fn directory(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        read(&self.directory)
    }

    /// How the directory and the availability number centres: whatever
    /// replaces either is made with them.
    pub(crate) fn numbers(&self) -> Arc<Numbers> {
        self.directory().numbers().clone()
    }

    pub fn places(&self) -> std::sync::RwLockReadGuard<'_, Gazetteer> {
        read(&self.places)
    }

    pub fn availability(&self) -> std::sync::RwLockReadGuard<'_, Availability> {
        read(&self.availability)
    }

    pub(crate) fn availability_mut(&self) -> std::sync::RwLockWriteGuard<'_, Availability> {
        write(&self.availability)
    }

    pub fn position(&self) -> StreamPosition {
        read(&self.stream).clone()
    }

    pub(crate) fn position_mut(&self) -> std::sync::RwLockWriteGuard<'_, StreamPosition> {
        write(&self.stream)
    }

    /// Replaces or adds centres just written or read back.
    pub fn upsert(&self, centres: impl IntoIterator<Item = NewCentre>) {
        let mut directory = write(&self.directory);
        let mut count = 0;
        for centre in centres {
            directory.upsert(centre);
            count += 1;
        }
        // An import of thousands leaves lists up to twice their length.
        if count >= 1000 {
            directory.shrink();
        }
    }

    pub(crate) fn replace(&self, directory: Directory, places: Gazetteer) {
        *write(&self.directory) = directory;
        *write(&self.places) = places;
        self.position_mut().directory_loaded = true;
    }

    pub(crate) fn remove(&self, id: &str) {
        write(&self.directory).remove(id);
    }

    /// How old the availability is, if a snapshot has been applied.
    pub fn availability_age(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.position().as_of.map(|at| (now - at).to_std().unwrap_or_default())
    }

    /// Ready to answer: the directory loaded and a first snapshot applied.
    pub fn ready(&self) -> Result<(), String> {
        let position = self.position();
        if !position.directory_loaded {
            return Err("the directory is still loading".into());
        }
        if position.as_of.is_none() {
            return Err("no availability snapshot received yet".into());
        }
        Ok(())
    }
}
