//! Path-dependent TreeSHAP in time linear in a tree's size: Linear TreeShap (Yu, Bao, Wang,
//! Jiang, Luo & Wang, NeurIPS 2022), one walk over the nodes per row instead of one pass over
//! every leaf's path (`super::treeshap`'s closed form, O(depth²) per leaf).
//!
//! **Why it is the same number.** With T_j(u) = o_j·u + z_j·(1 − u) for each distinct feature
//! j on a leaf's path (o_j: the row follows j's edges, z_j: their merged zero fraction),
//! the closed form's Shapley sum is an integral (Σ_s W(s)·e_s = ∫₀¹ Π_j(…) du, the Beta
//! integral of the weights):
//!
//! φ_i += v·(o_i − z_i)·∫₀¹ Π_{j≠i} T_j(u) du.
//!
//! The integrand has degree ≤ depth − 1, so Gauss–Legendre quadrature with ⌈depth/2⌉ points is
//! exact. Each node keeps its path's product P(u) = Π_j T_j(u) at those points only; a leaf
//! returns v·P, a node the sum over its subtree (Q), and the edge into it adds
//! (o − z)·Σ_k (Q_k − R_k)/T(u_k) to its feature, R being what deeper edges on the same
//! feature returned: below them the leaves carry the merged term, not this one. The quadrature
//! weights ride in P from the root. Every node is visited once, with O(points) work.
//!
//! A tree is explained this way when that is safe in float64 (see [`points_for`]); the others
//! take the closed form.

use std::sync::LazyLock;

use super::node::{Node, LEAF};

/// The most quadrature points instantiated: trees up to `2 · MAX_POINTS` deep.
pub(super) const MAX_POINTS: usize = 8;

/// Edges whose zero fraction lies outside this range send the tree to the closed form: over
/// ≤ 16 edges a product of such fractions stays within 10^±192, far from float64's subnormal
/// and overflow ranges, so the divisions by T(u) below never lose precision to underflow.
const FRACTION_RANGE: std::ops::RangeInclusive<f64> = 1e-12..=1e12;

/// How many quadrature points explain the tree at `root` exactly (⌈depth/2⌉, at least 1), or
/// `None` when it is deeper than `2 · MAX_POINTS` or has an edge outside [`FRACTION_RANGE`].
pub(super) fn points_for(nodes: &[Node], root: u32) -> Option<usize> {
    fn depth(nodes: &[Node], i: u32) -> Option<usize> {
        let n = &nodes[i as usize];
        if n.feature == LEAF {
            return Some(0);
        }
        let fits = |c: u32| FRACTION_RANGE.contains(&nodes[c as usize].fraction);
        if !fits(n.yes) || !fits(n.no) {
            return None;
        }
        let d = 1 + depth(nodes, n.yes)?.max(depth(nodes, n.no)?);
        (d <= 2 * MAX_POINTS).then_some(d)
    }
    depth(nodes, root).map(|d| d.div_ceil(2).max(1))
}

/// The edge into a node, as the walk reads it: row-independent, built once per model.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Edge {
    /// The merged zero fraction of the edge's feature on the path down to here (the product
    /// of the fractions of every edge on that feature so far).
    zero: f64,
    /// The node (tree-local preorder index) whose incoming edge was the previous one on the
    /// same feature, or the tree's size when there is none (a slot holding T = 1, o = 1).
    same: u32,
}

/// The trees explained by the walk, and what it needs of them beyond their nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Walks {
    /// Quadrature points for every walked tree: the most any of them needs (a shallower tree
    /// is as exact with more), so one scratch serves a whole explanation. 0 if none is walked.
    points: usize,
    /// Per tree: walked, or left to the closed form.
    walked: Vec<bool>,
    /// Per node, parallel to the ensemble's nodes (unused in trees not walked).
    edges: Vec<Edge>,
    /// The most nodes in one walked tree.
    largest: usize,
}

