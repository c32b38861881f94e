//! Per-trace candidate statistics (SPEC 5.1 selection_frequency): an offer is a candidate of a
//! trace when it appears in any of its four arrays.

use std::collections::BTreeMap;

use crate::events::DecisionTrace;

/// Counters of one offer (per trace, then summed per day and dimension).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectionCounts {
    pub eligible: i64,
    pub scored: i64,
    pub selected: i64,
    pub rank_sum: i64,
    pub rank_n: i64,
    /// Ranks 1..=10 (ranks beyond 10 are not tracked, as the contract says).
    pub ranks: [i64; 10],
}

impl SelectionCounts {
    pub fn add(&mut self, o: &SelectionCounts) {
        self.eligible += o.eligible;
        self.scored += o.scored;
        self.selected += o.selected;
        self.rank_sum += o.rank_sum;
        self.rank_n += o.rank_n;
        for (a, b) in self.ranks.iter_mut().zip(o.ranks) {
            *a += b;
        }
    }
}

/// The candidates of one trace with their counters (eligible = 1 each).
pub fn candidates(t: &DecisionTrace) -> BTreeMap<&str, SelectionCounts> {
    let mut m: BTreeMap<&str, SelectionCounts> = BTreeMap::new();
    let ids = t
        .qualification_results
        .iter()
        .map(|q| q.offer_id.as_str())
        .chain(t.contact_policy_results.iter().map(|c| c.offer_id.as_str()))
        .chain(t.scoring_results.iter().map(|s| s.offer_id.as_str()))
        .chain(t.selected_offers.iter().map(|s| s.offer_id.as_str()));
    for id in ids {
        m.entry(id).or_default().eligible = 1;
    }
    for s in &t.scoring_results {
        let c = m.entry(s.offer_id.as_str()).or_default();
        c.scored = 1;
        c.rank_sum += s.rank;
        c.rank_n += 1;
        if (1..=10).contains(&s.rank) {
            c.ranks[(s.rank - 1) as usize] += 1;
        }
    }
    for s in &t.selected_offers {
        m.entry(s.offer_id.as_str()).or_default().selected = 1;
    }
    m
}
