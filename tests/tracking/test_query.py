import math

import pandas as pd
import pytest
from run_pages import assert_pages_are_slices

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


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"order_by": "metrics.acc desc"},
        {"order_by": "params.C", "where": "params.model = 'lr' or metrics.acc > 0.8"},
        {"columns": ["name", "metrics.acc"], "order_by": "name"},
        {"where": "tags.team is not null", "columns": ["params.*"]},
        {"order_by": "name desc"},  # run columns: the database orders and slices
        {"order_by": "start_time", "experiment": "pages"},
        {"order_by": "experiment", "columns": ["metrics.acc"]},
        {"where": "metrics.acc > 0.25"},  # metric filters: the database filters too
        {"where": "metrics.acc <= 0.2 or metrics.acc is null", "order_by": "metrics.acc desc"},
        {"where": "metrics.acc in (0.1, 0.5) or metrics.acc != 0.3 and metrics.acc < 0.4"},
        {"where": "not metrics.acc > 0.3"},  # not: the full evaluation (a missing value satisfies it)
    ],
)
def test_pages_are_slices_of_the_whole_listing(ws, kwargs):
    with mlo.start_run("R-upper", experiment="Other"):  # code point order: upper case before lower case
        pass
    with mlo.start_run("nan-acc", experiment="pages"):  # a NaN and a missing metric both sort last
        mlo.log_metric("acc", float("nan"))
    for i in range(7):
        with mlo.start_run(
            f"r{i}", experiment="pages", params={"C": i % 3, "model": "lr" if i % 2 else "rf"}
        ):
            mlo.log_metric("acc", i / 10)
            if i % 3 == 0:
                mlo.set_tag("team", "core")
    assert_pages_are_slices(kwargs, ((0, 2), (2, 3), (5, 10), (7, 1), (9, 1), (0, 0)))
    with pytest.raises(InvalidInput, match="offset must be a non-negative integer"):
        mlo.runs(offset=-1)
    for limit in (None, 5):  # the same error whether the database or pandas orders
        with pytest.raises(InvalidInput, match="cannot order by 'metrics.nope'"):
            mlo.runs(order_by="metrics.nope", limit=limit)


def test_where_parser_tree():
    tree = where.parse("metrics.a > 1 and (params.b = 'x' or not tags.c like 'y%')")
    assert isinstance(tree, where.BoolOp) and tree.op == "and"
    assert where.columns_of(tree) == {"metrics.a", "params.b", "tags.c"}


def test_param_types_come_back_as_logged(ws):
    with mlo.start_run(
        "a", params={"flag": True, "layers": [1, 2], "opt": None, "lr": 1e-3, "n": 3, "s": "x"}
    ):
        pass
    with mlo.start_run(
        "b", params={"flag": False, "lr": 0.1, "n": 10, "s": "y", "big": 10**16, "cfg": {"a": 1}}
    ):
        pass
    df = mlo.runs()
    assert df["params.n"].dtype == "Int64" and df["params.n"].tolist() == [10, 3]
    assert df["params.lr"].dtype == "float64" and df["params.lr"].tolist() == [0.1, 1e-3]
    assert df["params.big"].dtype == "Int64" and df["params.big"].tolist()[0] == 10**16
    assert df["params.s"].tolist() == ["y", "x"]
    assert df["params.flag"].tolist() == [False, True] and df["params.flag"].dtype == object
    assert df["params.layers"].tolist()[1] == "[1, 2]" and df["params.cfg"].tolist()[0] == '{"a": 1}'
    assert df["params.opt"].tolist()[1] is None


def test_infinite_params_are_floats(ws):
    # an integer-looking column holding ±Infinity used to fail with OverflowError
    for value in (float("inf"), 3, float("-inf")):
        with mlo.start_run(params={"lr": value}):
            pass
    df = mlo.runs()
    assert df["params.lr"].dtype == "float64"
    assert df["params.lr"].tolist() == [float("-inf"), 3.0, float("inf")]
    with mlo.start_run(params={"only": float("inf")}):
        pass
    assert mlo.runs(columns=["params.only"])["params.only"].tolist()[0] == float("inf")


