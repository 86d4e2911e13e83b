"""Views over the memory budget: joined by DuckDB (ASOF JOIN) out of core, with the very result of the in-memory
search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from feature_data import transactions

import mlo
from mlo.errors import InvalidInput
from mlo.features.offline import Joiner, _selection
from mlo.features.rows import feature_file


def _both(monkeypatch, tmp_path, ents, features, **kw):
    """The training frame in memory and streamed to a file, by the in-memory search and by DuckDB; asserts the
    four agree and returns the frame."""
    monkeypatch.delenv("MLO_FEATURE_VIEW_MB", raising=False)
    assert all(p[2] is not None and not isinstance(p[2], int) for p in Joiner(_selection(features)).parts)
    memory = mlo.features.training_frame(ents, features, snapshot=None, **kw)
    empty_in_memory = mlo.features.training_frame(ents.iloc[:0], features, snapshot=None, **kw)
    ents.to_parquet(tmp_path / "ents.parquet", index=False)
    memory_file = mlo.features.training_frame(
        tmp_path / "ents.parquet", features, to=tmp_path / "a.parquet", snapshot=None, **kw
    )
    monkeypatch.setenv("MLO_FEATURE_VIEW_MB", "0")  # every view over the budget
    assert all(isinstance(p[2], int) for p in Joiner(_selection(features)).parts)
    duck = mlo.features.training_frame(ents, features, snapshot=None, **kw)
    pd.testing.assert_frame_equal(duck, memory)
    duck_file = mlo.features.training_frame(
        tmp_path / "ents.parquet", features, to=tmp_path / "b.parquet", snapshot=None, **kw
    )
    assert pq.read_table(duck_file).equals(pq.read_table(memory_file))
    assert pq.read_schema(duck_file).equals(pq.read_schema(memory_file))
    from_file = mlo.features.training_frame(tmp_path / "ents.parquet", features, snapshot=None, **kw)
    pd.testing.assert_frame_equal(from_file, memory.reset_index(drop=True))
    # no entity rows: no feature rows either, with the same types
    empty = mlo.features.training_frame(ents.iloc[:0], features, snapshot=None, **kw)
    pd.testing.assert_frame_equal(empty, empty_in_memory)
    assert not list((mlo.workspace.current().home / "tmp").glob("duckdb-*"))
    return memory


def test_leaky_data_ties_and_gaps_give_the_in_memory_result(sqlite_ws, monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    rows, ents = [], []
    for cid in range(1, 41):
        t = pd.Timestamp("2024-03-01") + pd.Timedelta(hours=int(rng.integers(0, 48)))
        for _ in range(6):
            label = int(rng.integers(0, 2))
            ents.append({"customer_id": cid, "event_time": t, "label": label})
            # the value that reveals the label lands a second after the entity row: a leaky join copies it
            rows.append(
                {"customer_id": cid, "ts": t + pd.Timedelta(seconds=1), "score": float(label), "n": 1}
            )
            # a tie at one time: the later source row wins
            rows.append(
                {"customer_id": cid, "ts": t + pd.Timedelta(seconds=1), "score": float(label), "n": 2}
            )
            t = t + pd.Timedelta(hours=int(rng.integers(1, 30)))
    feats = pd.DataFrame(rows)
    feats.loc[feats.index % 7 == 0, "score"] = np.nan  # NaN values are values
    feats["tag"] = np.where(feats.index % 5 == 0, None, "t" + feats.index.astype(str))
    mlo.snapshot(feats.sample(frac=1.0, random_state=1).sort_values("n", kind="stable"), "scores")
    mlo.FeatureView("floats", source="scores", entity="customer_id", timestamp="ts",
                    transform=lambda df: pd.DataFrame({"score": df.score}))  # fmt: skip
    mlo.FeatureView("mixed", source="scores", entity="customer_id", timestamp="ts",
                    transform=lambda df: pd.DataFrame({"n": df.n, "tag": df.tag, "s2": df.score * 2}))  # fmt: skip
    ents = pd.DataFrame(ents).sample(frac=1.0, random_state=2)
    ents.loc[ents.index[:3], "event_time"] = pd.NaT  # no time: nothing matches
    ents.loc[ents.index[3:6], "customer_id"] = 999  # an entity the views do not know
    tf = _both(monkeypatch, tmp_path, ents, ["floats", "mixed"], timestamp="event_time")
    assert (tf.score == tf.label).mean() < 0.75  # never the future
    assert (tf.n.dropna() == 2).all()  # the later row of each tie
    assert tf.score.isna().sum() > tf.n.isna().sum()  # NaN kept apart from no match in the mixed view


@pytest.mark.parametrize("seed", [0, 1])
def test_random_frames_with_text_keys_and_time_zones(sqlite_ws, monkeypatch, tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    keys = np.array([f"k{i}" for i in range(60)], dtype=object)
    feats = pd.DataFrame(
        {
            "k": keys[rng.integers(0, 60, n)],
            "ts": pd.Timestamp("2024-01-01", tz="Europe/Paris")
            + pd.to_timedelta(rng.integers(0, 500, n), unit="h"),
            "x": rng.normal(size=n),
            "flag": rng.random(n) > 0.5,
        }
    )
    mlo.snapshot(feats, "f")
    mlo.FeatureView("fx", source="f", entity="k", timestamp="ts", transform=lambda df: df[["x", "flag"]])
    ents = pd.DataFrame(
        {
            "k": keys[rng.integers(0, 70, 5000) % 60],
            "ts": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 520, 5000), unit="h"),
        }
    )
    tf = _both(monkeypatch, tmp_path, ents, ["fx"])
    assert tf.x.notna().mean() > 0.5


def test_over_the_budget_bad_keys_and_aggregates_say_what_to_fix(sqlite_ws, monkeypatch):
    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts",
                    transform=lambda df: df[["amount"]])  # fmt: skip
    mlo.FeatureView("sums", source="transactions", entity="customer_id", timestamp="ts",
                    aggregations=[mlo.features.agg("amount", "sum", window="7d")])  # fmt: skip
    monkeypatch.setenv("MLO_FEATURE_VIEW_MB", "0")
    ents = pd.DataFrame({"customer_id": ["a"], "ts": pd.to_datetime(["2024-03-01"])})
    with pytest.raises(
        InvalidInput, match="entities' 'customer_id' holds text and the feature view spend@1's"
    ):
        mlo.features.training_frame(ents, ["spend"], snapshot=None)
    ents["customer_id"] = [1]
    with pytest.raises(
        InvalidInput, match="over the memory budget of 0 MB.*raise memory_limit= or MLO_FEATURE"
    ):
        mlo.features.training_frame(ents, ["sums"], snapshot=None)
    many = pd.DataFrame({"customer_id": np.arange(200_000) % 20 + 1, "ts": pd.Timestamp("2024-03-01")})
    with pytest.raises(InvalidInput, match="needs more memory than DuckDB was given: raise memory_limit="):
        mlo.features.training_frame(many, ["spend"], snapshot=None, memory_limit="1MB")
    monkeypatch.setenv("MLO_FEATURE_VIEW_MB", "lots")
    with pytest.raises(InvalidInput, match="MLO_FEATURE_VIEW_MB takes a number of MB"):
        mlo.features.training_frame(ents, ["spend"], snapshot=None)
    monkeypatch.delenv("MLO_FEATURE_VIEW_MB")
    monkeypatch.setenv("MLO_FEATURE_CACHE_MB", "lots")
    with pytest.raises(InvalidInput, match="MLO_FEATURE_CACHE_MB takes a number of MB, got 'lots'"):
        mlo.features.training_frame(ents, ["spend"], snapshot=None)
    monkeypatch.delenv("MLO_FEATURE_CACHE_MB")
    # the budget follows memory_limit: a view of ~20 KB over a 1 KB limit goes to DuckDB
    assert isinstance(Joiner(_selection(["spend"]), "1KB").parts[0][2], int)
    assert not isinstance(Joiner(_selection(["spend"]), "1GB").parts[0][2], int)


CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import mlo

    ents, small, out = sys.argv[1:4]


    def peak():  # this process's own high-water mark
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


    os.environ["MLO_FEATURE_VIEW_MB"] = "0"  # DuckDB, Arrow and the Parquet writer warmed up on a small view
    mlo.features.training_frame(small, ["small"], to=out + ".warm", snapshot=None, memory_limit="48MB")
    del os.environ["MLO_FEATURE_VIEW_MB"]
    before = peak()
    t0 = time.perf_counter()
    mlo.features.training_frame(ents, ["big"], to=out, snapshot=None, memory_limit="48MB")
    print(json.dumps({"before": before, "after": peak(), "seconds": time.perf_counter() - t0}))
    """
)


