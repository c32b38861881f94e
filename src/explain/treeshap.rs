//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent Individualized
//! Feature Attribution for Tree Ensembles", Algorithm 2), in raw-margin space.
//!
//! It makes the choices of XGBoost's own CPU implementation (`src/predictor/treeshap.cc`, the
//! algorithm of `pred_contribs` up to XGBoost 3.2), so that the two agree where the paper
//! leaves room:
//! - the branch a row takes ("hot") is the one XGBoost's prediction takes: float32 comparison,
//!   a missing value follows the node's `missing` branch;
//! - the fraction of the training data that went down each branch ("zero fraction") is the
//!   child's cover over the node's own cover, and the baseline (XGBoost's bias column) is each
//!   tree's mean leaf value weighted by those same fractions, plus `baseScore`;
//! - a feature split on twice along a path is unwound and re-extended, its fractions multiplied.
//!
//! The arithmetic is rearranged for speed where the result is the same up to rounding (cold
//! elements share one sum, UNWOUND's recurrences run side by side, reciprocals are tabled);
//! src/explain/tests/shap.rs checks it against the Shapley formula by brute force. XGBoost computes in
//! float32, this in float64: the two agree within 4e-6 on the fixtures, and this side's
//! additivity (`raw_margin = baseline + Σ shap`) holds to float64 rounding.

use super::model::{value, Ensemble, Node, LEAF, MAX_DEPTH};

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
/// model. Allocates the result and one path buffer, reused across trees.
pub fn explain(model: &Ensemble, x: &[Option<f64>]) -> Explanation {
    explain_trees(model, x, 0..model.tree_count()).finish(model)
}

/// The contributions of the trees `trees` alone: an explanation is additive over trees, so
/// parts computed apart (on several threads) and joined with [`Part::and`] give [`explain`]'s answer,
/// up to the order of the additions.
pub fn explain_trees(model: &Ensemble, x: &[Option<f64>], trees: std::ops::Range<usize>) -> Part {
    let mut shap = vec![0.0; model.feature_names().len()];
    // Each recursion level keeps its own copy of the path (the paper's m), one element longer
    // than its parent's, in one buffer: level u starts at 1 + u(u+3)/2 and the leaf of a tree
    // of depth D is at most at level D, so (D+2)(D+3)/2 elements hold them all.
    let d = model.max_depth + 2;
    let mut path = vec![PathElement::default(); d * (d + 1) / 2];
    let mut walk = Walk { nodes: &model.nodes, x, phi: &mut shap, path: &mut path, leaves: 0.0 };
    for &root in &model.roots[trees] {
        walk.node(root, 0, 0, false, Edge { zero: 1.0, one: 1.0, feature: LEAF, on_row: true });
    }
    let leaves = walk.leaves;
    Part { shap, leaves }
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

/// One feature on the path from the root, with the permutation weights of the path so far.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// The feature ([`LEAF`] for the root's placeholder element, which no split matches).
    feature: u32,
    /// The fraction of paths through here when the feature is unknown (cover ratio product).
    zero: f64,
    /// 1 when the row itself goes this way, 0 otherwise.
    one: f64,
    /// The permutation weight of subsets of size `i` (for element `i`); not tied to `feature`.
    weight: f64,
}

/// The edge into a node, as RECURSE receives it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// The fraction of the training data that took the edges on the path on this feature
    /// before it (the node's own `fraction` is applied on arrival).
    zero: f64,
    /// 1 when the row takes this edge (and the earlier ones on this feature), else 0.
    one: f64,
    /// The feature the parent split on ([`LEAF`] for a root).
    feature: u32,
    /// The row itself reaches the node: its leaf is the row's leaf for the margin.
    on_row: bool,
}

/// One tree walk's state: borrowed so that nothing is allocated per tree.
struct Walk<'a> {
    nodes: &'a [Node],
    x: &'a [Option<f64>],
    phi: &'a mut [f64],
    path: &'a mut [PathElement],
    /// The sum of the leaves the row reaches, tree by tree: its margin without `baseScore`.
    leaves: f64,
}

