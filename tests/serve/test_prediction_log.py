"""The prediction log on its own: batch logging, labels, time windows, the server's buffered logger, schema
changes between versions, and compaction while reading."""

from __future__ import annotations

import importlib
import threading
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlo
from mlo.errors import InvalidInput, NotFound
from mlo.monitor import log as log_fn
from mlo.monitor.log import PredictionLogger, model_folder

L = importlib.import_module("mlo.monitor.log")  # the module: the package attribute `log` is the function

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def ident(X):
    return X.iloc[:, 0]


@pytest.fixture
def m(sqlite_ws):
    """Model ``m`` (v1 at production, v2 at staging): cheap functions with a signature."""
    sig = {"age": "int64", "spend": "float64", "plan": "object"}
    mlo.register_model(ident, "m", signature=sig, alias="production")
    mlo.register_model(ident, "m", signature=sig, alias="staging")
    return sqlite_ws


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n).astype("int64"),
            "spend": rng.normal(50, 10, n),
            "plan": rng.choice(["basic", "pro"], n),
            "tier": pd.Categorical(rng.choice(["a", "b"], n)),
            "active": rng.random(n) > 0.5,
        }
    )


def test_batch_log_round_trip_keeps_dtypes_and_joins_labels(m):
    X = frame(50)
    preds = (X["spend"] > 50).astype(int).to_numpy()
    ids = mlo.monitor.log("m@production", X, preds, labels=1 - preds, timestamps=T0)
    assert len(ids) == 50 and len(set(ids)) == 50
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert log_fn is mlo.monitor.log  # the package attribute is the function
    df = mlo.monitor.read_log("m")
    assert list(df.columns) == [
        "id", "ts", "model", "version", "alias", "route", "latency_ms", "error", "prediction", "label",
        "f.age", "f.spend", "f.plan", "f.tier", "f.active",
    ]  # fmt: skip
    assert df["id"].tolist() == ids
    assert (df["ts"] == pd.Timestamp(T0)).all() and str(df["ts"].dtype) == "datetime64[us, UTC]"
    assert set(df["model"]) == {"m"} and set(df["version"]) == {1} and set(df["alias"]) == {"production"}
    assert set(df["route"]) == {"batch"} and df["latency_ms"].isna().all() and df["error"].isna().all()
    assert df["prediction"].tolist() == preds.tolist() and df["label"].tolist() == (1 - preds).tolist()
    assert str(df["f.age"].dtype) == "int64" and str(df["f.spend"].dtype) == "float64"
    assert (
        df["f.plan"].tolist() == X["plan"].tolist()
        and df["f.tier"].tolist() == X["tier"].astype(str).tolist()
    )
    assert df["f.active"].tolist() == X["active"].tolist()


def test_refs_by_version_and_model_version_objects(m):
    X = frame(3)
    mlo.monitor.log("m@v2", X, [1, 2, 3], timestamps=T0)
    mlo.monitor.log("m/1", X, [1, 2, 3], timestamps=T0 + timedelta(seconds=1))
    mlo.monitor.log(mlo.get_model_version("m@staging"), X, [1, 2, 3], timestamps=T0 + timedelta(seconds=2))
    df = mlo.monitor.read_log("m")
    assert df["version"].tolist() == [2] * 3 + [1] * 3 + [2] * 3
    assert df["alias"].isna().sum() == 9  # pinned refs and ModelVersion objects name no alias
    with pytest.raises(NotFound):
        mlo.monitor.log("m@v9", X, [1, 2, 3])


def test_labels_arriving_later_latest_wins(m):
    ids = mlo.monitor.log("m@production", frame(4), [0, 1, 0, 1], timestamps=T0)
    mlo.monitor.label(ids[:2], [1, 1], timestamps=T0 + timedelta(hours=1))
    mlo.monitor.label([ids[0]], ["fixed"], timestamps=T0 + timedelta(hours=2))  # types differ: text wins
    mlo.monitor.label(ids[1], [0], timestamps=T0 + timedelta(minutes=30))  # older than the label above
    df = mlo.monitor.read_log("m")
    assert df["label"].tolist()[:2] == ["fixed", "1"] and df["label"].iloc[2:].isna().all()
    with pytest.raises(NotFound, match="1 of 2 ids were never logged"):
        mlo.monitor.label([ids[3], "0" * 32], [1, 0])
    mlo.monitor.label(["f" * 32], [1], model="m")  # with model=, ids are taken on trust
    with pytest.raises(InvalidInput, match="y has 1 rows but ids has 2"):
        mlo.monitor.label(ids[:2], [1])
    with pytest.raises(InvalidInput, match="ids must be record ids"):
        mlo.monitor.label([1, 2], [1, 0])


