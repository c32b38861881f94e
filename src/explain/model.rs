//! A catalog `model` entity of type `gradient_boosted`, parsed once into flat node arrays.
//!
//! `data.trees` holds XGBoost's JSON dump (`Booster.get_dump(dump_format="json",
//! with_stats=True)`), one tree per entry, each either the string get_dump returns or that string
//! parsed. The nested dump is flattened into one `Vec<Node>` for the whole ensemble so that a
//! walk is index arithmetic over contiguous memory, not JSON lookups.
//!
//! Validation happens here, once, so that TreeSHAP itself cannot fail: every reference resolves,
//! every cover it divides by is positive, every depth is bounded. Each failure is a
//! [`ModelError`] whose sentence says where, answered as a 400 by the API.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::leaves::LeafPaths;
use super::linear::Walks;
pub(crate) use super::node::{Node, LEAF};

/// The deepest node accepted, counted in edges from the root. Parsing and the leaf form's
/// build recurse once per level, each leaf keeps one condition per distinct feature on its
/// path, and past 16 levels (the linear walk's limit) an explanation's work per leaf grows
/// with the square of that; XGBoost's default depth is 6.
/// 60, not 64: a dumped tree nests two JSON levels per depth, and serde_json stops at 128
/// levels, so a deeper string tree would fail with serde's message instead of this bound's.
pub const MAX_DEPTH: usize = 60;

/// The highest feature index a `f<index>` split may name: the explanation allocates one value
/// per index, so a typo like `f4000000000` must not allocate gigabytes.
pub const MAX_FEATURE_INDEX: usize = 65_535;

/// Why a `model` entity cannot be explained; each is a client error (400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the model's modelType is {found}, not \"gradient_boosted\"")]
    NotGradientBoosted { found: String },
    #[error("the model has no trained trees")]
    NoTrees,
    /// A top-level field of `data` (not a tree) is wrong.
    #[error("the model's {field} {problem}")]
    BadField { field: &'static str, problem: String },
    #[error("tree {tree} of the model is malformed: {problem}")]
    MalformedTree { tree: usize, problem: String },
}

/// A parsed gradient-boosted ensemble: immutable, shared across requests.
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// Every tree's nodes, tree after tree.
    pub(crate) nodes: Vec<Node>,
    /// The root's index in `nodes`, per tree.
    pub(crate) roots: Vec<u32>,
    /// The deepest leaf over all trees (edges from the root). Only the tests read it (the
    /// fixtures must cover depths 1 to 6); the explanation sizes nothing by it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) max_depth: usize,
    /// `data.baseScore`: the margin added to the trees' sum (0 when absent).
    pub(crate) base_score: f64,
    /// `base_score` plus each tree's cover-weighted mean leaf value, computed once.
    pub(crate) baseline: f64,
    /// The trees `super::linear` explains by walking their nodes (all but the very deep or
    /// those with extreme covers)...
    pub(crate) walks: Walks,
    /// ...and the others leaf by leaf, as the closed form reads them.
    pub(crate) paths: LeafPaths,
    /// One name per feature index (`f<i>` where the model gives none).
    feature_names: Vec<String>,
    /// `feature_names` reversed: requests name their attributes.
    index_of: HashMap<String, usize>,
}

impl Ensemble {
    /// Parses a catalog `model` entity's `data` object.
    pub fn from_data(data: &Value) -> Result<Self, ModelError> {
        let data =
            data.as_object().ok_or(ModelError::BadField { field: "data", problem: "is not a JSON object".into() })?;
        match data.get("modelType") {
            Some(Value::String(t)) if t == "gradient_boosted" => {}
            Some(other) => return Err(ModelError::NotGradientBoosted { found: other.to_string() }),
            None => return Err(ModelError::NotGradientBoosted { found: "absent".into() }),
        }
        let trees = match data.get("trees") {
            Some(Value::Array(trees)) if !trees.is_empty() => trees,
            None | Some(Value::Null) | Some(Value::Array(_)) => return Err(ModelError::NoTrees),
            Some(_) => return Err(bad("trees", "is not an array")),
        };
        let base_score = match data.get("baseScore") {
            None | Some(Value::Null) => 0.0,
            Some(v) => v.as_f64().filter(|b| b.is_finite()).ok_or_else(|| bad("baseScore", "is not a number"))?,
        };
        let names = given_names(data)?;

        let mut builder = Builder {
            nodes: Vec::new(),
            names: names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect(),
            n_features: names.len(),
            max_depth: 0,
            seen: HashSet::new(),
        };
        let mut roots = Vec::with_capacity(trees.len());
        let mut baseline = base_score;
        for (t, tree) in trees.iter().enumerate() {
            let parsed;
            let tree = match tree {
                // get_dump returns strings; a catalog may also hold them parsed.
                Value::String(text) => {
                    parsed = serde_json::from_str::<Value>(text)
                        .map_err(|e| malformed(t, format!("its string is not JSON ({e})")))?;
                    &parsed
                }
                other => other,
            };
            builder.seen.clear();
            let (root, mean, _) = builder.node(tree, 0).map_err(|problem| malformed(t, problem))?;
            roots.push(root);
            baseline += mean;
        }
        let feature_names: Vec<String> =
            (0..builder.n_features).map(|i| names.get(i).cloned().unwrap_or_else(|| format!("f{i}"))).collect();
        let index_of = feature_names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        let walks = Walks::build(&builder.nodes, &roots, builder.n_features);
        Ok(Self {
            paths: LeafPaths::build(&builder.nodes, &roots, |tree| !walks.walks(tree)),
            walks,
            max_depth: builder.max_depth,
            nodes: builder.nodes,
            roots,
            base_score,
            baseline,
            feature_names,
            index_of,
        })
    }

