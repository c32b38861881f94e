//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent Individualized
//! Feature Attribution for Tree Ensembles"), in raw-margin space: the Shapley values of the
//! game Algorithm 2 computes. Trees of up to 16 levels with ordinary covers (all XGBoost
//! grows by default) are walked by `super::linear` in time linear in their size; the others
//! are computed leaf by leaf in the closed form below.
//!
//! It makes the choices of XGBoost's own CPU implementation (`src/predictor/treeshap.cc`, the
//! algorithm of `pred_contribs` up to XGBoost 3.2), so that the two agree where the paper
//! leaves room:
//! - the branch a row takes ("hot") is the one XGBoost's prediction takes: float32 comparison,
//!   a missing value follows the node's `missing` branch;
//! - the fraction of the training data that went down each branch ("zero fraction") is the
//!   child's cover over the node's own cover, and the baseline (XGBoost's bias column) is each
//!   tree's mean leaf value weighted by those same fractions, plus `baseScore`;
//! - a feature split on twice along a path counts once, its fractions multiplied.
//!
//! **The closed form.** A leaf of value v whose path has the n distinct features P, with zero
//! fractions z and "the row follows it" o ∈ {0, 1}, is the game v·Π_{j∈S} o_j·Π_{j∉S} z_j, so
//!
//! φ_i = v·(o_i − z_i)·Σ_{S ⊆ P∖{i}} W(|S|)·Π_{j∈S} o_j·Π_{j∈P∖S∖{i}} z_j,  W(s) = s!(n−s−1)!/n!.
//!
//! A subset holding a cold feature (o = 0) adds nothing, so with H the hot features and C the
//! cold ones, and e_m(·) the elementary symmetric polynomials of the hot zero fractions:
//! - every cold feature gets the same −v·Π_C z·Σ_m W(|H|−m)·e_m(H);
//! - a hot feature i gets v·(1 − z_i)·Π_C z·Σ_m W(|H|−1−m)·e_m(H∖{i}), e(H∖{i}) being e(H)
//!   with the factor (1 + z_i·t) divided out.
//!
//! That is O(n²) multiply-adds per leaf without a division (the linear walk shares the work
//! of a path's prefix between the leaves below it instead), where Algorithm 2 extends its
//! permutation weights at every node and unwinds them once per path feature at every leaf
//! (BENCHMARKS.md, "SHAP latency", has the A/B). src/explain/tests checks it against
//! Algorithm 2 itself, the Shapley formula by brute force and XGBoost's `pred_contribs`.
//! XGBoost computes in float32, this in float64: the two agree within 4e-6 on the fixtures,
//! and this side's additivity (`raw_margin = baseline + Σ shap`) holds to float64 rounding.

use super::leaves::{Condition, LeafPaths};
use super::model::{value, Ensemble, MAX_DEPTH};

/// The attribution of one row's raw margin.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// One contribution per feature index, in [`Ensemble::feature_names`]'s order; 0 for a
    /// feature no tree splits on.
    pub shap: Vec<f64>,
    /// The cover-weighted expected margin over the training data, plus `baseScore`.
    pub baseline: f64,
    /// The row's margin: `baseScore` plus its leaves (`sigmoid(raw_margin)` is the
    /// `binary:logistic` score).
    pub raw_margin: f64,
}

impl Explanation {
    /// `raw_margin − baseline − Σ shap`: what the additivity identity misses by, computed.
    pub fn additivity_residual(&self) -> f64 {
        self.raw_margin - self.baseline - self.shap.iter().sum::<f64>()
    }
}

/// Explains `model`'s raw margin for the row `x` (`x[i]` is feature `i`; `None`, NaN or an
/// index past the end of `x` is missing). Cannot fail: [`Ensemble::from_data`] validated the
/// model.
pub fn explain(model: &Ensemble, x: &[Option<f64>]) -> Explanation {
    explain_trees(model, x, 0..model.tree_count()).finish(model)
}

