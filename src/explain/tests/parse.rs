//! `Ensemble::from_data`: what it accepts, and the sentence each malformed model gets.

use serde_json::{json, Value};

use super::{data, small_tree};
use crate::explain::model::MAX_DEPTH;
use crate::explain::{explain, Ensemble, ModelError};

/// The tree-level error's sentence, for a model whose only tree is `tree`.
fn tree_error(tree: Value) -> String {
    match Ensemble::from_data(&data(vec![tree], Some(&["a", "b"]), 0.0)) {
        Err(e @ ModelError::MalformedTree { tree: 0, .. }) => e.to_string(),
        other => panic!("expected a malformed tree 0, got {other:?}"),
    }
}

#[test]
fn the_model_type_must_be_gradient_boosted_and_have_trees() {
    let mut d = data(vec![small_tree(2)], None, 0.0);
    d["modelType"] = json!("logistic_regression");
    let e = Ensemble::from_data(&d).unwrap_err();
    assert_eq!(e, ModelError::NotGradientBoosted { found: "\"logistic_regression\"".into() });
    assert_eq!(e.to_string(), "the model's modelType is \"logistic_regression\", not \"gradient_boosted\"");
    d.as_object_mut().unwrap().remove("modelType");
    assert!(matches!(Ensemble::from_data(&d), Err(ModelError::NotGradientBoosted { .. })));

    for trees in [json!([]), Value::Null] {
        let d = json!({"modelType": "gradient_boosted", "trees": trees});
        assert_eq!(Ensemble::from_data(&d).unwrap_err(), ModelError::NoTrees);
    }
    assert_eq!(Ensemble::from_data(&json!({"modelType": "gradient_boosted"})).unwrap_err(), ModelError::NoTrees);
    let e = Ensemble::from_data(&json!({"modelType": "gradient_boosted", "trees": {}})).unwrap_err();
    assert_eq!(e.to_string(), "the model's trees is not an array");
    assert_eq!(Ensemble::from_data(&json!([])).unwrap_err().to_string(), "the model's data is not a JSON object");
}

#[test]
fn top_level_fields_are_checked() {
    let mut d = data(vec![small_tree(2)], Some(&["a", "b"]), 0.0);
    d["baseScore"] = json!("0.5");
    assert_eq!(Ensemble::from_data(&d).unwrap_err().to_string(), "the model's baseScore is not a number");
    d["baseScore"] = Value::Null;
    assert_eq!(Ensemble::from_data(&d).unwrap().baseline, 1.0, "a null baseScore is 0");
    d["featureNames"] = json!(["a", "a"]);
    assert_eq!(Ensemble::from_data(&d).unwrap_err().to_string(), "the model's featureNames has \"a\" twice");
    d["featureNames"] = json!(["a", 2]);
    assert_eq!(Ensemble::from_data(&d).unwrap_err().to_string(), "the model's featureNames is not an array of strings");
}

#[test]
fn named_splits_resolve_through_feature_names() {
    let m = Ensemble::from_data(&data(vec![small_tree(2)], Some(&["b", "a", "unused"]), 0.5)).unwrap();
    assert_eq!(m.feature_names(), ["b", "a", "unused"]);
    assert_eq!((m.feature_index("a"), m.feature_index("b"), m.feature_index("c")), (Some(1), Some(0), None));
    assert_eq!(m.tree_count(), 1);
    // a = 0 (yes), b = 2 (no): leaf 4.
    assert_eq!(m.margin(&[Some(2.0), Some(0.0)]), -1.0 + 0.5);

    let e = Ensemble::from_data(&data(vec![small_tree(2)], Some(&["a"]), 0.0)).unwrap_err();
    assert_eq!(e.to_string(), "tree 0 of the model is malformed: node 1 splits on unknown feature \"b\"");
}

#[test]
fn f_index_splits_resolve_without_names_and_past_them() {
    let tree = small_tree(2).to_string().replace("\"a\"", "\"f3\"").replace("\"b\"", "\"f0\"");
    let tree: Value = serde_json::from_str(&tree).unwrap();
    let m = Ensemble::from_data(&data(vec![tree.clone()], None, 0.0)).unwrap();
    assert_eq!(m.feature_names(), ["f0", "f1", "f2", "f3"]);
    assert_eq!(m.feature_index("f3"), Some(3));
    assert_eq!(m.margin(&[Some(2.0), None, None, Some(0.0)]), -1.0);

    // XGBoost writes f<index> for an index past the names it was given.
    let m = Ensemble::from_data(&data(vec![tree], Some(&["x", "y"]), 0.0)).unwrap();
    assert_eq!(m.feature_names(), ["x", "y", "f2", "f3"]);

    for bad in ["f", "f-1", "f+1", "F1", "f1x", "f65536"] {
        let tree = small_tree(2).to_string().replace("\"a\"", &format!("{bad:?}"));
        let e = Ensemble::from_data(&data(vec![serde_json::from_str(&tree).unwrap()], None, 0.0)).unwrap_err();
        assert!(e.to_string().contains("splits on unknown feature"), "{bad}: {e}");
    }
}

