#!/usr/bin/env python3
"""TreeSHAP fixtures made by XGBoost itself, for src/explain (read by src/explain/tests/fixtures.rs).

Rerun (from the repository root; CI never does, the fixtures are committed):

    python3 -m venv /tmp/shap-venv
    /tmp/shap-venv/bin/pip install -r scripts/shap-fixtures/requirements.txt
    /tmp/shap-venv/bin/python scripts/shap-fixtures/generate.py

It rewrites tests/fixtures/shap/*.json. Everything is seeded and XGBoost runs on one thread, so
a rerun with the pinned versions reproduces the files byte for byte.

Each model is trained on seeded synthetic data, dumped with
`get_dump(dump_format="json", with_stats=True)` into the catalog `model` entity's `data` shape
(`modelType`, `trees`, `baseScore` in margin space, `featureNames` when the model has names),
and scored on rows with missing values. A fixture file holds that `data` object and, per row,
the attributes (a missing value is absent), XGBoost's `pred_contribs` (one per feature index, in
XGBoost's column order) and bias column, and `predict(output_margin=True)`.
"""

import json
import math
import pathlib

import numpy as np
import xgboost as xgb

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "shap"

# Named like the seed's example attributes; the integer-valued ones put data values exactly on
# split conditions, where `value < condition` decides.
NAMES = [
    "recent_transaction_count",
    "tenure_months",
    "average_balance",
    "segment_index",
    "utilization_ratio",
    "days_since_last_contact",
    "channel_score",
    "age",
]

# One entry per fixture file. `trees_as`: how the dump's trees are written into `data.trees`
# (the catalog accepts both the strings get_dump returns and parsed objects).
MODELS = [
    dict(name="d1_t1_logistic_named", depth=1, trees=1, eta=0.3, objective="binary:logistic",
         base_score=0.3, features=4, named=True, train_missing=0.15, score_missing=0.2,
         trees_as="string"),
    dict(name="d2_t300_logistic_unnamed", depth=2, trees=300, eta=0.05,
         objective="binary:logistic", base_score=0.2, features=10, named=False,
         train_missing=0.1, score_missing=0.15, trees_as="object"),
    # The exact method with gamma prunes subtrees after growing them: the dump's node ids then
    # have gaps (ids are not 0..n-1), which the parser must accept.
    dict(name="d3_t40_regression_named", depth=3, trees=40, eta=0.2,
         objective="reg:squarederror", base_score=None, features=8, named=True,
         train_missing=0.1, score_missing=0.2, trees_as="string",
         extra={"tree_method": "exact", "gamma": 2.0}),
    dict(name="d4_t60_logistic_unnamed", depth=4, trees=60, eta=0.1,
         objective="binary:logistic", base_score=0.7, features=12, named=False,
         train_missing=0.2, score_missing=0.2, trees_as="object"),
    # No missing value in training: every default direction is XGBoost's choice for unseen NaN.
    dict(name="d5_t12_logistic_named", depth=5, trees=12, eta=0.3, objective="binary:logistic",
         base_score=0.45, features=8, named=True, train_missing=0.0, score_missing=0.25,
         trees_as="string"),
    # Five features under depth 6: paths split on the same feature again (TreeSHAP's UNWIND).
    dict(name="d6_t25_logistic_named", depth=6, trees=25, eta=0.2, objective="binary:logistic",
         base_score=0.35, features=5, named=True, train_missing=0.3, score_missing=0.3,
         trees_as="object"),
]

TRAIN_ROWS = 3000
RANDOM_ROWS = 70  # scored rows per model drawn like the training data
THRESHOLD_ROWS = 10  # scored rows with one value on, or just below, a split condition
TOL = 1e-5


