//! An entry of `interaction_segment_totals` (migration `interaction_segment_totals`): one
//! offer's interaction counters in a segment's chain, as the wide encoding's `int8` counters.
//!
//! Revenue is a sum of micro-units, which `numeric` columns hold without bound ([`Micros`]:
//! an `i128` in Rust): here three `int8` limbs ([`super::limbs`]).
//!
//! [`Micros`]: crate::units::money::Micros

use super::limbs;

/// Counters per entry.
pub const COUNTERS: usize = 7;

/// One offer's counters over a window (a difference of two checkpoints) or up to a checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferInteractions {
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
    /// reject + dismiss.
    pub negatives: i64,
    /// Interactions of every type: an offer is in a window when it had any.
    pub events: i64,
    pub revenue_micros: i128,
}

impl OfferInteractions {
    pub fn to_counters(self) -> [i64; COUNTERS] {
        let [a, b, c] = limbs::split(self.revenue_micros);
        [self.impressions, self.conversions, self.negatives, self.events, a, b, c]
    }

    /// `None`: the limbs stand for a sum past `i128` (no data this service accepts).
    pub fn from_counters(c: [i64; COUNTERS]) -> Option<OfferInteractions> {
        let revenue_micros = limbs::join([c[4], c[5], c[6]])?;
        Some(OfferInteractions { impressions: c[0], conversions: c[1], negatives: c[2], events: c[3], revenue_micros })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(revenue_micros: i128) -> OfferInteractions {
        OfferInteractions { impressions: 1, conversions: 0, negatives: 0, events: 1, revenue_micros }
    }

    #[test]
    fn the_limbs_of_extreme_sums() {
        for v in [0, 1, -1, i128::from(i64::MAX), i128::from(i64::MIN), 1 << 64, -(1 << 64) - 1, i128::MAX, i128::MIN] {
            let back = OfferInteractions::from_counters(entry(v).to_counters());
            assert_eq!(back, Some(entry(v)), "{v}");
        }
        assert_eq!(entry(-1).to_counters()[4..], [-1, 0xFFFF_FFFF, 0xFFFF_FFFF]);
    }

    proptest! {
        /// Limbs added counter by counter (as the wide rows add entries) stand for the sum.
        #[test]
        fn limbs_add_as_the_sums_do(parts in proptest::collection::vec(-(1i128 << 100)..(1i128 << 100), 1..50)) {
            let mut sum = [0i64; COUNTERS];
            for &p in &parts {
                for (s, v) in sum.iter_mut().zip(entry(p).to_counters()) {
                    *s = s.checked_add(v).expect("in int8");
                }
            }
            let back = OfferInteractions::from_counters(sum).expect("in i128");
            prop_assert_eq!(back.revenue_micros, parts.iter().sum::<i128>());
        }
    }
}
