//! The paper's Algorithm 2 (Lundberg, Erion & Lee 2018), transcribed as printed (a copy of the
//! path per call, UNWIND to sum a feature's weights), as the reference the closed form in
//! `treeshap` is checked against on models too large for brute force.

use serde_json::{json, Value};

use super::data;
use super::shap::Rng;
use crate::explain::model::{value, Ensemble, LEAF};
use crate::explain::{explain, explain_trees};

#[derive(Debug, Clone, Copy)]
struct Element {
    /// The feature (`LEAF` for the paper's initial element).
    d: u32,
    z: f64,
    o: f64,
    w: f64,
}

/// Algorithm 2's φ for `x`, without the bias column.
pub(super) fn algorithm2(m: &Ensemble, x: &[Option<f64>]) -> Vec<f64> {
    let mut phi = vec![0.0; m.feature_names().len()];
    for &root in &m.roots {
        recurse(m, x, &mut phi, root, &[], 1.0, 1.0, LEAF);
    }
    phi
}

#[allow(clippy::too_many_arguments)]
fn recurse(m: &Ensemble, x: &[Option<f64>], phi: &mut [f64], j: u32, path: &[Element], pz: f64, po: f64, pi: u32) {
    let path = extend(path, pz, po, pi);
    let node = m.nodes[j as usize];
    if node.feature == LEAF {
        for i in 1..path.len() {
            let w: f64 = unwind(&path, i).iter().map(|e| e.w).sum();
            phi[path[i].d as usize] += w * (path[i].o - path[i].z) * node.value;
        }
        return;
    }
    let hot = node.next(value(x, node.feature));
    let cold = if hot == node.yes { node.no } else { node.yes };
    let (mut iz, mut io, mut path) = (1.0, 1.0, path);
    if let Some(k) = (1..path.len()).find(|&k| path[k].d == node.feature) {
        (iz, io) = (path[k].z, path[k].o);
        path = unwind(&path, k);
    }
    let fraction = |child: u32| m.nodes[child as usize].fraction;
    recurse(m, x, phi, hot, &path, iz * fraction(hot), io, node.feature);
    recurse(m, x, phi, cold, &path, iz * fraction(cold), 0.0, node.feature);
}

fn extend(path: &[Element], pz: f64, po: f64, pi: u32) -> Vec<Element> {
    let l = path.len();
    let mut m = path.to_vec();
    m.push(Element { d: pi, z: pz, o: po, w: if l == 0 { 1.0 } else { 0.0 } });
    for i in (0..l).rev() {
        m[i + 1].w += po * m[i].w * (i + 1) as f64 / (l + 1) as f64;
        m[i].w = pz * m[i].w * (l - i) as f64 / (l + 1) as f64;
    }
    m
}

fn unwind(path: &[Element], i: usize) -> Vec<Element> {
    let l = path.len() - 1;
    let mut m = path.to_vec();
    let mut n = m[l].w;
    let (o, z) = (path[i].o, path[i].z);
    for j in (0..l).rev() {
        if o != 0.0 {
            let t = m[j].w;
            m[j].w = n * (l + 1) as f64 / ((j + 1) as f64 * o);
            n = t - m[j].w * z * (l - j) as f64 / (l + 1) as f64;
        } else {
            m[j].w = m[j].w * (l + 1) as f64 / (z * (l - j) as f64);
        }
    }
    for j in i..l {
        m[j] = Element { w: m[j].w, ..m[j + 1] };
    }
    m.pop();
    m
}

/// Both sides are float64 and sum in different orders (Algorithm 2 also divides while
/// unwinding): they agree to rounding, not to the last bit.
const TOLERANCE: f64 = 1e-11;

fn assert_close(got: &[f64], want: &[f64], tolerance: f64, case: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tolerance * w.abs().max(1.0), "{case}, feature {i}: {g} != {w}");
    }
}

