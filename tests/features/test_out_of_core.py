"""Training frames out of core: entities from Parquet files, globs, Arrow tables and snapshots, streamed into a
Parquet file or a snapshot batch by batch, within a memory limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feature_data import transactions

import mlo
from mlo.errors import InvalidInput


def _usd(df):
    return pd.DataFrame({"amount_usd": df.amount * df.rate, "big": df.amount > 80})


def _setup(n: int = 3000):
    mlo.snapshot(transactions(), "transactions")
    view = mlo.FeatureView(
        "spend", source="transactions", entity="customer_id", timestamp="ts", transform=_usd
    )
    rng = np.random.default_rng(1)
    ents = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 23, n),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 3500, n), unit="h"),
            "label": rng.integers(0, 2, n),
        }
    )
    return view, ents


def test_every_kind_of_entities_gives_the_same_frame(sqlite_ws, tmp_path):
    view, ents = _setup()
    expected = mlo.features.training_frame(ents, ["spend"], snapshot=None)
    folder = tmp_path / "labels"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(ents)), 3)):
        ents.iloc[part].to_parquet(folder / f"part-{i}.parquet", index=False)
    ents.to_parquet(tmp_path / "labels.parquet", index=False)
    mlo.snapshot(ents, "labels")
    mlo.snapshot(str(tmp_path / "labels.parquet"), "labels_file")
    sources = {
        "file": str(tmp_path / "labels.parquet"),
        "path object": tmp_path / "labels.parquet",
        "glob": str(folder / "part-*.parquet"),
        "folder": folder,
        "arrow table": pa.Table.from_pandas(ents, preserve_index=False),
        "frame snapshot": "labels",
        "file snapshot": "labels_file@1",
        "snapshot object": mlo.get_snapshot("labels"),
    }
    for label, source in sources.items():
        got = mlo.features.training_frame(source, ["spend"], snapshot=None)
        pd.testing.assert_frame_equal(got, expected, obj=label)
    # a DataFrame snapshot comes back as it was taken, its index too
    indexed = ents.set_index(pd.Index([f"r{i}" for i in range(len(ents))], name="row"))
    mlo.snapshot(indexed, "indexed")
    got = mlo.features.training_frame("indexed", ["spend"], snapshot=None)
    pd.testing.assert_frame_equal(got, expected.set_axis(indexed.index))


def test_the_result_streams_into_a_file_or_a_snapshot(sqlite_ws, tmp_path):
    view, ents = _setup()
    expected = mlo.features.training_frame(ents, ["spend"], snapshot=None)
    ents.to_parquet(tmp_path / "labels.parquet", index=False)

    out = mlo.features.training_frame(
        str(tmp_path / "labels.parquet"), ["spend"], to=tmp_path / "out" / "train.parquet"
    )
    assert out == tmp_path / "out" / "train.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
    assert [f.name for f in out.parent.iterdir()] == ["train.parquet"]  # no temporary file left behind
    # the file is snapshotted too, with lineage to the feature version
    up = mlo.lineage("snapshot:training_frame").upstream("feature")
    assert [n.label for n in up] == ["spend@1"]

    snap = mlo.features.training_frame(ents, ["spend"], to="snapshot", snapshot="train_big")
    assert isinstance(snap, mlo.Snapshot) and snap.name == "train_big"
    assert [n.label for n in mlo.lineage(snap.ref).upstream("feature")] == ["spend@1"]
    pd.testing.assert_frame_equal(pd.read_parquet(mlo.load_snapshot(snap.ref)), expected)
    # a training frame's snapshot is an entity source in its turn
    mlo.FeatureView(
        "cents", source="transactions", entity="customer_id", timestamp="ts",
        transform=lambda df: pd.DataFrame({"cents": (df.amount * 100).round()}),
    )  # fmt: skip
    again = mlo.features.training_frame(snap.ref, ["cents"], snapshot=None)
    assert again.columns.tolist() == [*expected.columns, "cents"] and len(again) == len(ents)
    assert not list((sqlite_ws.home / "tmp").iterdir())  # DuckDB's spill folder is gone


def test_bad_sources_and_targets_say_what_to_fix(sqlite_ws, tmp_path):
    view, ents = _setup(10)
    ents.rename(columns={"ts": "when"}).to_parquet(tmp_path / "renamed.parquet")
    (tmp_path / "notes.txt").write_text("not rows")
    mlo.snapshot(str(tmp_path / "notes.txt"), "notes")
    cases = [
        (dict(entities=str(tmp_path / "missing/*.parquet")), "no Parquet file at"),
        (dict(entities=str(tmp_path / "renamed.parquet")), "no timestamp column 'ts'"),
        (dict(entities="notes"), "is a file that is not Parquet"),
        (dict(entities=ents, to=tmp_path), "is a folder"),
        (dict(entities=ents, to="snapshot", snapshot=None), "needs snapshot="),
        (dict(entities=ents, to=42), "to takes None, 'snapshot' or the path"),
        (
            dict(entities=str(tmp_path / "renamed.parquet"), timestamp="when", memory_limit="lots"),
            "memory_limit",
        ),
        (dict(entities=42), "entities must be a DataFrame, an Arrow table, a Parquet path"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidInput, match=message):
            mlo.features.training_frame(features=["spend"], **kwargs)
    assert not (tmp_path / "out.parquet").exists()


CHILD = textwrap.dedent(
    """
    import json, sys, time
    import mlo

    ents, small, out = sys.argv[1:4]


    def peak():  # this process's own high-water mark (ru_maxrss would count the parent it was forked from)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


    mlo.features.training_frame(small, ["wide"], to=out + ".warm", snapshot=None, memory_limit="48MB")
    before = peak()
    print("started", flush=True)
    t0 = time.perf_counter()
    mlo.features.training_frame(ents, ["wide"], to=out, snapshot=None, memory_limit="48MB")
    print(json.dumps({"before": before, "after": peak(), "seconds": time.perf_counter() - t0}))
    """
)


def _wide(df):
    return pd.DataFrame({f"x{i}": df.amount * (i + 1) for i in range(6)})


def _child(tmp_path, rows: int) -> subprocess.Popen:
    """A process that streams a training frame of ``rows`` entity rows (written here by DuckDB, never held in
    memory) into a file, within a 48 MB memory limit."""
    import duckdb

    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("wide", source="transactions", entity="customer_id", timestamp="ts", transform=_wide)
    con = duckdb.connect()
    for name, n in (("entities", rows), ("small", 1000)):
        con.execute(
            f"COPY (SELECT (i % 22) + 1 AS customer_id, TIMESTAMP '2024-01-01' + to_seconds(i % 12000000) AS ts, "
            f"i AS label FROM range({n}) t(i)) TO '{tmp_path / name}.parquet' (FORMAT parquet)"
        )
    con.close()
    args = [
        str(tmp_path / "entities.parquet"),
        str(tmp_path / "small.parquet"),
        str(tmp_path / "train.parquet"),
    ]
    env = {**os.environ, "MLO_DUCKDB_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_frame_several_times_the_memory_limit_streams_through(sqlite_ws, tmp_path):
    rows = 4_000_000
    proc = _child(tmp_path, rows)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    figures = json.loads(out.strip().splitlines()[-1])
    result = pq.ParquetFile(tmp_path / "train.parquet")
    assert result.metadata.num_rows == rows
    in_memory = rows * (3 + 6) * 8  # the frame as a DataFrame: 9 columns of 8 bytes, 288 MB
    grew = figures["after"] - figures["before"]
    assert in_memory > 2.5 * 48 * 2**20  # several times the memory limit
    assert grew < in_memory / 3, (grew, in_memory)  # it never held the frame
    print(f"peak RSS grew {grew / 2**20:.0f} MB for a {in_memory / 2**20:.0f} MB frame", figures)
    # and the rows are right: a sample against the in-memory join
    sample = result.read_row_group(0).to_pandas().head(2000)
    again = mlo.features.training_frame(sample[["customer_id", "ts", "label"]], ["wide"], snapshot=None)
    pd.testing.assert_frame_equal(sample, again, check_dtype=False)


def test_a_killed_write_leaves_no_half_file(sqlite_ws, tmp_path):
    proc = _child(tmp_path, 3_000_000)
    try:
        line = proc.stdout.readline().strip()
        if line != "started":
            proc.wait(30)
            pytest.fail(f"the child failed: {proc.stderr.read()}")
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".tmp-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(tmp_path.glob(".tmp-*.parquet")), "the child never started writing"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "train.parquet").exists()  # a reader never sees part of a frame