/// The contributions of the trees `trees` alone: an explanation is additive over trees, so
/// parts computed apart (on several threads) and joined with [`Part::and`] give [`explain`]'s answer,
/// up to the order of the additions.
pub fn explain_trees(model: &Ensemble, x: &[Option<f64>], trees: std::ops::Range<usize>) -> Part {
    let features = model.feature_names().len();
    let row = xgboost_row(x, features);
    let mut part = Part { shap: vec![0.0; features], leaves: 0.0 };
    model.walks.explain(&model.nodes, &model.roots, trees.clone(), &row, &mut part.shap);
    let mut scratch = Scratch::default();
    for tree in trees {
        if !model.walks.walks(tree) {
            leaf_form(model, tree, &mut part.shap, &row, &mut scratch);
        }
        // A row reaches one leaf per tree: summed in tree order, as `Ensemble::margin` does.
        part.leaves += model.nodes[model.leaf(model.roots[tree], x)].value;
    }
    part
}

/// The row as XGBoost compares it: `features` values, float32, NaN for missing.
pub(super) fn xgboost_row(x: &[Option<f64>], features: usize) -> Vec<f32> {
    (0..features as u32).map(|f| value(x, f).map_or(f32::NAN, |v| v as f32)).collect()
}

/// The closed form over one tree's leaves (`model.paths` holds the trees the linear walk
/// does not take).
fn leaf_form(model: &Ensemble, tree: usize, phi: &mut [f64], row: &[f32], scratch: &mut Scratch) {
    closed_form(&model.paths, model.paths.leaves_of(tree..tree + 1), phi, row, scratch);
}

/// Adds the shares of `paths`' leaves `leaves` to `phi`, each by its fixed-length form when
/// its path has one.
pub(super) fn closed_form(
    paths: &LeafPaths,
    leaves: std::ops::Range<usize>,
    phi: &mut [f64],
    row: &[f32],
    scratch: &mut Scratch,
) {
    for i in leaves {
        let (conditions, v) = (paths.conditions_of(i), paths.leaves[i].value);
        if short_leaf(phi, row, conditions, v).is_none() {
            scratch.leaf(phi, row, conditions, v);
        }
    }
}

/// Some trees' share of an explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    shap: Vec<f64>,
    /// The leaves the row reaches in these trees, summed in tree order.
    leaves: f64,
}

impl Part {
    /// This part and the next trees' (`other`).
    pub fn and(mut self, other: &Part) -> Part {
        for (a, b) in self.shap.iter_mut().zip(&other.shap) {
            *a += b;
        }
        self.leaves += other.leaves;
        self
    }

    /// The explanation, once every tree is in.
    pub fn finish(self, model: &Ensemble) -> Explanation {
        // With one part, the same sum in the same order as `Ensemble::margin`.
        Explanation { shap: self.shap, baseline: model.baseline, raw_margin: model.base_score + self.leaves }
    }
}