def test_a_view_several_times_the_memory_limit_is_joined_out_of_core(sqlite_ws, tmp_path):
    n, ids = 6_000_000, 200_000
    rng = np.random.default_rng(0)
    feats = pd.DataFrame(
        {
            "customer_id": rng.integers(0, ids, n),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"),
            "a": rng.random(n),
            "b": rng.random(n),
        }
    )
    mlo.snapshot(feats, "events")
    view = mlo.FeatureView("big", source="events", entity="customer_id", timestamp="ts",
                           transform=lambda df: df[["a", "b"]])  # fmt: skip
    path = feature_file(view)
    mlo.snapshot(feats.head(1000), "few")
    mlo.FeatureView("small", source="few", entity="customer_id", timestamp="ts",
                    transform=lambda df: df[["a", "b"]])  # fmt: skip
    del feats
    ents = pd.DataFrame(
        {
            "customer_id": rng.integers(0, ids + 100, 300_000),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**8, 300_000), unit="s"),
        }
    )
    ents.to_parquet(tmp_path / "ents.parquet", index=False)
    ents.head(1000).to_parquet(tmp_path / "small.parquet", index=False)
    env = {**os.environ, "MLO_DUCKDB_THREADS": "1"}
    env.pop("MLO_FEATURE_VIEW_MB", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *(str(tmp_path / f) for f in ("ents.parquet", "small.parquet", "out.parquet"))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    view_bytes = pq.read_metadata(path).num_rows * 4 * 8  # entity, time, a, b: 8 bytes each
    grew = figures["after"] - figures["before"]
    assert view_bytes > 3.5 * 48 * 2**20  # several times the memory limit
    assert grew < view_bytes / 1.5, (grew, view_bytes)  # it never held the view (in memory: +340 MB)
    print(f"peak RSS grew {grew / 2**20:.0f} MB for a {view_bytes / 2**20:.0f} MB view", figures)
    got = pd.read_parquet(tmp_path / "out.parquet")
    sample = ents.iloc[:5000]  # in the entities' order, and as the in-memory search finds them
    pd.testing.assert_frame_equal(
        got.iloc[:5000], mlo.features.training_frame(sample, ["big"], snapshot=None)
    )