def test_input_errors_are_one_line(m):
    X = frame(5)
    with pytest.raises(InvalidInput, match="predictions has 4 rows but features has 5; pass one per row"):
        mlo.monitor.log("m@production", X, [1, 2, 3, 4])
    with pytest.raises(InvalidInput, match="labels has 6 rows"):
        mlo.monitor.log("m@production", X, np.zeros(5), labels=np.zeros(6))
    with pytest.raises(InvalidInput, match="timestamps has 2 values for 5 rows"):
        mlo.monitor.log("m@production", X, np.zeros(5), timestamps=[T0, T0])
    with pytest.raises(InvalidInput, match="DataFrame or a dict"):
        mlo.monitor.log("m@production", [1, 2], [1, 2])
    with pytest.raises(InvalidInput, match="not a time"):
        mlo.monitor.read_log("m", since="yesterday-ish")
    with pytest.raises(NotFound, match="no model 'ghost'"):
        mlo.monitor.read_log("ghost")


def test_two_dimensional_predictions_are_stored_as_lists(m):
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    mlo.monitor.log("m@production", {"age": [1, 2, 3]}, proba)
    df = mlo.monitor.read_log("m")
    assert [list(p) for p in df["prediction"]] == proba.tolist()


def test_since_until_prune_files_by_name(m, monkeypatch):
    for day in range(5):
        mlo.monitor.log("m@production", frame(10, day), np.full(10, day), timestamps=T0 + timedelta(days=day))
    opened: list[str] = []
    real = L._footer
    monkeypatch.setattr(L, "_footers", {})
    monkeypatch.setattr(L, "_footer", lambda p: opened.append(p.name) or real(p))
    df = mlo.monitor.read_log("m", since=T0 + timedelta(days=1), until=T0 + timedelta(days=3))
    assert sorted(set(df["prediction"])) == [1, 2] and len(df) == 20
    assert len(opened) == 2  # only the two files whose time range overlaps the window
    naive = mlo.monitor.read_log("m", since="2025-03-04T12:00", columns=["ts", "prediction"])
    assert list(naive.columns) == ["ts", "prediction"] and set(naive["prediction"]) == {3, 4}
    recent = mlo.monitor.read_log("m", since=timedelta(days=1))  # relative to now: nothing that old
    assert len(recent) == 0 and "label" in recent.columns
    with pytest.raises(InvalidInput, match="has no column 'f.nope'"):
        mlo.monitor.read_log("m", columns=["ts", "f.nope"])


def test_unsorted_timestamps_read_back_sorted(m):
    ts = [T0 + timedelta(minutes=k) for k in (5, 1, 3, 2, 4)]
    ids = mlo.monitor.log("m@production", {"age": [5, 1, 3, 2, 4]}, [5, 1, 3, 2, 4], timestamps=ts)
    df = mlo.monitor.read_log("m")
    assert df["prediction"].tolist() == [1, 2, 3, 4, 5]
    assert df.set_index("id").loc[ids, "prediction"].tolist() == [5, 1, 3, 2, 4]


def test_a_registered_model_without_log_reads_empty(m):
    df = mlo.monitor.read_log("m")
    assert len(df) == 0 and list(df.columns)[:3] == ["id", "ts", "model"]