/// `sigmoid(baseline + φᵢ) − sigmoid(baseline)` per feature: the seed's display approximation
/// of each contribution in probability space (monotone in φᵢ, not additive).
pub fn probability_deltas(baseline: f64, shap: &[f64]) -> Vec<f64> {
    let base = sigmoid(baseline);
    shap.iter().map(|phi| sigmoid(baseline + phi) - base).collect()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The most distinct features on a path (a path has at most one per edge).
const MAX_PATH: usize = MAX_DEPTH;

/// The longest path [`fixed_leaf`] is instantiated for.
const FIXED_UP_TO: usize = 8;

/// [`Scratch::leaf`] by [`fixed_leaf`] for a path of up to [`FIXED_UP_TO`] features (a match
/// on the path's length, which the row does not change); `None` for a longer one.
#[inline(always)]
pub(super) fn short_leaf(phi: &mut [f64], row: &[f32], conditions: &[Condition], v: f64) -> Option<bool> {
    Some(match conditions.len() {
        1 => fixed_leaf::<1>(phi, row, conditions, v),
        2 => fixed_leaf::<2>(phi, row, conditions, v),
        3 => fixed_leaf::<3>(phi, row, conditions, v),
        4 => fixed_leaf::<4>(phi, row, conditions, v),
        5 => fixed_leaf::<5>(phi, row, conditions, v),
        6 => fixed_leaf::<6>(phi, row, conditions, v),
        7 => fixed_leaf::<7>(phi, row, conditions, v),
        8 => fixed_leaf::<8>(phi, row, conditions, v),
        _ => return None,
    })
}

/// [`Scratch::leaf`] for a path of exactly `N` ≤ [`FIXED_UP_TO`] features, with loops of
/// fixed length and no branch on the row's values: a cold feature multiplies the polynomial
/// by (1 + 0·t) and its would-be hot share is computed and discarded, and the padded weights
/// give every coefficient past |H| a zero weight. Each added term is then an exact zero, so
/// the answer is [`Scratch::leaf`]'s to the last bit, without its data-dependent branches
/// (hot or cold, and loops whose length is the number of hot features).
#[inline(always)]
fn fixed_leaf<const N: usize>(phi: &mut [f64], row: &[f32], conditions: &[Condition], v: f64) -> bool {
    let conditions: &[Condition; N] = conditions.try_into().expect("N conditions");
    let (mut hot, mut z) = ([false; N], [0.0; N]);
    let mut e = [0.0; FIXED_UP_TO + 1];
    e[0] = 1.0;
    let (mut h, mut cold_product) = (0, 1.0);
    for (k, c) in conditions.iter().enumerate() {
        let follows = c.follows(row[c.feature as usize]);
        (hot[k], z[k]) = (follows, c.zero);
        h += follows as usize;
        let factor = if follows { c.zero } else { 0.0 };
        for m in (1..=k + 1).rev() {
            e[m] += factor * e[m - 1];
        }
        cold_product *= if follows { 1.0 } else { c.zero };
    }
    let w = padded_weights(N);
    let scale = v * cold_product;
    // W(|H|−m) is w[|H|−m+N]; zero for m > |H|.
    let cold_share = -scale * (0..=N).map(|m| w[h + N - m] * e[m]).sum::<f64>();
    // Every feature's Σ_m W(|H|−1−m)·e_m(H∖{k}) at once, (1 + z_k·t) divided out.
    let (mut d, mut sum) = ([1.0; N], [w[h + N - 1]; N]);
    for m in 1..N {
        let weight = w[h + N - 1 - m];
        for k in 0..N {
            d[k] = e[m] - z[k] * d[k];
            sum[k] += weight * d[k];
        }
    }
    for k in 0..N {
        let share = if hot[k] { scale * (1.0 - z[k]) * sum[k] } else { cold_share };
        phi[conditions[k].feature as usize] += share;
    }
    h == N
}

/// Up to this many hot features, e(H∖{i}) is obtained by dividing (1 + z_i·t) out of e(H):
/// e'_m = e_m − z_i·e'_{m−1}, a subtraction whose rounding error is carried on multiplied by
/// z_i. Its error is bounded by the ratio of binomial coefficients, harmless at the depths
/// models have (≤ 2^16·ε); past it, e(H∖{i}) is rebuilt from its factors (O(|H|²) per i).
const DIVIDE_OUT_UP_TO: usize = 16;

/// One leaf's polynomial, kept between leaves so that nothing is allocated per leaf.
pub(super) struct Scratch {
    /// e_0..e_h of the hot zero fractions.
    e: [f64; MAX_PATH + 1],
    /// The hot features' zero fractions and features, in path order.
    hot_zero: [f64; MAX_PATH],
    hot_feature: [u32; MAX_PATH],
    /// The cold features, in path order.
    cold_feature: [u32; MAX_PATH],
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            e: [0.0; MAX_PATH + 1],
            hot_zero: [0.0; MAX_PATH],
            hot_feature: [0; MAX_PATH],
            cold_feature: [0; MAX_PATH],
        }
    }
}