impl Walks {
    /// Prepares every tree [`points_for`] accepts; `roots` are in node order, each tree's
    /// nodes in preorder up to the next root; splits are on features below `features`.
    pub fn build(nodes: &[Node], roots: &[u32], features: usize) -> Walks {
        let mut walks = Walks { edges: Vec::with_capacity(nodes.len()), ..Walks::default() };
        let mut last = vec![u32::MAX; features];
        for (tree, &root) in roots.iter().enumerate() {
            let end = tree_end(nodes, roots, tree);
            let size = end - root as usize;
            walks.edges.extend(std::iter::repeat_n(Edge { zero: 1.0, same: size as u32 }, size));
            let points = points_for(nodes, root);
            walks.walked.push(points.is_some());
            if let Some(points) = points {
                walks.points = walks.points.max(points);
                walks.largest = walks.largest.max(size);
                let tree = &nodes[root as usize..end];
                link(tree, root, 0, &mut walks.edges[root as usize..end], &mut last);
            }
        }
        walks
    }

    /// The quadrature points the walked trees are explained with (0: none is walked).
    #[cfg(test)]
    pub fn points(&self) -> usize {
        self.points
    }

    /// Whether tree `tree` is explained by [`Self::explain`] (else by the closed form).
    pub fn walks(&self, tree: usize) -> bool {
        self.walked[tree]
    }

    pub fn heap_bytes(&self) -> usize {
        self.edges.len() * std::mem::size_of::<Edge>() + self.walked.len()
    }

    /// Adds the contributions of the walked trees among `trees` to `phi`. `row` is the row as
    /// XGBoost compares it (float32, NaN for missing).
    pub fn explain(&self, nodes: &[Node], roots: &[u32], trees: std::ops::Range<usize>, row: &[f32], phi: &mut [f64]) {
        match self.points {
            0 => {}
            1 => self.walk::<1>(nodes, roots, trees, row, phi),
            2 => self.walk::<2>(nodes, roots, trees, row, phi),
            3 => self.walk::<3>(nodes, roots, trees, row, phi),
            4 => self.walk::<4>(nodes, roots, trees, row, phi),
            5 => self.walk::<5>(nodes, roots, trees, row, phi),
            6 => self.walk::<6>(nodes, roots, trees, row, phi),
            7 => self.walk::<7>(nodes, roots, trees, row, phi),
            _ => self.walk::<MAX_POINTS>(nodes, roots, trees, row, phi),
        }
    }

    /// Two passes per tree over its nodes in preorder, no recursion: down, each node's o, 1/T
    /// and P from its parent's; up (reverse preorder, children first), each node's Q, each
    /// edge's contribution, and Q handed to the previous edge on the same feature as R.
    fn walk<const M: usize>(
        &self,
        nodes: &[Node],
        roots: &[u32],
        trees: std::ops::Range<usize>,
        row: &[f32],
        phi: &mut [f64],
    ) {
        let rule = &RULES[M];
        let u: [f64; M] = std::array::from_fn(|k| rule[k].0);
        let slots = self.largest + 1;
        let mut o = vec![0.0; slots];
        let (mut inv, mut p) = (vec![[0.0; M]; slots], vec![[0.0; M]; slots]);
        let (mut q, mut r) = (vec![[0.0; M]; slots], vec![[0.0; M]; slots]);
        for tree in trees.filter(|&t| self.walked[t]) {
            let root = roots[tree] as usize;
            let end = tree_end(nodes, roots, tree);
            let (tree, edges, size) = (&nodes[root..end], &self.edges[root..end], end - root);
            (o[size], inv[size]) = (1.0, [1.0; M]);
            p[0] = std::array::from_fn(|k| rule[k].1);
            for (i, n) in tree.iter().enumerate() {
                if n.feature == LEAF {
                    continue;
                }
                let x = row[n.feature as usize];
                let yes = if x.is_nan() { n.missing_yes } else { x < n.threshold };
                for (c, follows) in [(n.yes as usize - root, yes), (n.no as usize - root, !yes)] {
                    let Edge { zero, same } = edges[c];
                    let oc = if follows { o[same as usize] } else { 0.0 };
                    let t: [f64; M] = std::array::from_fn(|k| zero + (oc - zero) * u[k]);
                    let before = inv[same as usize];
                    p[c] = std::array::from_fn(|k| p[i][k] * t[k] * before[k]);
                    (o[c], inv[c], r[c]) = (oc, t.map(|t| 1.0 / t), [0.0; M]);
                }
            }
            for (i, n) in tree.iter().enumerate().rev() {
                if n.feature == LEAF {
                    q[i] = p[i].map(|p| n.value * p);
                    continue;
                }
                let mut sum = [0.0; M];
                for c in [n.yes as usize - root, n.no as usize - root] {
                    let Edge { zero, same } = edges[c];
                    let integral: f64 = (0..M).map(|k| (q[c][k] - r[c][k]) * inv[c][k]).sum();
                    phi[n.feature as usize] += (o[c] - zero) * integral;
                    for k in 0..M {
                        r[same as usize][k] += q[c][k];
                        sum[k] += q[c][k];
                    }
                }
                q[i] = sum;
            }
        }
    }
}