def test_metric_values_are_exact(ws):
    values = [
        0.1 + 0.2,
        1 / 3,
        5e-324,
        1.7976931348623157e308,
        -0.0,
        float("inf"),
        float("-inf"),
        2**53 + 2.0,
    ]
    with mlo.start_run("exact"):
        mlo.log_metrics({f"m{i}": v for i, v in enumerate(values)} | {"nan": float("nan")})
    row = mlo.runs().iloc[0]
    for i, v in enumerate(values):
        assert row[f"metrics.m{i}"] == v
    assert math.isnan(row["metrics.nan"])


def test_runs_with_different_keys(ws):
    # columns come in code point order on both stores (PostgreSQL's collation would put "a" before "B")
    specs = [
        ({"B": 1}, {"b": 0.5, "é": 1.0}, {"x": "1"}),
        ({"a": "u", "B": 2}, {"Z": 2.0}, {}),
        ({}, {}, {"y": "2", "x": "3"}),
        ({"a": "v", "é": True}, {"b": float("nan"), "Z": 3.0, "a b": 4.0}, {"x": "4"}),
    ]
    for params, metrics, tags in specs:
        with mlo.start_run(params=params, tags=tags):
            if metrics:
                mlo.log_metrics(metrics)
    df = mlo.runs()
    keys = [c for c in df.columns if c.startswith(("params.", "metrics.", "tags."))]
    assert keys == ["params.B", "params.a", "params.é", "metrics.Z", "metrics.a b", "metrics.b", "metrics.é",
                    "tags.x", "tags.y"]  # fmt: skip
    rows = df[keys].astype(object).where(df[keys].notna(), None).to_numpy().tolist()
    assert rows == [
        [None, "v", True, 3.0, 4.0, None, None, "4", None],
        [None, None, None, None, None, None, None, "3", "2"],
        [2, "u", None, 2.0, None, None, None, None, None],
        [1, None, None, None, None, 0.5, 1.0, "1", None],
    ]
    one = mlo.runs(columns=["metrics.Z", "params.B"], order_by="metrics.Z desc")
    assert one["metrics.Z"].tolist()[:2] == [3.0, 2.0] and one["params.B"].tolist()[1] == 2


def test_many_sparse_keys(ws):
    for i in range(30):
        with mlo.start_run(f"r{i}", params={f"p{i}": i, "common": "c"}, tags={f"t{i % 3}": str(i)}):
            mlo.log_metrics({f"m{i}": i / 10, "all": float(i)})
    df = mlo.runs()
    assert len(df) == 30 and df.shape[1] == 11 + 31 + 31 + 3
    by_name = df.set_index("name")
    for i in range(30):
        assert by_name.loc[f"r{i}", f"params.p{i}"] == i and by_name.loc[f"r{i}", f"metrics.m{i}"] == i / 10
        assert by_name.loc[f"r{i}", f"tags.t{i % 3}"] == str(i)
        keys = by_name.loc[f"r{i}"].filter(regex=r"^(params|metrics|tags)\.")
        assert keys.notna().sum() == 5  # p<i>, common, m<i>, all, t<i % 3>


def test_listing_without_json_functions_is_the_same(ws, monkeypatch):
    from mlo import workspace

    for i in range(5):
        with mlo.start_run(f"r{i}", experiment="e", params={"a": i, "s": "x" * i}, tags={"t": str(i)}):
            mlo.log_metrics({"m": i / 3, "n": float("nan")} if i % 2 else {"m": 1.5})
    expected = mlo.runs()
    store = workspace.current().runs
    monkeypatch.setattr(store, "_has_json", False)
    pd.testing.assert_frame_equal(mlo.runs(), expected, check_exact=True)
    pd.testing.assert_frame_equal(
        mlo.runs(experiment="e", columns=["params.a", "metrics.m"]),
        expected[["run_id", "params.a", "metrics.m"]],
        check_exact=True,
    )