#[test]
fn a_tree_may_be_the_string_get_dump_returns() {
    let object = data(vec![small_tree(2)], Some(&["a", "b"]), 0.25);
    let string = data(vec![json!(small_tree(2).to_string())], Some(&["a", "b"]), 0.25);
    let (object, string) = (Ensemble::from_data(&object).unwrap(), Ensemble::from_data(&string).unwrap());
    let x = [Some(0.0), Some(2.0)];
    assert_eq!(explain(&object, &x), explain(&string, &x));

    let e = Ensemble::from_data(&data(vec![json!("{\"nodeid\": ")], None, 0.0)).unwrap_err();
    assert!(e.to_string().starts_with("tree 0 of the model is malformed: its string is not JSON ("), "{e}");
}

#[test]
fn a_single_leaf_tree_needs_no_cover() {
    let m = Ensemble::from_data(&data(vec![json!({"nodeid": 0, "leaf": 0.75}), small_tree(2)], Some(&["a", "b"]), 0.0))
        .unwrap();
    assert_eq!(m.baseline, 0.75 + 1.0);
    assert_eq!(m.margin(&[]), 0.75 + 3.0, "all missing: root missing → no → leaf 2");
}

#[test]
fn malformed_trees_say_where() {
    let mut t = small_tree(2);
    t["yes"] = json!(7);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0: child 7 is missing from its children");

    let mut t = small_tree(2);
    t["missing"] = json!(9);
    assert_eq!(
        tree_error(t),
        "tree 0 of the model is malformed: node 0: missing is node 9, neither yes (1) nor no (2)"
    );

    let mut t = small_tree(2);
    t["no"] = json!(1);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0: yes and no are both node 1");

    let mut t = small_tree(2);
    t["children"].as_array_mut().unwrap().pop();
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0 has 1 children, not 2");

    let mut t = small_tree(2);
    t["children"][0]["children"][1].as_object_mut().unwrap().remove("cover");
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 4 has no positive cover");

    let mut t = small_tree(2);
    t["cover"] = json!(0);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0 has no positive cover");

    let mut t = small_tree(2);
    t["children"][1]["nodeid"] = json!(-2);
    t["no"] = json!(-2);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0: no is not a node id");

    let mut t = small_tree(2);
    t["children"][1]["nodeid"] = json!(1u64 << 31);
    t["no"] = json!(1u64 << 31);
    t["missing"] = json!(1u64 << 31);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: a node at depth 1 has no nodeid in 0..=2147483647");

    // A node id used twice would let yes/no point back up the tree.
    let mut t = small_tree(2);
    t["children"][0]["children"][1]["nodeid"] = json!(0);
    t["children"][0]["no"] = json!(0);
    t["children"][0]["missing"] = json!(0);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0 appears twice (a duplicate id or a cycle)");

    let mut t = small_tree(2);
    t["split_condition"] = json!([1, 3]);
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0 is a categorical split (not supported)");

    let mut t = small_tree(2);
    t.as_object_mut().unwrap().remove("split_condition");
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: node 0 has no numeric split_condition");

    let mut t = small_tree(2);
    t["children"][1]["leaf"] = json!("3");
    assert_eq!(tree_error(t), "tree 0 of the model is malformed: leaf 2 is not a number");

    assert_eq!(tree_error(json!([])), "tree 0 of the model is malformed: a node at depth 0 is not an object");
}

#[test]
fn the_tree_number_is_the_failing_one() {
    let mut bad = small_tree(2);
    bad["split"] = json!("zzz");
    let e = Ensemble::from_data(&data(vec![small_tree(2), small_tree(1), bad], Some(&["a", "b"]), 0.0)).unwrap_err();
    assert_eq!(e.to_string(), "tree 2 of the model is malformed: node 0 splits on unknown feature \"zzz\"");
}

/// A chain of splits `levels` deep, node ids 0, 2, 4… down the `yes` side.
fn chain(levels: usize) -> Value {
    let mut node = json!({"nodeid": 2 * levels, "leaf": 1.0, "cover": 1.0});
    for level in (0..levels).rev() {
        node = json!({
            "nodeid": 2 * level, "split": "a", "split_condition": level, "yes": 2 * level + 2,
            "no": 2 * level + 1, "missing": 2 * level + 1, "cover": 2.0,
            "children": [node, {"nodeid": 2 * level + 1, "leaf": 0.0, "cover": 1.0}]
        });
    }
    node
}

#[test]
fn depth_is_bounded() {
    let m = Ensemble::from_data(&data(vec![chain(MAX_DEPTH)], Some(&["a"]), 0.0)).unwrap();
    let e = explain(&m, &[Some(-1.0)]);
    assert!(e.additivity_residual().abs() < 1e-12, "{e:?}");
    assert_eq!(e.raw_margin, 1.0);
    assert_eq!(
        tree_error(chain(MAX_DEPTH + 1)),
        format!("tree 0 of the model is malformed: node {} is deeper than {MAX_DEPTH} levels", 2 * (MAX_DEPTH + 1))
    );
    // As a string, the deepest accepted tree still parses under serde_json's nesting limit.
    let as_string = data(vec![json!(chain(MAX_DEPTH).to_string())], Some(&["a"]), 0.0);
    Ensemble::from_data(&as_string).unwrap();
}
