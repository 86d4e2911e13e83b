"""A whole listing read from the database straight into the cache's Arrow layout (mlo.store.listing_table), as
``runs()`` of a big workspace reads it when there is no cache file: the same frame as the reads that decode
each run's row in Python and the (run, key, value) rows give, for every kind of value a run holds, on SQLite
and PostgreSQL; and the metrics, read on a second connection, are kept only when its snapshot shows the runs
as the first one does."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.store import listing_table

ODD_TEXTS = [
    'quo"te',
    "back\\slash",
    "new\nline\ttab\r",
    "日本語 ünïcödé 🙂",
    "x' OR '1'='1",
    '{"looks": ["like", "json"]}',
    "[1, 2",
    "",
    " ",
    "null",
    "true",
    "1e5",
    "-0",
    "\u2028\u2029",
]
FLOATS = [0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, 2**53 + 2.0, 123456789.12345679, -1e-310, 0.0]


@pytest.fixture
def read_ws(ws, monkeypatch):
    monkeypatch.setattr(ws.runs, "CACHE_MIN_RUNS", 0)  # listings of a few runs take the big listings' read
    return ws


def _reads(store, **kwargs) -> list[pd.DataFrame]:
    """The listing read four ways: into Arrow with no cache file, then from the file that wrote, by decoding each
    run's JSON in Python, and from (run, key, value) rows (no JSON functions)."""
    out = []
    store.listing_cache.unlink(missing_ok=True)
    for way in ("arrow", "file", "rows", "long rows"):
        store.listing_memo.clear()
        path = store.listing_cache
        if way in ("rows", "long rows"):
            store.listing_cache = None
        if way == "long rows":
            store._has_json = False
        try:
            out.append(mlo.runs(**kwargs))
        finally:
            store.listing_cache, store._has_json = path, None
        if way == "arrow" and len(out[0]):
            assert path.exists()
    return out


def _all_same(frames: list[pd.DataFrame]) -> pd.DataFrame:
    first = frames[0].drop(columns="duration", errors="ignore")
    for other in frames[1:]:
        pd.testing.assert_frame_equal(
            first, other.drop(columns="duration", errors="ignore"), check_exact=True
        )
    return frames[0]


def test_every_kind_of_value_reads_the_same_every_way(read_ws):
    store = read_ws.runs
    params = {f"k{i}": text for i, text in enumerate(ODD_TEXTS)}
    params |= {"nested": {"a": [1, {"b": None}]}, "list": [1, "two"], "none": None, "flag": False}
    params |= {"big": 2**62, "neg": -7, "float": 0.1 + 0.2, "tiny": 5e-324, "inf": math.inf}
    keys = {"dotted.key.name": 1, 'quo"ted': 2, "sp ace": 3, "ünï": 4, "back\\slash": 5, "a/b": 6, "日本": 7}
    with mlo.start_run("odd", experiment="e", params=params | keys, tags={"t.x": 'v"1', "ünï": "日本"}):
        mlo.log_metrics({f"m{i}": v for i, v in enumerate(FLOATS)} | {"nan": math.nan, "inf": math.inf})
        mlo.log_metrics({"-inf": -math.inf, "dotted.metric": 1.5, 'q"m': 2.5})
    with mlo.start_run("bare", experiment="e"):  # no params, metrics or tags
        pass
    with mlo.start_run("other keys", experiment="e", params={"k0": 3, "only": "here"}, tags={"t.x": "w"}):
        mlo.log_metrics({"m0": 0.5, "only": math.nan})
    df = _all_same(_reads(store, experiment="e"))
    odd = df.set_index("name").loc["odd"]
    for i, text in enumerate(ODD_TEXTS):
        assert odd[f"params.k{i}"] == text
    for i, value in enumerate(FLOATS):
        assert odd[f"metrics.m{i}"] == value
    assert (
        math.isnan(odd["metrics.nan"]) and odd["metrics.inf"] == math.inf and odd["metrics.-inf"] == -math.inf
    )
    assert odd["params.nested"] == '{"a": [1, {"b": null}]}' and odd["params.none"] is None
    assert odd["params.dotted.key.name"] == 1 and odd['params.quo"ted'] == 2 and odd["params.日本"] == 7
    assert odd["tags.t.x"] == 'v"1' and odd["tags.ünï"] == "日本"
    bare = df.set_index("name").loc["bare"]
    assert bare.filter(regex=r"^(params|metrics|tags)\.").isna().all()
    assert np.isnan(df.set_index("name").loc["other keys", "metrics.only"])


def test_huge_values_and_many_runs_of_different_keys(read_ws):
    store = read_ws.runs
    huge = "x" * 3_000_000 + "é"  # more than a block of the JSON reader holds
    with mlo.start_run("huge", experiment="e", params={"huge": huge}, tags={"huge": huge[:100_000]}):
        mlo.log_metric("m", 1.0)
    for i in range(40):
        with mlo.start_run(f"r{i}", experiment="e", params={f"p{i % 7}": i, "s": str(i)}):
            mlo.log_metrics({f"m{i % 5}": i / 7})
    df = _all_same(_reads(store, experiment="e"))
    assert df.set_index("name").loc["huge", "params.huge"] == huge
    assert len(df) == 41
    _all_same(_reads(store, experiment="e", columns=["params.p1", "metrics.*"], order_by="metrics.m2 desc"))
    _all_same(_reads(store, experiment="e", where="params.s = '7' or metrics.m0 > 2"))


