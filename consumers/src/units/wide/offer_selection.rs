//! An entry of `selection_chain_totals` (migration `wide_selection_offer_totals`): one offer's
//! selection counters and score buckets in a chain (all customers, or one segment), as the wide
//! encoding's `int8` counters. The score sum never restarts, so it is three limbs
//! ([`super::limbs`]), unbounded as the `numeric` column that held it before.

use super::limbs;

/// Counters per entry: the 19 counts, the score sum's three limbs, the score count, ten buckets.
pub const COUNTERS: usize = 33;

/// One offer's counters over a window (a difference of two checkpoints) or up to a checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferSelection {
    /// Traces the offer was a candidate in.
    pub eligible: i64,
    pub scored: i64,
    pub selected: i64,
    pub rank_sum: i64,
    pub rank_n: i64,
    /// Ranks 1..=10.
    pub ranks: [i64; 10],
    pub miss_qualification: i64,
    pub miss_contact: i64,
    pub miss_too_low: i64,
    pub miss_not_ranked: i64,
    /// Σ scores in micro-units, and their count.
    pub score_sum_micros: i128,
    pub score_n: i64,
    /// Score buckets 0.0-0.1 … 0.9-1.0 (all customers' chain only; zero in a segment's).
    pub buckets: [i64; 10],
}

impl OfferSelection {
    pub fn to_counters(&self) -> [i64; COUNTERS] {
        let mut c = [0; COUNTERS];
        c[..5].copy_from_slice(&[self.eligible, self.scored, self.selected, self.rank_sum, self.rank_n]);
        c[5..15].copy_from_slice(&self.ranks);
        c[15..19].copy_from_slice(&[
            self.miss_qualification,
            self.miss_contact,
            self.miss_too_low,
            self.miss_not_ranked,
        ]);
        c[19..22].copy_from_slice(&limbs::split(self.score_sum_micros));
        c[22] = self.score_n;
        c[23..].copy_from_slice(&self.buckets);
        c
    }

    /// `None`: the limbs stand for a sum past `i128` (no data this service accepts).
    pub fn from_counters(c: &[i64; COUNTERS]) -> Option<OfferSelection> {
        let ten = |at: usize| -> [i64; 10] { c[at..at + 10].try_into().expect("ten counters") };
        Some(OfferSelection {
            eligible: c[0],
            scored: c[1],
            selected: c[2],
            rank_sum: c[3],
            rank_n: c[4],
            ranks: ten(5),
            miss_qualification: c[15],
            miss_contact: c[16],
            miss_too_low: c[17],
            miss_not_ranked: c[18],
            score_sum_micros: limbs::join([c[19], c[20], c[21]])?,
            score_n: c[22],
            buckets: ten(23),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every field lands in its own counter and comes back: no two share one.
        #[test]
        fn an_entry_round_trips(
            counts in proptest::array::uniform20(any::<i64>()),
            buckets in proptest::array::uniform10(any::<i64>()),
            sum in any::<i128>(),
        ) {
            let e = OfferSelection {
                eligible: counts[0],
                scored: counts[1],
                selected: counts[2],
                rank_sum: counts[3],
                rank_n: counts[4],
                ranks: counts[5..15].try_into().unwrap(),
                miss_qualification: counts[15],
                miss_contact: counts[16],
                miss_too_low: counts[17],
                miss_not_ranked: counts[18],
                score_sum_micros: sum,
                score_n: counts[19],
                buckets,
            };
            prop_assert_eq!(OfferSelection::from_counters(&e.to_counters()), Some(e));
        }
    }
}
