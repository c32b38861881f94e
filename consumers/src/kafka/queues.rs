//! One librdkafka queue per owned partition, so that holding a partition back (event-time
//! alignment, `align`) is simply not reading its queue.
//!
//! Why not `pause`: a librdkafka pause drops what the client had prefetched for the partition
//! (it bumps the partition's op version, and resume fetches again from the last delivered
//! offset), and tansu 0.6.0 fills a fetch response from one partition at a time, so a held
//! partition's prefetch was often a whole response, read from the broker again on resume. At
//! a six-hour bound nearly every response ended in a pause and interactions ingested at 0.13×
//! the bare consumer (BENCHMARKS.md "Write path, fifteenth pass"). A queue that is not read
//! keeps what it holds; librdkafka stops fetching for the partition once the queue holds
//! `queued.max.messages.kbytes` (per partition once split) and fetches again when it drains.
//!
//! A partition is split off the consumer's main queue in the rebalance callback, before it is
//! assigned ([`split`]): the split (librdkafka's application forward, which later assignments
//! keep) must come before its first fetch, or messages already forwarded to the main queue would
//! be read after later ones from its own. The main queue still carries the rebalances,
//! statistics and errors, and is polled every turn.
//!
//! Each queue's non-empty callback marks it ready and wakes the consumer thread, so a turn only
//! polls queues that may hold something (the interactions lane owns ~28 partitions, most of
//! them of quiet topics) and an idle thread sleeps until a message or an event arrives.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;

use super::builder::PartitionKey;

/// Splits each partition of `keys` off the main queue for good (see the module's doc). The
/// queue handles are dropped at once: the split stays, and [`Queues::sync`] opens them again.
pub(super) fn split<C: ConsumerContext>(consumer: &Arc<BaseConsumer<C>>, keys: &[PartitionKey]) {
    for (topic, partition) in keys {
        if consumer.split_partition_queue(topic, *partition).is_none() {
            // Its messages then come through the main queue, in order, as before the split.
            tracing::warn!(topic = %topic, partition, "cannot split the partition's queue");
        }
    }
}

/// Wakes the consumer thread when any queue it reads (or the main queue) turns non-empty.
#[derive(Default)]
pub(super) struct Wake {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    /// Called by librdkafka's threads, under the queue's lock: only flags and signals.
    pub fn notify(&self) {
        *self.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_one();
    }

    /// Forgets earlier wake-ups: called before a turn polls, so that one arriving after it
    /// found every queue empty still ends the wait that follows.
    pub fn clear(&self) {
        *self.woken.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }

    /// Sleeps until woken or `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let woken = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        let (mut woken, _) = self.cond.wait_timeout_while(woken, timeout, |w| !*w).unwrap_or_else(|p| p.into_inner());
        *woken = false;
    }
}

/// One owned partition's queue.
struct Queue<C: ConsumerContext + 'static> {
    key: PartitionKey,
    queue: PartitionQueue<C>,
    /// Set by the queue's non-empty callback, cleared before a poll that may find it empty.
    ready: Arc<AtomicBool>,
    /// Held back by alignment: not read.
    held: bool,
}

/// The owned partitions' queues, read in turn.
pub(super) struct Queues<C: ConsumerContext + 'static> {
    queues: Vec<Queue<C>>,
    /// Where the next turn starts, so that every partition gets its turn.
    next: Cell<usize>,
    wake: Arc<Wake>,
}

impl<C: ConsumerContext + 'static> Queues<C> {
    pub fn new(wake: Arc<Wake>) -> Queues<C> {
        Queues { queues: Vec::new(), next: Cell::new(0), wake }
    }

    /// Keeps a queue for each partition of `owned` (opening those new to it, dropping those
    /// revoked), none held back.
    pub fn sync(&mut self, consumer: &Arc<BaseConsumer<C>>, owned: &HashSet<PartitionKey>) {
        self.queues.retain(|q| owned.contains(&q.key));
        let mut new: Vec<&PartitionKey> = owned.iter().filter(|k| !self.queues.iter().any(|q| &q.key == *k)).collect();
        new.sort_unstable();
        for key in new {
            let Some(mut queue) = consumer.split_partition_queue(&key.0, key.1) else { continue };
            // It may hold messages already: ready until a poll finds it empty.
            let ready = Arc::new(AtomicBool::new(true));
            let (flag, wake) = (ready.clone(), self.wake.clone());
            queue.set_nonempty_callback(move || {
                flag.store(true, Ordering::Release);
                wake.notify();
            });
            self.queues.push(Queue { key: key.clone(), queue, ready, held: false });
        }
        self.queues.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        for q in &mut self.queues {
            q.held = false;
        }
    }

    /// Stops reading these partitions (until [`Queues::release`]).
    pub fn hold(&mut self, keys: &[PartitionKey]) {
        self.set_held(keys, true);
    }

    /// Reads these partitions again; what they prefetched meanwhile is still there (their
    /// ready flags were left as they were: the next turn polls them).
    pub fn release(&mut self, keys: &[PartitionKey]) {
        self.set_held(keys, false);
    }

    fn set_held(&mut self, keys: &[PartitionKey], held: bool) {
        for q in self.queues.iter_mut().filter(|q| keys.contains(&q.key)) {
            q.held = held;
        }
    }

    /// The next message (or error) of the partitions not held, one partition after another;
    /// `None` when none has anything waiting. Never blocks.
    pub fn poll(&self) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        let n = self.queues.len();
        for i in 0..n {
            let at = (self.next.get() + i) % n;
            let q = &self.queues[at];
            if q.held || !q.ready.load(Ordering::Acquire) {
                continue;
            }
            // Cleared before the poll: a message enqueued after it finds the queue empty
            // sets it again (the callback fires when the queue turns non-empty).
            q.ready.store(false, Ordering::Release);
            if let Some(r) = q.queue.poll(Duration::ZERO) {
                q.ready.store(true, Ordering::Release);
                self.next.set((at + 1) % n);
                return Some(r);
            }
        }
        None
    }

    /// Drops every queue: each holds the consumer, which must be the last owner to close.
    pub fn close(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_wake_up_between_the_polls_and_the_wait_is_not_lost() {
        let wake = Arc::new(Wake::default());
        // A queue turned non-empty after the turn's polls found it empty: the wait returns at once.
        wake.clear();
        wake.notify();
        let t = Instant::now();
        wake.wait(Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5));
        // One from before the turn began is forgotten (its queue was polled since): the wait
        // runs until the next one, here from another thread.
        wake.notify();
        wake.clear();
        let other = wake.clone();
        let notifier = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.notify();
        });
        let t = Instant::now();
        wake.wait(Duration::from_secs(10));
        let waited = t.elapsed();
        notifier.join().unwrap();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(5), "waited {waited:?}");
        // Without one, the wait ends at its timeout.
        wake.clear();
        let t = Instant::now();
        wake.wait(Duration::from_millis(50));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }
}