def features(rng, n, k):
    """k columns of mixed kinds, rounded to float32 (what XGBoost sees), as float64."""
    kinds = [
        lambda: rng.poisson(6, n),  # counts
        lambda: rng.integers(0, 120, n),  # months
        lambda: rng.lognormal(8, 1.2, n),  # balances
        lambda: rng.integers(0, 5, n),  # a small categorical index, used as a number
        lambda: rng.beta(2, 5, n),  # ratios
        lambda: rng.exponential(30, n),
        lambda: rng.normal(0, 1, n),
        lambda: rng.integers(18, 90, n),
    ]
    cols = [kinds[i % len(kinds)]().astype(np.float64) for i in range(k)]
    return np.stack(cols, axis=1).astype(np.float32).astype(np.float64)


def signal(X):
    """A nonlinear score with interactions; missing values count as 0."""
    Z = np.nan_to_num((X - np.nanmean(X, axis=0)) / (np.nanstd(X, axis=0) + 1e-9))
    k = Z.shape[1]
    s = 0.8 * Z[:, 0] - 0.6 * Z[:, 1 % k] + 0.5 * Z[:, 2 % k] * Z[:, 3 % k]
    s += 0.7 * np.sin(2 * Z[:, (k - 1)]) + 0.3 * (Z[:, 0] > 1) * Z[:, 1 % k]
    return s


def with_missing(rng, X, rate):
    X = X.copy()
    X[rng.random(X.shape) < rate] = np.nan
    return X


def margin_base(bst, objective):
    """baseScore in margin space, from the learner's base_score (stored in output space)."""
    cfg = json.loads(bst.save_config())
    raw = cfg["learner"]["learner_model_param"]["base_score"].strip("[]")
    base = float(np.float32(float(raw)))
    if objective == "binary:logistic":
        return math.log(base / (1.0 - base))
    return base


def walk(node, out):
    out[node["nodeid"]] = node
    for child in node.get("children", []):
        walk(child, out)
    return out


def threshold_rows(rng, trees, names, X_pool):
    """Rows with one feature exactly on a split condition (`value < condition` is false), or
    one float32 step below it (true): the comparison must be float32's, as XGBoost's."""
    splits = [n for t in trees for n in walk(t, {}).values() if "split" in n]
    rows = []
    for i in range(THRESHOLD_ROWS):
        node = splits[rng.integers(len(splits))]
        row = X_pool[rng.integers(len(X_pool))].copy()
        value = np.float32(node["split_condition"])
        if i % 2 == 1:
            value = np.nextafter(value, np.float32(-np.inf))
        row[names.index(node["split"])] = value
        rows.append(row)
    return np.array(rows)


def f9(v):
    """A float32 result written with the 9 significant digits that identify it."""
    return float(f"{float(v):.9g}")


