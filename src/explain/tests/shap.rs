//! The algorithm on cases worked out by hand, and against the Shapley formula by brute force.

use serde_json::{json, Value};

use super::{data, small_tree};
use crate::explain::model::{value, LEAF};
use crate::explain::{explain, explain_trees, probability_deltas, Ensemble};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// `small_tree` with a = 0 (yes), b = 2 (no): leaf 4 = −1. The game, by hand:
/// v(∅) = (6·(2·1 + 4·(−1))/6 + 4·3)/10 = 1, v({a}) = (2·1 + 4·(−1))/6 = −1/3,
/// v({b}) = 0.6·(−1) + 0.4·3 = 0.6, v({a,b}) = −1;
/// φa = ½((v(a) − v(∅)) + (v(ab) − v(b))) = −22/15, φb = ½((v(b) − v(∅)) + (v(ab) − v(a))) = −8/15.
#[test]
fn one_tree_by_hand() {
    let m = Ensemble::from_data(&data(vec![small_tree(2)], Some(&["a", "b"]), 0.5)).unwrap();
    let e = explain(&m, &[Some(0.0), Some(2.0)]);
    assert!(close(e.baseline, 1.0 + 0.5), "{e:?}");
    assert!(close(e.raw_margin, -1.0 + 0.5), "{e:?}");
    assert!(close(e.shap[0], -22.0 / 15.0) && close(e.shap[1], -8.0 / 15.0), "{e:?}");
    assert!(e.additivity_residual().abs() < 1e-12);
}

/// `small_tree` with a missing: the root's `missing` branch decides, and a missing feature is a
/// known one (the row's own path), not an unknown one (cover-weighted).
#[test]
fn a_missing_feature_follows_the_missing_branch() {
    // missing → no (leaf 2 = 3): v(∅) = 1, v({a}) = 3, v({b}) = 0.6, v({a,b}) = 3;
    // φa = ½(2 + 2.4) = 2.2, φb = ½(−0.4 + 0) = −0.2.
    let no = Ensemble::from_data(&data(vec![small_tree(2)], Some(&["a", "b"]), 0.0)).unwrap();
    for x in [vec![None, Some(2.0)], vec![Some(f64::NAN), Some(2.0)]] {
        let e = explain(&no, &x);
        assert!(close(e.raw_margin, 3.0) && close(e.shap[0], 2.2) && close(e.shap[1], -0.2), "{e:?}");
    }
    // missing → yes: the same path as a = 0, so the same explanation as `one_tree_by_hand`.
    let yes = Ensemble::from_data(&data(vec![small_tree(1)], Some(&["a", "b"]), 0.0)).unwrap();
    assert_eq!(explain(&yes, &[None, Some(2.0)]), explain(&yes, &[Some(0.0), Some(2.0)]));
    // A row shorter than the model: the features past its end are missing (b's node 1 sends
    // missing to no, leaf 4).
    assert_eq!(explain(&yes, &[]), explain(&yes, &[None, None]));
    assert!(close(yes.margin(&[]), -1.0));
}

/// XGBoost compares float32 to float32: 0.1 (float64) is below 0.1f32 (0.10000000149…), but
/// as a float32 it equals the threshold, so the row goes `no`, as in XGBoost.
#[test]
fn comparisons_are_float32() {
    let mut t = small_tree(2);
    t["split_condition"] = json!(0.1);
    let m = Ensemble::from_data(&data(vec![t], Some(&["a", "b"]), 0.0)).unwrap();
    assert_eq!(m.margin(&[Some(0.1), Some(0.0)]), 3.0, "0.1 as f32 is not < 0.1f32");
    assert_eq!(m.margin(&[Some(0.0999999), Some(0.0)]), 1.0);
}

#[test]
fn probability_deltas_are_sigmoid_differences() {
    let d = probability_deltas(0.0, &[0.0, 1.0, -1.0, 40.0]);
    let s1 = 1.0 / (1.0 + (-1.0f64).exp());
    assert_eq!(d[0], 0.0);
    assert!(close(d[1], s1 - 0.5) && close(d[2], 0.5 - s1) && close(d[3], 0.5), "{d:?}");
    assert!(probability_deltas(-1000.0, &[1.0]).iter().all(|d| d.is_finite()));
}