def test_logger_concurrent_appends_flush_by_size_time_and_close(m):
    home = m.home
    logger = PredictionLogger(home, flush_seconds=0.2, flush_records=500)
    types = {"age": pa.int64(), "spend": pa.float64()}
    stream = logger.stream("m", 1, "production", "stable", types)
    canary = logger.stream("m", 2, "staging", "canary", types)
    all_ids: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        s = canary if k % 4 == 0 else stream
        for i in range(250):
            ids = s.append({"age": [i], "spend": [i / 2]}, [i % 2], n=1, latency_ms=1.5)
            with lock:
                all_ids.extend(ids)
        ids = s.append({"age": [1, 2]}, [0, 1], n=2, latency_ms=2.0)  # a batch, with a feature unknown
        ids += s.append(None, None, n=1, error="rejected")
        with lock:
            all_ids.extend(ids)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.close()
    assert logger.pending == 0 and logger.records_written == 8 * 253 and logger.segments_written >= 2
    df = mlo.monitor.read_log("m")
    assert len(df) == 8 * 253 and set(df["id"]) == set(all_ids)
    assert (df["route"] == "canary").sum() == 2 * 253 and set(df.loc[df.route == "canary", "version"]) == {2}
    assert df["error"].eq("rejected").sum() == 8 and df.loc[df.error.notna(), "f.age"].isna().all()
    assert df["f.spend"].isna().sum() == 8 * 3 and str(df["f.age"].dtype) == "float64"  # nulls: floats


def test_versions_with_different_features_read_together(m):
    mlo.monitor.log("m@v1", {"age": [1, 2], "plan": ["a", "b"]}, [0, 1], timestamps=T0)
    mlo.monitor.log("m@v2", {"age": [1.5], "spend": [3.0]}, ["yes"], timestamps=T0 + timedelta(seconds=1))
    df = mlo.monitor.read_log("m")
    assert df["f.age"].tolist() == [1.0, 2.0, 1.5]  # int64 and float64 files: floats
    assert df["f.plan"].tolist()[:2] == ["a", "b"] and pd.isna(df["f.plan"].iloc[2])
    assert df["f.spend"].isna().tolist() == [True, True, False]
    assert df["prediction"].tolist() == ["0", "1", "yes"]  # integers and text: text


def test_compaction_merges_files_and_readers_never_see_duplicates(m):
    ids = []
    for k in range(12):
        ids += mlo.monitor.log(
            "m@production", frame(5, k), np.arange(5), timestamps=T0 + timedelta(seconds=k)
        )
    mlo.monitor.label(ids[:7], np.ones(7))
    mlo.monitor.label(ids[3:9], np.zeros(6))
    before = mlo.monitor.read_log("m")
    result = mlo.monitor.compact("m")
    assert result["files_before"] == 14 and result["files_after"] == 2 and result["merged"] == 14
    after = mlo.monitor.read_log("m")
    pd.testing.assert_frame_equal(before, after)
    assert after["label"].tolist()[:9] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]

    # an interrupted compaction: the merged file is there, its sources not yet deleted
    folder = model_folder("m")
    mlo.monitor.log("m@production", frame(5, 99), np.arange(5), timestamps=T0 + timedelta(seconds=30))
    files = sorted(folder.glob("seg-*.parquet"))
    assert len(files) == 2
    table = pa.concat_tables([pa.parquet.read_table(f) for f in files])
    L.write_segment(folder, table, replaces=[f.name for f in files])
    assert len(list(folder.glob("seg-*.parquet"))) == 3
    assert len(mlo.monitor.read_log("m")) == 65  # the replaced files are skipped
    mlo.monitor.compact("m")
    assert len(list(folder.glob("seg-*.parquet"))) == 1 and len(mlo.monitor.read_log("m")) == 65


def test_reading_while_a_logger_writes_and_compacts(m):
    logger = PredictionLogger(m.home, flush_seconds=0.01, compact_every=5)
    stream = logger.stream("m", 1, "production", "stable", {"age": pa.int64()})
    stop = threading.Event()
    written = []
    errors: list[BaseException] = []

    def write() -> None:
        i = 0
        while not stop.is_set():
            written.extend(stream.append({"age": [i]}, [i], n=1, latency_ms=1.0))
            i += 1
            if i % 20 == 0:
                stop.wait(0.005)

    def read() -> None:
        try:
            while not stop.is_set():
                df = mlo.monitor.read_log("m", columns=["id"])
                assert df["id"].is_unique
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    stop.wait(1.5)
    stop.set()
    for t in threads:
        t.join()
    logger.close()
    assert errors == []
    files = list(model_folder("m").glob("seg-*.parquet"))
    assert len(files) < logger.segments_written  # the logger compacted while the reader read
    mlo.monitor.compact("m")
    df = mlo.monitor.read_log("m")
    assert df["id"].is_unique and set(df["id"]) == set(written)