    /// The name of every feature index the model has (given names first, `f<i>` beyond them):
    /// index `i` of an explanation's `shap` is `feature_names()[i]`.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The index of a feature by name, for building the row from a request's attributes.
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.index_of.get(name).copied()
    }

    /// Bytes the parsed model holds, for a cache's budget.
    pub fn heap_bytes(&self) -> usize {
        let names: usize = self.feature_names.iter().map(|n| 2 * n.len() + 64).sum();
        self.nodes.len() * std::mem::size_of::<Node>()
            + self.roots.len() * 4
            + self.paths.heap_bytes()
            + self.walks.heap_bytes()
            + names
    }

    /// The number of trees.
    pub fn tree_count(&self) -> usize {
        self.roots.len()
    }

    /// The raw margin (log-odds for `binary:logistic`): `baseScore` plus the leaf each tree
    /// sends `x` to. `x[i]` is feature `i`; `None`, NaN or an index past `x`'s end is missing.
    pub fn margin(&self, x: &[Option<f64>]) -> f64 {
        self.base_score + self.roots.iter().map(|&root| self.nodes[self.leaf(root, x)].value).sum::<f64>()
    }

    /// The leaf a row reaches from `root`.
    pub(crate) fn leaf(&self, root: u32, x: &[Option<f64>]) -> usize {
        let mut i = root as usize;
        loop {
            let node = &self.nodes[i];
            if node.feature == LEAF {
                return i;
            }
            i = node.next(value(x, node.feature)) as usize;
        }
    }
}

/// Feature `f` of a row: `None` when missing (absent, NaN or beyond the row), as XGBoost
/// treats NaN.
#[inline]
pub(crate) fn value(x: &[Option<f64>], f: u32) -> Option<f64> {
    x.get(f as usize).copied().flatten().filter(|v| !v.is_nan())
}

/// `data.featureNames`: optional, strings, no duplicates (a name must mean one index).
fn given_names(data: &Map<String, Value>) -> Result<Vec<String>, ModelError> {
    let names = match data.get("featureNames") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(names)) => names,
        Some(_) => return Err(bad("featureNames", "is not an array of strings")),
    };
    if names.len() > MAX_FEATURE_INDEX + 1 {
        return Err(bad("featureNames", format!("has more than {} names", MAX_FEATURE_INDEX + 1)));
    }
    let mut seen = HashSet::new();
    names
        .iter()
        .map(|n| {
            let n = n.as_str().ok_or_else(|| bad("featureNames", "is not an array of strings"))?;
            if !seen.insert(n) {
                return Err(bad("featureNames", format!("has {n:?} twice")));
            }
            Ok(n.to_owned())
        })
        .collect()
}

/// Flattens one tree after another into `nodes`.
struct Builder<'a> {
    nodes: Vec<Node>,
    names: HashMap<&'a str, u32>,
    /// One past the highest feature index seen (at least the number of given names).
    n_features: usize,
    max_depth: usize,
    /// This tree's node ids: a duplicate would make `yes`/`no` ambiguous.
    seen: HashSet<u64>,
}