/// A deterministic generator (xorshift64*), so that the random cases are the same every run.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random tree in dump shape: splits on `f<i>` for i < `features` (repeats on a path are
/// likely), covers positive but not summing to the parent's (the algorithm must not rely on it).
pub(super) fn random_tree(rng: &mut Rng, depth: usize, features: usize, next_id: &mut u64) -> Value {
    let id = *next_id;
    *next_id += 1;
    let cover = 1.0 + 9.0 * rng.unit();
    if depth == 0 || rng.below(5) == 0 {
        return json!({"nodeid": id, "leaf": rng.unit() * 2.0 - 1.0, "cover": cover});
    }
    let yes = random_tree(rng, depth - 1, features, next_id);
    let no = random_tree(rng, depth - 1, features, next_id);
    let missing = if rng.below(2) == 0 { &yes["nodeid"] } else { &no["nodeid"] };
    json!({
        "nodeid": id, "split": format!("f{}", rng.below(features)), "split_condition": rng.unit(),
        "yes": yes["nodeid"], "no": no["nodeid"], "missing": missing, "cover": cover,
        "children": [yes, no]
    })
}

/// The path-dependent game of the paper's Algorithm 1: the expected value of the tree when
/// only the features in `known` (a bit set) are the row's, the others integrated out by cover.
fn expectation(m: &Ensemble, node: u32, x: &[Option<f64>], known: u32) -> f64 {
    let n = m.nodes[node as usize];
    if n.feature == LEAF {
        return n.value;
    }
    if known & (1 << n.feature) != 0 {
        return expectation(m, n.next(value(x, n.feature)), x, known);
    }
    let (yes, no) = (&m.nodes[n.yes as usize], &m.nodes[n.no as usize]);
    expectation(m, n.yes, x, known) * yes.fraction + expectation(m, n.no, x, known) * no.fraction
}

/// Shapley values of that game by their definition, over all 2^M subsets (each coalition's
/// value computed once).
pub(super) fn brute_force(m: &Ensemble, x: &[Option<f64>]) -> Vec<f64> {
    let features = m.feature_names().len();
    let v: Vec<f64> =
        (0..1u32 << features).map(|s| m.roots.iter().map(|&r| expectation(m, r, x, s)).sum::<f64>()).collect();
    let factorial = |n: usize| (1..=n).product::<usize>() as f64;
    (0..features)
        .map(|i| {
            (0..1u32 << features)
                .filter(|s| s & (1 << i) == 0)
                .map(|s| {
                    let size = s.count_ones() as usize;
                    let weight = factorial(size) * factorial(features - size - 1) / factorial(features);
                    weight * (v[(s | 1 << i) as usize] - v[s as usize])
                })
                .sum()
        })
        .collect()
}

#[test]
fn equals_the_shapley_formula_on_random_trees() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..60 {
        let features = 1 + rng.below(6);
        let trees = (0..1 + rng.below(4))
            .map(|_| {
                let depth = 1 + rng.below(7);
                random_tree(&mut rng, depth, features, &mut 0)
            })
            .collect::<Vec<_>>();
        let m = Ensemble::from_data(&data(trees, None, rng.unit())).unwrap();
        // Use the model's feature count: a random tree may not split on every feature.
        let x: Vec<Option<f64>> =
            (0..m.feature_names().len()).map(|_| (rng.below(4) != 0).then(|| rng.unit())).collect();
        let e = explain(&m, &x);
        let expected = brute_force(&m, &x);
        for (i, (got, want)) in e.shap.iter().zip(&expected).enumerate() {
            assert!((got - want).abs() < 1e-10, "case {case}, feature {i}: {got} != {want}");
        }
        assert!(e.additivity_residual().abs() < 1e-10, "case {case}: {e:?}");
        assert!((e.baseline - brute_force_baseline(&m, &x)).abs() < 1e-12, "case {case}");
        // Parts over a split of the trees (as the endpoint computes on several threads) add up to it.
        let cut = rng.below(m.tree_count() + 1);
        let parts = explain_trees(&m, &x, 0..cut).and(&explain_trees(&m, &x, cut..m.tree_count())).finish(&m);
        for (got, want) in parts.shap.iter().zip(&e.shap) {
            assert!((got - want).abs() < 1e-12, "case {case}: split at {cut}");
        }
        assert!((parts.raw_margin - e.raw_margin).abs() < 1e-12 && parts.baseline == e.baseline);
    }
}

fn brute_force_baseline(m: &Ensemble, x: &[Option<f64>]) -> f64 {
    m.base_score + m.roots.iter().map(|&r| expectation(m, r, x, 0)).sum::<f64>()
}