impl Walk<'_> {
    /// RECURSE of Algorithm 2: `depth` unique features are on the path above `node` (whose
    /// elements start at `parent` in the buffer), and `edge` leads into it. `in_place`: the
    /// parent's path is not needed after this call, so it is extended where it is.
    fn node(&mut self, node: u32, mut depth: usize, parent: usize, in_place: bool, edge: Edge) {
        let n = self.nodes[node as usize];
        // The paper copies the path for each child; the second child is the parent's last use
        // of it, so only the first needs a copy (the slot after the parent's path is free).
        let at = if in_place { parent } else { parent + depth + 1 };
        if !in_place {
            self.path.copy_within(parent..parent + depth, at);
        }
        extend(&mut self.path[at..=at + depth], edge.zero * n.fraction, edge.one, edge.feature);

        if n.feature == LEAF {
            if edge.on_row {
                self.leaves += n.value;
            }
            self.leaf(at, depth, n.value);
            return;
        }

        // The row's branch gets the incoming `one`, the other 0. Visiting `yes` first whatever
        // the row does keeps the walk in preorder, the order the nodes are stored in: the
        // prefetcher then streams a model larger than L2 instead of missing on every split.
        let goes_yes = n.next(value(self.x, n.feature)) == n.yes;

        // A feature already on the path is taken off and put back with both splits' fractions:
        // a feature counts once in a subset, however often the path splits on it.
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        if let Some(k) = (1..=depth).find(|&k| self.path[at + k].feature == n.feature) {
            incoming_zero = self.path[at + k].zero;
            incoming_one = self.path[at + k].one;
            unwind(&mut self.path[at..=at + depth], k);
            depth -= 1;
        }
        let (yes_one, no_one) = if goes_yes { (incoming_one, 0.0) } else { (0.0, incoming_one) };
        let edge = |one, taken| Edge { zero: incoming_zero, one, feature: n.feature, on_row: edge.on_row && taken };
        self.node(n.yes, depth + 1, at, false, edge(yes_one, goes_yes));
        self.node(n.no, depth + 1, at, true, edge(no_one, !goes_yes));
    }

    /// The leaf's share for each feature on its path: the paper's
    /// `w = Σ UNWOUND(m, i).w; φ[m_i.d] += w (m_i.o − m_i.z) v`, computed in two ways.
    ///
    /// For an element the row did not follow (`one` = 0), UNWOUND's total is
    /// `Σ_j weight_j (u+1) / ((u−j) zero)` and the contribution multiplies it by `−zero`: zero
    /// cancels, so one sum serves every cold element of the leaf.
    ///
    /// The elements the row followed each need UNWOUND's O(depth) recurrence, a chain of
    /// dependent multiplications: [`unwound_sums`] runs up to [`LANES`] of them side by side.
    fn leaf(&mut self, at: usize, depth: usize, value: f64) {
        let path = &self.path[at..=at + depth];
        // Which elements are hot depends on the row, so a branch on it mispredicts often: they
        // are sorted into lanes without one (a cold element's index is written, then
        // overwritten).
        let mut lanes = [0; LANES + 1];
        let mut filled = 0;
        let mut cold = false;
        for (k, el) in path.iter().enumerate().skip(1) {
            lanes[filled] = k;
            filled += usize::from(el.one != 0.0);
            cold |= el.one == 0.0;
            if filled == LANES {
                hot_shares(self.phi, path, &lanes[..LANES], value);
                filled = 0;
            }
        }
        if filled > 0 {
            hot_shares(self.phi, path, &lanes[..filled], value);
        }
        if cold {
            let share = -cold_sum(path) * value;
            for el in &path[1..] {
                self.phi[el.feature as usize] += if el.one == 0.0 { share } else { 0.0 };
            }
        }
    }
}

/// Adds a leaf's share (`value`) for the hot elements `ks` of its `path` to `phi`.
fn hot_shares(phi: &mut [f64], path: &[PathElement], ks: &[usize], value: f64) {
    let totals = unwound_sums(path, ks);
    for (&k, total) in ks.iter().zip(totals) {
        let el = &path[k];
        phi[el.feature as usize] += total * (el.one - el.zero) * value;
    }
}

