//! Progress shared by the consumer thread and the committer, guarded by one mutex + condvar:
//! which assignment generation is current, how many batches were handed over and finished, and
//! whether a batch was fenced.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Bumped on every assignment change and resync; batches of older generations are stale.
    pub generation: u64,
    /// Batches handed to the committer / finished by it (applied, skipped or failed).
    pub sent: u64,
    pub done: u64,
    /// A batch of this generation failed for good (fenced): later ones of it are skipped and
    /// the consumer must reload offsets from PostgreSQL.
    pub poisoned: Option<u64>,
    /// Next offsets committed in PostgreSQL and not yet mirrored to the Kafka group (`mirror`).
    pub committed: BTreeMap<(String, i32), i64>,
}

#[derive(Default)]
pub(super) struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Progress> {
        // A panic while holding this lock already aborts ingest; poisoning adds nothing.
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the committer finished a batch, and wakes whoever waits for it.
    pub fn finished_one(&self) {
        self.lock().done += 1;
        self.changed.notify_all();
    }

    /// Every batch handed over so far is committed (or dropped).
    pub fn idle(&self) -> bool {
        let p = self.lock();
        p.done >= p.sent
    }

    /// Waits until the committer has finished every batch sent so far, or `timeout`; true when
    /// it has.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, res) =
            self.changed.wait_timeout_while(guard, timeout, |p| p.done < p.sent).unwrap_or_else(|p| p.into_inner());
        drop(guard);
        !res.timed_out()
    }
}
