//! Exact TreeSHAP explanations of gradient-boosted models (issue 12).
//!
//! A pure library: the `POST /api/v1/decisions/{id}/shap` endpoint loads the catalog `model`
//! entity, parses it once into an [`Ensemble`] (cached), builds the row from the request's
//! attributes with [`Ensemble::feature_index`], and calls [`explain`].
//!
//! - [`model`]: XGBoost JSON dumps → flat node arrays, validated ([`ModelError`] is a 400).
//! - [`treeshap`]: path-dependent TreeSHAP of Lundberg, Erion & Lee (2018), matching
//!   XGBoost's `pred_contribs`: the explanation, its parts over trees, and the closed form per
//!   leaf; verified against the paper's Algorithm 2 (src/explain/tests/algorithm2.rs), the
//!   Shapley values by definition and XGBoost's own output (tests/fixtures/shap, made by
//!   scripts/shap-fixtures/generate.py).
//! - `linear`: the same values in one walk over a tree's nodes (Linear TreeShap, Yu et al.
//!   2022), for every tree up to 16 levels deep with ordinary covers.
//! - `leaves`: the other trees leaf by leaf (each path's distinct features, merged), built at
//!   parse time, as the closed form reads them.

mod leaves;
mod linear;
pub mod model;
mod node;
pub mod treeshap;

pub use model::{Ensemble, ModelError};
pub use treeshap::{explain, explain_trees, probability_deltas, Explanation, Part};

#[cfg(test)]
mod tests;