/// How many UNWOUND recurrences run together: a depth-6 leaf has about three elements the
/// row followed, and four independent chains keep the multiplier busy instead of waiting on
/// one chain's latency.
const LANES: usize = 4;

/// UNWOUND's total weight for each path element in `ks` (elements the row followed,
/// `one` ≠ 0), without unwinding them. Unused lanes compute zeros.
fn unwound_sums(path: &[PathElement], ks: &[usize]) -> [f64; LANES] {
    let u = path.len() - 1;
    let n = (u + 1) as f64;
    let (mut up, mut down) = ([0.0; LANES], [0.0; LANES]);
    for (lane, &k) in ks.iter().enumerate() {
        up[lane] = n / path[k].one;
        down[lane] = path[k].zero * RECIPROCALS[u + 1];
    }
    let mut next = [path[u].weight; LANES];
    let mut total = [0.0; LANES];
    for i in (0..u).rev() {
        let (r, c, w) = (RECIPROCALS[i + 1], (u - i) as f64, path[i].weight);
        for lane in 0..LANES {
            // Bracketed so that only two operations are on the chain through `next`.
            let tmp = next[lane] * (up[lane] * r);
            total[lane] += tmp;
            next[lane] = w - tmp * (down[lane] * c);
        }
    }
    total
}

/// `Σ_j weight_j (u+1) / (u−j)` over a path of `u + 1` elements: UNWOUND's total for an element
/// with `one` = 0, times its `zero`.
fn cold_sum(path: &[PathElement]) -> f64 {
    let u = path.len() - 1;
    let n = (u + 1) as f64;
    (0..u).map(|j| path[j].weight * n * RECIPROCALS[u - j]).sum()
}

/// `1/k` for every `k` a path can reach: the loops below multiply instead of dividing on
/// their critical path (a division costs several multiplications' latency).
const RECIPROCALS: [f64; MAX_DEPTH + 3] = {
    let mut r = [0.0; MAX_DEPTH + 3];
    let mut k = 1;
    while k < r.len() {
        r[k] = 1.0 / k as f64;
        k += 1;
    }
    r
};

/// EXTEND: appends `feature` to the path (its last element) and updates the weights of every
/// subset size: `w'[i+1] = w[i+1]·zero·(u−i−1)/(u+1) + w[i]·one·(i+1)/(u+1)`.
fn extend(path: &mut [PathElement], zero: f64, one: f64, feature: u32) {
    let u = path.len() - 1;
    path[u].feature = feature;
    path[u].zero = zero;
    path[u].one = one;
    let (one, zero) = (one * RECIPROCALS[u + 1], zero * RECIPROCALS[u + 1]);
    // The paper updates w[i+1] in place, then w[i], from i = u−1 down; `carry` holds w[i+1]'s
    // zero part in a register instead, so that no iteration waits on the previous one's store.
    let mut carry = if u == 0 { 1.0 } else { 0.0 };
    for i in (0..u).rev() {
        let w = path[i].weight;
        path[i + 1].weight = carry + one * w * (i + 1) as f64;
        carry = zero * w * (u - i) as f64;
    }
    path[0].weight = carry;
}

/// UNWIND: removes element `k` from the path, undoing its EXTEND. The path's last element is
/// left stale: the caller treats the path as one shorter.
fn unwind(path: &mut [PathElement], k: usize) {
    let u = path.len() - 1;
    let (one, zero) = (path[k].one, path[k].zero);
    let n = (u + 1) as f64;
    let mut next_one = path[u].weight;
    for i in (0..u).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next_one * n / ((i + 1) as f64 * one);
            next_one = tmp - path[i].weight * zero * (u - i) as f64 / n;
        } else {
            path[i].weight = path[i].weight * n / (zero * (u - i) as f64);
        }
    }
    for i in k..u {
        path[i] = PathElement { weight: path[i].weight, ..path[i + 1] };
    }
}