impl Builder<'_> {
    /// Appends the subtree at `v` (at `depth`), returning its index, its cover-weighted mean
    /// leaf value (XGBoost's node mean: children's means weighted by their covers, divided by
    /// the node's own cover) and its cover. The parent sets the node's `fraction`.
    fn node(&mut self, v: &Value, depth: usize) -> Result<(u32, f64, f64), String> {
        let obj = v.as_object().ok_or_else(|| format!("a node at depth {depth} is not an object"))?;
        let id = match obj.get("nodeid").and_then(Value::as_u64) {
            // XGBoost's node ids are int32. They are not required to be below the node count:
            // pruning (e.g. the exact method with gamma) leaves gaps.
            Some(id) if id <= i32::MAX as u64 => id,
            _ => return Err(format!("a node at depth {depth} has no nodeid in 0..=2147483647")),
        };
        if depth > MAX_DEPTH {
            return Err(format!("node {id} is deeper than {MAX_DEPTH} levels"));
        }
        if !self.seen.insert(id) {
            return Err(format!("node {id} appears twice (a duplicate id or a cycle)"));
        }
        // TreeSHAP divides by a split's cover and weighs the branch not taken by its child's:
        // every node needs a positive cover except the root of a single-leaf tree.
        let cover = match obj.get("cover").and_then(Value::as_f64) {
            Some(c) if c > 0.0 && c.is_finite() => c,
            _ if depth == 0 && obj.contains_key("leaf") => 0.0,
            _ => return Err(format!("node {id} has no positive cover")),
        };
        let index = u32::try_from(self.nodes.len()).map_err(|_| "the model has too many nodes".to_owned())?;

        if let Some(leaf) = obj.get("leaf") {
            let value = leaf.as_f64().filter(|l| l.is_finite()).ok_or_else(|| format!("leaf {id} is not a number"))?;
            self.max_depth = self.max_depth.max(depth);
            self.nodes.push(Node {
                feature: LEAF,
                yes: 0,
                no: 0,
                threshold: 0.0,
                missing_yes: false,
                fraction: 1.0,
                value,
            });
            return Ok((index, value, cover));
        }

        let feature = self.feature(obj, id)?;
        let threshold = match obj.get("split_condition") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN) as f32,
            Some(Value::Array(_)) => return Err(format!("node {id} is a categorical split (not supported)")),
            _ => return Err(format!("node {id} has no numeric split_condition")),
        };
        if threshold.is_nan() {
            return Err(format!("node {id}: split_condition is not a number"));
        }
        let reference = |key: &str| {
            obj.get(key).and_then(Value::as_u64).ok_or_else(|| format!("node {id}: {key} is not a node id"))
        };
        let (yes_id, no_id, missing_id) = (reference("yes")?, reference("no")?, reference("missing")?);
        if yes_id == no_id {
            return Err(format!("node {id}: yes and no are both node {yes_id}"));
        }
        if missing_id != yes_id && missing_id != no_id {
            return Err(format!("node {id}: missing is node {missing_id}, neither yes ({yes_id}) nor no ({no_id})"));
        }
        let children = match obj.get("children") {
            Some(Value::Array(c)) if c.len() == 2 => c,
            Some(Value::Array(c)) => return Err(format!("node {id} has {} children, not 2", c.len())),
            _ => return Err(format!("node {id} has no children array")),
        };
        let child_id = |c: &Value| c.get("nodeid").and_then(Value::as_u64);
        let find = |want: u64| {
            children
                .iter()
                .find(|c| child_id(c) == Some(want))
                .ok_or_else(|| format!("node {id}: child {want} is missing from its children"))
        };
        let (yes_v, no_v) = (find(yes_id)?, find(no_id)?);

        // Placeholder first, so that a parent precedes its subtree (preorder, as XGBoost).
        let missing_yes = missing_id == yes_id;
        self.nodes.push(Node { feature, yes: 0, no: 0, threshold, missing_yes, fraction: 1.0, value: 0.0 });
        let (yes, yes_mean, yes_cover) = self.node(yes_v, depth + 1)?;
        let (no, no_mean, no_cover) = self.node(no_v, depth + 1)?;
        (self.nodes[index as usize].yes, self.nodes[index as usize].no) = (yes, no);
        self.nodes[yes as usize].fraction = yes_cover / cover;
        self.nodes[no as usize].fraction = no_cover / cover;
        Ok((index, (yes_mean * yes_cover + no_mean * no_cover) / cover, cover))
    }

    /// The split's feature index: a given name, else `f<index>` (XGBoost writes `f<index>` for
    /// an index past the names it has).
    fn feature(&mut self, obj: &Map<String, Value>, id: u64) -> Result<u32, String> {
        let name = obj.get("split").and_then(Value::as_str).ok_or_else(|| format!("node {id} has no split feature"))?;
        let index = match self.names.get(name) {
            Some(&i) => i,
            None => name
                .strip_prefix('f')
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<usize>().ok())
                .filter(|&i| i <= MAX_FEATURE_INDEX)
                .map(|i| i as u32)
                .ok_or_else(|| format!("node {id} splits on unknown feature {name:?}"))?,
        };
        self.n_features = self.n_features.max(index as usize + 1);
        Ok(index)
    }
}

fn bad(field: &'static str, problem: impl Into<String>) -> ModelError {
    ModelError::BadField { field, problem: problem.into() }
}

fn malformed(tree: usize, problem: String) -> ModelError {
    ModelError::MalformedTree { tree, problem }
}