@pytest.mark.parametrize("runs", [0, 1])
def test_no_run_and_one_run(read_ws, runs):
    read_ws.runs.experiment_id("e")
    for i in range(runs):
        with mlo.start_run(f"r{i}", experiment="e", params={"a": 1}):
            mlo.log_metric("m", 0.25)
    frames = _reads(read_ws.runs, experiment="e")
    assert all(len(f) == runs for f in frames)
    if runs:
        _all_same(frames)
    else:
        assert all(list(f.columns) == list(frames[0].columns) for f in frames)


def test_a_commit_between_the_two_snapshots_reads_the_metrics_again_on_the_first(read_ws, monkeypatch):
    """The metrics are read on a second connection; a commit that lands after the first connection's snapshot
    began and before the second's shows in the stamps, so the metrics are read again in the first snapshot:
    the listing shows one moment of the database, not params of one and metrics of another."""
    store = read_ws.runs
    with mlo.start_run("a", experiment="e", params={"p": 1}) as run:
        mlo.log_metric("m", 1.0)
    with mlo.start_run("b", experiment="e", params={"p": 2}):
        mlo.log_metric("m", 2.0)
    apart, reads = listing_table._metrics_apart, []
    read = listing_table._metrics

    def commit_first(store_, scope):
        store_.write_metrics(run.id, {"m": (np.array([9]), np.array([42.0]), np.array([10**15]))})
        return apart(store_, scope)

    def counted(store_, conn, scope):
        reads.append(scope)
        return read(store_, conn, scope)

    monkeypatch.setattr(listing_table, "_metrics_apart", commit_first)
    monkeypatch.setattr(listing_table, "_metrics", counted)
    store.listing_cache.unlink(missing_ok=True)
    store.listing_memo.clear()
    before = mlo.runs(experiment="e").set_index("name")
    assert before.loc["a", "metrics.m"] == 1.0 and before.loc["b", "metrics.m"] == 2.0
    assert len(reads) == 2  # on the second connection, then again on the first
    monkeypatch.setattr(listing_table, "_metrics_apart", apart)
    reads.clear()
    after = _all_same(_reads(store, experiment="e")).set_index("name")
    assert after.loc["a", "metrics.m"] == 42.0
    assert len(reads) == 1  # nothing came between: the second connection's read stands


def test_a_failing_second_connection_costs_only_speed(read_ws, monkeypatch):
    with mlo.start_run("a", experiment="e", params={"p": 1}):
        mlo.log_metric("m", 1.0)
    expected = _all_same(_reads(read_ws.runs, experiment="e"))

    def broken(store_, scope):
        raise RuntimeError("no second connection")

    monkeypatch.setattr(listing_table, "_metrics_apart", broken)
    got = _reads(read_ws.runs, experiment="e")[0]
    pd.testing.assert_frame_equal(
        got.drop(columns="duration", errors="ignore"), expected.drop(columns="duration", errors="ignore")
    )


def test_chunks_and_a_chunk_longer_than_sqlite_holds(sqlite_ws, monkeypatch):
    """SQLite joins the runs' lines a chunk of runs at a time; a chunk whose text would pass SQLite's longest
    (here lowered to 6,000 bytes on every connection, where three runs take some 8,000) is read a line a row, and
    the listing is the same."""
    import sqlite3

    from sqlalchemy import event

    store = sqlite_ws.runs
    monkeypatch.setattr(store, "CACHE_MIN_RUNS", 0)
    monkeypatch.setattr(listing_table, "CHUNK_RUNS", 3)
    for i in range(10):
        with mlo.start_run(f"r{i}", experiment="e", params={"blob": "x" * 2500 + str(i)}, tags={"i": str(i)}):
            mlo.log_metric("m", i / 3)
    expected = _all_same(_reads(store, experiment="e"))  # 4 chunks of at most 3 runs
    if not hasattr(sqlite3.Connection, "setlimit"):
        pytest.skip("sqlite3.Connection.setlimit needs Python 3.11")
    engine = store.db.engine
    engine.dispose()
    event.listen(engine, "connect", lambda dbapi, _: dbapi.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 6000))
    try:
        with pytest.raises(Exception, match="too big"):  # (the limit holds: three runs' lines pass it)
            with store.db.read() as conn:
                conn.exec_driver_sql("SELECT group_concat(value) FROM params").all()
        got = _reads(store, experiment="e")[0]
    finally:
        engine.dispose()
    pd.testing.assert_frame_equal(
        got.drop(columns="duration", errors="ignore"), expected.drop(columns="duration", errors="ignore")
    )
