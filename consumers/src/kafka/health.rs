//! Whether this process's consumers are members of their groups: an ingest process's readiness
//! (issue 16). Each lane's group is ready once an assignment has reached it, until a revoke
//! takes it away (a rebalance in progress is not ready). An assignment of no partitions counts
//! as ready: the group has more members than partitions and this one stands by.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct GroupHealth {
    /// Per consumer group: the partitions of its current assignment, `None` while it has none
    /// (not joined yet, or between a revoke and the next assignment).
    groups: Mutex<BTreeMap<String, Option<usize>>>,
}

impl GroupHealth {
    fn set(&self, group: &str, partitions: Option<usize>) {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).insert(group.to_owned(), partitions);
    }

    /// A lane starts: its group is awaited.
    pub(super) fn expect(&self, group: &str) {
        self.set(group, None);
    }

    pub(super) fn assigned(&self, group: &str, partitions: usize) {
        self.set(group, Some(partitions));
    }

    pub(super) fn revoked(&self, group: &str) {
        self.set(group, None);
    }

    /// Each group and its assigned partitions (`None`: not assigned).
    pub fn groups(&self) -> Vec<(String, Option<usize>)> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(g, n)| (g.clone(), *n)).collect()
    }

    /// Every lane started and assigned.
    pub fn ready(&self) -> bool {
        let groups = self.groups();
        !groups.is_empty() && groups.iter().all(|(_, n)| n.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_every_group_holds_an_assignment_even_an_empty_one() {
        let h = GroupHealth::default();
        assert!(!h.ready(), "no lane yet");
        h.expect("g");
        h.expect("g.traces");
        assert!(!h.ready());
        h.assigned("g", 3);
        h.assigned("g.traces", 0);
        assert!(h.ready(), "standing by counts");
        h.revoked("g");
        assert!(!h.ready(), "a rebalance in progress");
        assert_eq!(h.groups(), [("g".into(), None), ("g.traces".into(), Some(0))]);
    }
}
