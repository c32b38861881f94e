//! Exact TreeSHAP explanations of gradient-boosted models (issue 12).
//!
//! A pure library: the `POST /api/v1/decisions/{id}/shap` endpoint loads the catalog `model`
//! entity, parses it once into an [`Ensemble`] (cached), builds the row from the request's
//! attributes with [`Ensemble::feature_index`], and calls [`explain`].
//!
//! - [`model`]: XGBoost JSON dumps → flat node arrays, validated ([`ModelError`] is a 400).
//! - [`treeshap`]: Algorithm 2 of Lundberg, Erion & Lee (2018), matching XGBoost's
//!   `pred_contribs`; verified against XGBoost's own output (tests/fixtures/shap, made by
//!   scripts/shap-fixtures/generate.py).

pub mod model;
pub mod treeshap;

pub use model::{Ensemble, ModelError};
pub use treeshap::{explain, explain_trees, probability_deltas, Explanation, Part};

#[cfg(test)]
mod tests;
