//! An entry of `interaction_segment_channel_totals` (migration
//! `wide_segment_channel_totals`): one offer's interaction counters on one channel in a
//! segment's chain, as the wide encoding's `int8` counters: the six counts by outcome, then
//! revenue and cost, each an unbounded sum of micro-units ([`Micros`]: an `i128` in Rust) as
//! three `int8` limbs ([`super::limbs`]).
//!
//! [`Micros`]: crate::units::money::Micros

use super::limbs;

/// Counters per entry.
pub const COUNTERS: usize = 12;

/// impressions, clicks, accepts, converts, rejects, dismisses.
pub type Counts = [i64; 6];

/// An entry's counters from the counts by outcome and the (revenue, cost) sums.
pub fn to_counters(counts: Counts, [revenue, cost]: [i128; 2]) -> [i64; COUNTERS] {
    let mut out = [0; COUNTERS];
    out[..6].copy_from_slice(&counts);
    out[6..9].copy_from_slice(&limbs::split(revenue));
    out[9..].copy_from_slice(&limbs::split(cost));
    out
}

/// The counts and the (revenue, cost) sums an entry stands for; `None`: limbs past `i128` (no
/// data this service accepts).
pub fn from_counters(c: [i64; COUNTERS]) -> Option<(Counts, [i128; 2])> {
    let revenue = limbs::join([c[6], c[7], c[8]])?;
    let cost = limbs::join([c[9], c[10], c[11]])?;
    let mut counts = [0; 6];
    counts.copy_from_slice(&c[..6]);
    Some((counts, [revenue, cost]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Entries added counter by counter (as the wide rows add them) stand for the sums,
        /// extreme money sums included.
        #[test]
        fn entries_add_as_the_sums_do(
            parts in proptest::collection::vec(
                (proptest::array::uniform6(0i64..1 << 40), i128::MIN >> 8..i128::MAX >> 8, i128::MIN >> 8..i128::MAX >> 8),
                1..40,
            ),
        ) {
            let mut sum = [0i64; COUNTERS];
            for &(counts, revenue, cost) in &parts {
                for (s, v) in sum.iter_mut().zip(to_counters(counts, [revenue, cost])) {
                    *s = s.checked_add(v).expect("in int8");
                }
            }
            let (counts, money) = from_counters(sum).expect("in i128");
            let mut want = [0i64; 6];
            for (counts, _, _) in &parts {
                want.iter_mut().zip(counts).for_each(|(w, c)| *w += c);
            }
            prop_assert_eq!(counts, want);
            prop_assert_eq!(money, [parts.iter().map(|p| p.1).sum::<i128>(), parts.iter().map(|p| p.2).sum::<i128>()]);
        }
    }
}