# -- the log keeps its schema -------------------------------------------------------------------------------------
def test_a_typed_feature_never_widens_whatever_is_appended(m, caplog):
    """The signature's type wins: a value that does not fit is stored as null (a server refuses it before)."""
    logger = PredictionLogger(m.home)
    stream = logger.stream("m", 1, "production", "stable", {"age": pa.int64(), "spend": pa.float64()})
    stream.append({"age": [31, 45], "spend": [1.0, 2.0]}, [0, 1], n=2, latency_ms=1.0)
    with caplog.at_level("WARNING", logger="mlo.monitor"):
        stream.append({"age": [2**64], "spend": ["lots"]}, [1], n=1, latency_ms=1.0)
        logger.flush()
    stream.append({"age": [50], "spend": [3.0]}, [0], n=1, latency_ms=1.0)
    logger.close()
    df = mlo.monitor.read_log("m")
    assert df["f.age"].tolist()[:2] == [31, 45] and pd.isna(df["f.age"].iloc[2]) and df["f.age"].iloc[3] == 50
    assert str(df["f.spend"].dtype) == "float64"
    assert any("did not fit int64" in r.getMessage() for r in caplog.records)


def poisoned_log(m) -> None:
    """Segments as an older server wrote them after one request with an integer above 2⁶³: that second's
    feature values as JSON text, the others as int64."""
    folder = model_folder("m", m.home)
    t0 = int(pd.Timestamp(T0).value // 1000)

    def seg(k: int, ages: pa.Array) -> None:
        n = len(ages)
        ts = pa.array([t0 + k * 1_000_000 + i for i in range(n)], pa.int64()).cast(L.TS_TYPE)
        table = pa.table(
            {
                "id": pa.array(L.new_ids(n, t0 + k * 1_000_000)),
                "ts": ts,
                "model": pa.array(["m"] * n),
                "version": pa.array([1] * n, pa.int64()),
                "alias": pa.array(["production"] * n),
                "route": pa.array(["stable"] * n),
                "latency_ms": pa.array([1.0] * n),
                "error": pa.nulls(n, pa.string()),
                "prediction": pa.array([0] * n, pa.int64()),
                "f.age": ages,
                "f.plan": pa.array(["basic"] * n),
            }
        )
        L.write_segment(folder, table)

    seg(0, pa.array([30, 40, 50], pa.int64()))
    seg(1, pa.array(["31", "18446744073709551616", None, "42"], pa.string()))
    seg(2, pa.array([60, 70], pa.int64()))


def test_logs_poisoned_by_older_servers_read_their_numbers_back(m):
    poisoned_log(m)
    df = mlo.monitor.read_log("m")
    assert df["f.age"].dtype.kind in "if"  # numbers again, not text
    assert df["f.age"].tolist()[:3] == [30, 40, 50] and df["f.age"].tolist()[3] == 31
    assert df["f.age"].isna().tolist() == [False] * 4 + [True, True] + [False] * 3  # 2⁶⁴ does not fit: null
    assert mlo.monitor.read_log("m", columns=["f.age"])["f.age"].tolist()[-2:] == [60, 70]
    tail = mlo.monitor.read_log("m", since=pd.Timestamp(T0) + pd.Timedelta(seconds=1))
    assert len(tail) == 6 and tail["f.age"].iloc[0] == 31
    assert mlo.monitor.compact("m")["merged"] == 3  # compaction keeps it readable
    assert mlo.monitor.read_log("m")["f.age"].tolist()[3] == 31


def test_a_feature_that_really_changed_to_text_still_reads_as_text(m):
    mlo.monitor.log("m@v1", {"age": [1, 2]}, [0, 1], timestamps=T0)
    mlo.monitor.log("m@v2", {"age": ["young", "old"]}, [0, 1], timestamps=T0 + timedelta(seconds=1))
    assert mlo.monitor.read_log("m")["f.age"].tolist() == ["1", "2", "young", "old"]
