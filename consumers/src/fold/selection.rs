//! Per-trace candidate statistics (docs/dashboard-types.md 5.1 selection_frequency): an offer is a candidate of a
//! trace when it appears in any of its four arrays.

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
