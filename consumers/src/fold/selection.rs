//! Per-trace candidate statistics (docs/dashboard-types.md 5.1 selection_frequency): an offer is a candidate of a
//! trace when it appears in any of its four arrays.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Misses by the first rule that holds (docs/dashboard-types.md 5.1 why_not_ranked).
    pub miss_qualification: i64,
    pub miss_contact: i64,
    pub miss_too_low: i64,
    pub miss_not_ranked: i64,
    /// Σ scoringResults scores (micro-units) and their count.
    pub score_sum_micros: i64,
    pub score_n: i64,
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
        self.miss_qualification += o.miss_qualification;
        self.miss_contact += o.miss_contact;
        self.miss_too_low += o.miss_too_low;
        self.miss_not_ranked += o.miss_not_ranked;
        self.score_sum_micros += o.score_sum_micros;
        self.score_n += o.score_n;
    }
}

/// The candidates of one trace with their counters (eligible = 1 each), and the decision's
/// winner: the selectedOffers entry with the lowest rank.
pub fn candidates(t: &DecisionTrace) -> (BTreeMap<&str, SelectionCounts>, Option<&str>) {
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
        // Validated finite at decode; any real score fits in i64 micro-units.
        c.score_sum_micros += (s.score * 1e6).round() as i64;
        c.score_n += 1;
    }
    for s in &t.selected_offers {
        m.entry(s.offer_id.as_str()).or_default().selected = 1;
    }
    // Each miss under the first rule that holds (sets: one pass over each array, not one per
    // candidate).
    let failed: BTreeSet<&str> =
        t.qualification_results.iter().filter(|q| !q.passed).map(|q| q.offer_id.as_str()).collect();
    let blocked: BTreeSet<&str> =
        t.contact_policy_results.iter().filter(|p| p.blocked).map(|p| p.offer_id.as_str()).collect();
    for (offer, c) in m.iter_mut() {
        if c.selected == 1 {
            continue;
        }
        if failed.contains(offer) {
            c.miss_qualification = 1;
        } else if blocked.contains(offer) {
            c.miss_contact = 1;
        } else if c.scored == 1 {
            c.miss_too_low = 1;
        } else {
            c.miss_not_ranked = 1;
        }
    }
    let winner = t.selected_offers.iter().min_by_key(|s| s.rank).map(|s| s.offer_id.as_str());
    (m, winner)
}

/// Score buckets of scoringResults entries (docs/dashboard-types.md 5.1 score_distribution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreCounts {
    pub buckets: [i64; 10],
    pub sum_micros: i64,
    pub n: i64,
}

impl ScoreCounts {
    /// bucket = min(⌊score × 10⌋, 9) after clamping the score to [0, 1].
    pub fn add_score(&mut self, score: f64) {
        let b = ((score.clamp(0.0, 1.0) * 10.0).floor() as usize).min(9);
        self.buckets[b] += 1;
        self.sum_micros += (score * 1e6).round() as i64;
        self.n += 1;
    }
}
