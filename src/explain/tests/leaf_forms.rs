//! The two forms of one leaf's share agree to the last bit: [`short_leaf`]'s fixed-length,
//! branch-free loops and [`Scratch::leaf`]'s loops over the hot features (which
//! `algorithm2` checks against the paper on whole models).

use super::shap::Rng;
use crate::explain::leaves::Condition;
use crate::explain::treeshap::{short_leaf, Scratch};

/// A random path of `n` distinct features out of 20 with random bounds (some open), missing
/// sides and zero fractions, and a row over those features with some values missing.
fn path_and_row(rng: &mut Rng, n: usize) -> (Vec<Condition>, Vec<f32>) {
    let mut features: Vec<u32> = (0..20).collect();
    let conditions = (0..n)
        .map(|_| {
            let feature = features.swap_remove(rng.below(features.len()));
            let lo = if rng.below(3) == 0 { f32::NEG_INFINITY } else { rng.unit() as f32 };
            let hi = if rng.below(3) == 0 { f32::NAN } else { lo.max(0.0) + rng.unit() as f32 };
            let zero = (0..1 + rng.below(2)).map(|_| 0.02 + 0.96 * rng.unit()).product();
            Condition { zero, lo, hi, feature, missing: rng.below(2) == 0 }
        })
        .collect();
    let row = (0..20).map(|_| if rng.below(6) == 0 { f32::NAN } else { (rng.unit() * 1.5) as f32 }).collect();
    (conditions, row)
}

#[test]
fn fixed_length_leaves_equal_the_loops_over_hot_features_bit_for_bit() {
    let mut rng = Rng(0x1eaf_f0e5);
    let mut scratch = Scratch::default();
    let (mut fixed_reached, mut long) = (0, 0);
    for case in 0..20_000 {
        let n = 1 + rng.below(10);
        let (conditions, row) = path_and_row(&mut rng, n);
        let v = rng.unit() * 4.0 - 2.0;
        let (mut fixed, mut loops) = (vec![0.0; 20], vec![0.0; 20]);
        let reached = scratch.leaf(&mut loops, &row, &conditions, v);
        match short_leaf(&mut fixed, &row, &conditions, v) {
            Some(r) => {
                assert_eq!(r, reached, "case {case}");
                let bits = |p: &[f64]| p.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fixed), bits(&loops), "case {case}: {conditions:?} {row:?}");
                fixed_reached += r as usize;
            }
            None => {
                assert!(n > 8, "case {case}: no fixed form for {n} features");
                long += 1;
            }
        }
    }
    // Both kinds of path occurred, and rows that reach the leaf too.
    assert!(fixed_reached > 100 && long > 1000, "{fixed_reached} reached, {long} long");
}