def build(spec, seed):
    rng = np.random.default_rng(seed)
    k = spec["features"]
    names = NAMES[:k] if spec["named"] else [f"f{i}" for i in range(k)]

    X = with_missing(rng, features(rng, TRAIN_ROWS, k), spec["train_missing"])
    s = signal(X)
    if spec["objective"] == "binary:logistic":
        y = (rng.random(TRAIN_ROWS) < 1 / (1 + np.exp(-s))).astype(np.float64)
    else:
        y = 3.0 * s + 10.0 + rng.normal(0, 0.5, TRAIN_ROWS)

    params = {
        "objective": spec["objective"],
        "max_depth": spec["depth"],
        "eta": spec["eta"],
        "tree_method": "hist",
        "nthread": 1,
        "seed": seed,
        **spec.get("extra", {}),
    }
    if spec["base_score"] is not None:
        params["base_score"] = spec["base_score"]
    dtrain = xgb.DMatrix(X, label=y, feature_names=names if spec["named"] else None)
    bst = xgb.train(params, dtrain, num_boost_round=spec["trees"])

    dumps = bst.get_dump(dump_format="json", with_stats=True)
    trees = [json.loads(d) for d in dumps]
    assert len(trees) == spec["trees"], "fewer trees than rounds"
    depth = max(n.get("depth", -1) + 1 for t in trees for n in walk(t, {}).values())
    assert depth <= spec["depth"], f"dump deeper than max_depth: {depth}"
    gaps = sum(max(walk(t, {})) >= len(walk(t, {})) for t in trees)
    assert gaps > 0 or "gamma" not in params, "the pruned model should have node id gaps"

    pool = with_missing(rng, features(rng, RANDOM_ROWS, k), spec["score_missing"])
    nothing = np.full((1, k), np.nan)  # every feature missing: the all-default path
    rows = np.concatenate([pool, threshold_rows(rng, trees, names, pool), nothing])
    drows = xgb.DMatrix(rows, feature_names=names if spec["named"] else None)
    margin = bst.predict(drows, output_margin=True)
    contribs = bst.predict(drows, pred_contribs=True)
    leaves = bst.predict(drows, pred_leaf=True).astype(int).reshape(len(rows), -1)

    # Σ leaves + baseScore must be XGBoost's margin, or the catalog entity would not describe
    # this model: check it on every scored row with the dumped leaf values.
    base = margin_base(bst, spec["objective"])
    leaf_values = [{i: n["leaf"] for i, n in walk(t, {}).items() if "leaf" in n} for t in trees]
    for r in range(len(rows)):
        total = base + sum(leaf_values[t][leaves[r, t]] for t in range(len(trees)))
        assert abs(total - margin[r]) <= TOL * max(1.0, abs(margin[r])), (spec["name"], r)
        # XGBoost's own additivity, in its float32 arithmetic.
        assert abs(contribs[r].sum() - margin[r]) <= 1e-4 * max(1.0, abs(margin[r]))
    assert contribs.shape[1] == k + 1

    data = {
        "modelType": "gradient_boosted",
        "trees": dumps if spec["trees_as"] == "string" else trees,
        "baseScore": base,
    }
    if spec["named"]:
        data["featureNames"] = names
    fixture_rows = []
    for r, row in enumerate(rows):
        attributes = {names[i]: f9(v) for i, v in enumerate(row) if not math.isnan(v)}
        fixture_rows.append({
            "attributes": attributes,
            "contributions": [f9(c) for c in contribs[r, :k]],
            "bias": f9(contribs[r, k]),
            "margin": f9(margin[r]),
        })
    fixture = {
        "generatedBy": "scripts/shap-fixtures/generate.py",
        "xgboost": xgb.__version__,
        "params": {**params, "num_boost_round": spec["trees"]},
        "numFeature": k,
        "model": data,
        "rows": fixture_rows,
    }
    return fixture


def write(path, fixture):
    """JSON with one tree and one row a line: small, and reviewable in a diff."""
    model = fixture["model"]
    head = {key: v for key, v in fixture.items() if key not in ("model", "rows")}
    lines = ["{"]
    for key, v in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(v, separators=(',', ':'))},")
    lines.append('  "model": {')
    lines.append(f'    "modelType": {json.dumps(model["modelType"])},')
    lines.append(f'    "baseScore": {json.dumps(model["baseScore"])},')
    if "featureNames" in model:
        lines.append(f'    "featureNames": {json.dumps(model["featureNames"])},')
    trees = [json.dumps(t, separators=(",", ":")) for t in model["trees"]]
    lines.append('    "trees": [\n      ' + ",\n      ".join(trees) + "\n    ]")
    lines.append("  },")
    rows = [json.dumps(r, separators=(",", ":")) for r in fixture["rows"]]
    lines.append('  "rows": [\n    ' + ",\n    ".join(rows) + "\n  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(fixture))
    path.write_text(text)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    for seed, spec in enumerate(MODELS, start=12):
        fixture = build(spec, seed)
        path = OUT / f"{spec['name']}.json"
        write(path, fixture)
        total += path.stat().st_size
        print(f"{path.name}: {len(fixture['rows'])} rows, {path.stat().st_size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