def test_metric_rows_of_unlisted_runs_are_ignored(sqlite_ws):
    from mlo.store import schema

    with mlo.start_run("real"):
        mlo.log_metrics({"acc": 0.5})
    # a row whose run does not exist (SQLite does not enforce foreign keys): the listing must not shift values
    sqlite_ws.runs.db.write(
        lambda conn: conn.execute(
            schema.latest_metrics.insert().values(
                run_id="0" * 26, key="acc", value=0.9, step=0, timestamp=0, n=1
            )
        )
    )
    df = mlo.runs()
    assert df["metrics.acc"].tolist() == [0.5] and len(df) == 1


def test_listing_leaves_the_garbage_collector_as_it_found_it(sqlite_ws):
    """The listing pauses the cyclic collector while it reads; after it, and after a read that fails (a table
    gone from the database file), the collector is on or off as the caller had it."""
    import gc
    import sqlite3

    with mlo.start_run("a", params={"p": 1}):
        mlo.log_metrics({"m": 0.5})
    assert gc.isenabled()
    assert len(mlo.runs()) == 1 and gc.isenabled()
    gc.disable()
    try:
        assert len(mlo.runs()) == 1 and not gc.isenabled()
    finally:
        gc.enable()
    with sqlite3.connect(sqlite_ws.runs.db.engine.url.database) as db:
        db.execute("DROP TABLE latest_metrics")
    from mlo.errors import StoreError

    with pytest.raises(StoreError, match="no such table: latest_metrics"):
        mlo.runs()
    assert gc.isenabled()


def test_listing_reads_one_snapshot(ws):
    from mlo import workspace

    store = workspace.current().runs
    with store._snapshot() as conn:
        if store.db.dialect == "postgresql":
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "repeatable read"
        else:
            assert conn.in_transaction()


def test_escaped_strings_and_filters_on_partly_missing_params(sqlite_ws):
    """Strings that JSON escapes (non-ASCII, quotes, backslashes) come back as written; a filter on a param some
    runs lack matches only the runs that have it."""
    with mlo.start_run("a"):
        mlo.log_params({"city": "Zürich", "q": 'a"b', "path": "c:\\tmp", "depth": 3})
    with mlo.start_run("b"):
        mlo.log_params({"city": "Paris"})
    df = mlo.runs().set_index("name")
    assert df.loc["a", "params.city"] == "Zürich" and df.loc["b", "params.city"] == "Paris"
    assert df.loc["a", "params.q"] == 'a"b' and df.loc["a", "params.path"] == "c:\\tmp"
    assert mlo.runs(where="params.depth > 1").name.tolist() == ["a"]
    assert mlo.runs(where="params.depth < 1").empty


def test_which_filters_the_database_applies(ws):
    from mlo.store.run_filter import RunFilter

    with mlo.start_run("r", params={"x": 1, "s": "a", "mixed": 1}, tags={"t": "y"}):
        mlo.log_metrics({"a": 1.0})
    with mlo.start_run("q", params={"mixed": "one"}):
        pass
    pushed = [
        "metrics.a > 1",
        "metrics.a > 1 and (metrics.b is null or metrics.c in (1, 2.5))",
        "metrics.a != -3",
        "not metrics.a > 1",
        "metrics.a = '2.5'",
        "params.x = 1",
        "params.x in ('1', 2)",
        "params.s = 'a' or params.s like 'b%'",
        "params.nope = 1",
        "metrics.a > 1 and tags.t = 'y'",
        "name = 'r' and status = 'FINISHED'",
    ]
    kept = [
        "metrics.a = 'x'",  # a string against numbers: pandas compares them as strings
        "params.s > 1",  # a number against strings that may read as numbers
        "params.mixed = 1",  # numbers and strings under one key
        "tags.t = 1",
        "params.x = true",
        "name ilike 'R%'",
        "start_time > '2020-01-01'",
        "params.mixed is null",  # a JSON null among them reads as missing
    ]
    sql = RunFilter(ws.runs.db)
    with ws.runs.db.read() as conn:
        assert [t for t in pushed if sql.where(conn, where.parse(t)) is None] == []
        assert [t for t in kept if sql.where(conn, where.parse(t)) is not None] == []
