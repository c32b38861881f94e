//! The linear walk (`explain::linear`) against the closed form per leaf (`explain::treeshap`),
//! both run over every tree of the same random models, and the quadrature it rests on.
//! Algorithm 2 and XGBoost check the whole (`algorithm2`, `fixtures`).

use serde_json::{json, Value};

use super::algorithm2::grown_tree;
use super::data;
use super::shap::{brute_force, random_tree, Rng};
use crate::explain::explain;
use crate::explain::leaves::LeafPaths;
use crate::explain::linear::{points_for, MAX_POINTS, RULES};
use crate::explain::model::Ensemble;
use crate::explain::treeshap::{self, xgboost_row, Scratch};

/// φ by the closed form over every leaf of every tree, whatever `Ensemble::walks` chose.
fn closed_form(m: &Ensemble, x: &[Option<f64>]) -> Vec<f64> {
    let paths = LeafPaths::build(&m.nodes, &m.roots, |_| true);
    let row = xgboost_row(x, m.feature_names().len());
    let (mut phi, mut scratch) = (vec![0.0; row.len()], Scratch::default());
    treeshap::closed_form(&paths, paths.leaves_of(0..m.tree_count()), &mut phi, &row, &mut scratch);
    phi
}

#[test]
fn each_rule_integrates_polynomials_up_to_its_degree_exactly() {
    for m in 1..=MAX_POINTS {
        let rule = &RULES[m][..m];
        assert!(rule.iter().all(|&(u, w)| u > 0.0 && u < 1.0 && w > 0.0), "{m} points: {rule:?}");
        for degree in 0..2 * m {
            let integral: f64 = rule.iter().map(|&(u, w)| w * u.powi(degree as i32)).sum();
            let exact = 1.0 / (degree + 1) as f64;
            assert!((integral - exact).abs() <= 2e-15, "{m} points, u^{degree}: {integral} != {exact}");
        }
    }
}

/// Random trees up to depth 16 (8 points) over at most 8 features, so that a path often
/// splits on one feature several times, and rows with missing values. Trees grown as training
/// grows them: the walk equals the closed form to 1e-11. Trees whose covers do not add up
/// (fractions above 1, large intermediate products): there the closed form and Algorithm 2
/// drift from the Shapley values by up to ~1e-8, so the walk is held to the values
/// themselves, by their definition, to 1e-11.
#[test]
fn the_linear_walk_equals_the_closed_form_and_the_definition_on_random_models() {
    let mut rng = Rng(0x11ea_7ee5);
    let mut used = [0usize; MAX_POINTS + 1];
    for case in 0..80 {
        let features = 1 + rng.below(8);
        let grown = case % 2 == 0;
        let trees: Vec<Value> = (0..1 + rng.below(if grown { 6 } else { 3 }))
            .map(|_| {
                let depth = 1 + rng.below(16);
                match grown {
                    true => grown_tree(&mut rng, depth, features, &mut 0, 1000.0),
                    false => random_tree(&mut rng, depth, features, &mut 0),
                }
            })
            .collect();
        let m = Ensemble::from_data(&data(trees, None, rng.unit())).unwrap();
        used[m.walks.points()] += 1;
        assert_eq!(m.paths.leaves.len(), 0, "case {case}: every tree is walked, none kept leaf by leaf");
        for _ in 0..if grown { 5 } else { 2 } {
            let x: Vec<Option<f64>> =
                (0..m.feature_names().len()).map(|_| (rng.below(4) != 0).then(|| rng.unit())).collect();
            let e = explain(&m, &x);
            let want = if grown { closed_form(&m, &x) } else { brute_force(&m, &x) };
            for (f, (got, want)) in e.shap.iter().zip(&want).enumerate() {
                assert!((got - want).abs() <= 1e-11 * want.abs().max(1.0), "case {case}, feature {f}: {got} != {want}");
            }
            assert!(e.additivity_residual().abs() <= 1e-11 * e.raw_margin.abs().max(1.0), "case {case}: {e:?}");
        }
    }
    assert!(used[1..].iter().all(|&n| n > 0), "every number of points was exercised: {used:?}");
}

/// A chain `depth` levels deep whose `no` sides are leaves; `fraction` is each `yes` child's
/// share of its parent's cover.
fn chain(depth: usize, fraction: f64) -> Value {
    fn level(l: usize, depth: usize, cover: f64, fraction: f64) -> Value {
        let id = 2 * l as u64;
        if l == depth {
            return json!({"nodeid": id, "leaf": 1.0, "cover": cover});
        }
        let yes = level(l + 1, depth, cover * fraction, fraction);
        json!({"nodeid": id, "split": format!("f{}", l % 3), "split_condition": 0.5, "yes": yes["nodeid"],
               "no": id + 1, "missing": id + 1, "cover": cover, "children": [
                   yes, {"nodeid": id + 1, "leaf": -(l as f64), "cover": cover * (1.0 - fraction).max(1e-300)}]})
    }
    level(0, depth, 1e300, fraction)
}

/// Trees past 16 levels, or with a zero fraction so small that products along a path could
/// reach float64's subnormals, are left to the closed form, and still explained exactly.
#[test]
fn deep_or_extreme_trees_take_the_closed_form() {
    let at = |depth, fraction| {
        points_for(&Ensemble::from_data(&data(vec![chain(depth, fraction)], None, 0.0)).unwrap().nodes, 0)
    };
    assert_eq!(at(1, 0.5), Some(1));
    assert_eq!(at(6, 0.5), Some(3));
    assert_eq!(at(16, 0.5), Some(8));
    assert_eq!(at(17, 0.5), None);
    assert_eq!(at(4, 1e-13), None, "a yes fraction of 1e-13");
    assert_eq!(at(4, 1.0 - 1e-13), None, "a no fraction of ~1e-13");
    for (depth, fraction) in [(17, 0.5), (4, 1e-13), (20, 0.9)] {
        let m = Ensemble::from_data(&data(vec![chain(depth, fraction)], None, 0.0)).unwrap();
        assert!(!m.walks.walks(0), "depth {depth}, fraction {fraction}");
        for x in [vec![Some(0.0); 3], vec![Some(1.0), None, Some(0.0)]] {
            let e = explain(&m, &x);
            assert_eq!(e.shap, closed_form(&m, &x), "depth {depth}, fraction {fraction}");
            assert!(e.additivity_residual().abs() < 1e-9 * e.raw_margin.abs().max(1.0), "{e:?}");
        }
    }
}
