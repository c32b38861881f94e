//! The model's leaves in the form the explanation reads ("leaf form"): for each leaf, the
//! distinct features on its path from the root, each with the fraction of the training data
//! that followed the path's edges on it and the values (or the missing side) that follow
//! them. Built once per parsed model from its nodes.
//!
//! Why a second representation: path-dependent TreeSHAP only ever needs, per leaf, these
//! (feature, zero fraction, "does the row follow it") triples. Algorithm 2 rebuilds them by
//! walking every node for every row and maintains its permutation weights as it goes; with
//! the triples precomputed, a row is one pass over a flat array (see `super::treeshap`).

use super::node::{Node, LEAF};

/// One distinct feature on a leaf's path: every edge of the path that splits on it, merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Condition {
    /// The product of the cover fractions of those edges: TreeSHAP's "zero fraction" (the
    /// share of the training data that followed them), multiplied in path order.
    pub zero: f64,
    /// A present value follows every edge iff `lo <= x && !(hi <= x)`, compared in float32
    /// as XGBoost does. `lo` is the largest threshold of a `no` edge (−∞ if none), `hi` the
    /// smallest of a `yes` edge, NaN if none (`!(NaN <= x)` holds for every x, +∞ included).
    pub lo: f32,
    pub hi: f32,
    pub feature: u32,
    /// A missing value follows every edge (each is its node's `missing` side).
    pub missing: bool,
}

impl Condition {
    /// Whether the row's value (NaN: missing) follows this feature's edges.
    #[inline]
    // `!(hi <= x)` on purpose: a NaN `hi` (no upper bound) compares false, so it holds.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn follows(&self, x: f32) -> bool {
        // Non-short-circuit `&`/`|`: one data-dependent branch per condition (the caller's),
        // not three.
        let missing = x.is_nan();
        (missing & self.missing) | (!missing & (self.lo <= x) & !(self.hi <= x))
    }
}

/// One leaf: its value and where its conditions end in [`LeafPaths::conditions`] (they start
/// where the previous leaf's end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Leaf {
    pub value: f64,
    pub end: u32,
}

/// Every leaf of every tree, tree after tree, each tree's by path length.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LeafPaths {
    pub leaves: Vec<Leaf>,
    pub conditions: Vec<Condition>,
    /// Per tree, one past its last leaf in `leaves`.
    pub tree_ends: Vec<u32>,
}

impl LeafPaths {
    /// The leaf form of the trees rooted at `roots` in `nodes` (validated by the parser:
    /// every reference resolves, depth ≤ `MAX_DEPTH`) for which `wanted(tree)` holds; the
    /// others get no leaves (they are explained from their nodes).
    pub fn build(nodes: &[Node], roots: &[u32], wanted: impl Fn(usize) -> bool) -> LeafPaths {
        let mut out = LeafPaths::default();
        let mut path = Vec::new();
        for (tree, &root) in roots.iter().enumerate() {
            if wanted(tree) {
                let first = out.leaves.len();
                out.walk(nodes, root, &mut path);
                out.sort_by_path_length(first);
            }
            out.tree_ends.push(out.leaves.len() as u32);
        }
        out
    }

    /// Orders the leaves from `first` on (one tree's) by the length of their paths, stably:
    /// the explanation picks its code by that length, and runs of one length keep that choice
    /// predictable. A row reaches one leaf per tree, so the order of a tree's leaves changes
    /// no sum of leaf values.
    fn sort_by_path_length(&mut self, first: usize) {
        let start = if first == 0 { 0 } else { self.leaves[first - 1].end as usize };
        let mut leaves: Vec<(Leaf, Vec<Condition>)> =
            (first..self.leaves.len()).map(|i| (self.leaves[i], self.conditions_of(i).to_vec())).collect();
        leaves.sort_by_key(|(_, conditions)| conditions.len());
        self.leaves.truncate(first);
        self.conditions.truncate(start);
        for (leaf, conditions) in leaves {
            self.conditions.extend(conditions);
            self.leaves.push(Leaf { value: leaf.value, end: self.conditions.len() as u32 });
        }
    }

    /// The leaves of trees `trees`, as a range of indices into `leaves`.
    pub fn leaves_of(&self, trees: std::ops::Range<usize>) -> std::ops::Range<usize> {
        if trees.is_empty() {
            return 0..0;
        }
        let start = if trees.start == 0 { 0 } else { self.tree_ends[trees.start - 1] as usize };
        start..self.tree_ends[trees.end - 1] as usize
    }

    /// The conditions of leaf `i`.
    #[inline]
    pub fn conditions_of(&self, i: usize) -> &[Condition] {
        let start = if i == 0 { 0 } else { self.leaves[i - 1].end as usize };
        &self.conditions[start..self.leaves[i].end as usize]
    }

    pub fn heap_bytes(&self) -> usize {
        self.leaves.len() * std::mem::size_of::<Leaf>()
            + self.conditions.len() * std::mem::size_of::<Condition>()
            + self.tree_ends.len() * 4
    }

    fn walk(&mut self, nodes: &[Node], i: u32, path: &mut Vec<Condition>) {
        let n = nodes[i as usize];
        if n.feature == LEAF {
            self.conditions.extend_from_slice(path);
            self.leaves.push(Leaf { value: n.value, end: self.conditions.len() as u32 });
            return;
        }
        for (child, yes) in [(n.yes, true), (n.no, false)] {
            let at = path.iter().position(|c| c.feature == n.feature);
            let saved = at.map(|k| path[k]);
            let k = at.unwrap_or_else(|| {
                path.push(Condition {
                    zero: 1.0,
                    lo: f32::NEG_INFINITY,
                    hi: f32::NAN,
                    feature: n.feature,
                    missing: true,
                });
                path.len() - 1
            });
            let c = &mut path[k];
            c.zero *= nodes[child as usize].fraction;
            if yes {
                c.hi = if c.hi.is_nan() { n.threshold } else { c.hi.min(n.threshold) };
            } else {
                c.lo = c.lo.max(n.threshold);
            }
            c.missing &= n.missing_yes == yes;
            self.walk(nodes, child, path);
            match saved {
                Some(s) => path[k] = s,
                None => {
                    path.pop();
                }
            }
        }
    }
}
