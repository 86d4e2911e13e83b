import pandas as pd
import pytest

import mlo
from mlo.errors import InvalidInput
from mlo.tracking import where


@pytest.fixture
def runs3(ws):
    specs = [
        ("rf-1", {"model": "rf", "C": 0.1, "depth": 4}, {"acc": 0.81, "loss": 0.3}, {"team": "core"}),
        ("lr-1", {"model": "lr", "C": 1.0}, {"acc": 0.75}, {"team": "edge"}),
        ("lr-2", {"model": "lr", "C": 10.0}, {"acc": 0.92, "loss": 0.1}, {}),
    ]
    for name, params, metrics, tags in specs:
        with mlo.start_run(name, experiment="q", params=params, tags=tags):
            mlo.log_metrics(metrics)
    return ws


def names(df):
    return sorted(df.name)


def test_frame_shape_matches_search_runs(runs3):
    df = mlo.runs()
    assert list(df.columns[:7]) == [
        "run_id",
        "experiment",
        "name",
        "status",
        "start_time",
        "end_time",
        "duration",
    ]
    assert {"params.model", "params.C", "params.depth", "metrics.acc", "metrics.loss", "tags.team"} <= set(
        df.columns
    )
    assert df["params.C"].dtype == "float64" and df["params.depth"].dtype == "Int64"
    assert df["params.model"].tolist() == ["lr", "lr", "rf"]  # newest first
    assert isinstance(df.start_time.dtype, pd.DatetimeTZDtype)
    assert set(df.status) == {"finished"}


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("metrics.acc > 0.8", ["lr-2", "rf-1"]),
        ("metrics.acc > 0.8 or params.model = 'lr'", ["lr-1", "lr-2", "rf-1"]),
        ("metrics.acc > 0.8 and params.model = 'lr'", ["lr-2"]),
        ("(params.model = 'rf' or params.C >= 10) and metrics.loss < 0.5", ["lr-2", "rf-1"]),
        ("params.C in (0.1, 1.0)", ["lr-1", "rf-1"]),
        ("tags.team != 'core'", ["lr-1"]),  # a run without the tag never matches a comparison
        ("tags.team is null", ["lr-2"]),
        ("metrics.loss is not null", ["lr-2", "rf-1"]),
        ("name like 'lr-%'", ["lr-1", "lr-2"]),
        ("attributes.name ILIKE 'RF%'", ["rf-1"]),
        ("attributes.status = 'finished' and not params.model = 'rf'", ["lr-1", "lr-2"]),
        ('params.model = "rf"', ["rf-1"]),
        ("params.C = '10'", ["lr-2"]),
        ("metrics.`acc` >= 0.92", ["lr-2"]),
        ("start_time > '2000-01-01'", ["lr-1", "lr-2", "rf-1"]),
        ("metrics.missing > 1", []),
    ],
)
def test_where(runs3, expr, expected):
    assert names(mlo.runs(where=expr)) == expected


@pytest.mark.parametrize(
    "expr, message",
    [
        ("metrics.acc >", "expected a number"),
        ("metrics.acc > 0.8 and", "expected a field"),
        ("acc > 0.8", "unknown field 'acc'"),
        ("foo.acc > 1", "unknown prefix"),
        ("metrics.acc = null", "is null"),
        ("(metrics.acc > 1", r"expected \)"),
        ("metrics.acc > 1 metrics.loss < 2", "unexpected"),
        ("metrics.acc ~ 1", "cannot read the filter"),
    ],
)
def test_malformed_where_is_a_clear_error(runs3, expr, message):
    with pytest.raises(InvalidInput, match=message):
        mlo.runs(where=expr)


def test_projection_reads_only_what_is_asked(runs3):
    df = mlo.runs(columns=["metrics.acc", "params.model"], where="params.C > 0.5")
    assert list(df.columns) == ["run_id", "metrics.acc", "params.model"]
    assert sorted(df["metrics.acc"]) == [0.75, 0.92]
    assert list(mlo.runs(columns=["metrics.*"]).columns) == ["run_id", "metrics.acc", "metrics.loss"]
    with pytest.raises(InvalidInput, match="unknown column"):
        mlo.runs(columns=["bogus"])


def test_order_and_limit(runs3):
    df = mlo.runs(order_by="metrics.acc desc", limit=2)
    assert df.name.tolist() == ["lr-2", "rf-1"]
    assert mlo.runs(order_by="metrics.acc asc").name.tolist()[0] == "lr-1"


def test_where_parser_tree():
    tree = where.parse("metrics.a > 1 and (params.b = 'x' or not tags.c like 'y%')")
    assert isinstance(tree, where.BoolOp) and tree.op == "and"
    assert where.columns_of(tree) == {"metrics.a", "params.b", "tags.c"}
