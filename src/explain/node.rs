//! One node of a flattened tree: what the parser (`super::model`) produces and both the margin
//! walk and the leaf form (`super::leaves`) read.

/// `Node::feature` of a leaf.
pub(crate) const LEAF: u32 = u32::MAX;

/// One node of a flattened tree. Children are indices into `Ensemble::nodes`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node {
    /// The split feature's index, or [`LEAF`].
    pub feature: u32,
    /// Taken when `(value as f32) < threshold` (XGBoost's `yes`, its left child).
    pub yes: u32,
    /// Taken otherwise (XGBoost's `no`).
    pub no: u32,
    /// XGBoost compares float32 to float32: a float64 comparison would send values between
    /// the two roundings down the other branch.
    pub threshold: f32,
    /// Whether a missing value takes `yes` (XGBoost's `default_left`).
    pub missing_yes: bool,
    /// The node's cover (the training hessian sum that reached it) over its parent's; 1 for a
    /// root. TreeSHAP's "zero fraction" for the edge into the node: divided once here, not at
    /// every split of every explanation, and read with the node itself rather than loaded
    /// from both children before descending.
    pub fraction: f64,
    /// The leaf value (margin space); 0 for a split.
    pub value: f64,
}

impl Node {
    /// The child a row follows: `None` (a missing feature) takes the node's `missing` branch.
    #[inline]
    pub fn next(&self, value: Option<f64>) -> u32 {
        match value {
            None => {
                if self.missing_yes {
                    self.yes
                } else {
                    self.no
                }
            }
            Some(v) if (v as f32) < self.threshold => self.yes,
            Some(_) => self.no,
        }
    }
}
