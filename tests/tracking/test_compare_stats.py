"""The maths behind the comparison's charts: parameter importance (forest and rank correlation), grouping as
mean ± spread, and parallel-coordinates brushes as filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlo.errors import InvalidInput
from mlo.tracking import where as where_mod
from mlo.tracking.brushing import brush_where
from mlo.tracking.grouping import group_histories, group_labels, group_summary
from mlo.tracking.importance import importance


@pytest.fixture
def sweep():
    """60 runs: acc rises with lr (strongly) and depends on the optimizer; noise is pure noise; depth is
    missing in a third of the runs."""
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 1, 60)
    opt = np.where(np.arange(60) % 2, "adam", "sgd")
    noise = rng.uniform(0, 1, 60)
    depth = np.where(np.arange(60) % 3 == 0, np.nan, rng.integers(2, 9, 60).astype(float))
    acc = 3 * lr + np.where(opt == "adam", 1.0, 0.0) + rng.normal(0, 0.05, 60)
    return pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(60)],
            "params.lr": lr,
            "params.opt": opt,
            "params.noise": noise,
            "params.depth": depth,
            "params.seed": 7,
            "metrics.acc": acc,
        }
    )


def test_forest_importance_ranks_what_drives_the_metric(sweep):
    pytest.importorskip("sklearn")
    result = importance(sweep, "metrics.acc")
    assert result.method == "forest" and result.label.startswith("random-forest") and result.runs == 60
    ranked = list(result.values)
    assert ranked[:2] == ["params.lr", "params.opt"] and "params.seed" not in ranked  # seed never varies
    assert sum(result.values.values()) == pytest.approx(1.0)
    assert result.values["params.noise"] < result.values["params.lr"] / 5


def test_spearman_importance_is_labelled_and_exact(sweep):
    result = importance(sweep, "metrics.acc", method="spearman")
    assert result.method == "spearman" and "Spearman" in result.label
    from scipy.stats import spearmanr

    expected = abs(spearmanr(sweep["params.lr"], sweep["metrics.acc"]).statistic)
    assert result.values["params.lr"] == pytest.approx(expected)
    assert list(result.values)[0] == "params.lr"
    few = importance(sweep.head(8), "metrics.acc")  # too few runs for a forest: correlation, said so
    assert few.method == "spearman"
    assert result.to_dict()["values"][0] == {"param": "params.lr", "importance": result.values["params.lr"]}


def test_importance_keeps_runs_that_lack_a_param_and_rejects_bad_input(sweep):
    sweep.loc[sweep.index % 3 == 0, "metrics.acc"] += 2.0  # the runs without depth are better
    result = importance(sweep, "metrics.acc", params=["params.depth", "params.noise"], method="spearman")
    assert result.values["params.depth"] > result.values["params.noise"]
    with pytest.raises(InvalidInput, match="no run here logged 'f1'"):
        importance(sweep, "metrics.f1")
    with pytest.raises(InvalidInput, match="method must be one of"):
        importance(sweep, "metrics.acc", method="magic")
    with pytest.raises(InvalidInput, match="at least 3 runs"):
        importance(sweep.head(2), "metrics.acc")


def test_group_summary_is_mean_and_sample_spread():
    frame = pd.DataFrame(
        {
            "params.model": ["rf", "rf", "rf", "lr", None],
            "params.n": [2.0, 2.0, 3.0, 3.0, 3.0],
            "metrics.acc": [0.8, 0.9, 1.0, 0.5, 0.7],
        }
    )
    stats = group_summary(frame, "metrics.acc", "params.model").set_index("group")
    assert stats.loc["rf", "n"] == 3 and stats.loc["rf", "mean"] == pytest.approx(0.9)
    assert stats.loc["rf", "std"] == pytest.approx(np.std([0.8, 0.9, 1.0], ddof=1))
    assert stats.loc["lr", "std"] == 0.0 and stats.loc["(missing)", "mean"] == pytest.approx(0.7)
    assert group_labels(frame, "params.n").tolist() == ["2", "2", "3", "3", "3"]  # whole floats as integers
    with pytest.raises(InvalidInput, match="cannot group by 'params.zz'"):
        group_summary(frame, "metrics.acc", "params.zz")


def test_group_histories_average_step_by_step():
    a = pd.DataFrame({"step": [0, 1, 2], "value": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"step": [0, 1], "value": [3.0, 4.0]})
    out = group_histories({"a": a, "b": b, "c": a}, {"a": "seed-group", "b": "seed-group"})
    g = out["seed-group"]
    assert g["step"].tolist() == [0, 1, 2] and g["mean"].tolist() == [2.0, 3.0, 3.0]
    assert g["n"].tolist() == [2, 2, 1] and g["std"].iloc[2] == 0.0
    assert g["std"].iloc[0] == pytest.approx(np.std([1.0, 3.0], ddof=1))


def test_brushes_become_filters_that_parse():
    where = brush_where(
        {
            "params.lr": {"lo": 0.001, "hi": 0.1},
            "params.model": {"values": ["rf", "it's"], "missing": True},
            "metrics.acc": {"lo": 0.5},
            "params.depth": {},
        }
    )
    assert where == (
        "(params.lr >= 0.001 and params.lr <= 0.1) and (params.model in ('rf', 'it''s') or "
        "params.model is null) and metrics.acc >= 0.5"
    )
    tree = where_mod.parse(where)
    frame = pd.DataFrame(
        {
            "params.lr": [0.01, 0.5, 0.01],
            "params.model": ["it's", "rf", None],
            "metrics.acc": [0.9, 0.9, 0.9],
        }
    )
    assert where_mod.evaluate(tree, frame).tolist() == [True, False, True]
    assert brush_where({}) is None
    for bad, message in (
        ({"params.lr": {"lo": float("nan")}}, "finite numbers"),
        ({"params.lr": {"lo": "1; drop"}}, "finite numbers"),
        ({"status": {"values": ["x"]}}, "cannot brush"),
        ([1, 2], "a brush is a dict"),
    ):
        with pytest.raises(InvalidInput, match=message):
            brush_where(bad)