/// One past the last node of tree `tree`: its nodes run from its root to the next tree's.
fn tree_end(nodes: &[Node], roots: &[u32], tree: usize) -> usize {
    roots.get(tree + 1).map_or(nodes.len(), |&r| r as usize)
}

/// Fills the edges below node `i` (tree-local) of `tree` (whose first node is `root`):
/// `last[f]` is the node whose incoming edge is the latest on feature f along the path.
fn link(tree: &[Node], root: u32, i: usize, edges: &mut [Edge], last: &mut [u32]) {
    let n = tree[i];
    if n.feature == LEAF {
        return;
    }
    let f = n.feature as usize;
    let previous = last[f];
    for c in [(n.yes - root) as usize, (n.no - root) as usize] {
        let (before, same) = match previous {
            u32::MAX => (1.0, tree.len() as u32),
            l => (edges[l as usize].zero, l),
        };
        edges[c] = Edge { zero: before * tree[c].fraction, same };
        last[f] = c as u32;
        link(tree, root, c, edges, last);
    }
    last[f] = previous;
}

/// Gauss–Legendre rules on [0, 1]: `RULES[m][k]` is point k of the m-point rule and its
/// weight, for m from 1 to [`MAX_POINTS`] (m-point rules integrate degree ≤ 2m − 1 exactly).
pub(super) static RULES: LazyLock<[[(f64, f64); MAX_POINTS]; MAX_POINTS + 1]> = LazyLock::new(|| {
    let mut rules = [[(0.0, 0.0); MAX_POINTS]; MAX_POINTS + 1];
    for (m, rule) in rules.iter_mut().enumerate().skip(1) {
        for (k, slot) in rule.iter_mut().take(m).enumerate() {
            let (x, w) = legendre_root(m, k);
            // From [−1, 1] to [0, 1].
            *slot = ((1.0 - x) / 2.0, w / 2.0);
        }
    }
    rules
});

/// Root k of the Legendre polynomial P_m and its Gauss weight, by Newton's method from the
/// usual starting guess (converges in a few steps to the last bit for small m).
fn legendre_root(m: usize, k: usize) -> (f64, f64) {
    let mut x = (std::f64::consts::PI * (k as f64 + 0.75) / (m as f64 + 0.5)).cos();
    let mut derivative = 1.0;
    for _ in 0..100 {
        // P_m(x) and P_{m−1}(x) by the three-term recurrence.
        let (mut p, mut p_before) = (1.0, 0.0);
        for j in 1..=m {
            (p, p_before) = (((2 * j - 1) as f64 * x * p - (j - 1) as f64 * p_before) / j as f64, p);
        }
        derivative = m as f64 * (x * p - p_before) / (x * x - 1.0);
        let step = p / derivative;
        x -= step;
        if step.abs() <= 1e-16 {
            break;
        }
    }
    (x, 2.0 / ((1.0 - x * x) * derivative * derivative))
}
