"""The whole run listing cached on disk (mlo.store.listing_cache): every listing answered from it equals the one
read from the database, on SQLite and PostgreSQL, after every kind of change a listing shows (each re-reading
only the runs changed), and a cache file that is missing, damaged, foreign or unwritable costs only speed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from sqlalchemy import update

import mlo
from mlo.store import listing_cache, listing_table
from mlo.store import schema as s

LISTINGS = [
    {},
    {"experiment": "big"},
    {"experiment": "other"},
    {"experiment": ["big", "other"]},
    {"columns": ["params.lr", "metrics.*", "tags.team"]},
    {"include": "all"},
    {"include": "archived", "experiment": "big"},
    {"where": "params.mixed = 'one'"},  # evaluated in Python over the listing
    {"order_by": "params.num_str"},
]


@pytest.fixture
def runs_ws(ws, monkeypatch):
    monkeypatch.setattr(ws.runs, "CACHE_MIN_RUNS", 0)  # the cache for listings of a few runs too
    with mlo.start_run("elsewhere", experiment="other", params={"lr": "fast", "opt": 3}, tags={"team": "x"}):
        mlo.log_metric("acc", 2.0)
    opts = ["adam", "Adam", "日本", 'quo"te', "back\\slash", "new\nline", "O'Brien", "x' OR '1'='1"]
    for i, opt in enumerate(opts):
        params = {"opt": opt, "num_str": str(10 - i), "mixed": 1 if i % 2 else "one", "big": 2**60 + i}
        if i % 3:
            params["lr"] = [0.1, 1e-3, -2.5][i % 3]
        with mlo.start_run(f"r{i}", experiment="big", params=params, tags={"team": "c"} if i % 2 else {}):
            if i % 4:
                mlo.log_metric("acc", float("nan") if i == 5 else i / 10)
            if i == 2:
                mlo.log_metric("loss", -math.inf)
    return ws


def _uncached(store, **kwargs) -> pd.DataFrame:
    store.listing_memo.clear()  # (not the whole listing kept in memory either)
    path, store.listing_cache = store.listing_cache, None
    try:
        return mlo.runs(**kwargs)
    finally:
        store.listing_cache = path


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    # duration: now minus start for a running run, so it moves between the two reads
    pd.testing.assert_frame_equal(
        a.drop(columns="duration", errors="ignore"), b.drop(columns="duration", errors="ignore")
    )
    assert a.attrs == b.attrs


def _check(store, listings=LISTINGS) -> None:
    for kwargs in listings:
        store.listing_memo.clear()
        _same(mlo.runs(**kwargs), _uncached(store, **kwargs))


def _reads(store, monkeypatch) -> list:
    """The run ids each database read of a listing asked for (None: every run)."""
    seen = []
    read = listing_table.read_table

    def spy(store_, conn, scope):
        if store.listing_cache is not None:  # (not the uncached read each check compares with)
            seen.append(None if scope[1] is None else sorted(scope[1]))
        return read(store_, conn, scope)

    monkeypatch.setattr(listing_table, "read_table", spy)
    return seen


def test_listings_from_the_cache_equal_the_database_read(runs_ws):
    store = runs_ws.runs
    assert not store.listing_cache.exists()
    _check(store)  # the first builds the file, the rest read it
    assert store.listing_cache.exists()
    _check(store)


def test_every_change_a_listing_shows_is_read_again_alone(runs_ws, monkeypatch):
    store = runs_ws.runs
    mlo.runs()
    reads = _reads(store, monkeypatch)
    ids = mlo.runs(experiment="big")["run_id"].tolist()
    assert reads == []  # nothing changed: no run read from the database
    changes = [
        lambda: store.set_params(ids[0], {"new": '"v"', "opt": '"changed"'}),
        lambda: store.set_tags(ids[1], {"team": "édge"}),
        lambda: store.delete_tag(ids[1], "team"),
        lambda: _log(store, ids[2], "acc", float("nan")),
        lambda: _log(store, ids[3], "fresh", 1.5),
        lambda: store.update_run(ids[4], status="failed", end_time=None),
        lambda: mlo.archive_run(ids[5]),
        lambda: mlo.delete_run(ids[6]),
        lambda: mlo.restore_run(ids[6]),
    ]
    for change in changes:
        reads.clear()
        change()
        _check(store, [{}, {"experiment": "big"}, {"include": "all"}])
        assert reads and all(r is not None and len(r) <= 1 for r in reads), reads


def _log(store, run_id: str, key: str, value: float) -> None:
    import numpy as np

    stamp = int(time.time() * 1e6)
    store.write_metrics(run_id, {key: (np.array([99]), np.array([value]), np.array([stamp]))})


def test_runs_added_gone_and_renamed_experiments(runs_ws, monkeypatch):
    store = runs_ws.runs
    mlo.runs()
    reads = _reads(store, monkeypatch)
    with mlo.start_run("late", experiment="big", params={"lr": 9}):
        pass
    _check(store)
    assert [r for r in reads if r is not None and len(r) == 1]
    doomed = mlo.runs(experiment="big")["run_id"].iloc[-1]
    # another writer (another mlo, a manual fix) renames an experiment and removes a run with its records
    with runs_ws.db.engine.begin() as conn:
        for table in (s.params, s.tags, s.latest_metrics, s.metric_chunks, s.cells, s.artifacts):
            conn.execute(table.delete().where(table.c.run_id == doomed))
        conn.execute(s.runs.delete().where(s.runs.c.id == doomed))
        conn.execute(update(s.experiments).where(s.experiments.c.name == "other").values(name="renamed"))
    reads.clear()
    _check(store, [{}, {"experiment": "renamed"}, {"include": "all"}])
    assert None not in reads
    assert doomed not in set(mlo.runs(include="all")["run_id"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),  # a write cut short
        lambda p: p.write_bytes(b"ARROW1" + os.urandom(4096)),
        lambda p: _foreign_arrow(p),
    ],
    ids=["empty", "truncated", "garbage", "foreign"],
)
def test_a_damaged_cache_file_is_read_past_and_rewritten(runs_ws, damage):
    store = runs_ws.runs
    mlo.runs()
    damage(store.listing_cache)
    _check(store)
    assert listing_cache.load(store.listing_cache) is not None


def _foreign_arrow(path) -> None:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, pa.schema([("id", pa.string())])) as w:
        w.write_table(pa.table({"id": ["x"]}))


def test_an_unwritable_cache_folder_costs_only_speed(runs_ws):
    store = runs_ws.runs
    cache_dir = store.listing_cache.parent
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    if cache_dir.exists():
        for p in cache_dir.iterdir():
            p.unlink()
        cache_dir.rmdir()
    cache_dir.write_text("a file where the cache folder goes")
    _check(store)
    assert cache_dir.is_file()


def test_a_full_disk_leaves_no_partial_cache_file(runs_ws, tmp_path):
    """The listing is written in a child process whose files may not grow past 4 kB (a full disk for it)."""
    from failing_disks import file_size_limit

    store = runs_ws.runs
    code = textwrap.dedent(
        """
        import mlo
        mlo.workspace.current().runs.CACHE_MIN_RUNS = 0
        df = mlo.runs()
        print(len(df))
        """
    )
    env = {**os.environ, "MLO_SYSTEM_METRICS": "0"}
    store.listing_cache.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
        preexec_fn=file_size_limit(4096), cwd=tmp_path,
    )  # fmt: skip
    if runs_ws.db.dialect == "sqlite" and out.returncode != 0:
        pytest.skip("the SQLite database itself is past the limit here")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == str(len(mlo.runs()))
    leftovers = [p.name for p in store.listing_cache.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_listing_killed_while_writing_the_cache_leaves_it_readable(runs_ws, tmp_path):
    store = runs_ws.runs
    mlo.runs()
    before = store.listing_cache.read_bytes()
    with mlo.start_run("while-killed", experiment="big"):
        pass
    code = textwrap.dedent(
        """
        import os, signal
        import pyarrow as pa
        from mlo.store import listing_cache

        def killed(self, table, *args, **kwargs):  # the process dies in the middle of writing the file
            os.kill(os.getpid(), signal.SIGKILL)

        pa.ipc.RecordBatchFileWriter.write_table = killed
        import mlo
        mlo.workspace.current().runs.CACHE_MIN_RUNS = 0
        mlo.runs()
        """
    )
    env = {**os.environ, "MLO_SYSTEM_METRICS": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == -signal.SIGKILL
    assert store.listing_cache.read_bytes() == before  # the old file, whole
    _check(store, [{}, {"experiment": "big"}])
    assert "while-killed" in set(mlo.runs()["name"])


def test_a_listing_of_a_few_runs_reads_the_database_alone(ws):
    with mlo.start_run("one", params={"a": 1}):
        pass
    assert len(mlo.runs()) == 1
    assert not ws.runs.listing_cache.exists()