/// A random tree as training grows them: each split sends a share of its cover to each child
/// (zero fractions add up to 1, as XGBoost's covers do). `shap::random_tree`'s covers do not,
/// which makes intermediate products large and both algorithms' rounding visible at ~1e-9.
pub(super) fn grown_tree(rng: &mut Rng, depth: usize, features: usize, next_id: &mut u64, cover: f64) -> Value {
    let id = *next_id;
    *next_id += 1;
    if depth == 0 || rng.below(5) == 0 {
        return json!({"nodeid": id, "leaf": rng.unit() * 2.0 - 1.0, "cover": cover});
    }
    let share = 0.05 + 0.9 * rng.unit();
    let yes = grown_tree(rng, depth - 1, features, next_id, cover * share);
    let no = grown_tree(rng, depth - 1, features, next_id, cover * (1.0 - share));
    let missing = if rng.below(2) == 0 { &yes["nodeid"] } else { &no["nodeid"] };
    json!({
        "nodeid": id, "split": format!("f{}", rng.below(features)), "split_condition": rng.unit(),
        "yes": yes["nodeid"], "no": no["nodeid"], "missing": missing, "cover": cover,
        "children": [yes, no]
    })
}

/// Random ensembles up to depth 12 over up to 40 features, rows with missing values: the
/// closed form equals Algorithm 2, and parts over trees add up to the whole.
#[test]
fn equals_algorithm_2_on_random_models() {
    let mut rng = Rng(0xa1_6020_7e57);
    for case in 0..40 {
        let features = 1 + rng.below(40);
        let trees: Vec<Value> = (0..1 + rng.below(30))
            .map(|_| {
                let depth = 1 + rng.below(12);
                grown_tree(&mut rng, depth, features, &mut 0, 1000.0)
            })
            .collect();
        let m = Ensemble::from_data(&data(trees, None, rng.unit())).unwrap();
        for _ in 0..5 {
            let x: Vec<Option<f64>> =
                (0..m.feature_names().len()).map(|_| (rng.below(5) != 0).then(|| rng.unit())).collect();
            let e = explain(&m, &x);
            assert_close(&e.shap, &algorithm2(&m, &x), TOLERANCE, &format!("case {case}"));
            assert!(e.additivity_residual().abs() < 1e-10, "case {case}: {e:?}");
            assert_eq!(e.raw_margin, m.margin(&x), "case {case}");
            let cut = rng.below(m.tree_count() + 1);
            let parts = explain_trees(&m, &x, 0..cut).and(&explain_trees(&m, &x, cut..m.tree_count())).finish(&m);
            assert_close(&parts.shap, &e.shap, 1e-12, &format!("case {case}, split at {cut}"));
        }
    }
}

/// A comb 24 levels deep on 24 distinct features (`yes` goes on, `no` is a leaf): a row that
/// follows every split has 24 hot features at the deepest leaf, past the depth where a hot
/// feature's polynomial is divided out, so the rebuilt sums are compared too.
#[test]
fn equals_algorithm_2_on_long_paths() {
    fn comb(level: usize, depth: usize, id: &mut u64, cover: f64) -> Value {
        let nodeid = *id;
        *id += 1;
        if level == depth {
            return json!({"nodeid": nodeid, "leaf": 0.25 + level as f64 / 100.0, "cover": cover});
        }
        let yes = comb(level + 1, depth, id, cover * 0.7);
        let no = json!({"nodeid": *id, "leaf": -0.5 + level as f64 / 50.0, "cover": cover * 0.3});
        *id += 1;
        json!({"nodeid": nodeid, "split": format!("f{level}"), "split_condition": 0.5,
               "yes": yes["nodeid"], "no": no["nodeid"], "missing": no["nodeid"], "cover": cover,
               "children": [yes, no]})
    }
    let m = Ensemble::from_data(&data(vec![comb(0, 24, &mut 0, 1000.0)], None, 0.0)).unwrap();
    let all_hot: Vec<Option<f64>> = vec![Some(0.0); 24];
    let mut some_cold = all_hot.clone();
    some_cold[3] = Some(1.0);
    some_cold[20] = None;
    for (name, x) in [("all hot", all_hot), ("some cold", some_cold)] {
        let e = explain(&m, &x);
        assert_close(&e.shap, &algorithm2(&m, &x), TOLERANCE, name);
        assert!(e.additivity_residual().abs() < 1e-12, "{name}: {e:?}");
    }
}