impl Scratch {
    /// Adds the leaf's share (value `v`, path `conditions`) to `phi`; true when the row reaches
    /// the leaf (every feature on its path hot).
    pub(super) fn leaf(&mut self, phi: &mut [f64], row: &[f32], conditions: &[Condition], v: f64) -> bool {
        let n = conditions.len();
        if n == 0 {
            return true;
        }
        if n > DIVIDE_OUT_UP_TO {
            return self.long_leaf(phi, row, conditions, v);
        }
        let e = &mut self.e;
        e[0] = 1.0;
        let (mut h, mut cold, mut cold_product) = (0, 0, 1.0);
        for c in conditions {
            if c.follows(row[c.feature as usize]) {
                let z = c.zero;
                times_one_plus(e, h, z);
                self.hot_zero[h] = z;
                self.hot_feature[h] = c.feature;
                h += 1;
            } else {
                cold_product *= c.zero;
                self.cold_feature[cold] = c.feature;
                cold += 1;
            }
        }
        let w = padded_weights(n);
        let scale = v * cold_product;
        if cold > 0 {
            // W(|H|−m) is w[|H|−m+n].
            let sum: f64 = (0..=h).map(|m| w[h + n - m] * e[m]).sum();
            let share = -scale * sum;
            for &f in &self.cold_feature[..cold] {
                phi[f as usize] += share;
            }
        }
        for i in 0..h {
            // Σ_m W(|H|−1−m)·e_m(H∖{i}), (1 + z·t) divided out of e(H): e'_m = e_m − z·e'_{m−1}.
            let z = self.hot_zero[i];
            let mut d = 1.0;
            let mut sum = w[h + n - 1];
            for m in 1..h {
                d = e[m] - z * d;
                sum += w[h + n - 1 - m] * d;
            }
            phi[self.hot_feature[i] as usize] += scale * (1.0 - z) * sum;
        }
        cold == 0
    }

    /// [`Self::leaf`] for a path longer than [`DIVIDE_OUT_UP_TO`]: each e(H∖{i}) is rebuilt
    /// from its factors (only additions of non-negative terms), O(n³) for the leaf.
    #[cold]
    fn long_leaf(&mut self, phi: &mut [f64], row: &[f32], conditions: &[Condition], v: f64) -> bool {
        let n = conditions.len();
        let polynomial = |skip: Option<usize>| {
            let mut e = [0.0; MAX_PATH + 1];
            e[0] = 1.0;
            let mut degree = 0;
            for (k, c) in conditions.iter().enumerate() {
                if Some(k) != skip && c.follows(row[c.feature as usize]) {
                    times_one_plus(&mut e, degree, c.zero);
                    degree += 1;
                }
            }
            (e, degree)
        };
        let w = padded_weights(n);
        let cold_product: f64 =
            conditions.iter().filter(|c| !c.follows(row[c.feature as usize])).map(|c| c.zero).product();
        let (e, h) = polynomial(None);
        let scale = v * cold_product;
        let cold_share = -scale * (0..=h).map(|m| w[h + n - m] * e[m]).sum::<f64>();
        for (k, c) in conditions.iter().enumerate() {
            phi[c.feature as usize] += if c.follows(row[c.feature as usize]) {
                let (e, degree) = polynomial(Some(k));
                scale * (1.0 - c.zero) * (0..=degree).map(|m| w[degree + n - m] * e[m]).sum::<f64>()
            } else {
                cold_share
            };
        }
        h == n
    }
}

/// Multiplies the polynomial `e` of degree `degree` by (1 + z·t), in place.
#[inline(always)]
fn times_one_plus(e: &mut [f64], degree: usize, z: f64) {
    e[degree + 1] = z * e[degree];
    for m in (1..=degree).rev() {
        e[m] += z * e[m - 1];
    }
}

/// The Shapley weights of a path of `n` ≥ 1 distinct features, padded with zeros: W(s) =
/// s!(n−s−1)!/n! is at index s + n, for s in 0..n; indices 0..=n and 2n hold 0.
fn padded_weights(n: usize) -> &'static [f64] {
    let start = n * n - 1;
    &WEIGHTS[start..start + 2 * n + 1]
}

/// [`padded_weights`] for every n from 1 to [`MAX_PATH`], row n at n² − 1 (length 2n + 1):
/// W(s) = 1 / (n·C(n−1, s)).
static WEIGHTS: [f64; (MAX_PATH + 1) * (MAX_PATH + 1) - 1] = {
    let mut table = [0.0; (MAX_PATH + 1) * (MAX_PATH + 1) - 1];
    let mut n = 1;
    while n <= MAX_PATH {
        let mut binomial = 1.0; // C(n−1, s)
        let mut s = 0;
        while s < n {
            table[n * n - 1 + s + n] = 1.0 / (n as f64 * binomial);
            binomial = binomial * (n - 1 - s) as f64 / (s + 1) as f64;
            s += 1;
        }
        n += 1;
    }
    table
};
