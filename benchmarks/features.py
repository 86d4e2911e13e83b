"""Point-in-time training frames and online lookups of mlo's feature views, side by side with pandas.

1. Training frame: N entity rows (default 10,000,000) joined with 20 features from two views of ten float
   features each, one million feature rows per view over 100,000 entities. mlo: ``mlo.features.training_frame``
   (a binary search per entity row over each view's feature rows, kept sorted by entity and time in Parquet;
   ``snapshot=None``, so the join alone is timed; the first call, which computes the views' Parquet files, is
   timed apart). Baseline: pandas ``merge_asof`` (sort by time, then one ``merge_asof(..., by=entity)`` per
   view), the usual way to do it in a notebook. Both results are compared value for value on a sample of rows.
   Feast's local offline store (``get_historical_features`` over the same Parquet files, ``offline_store: file``)
   runs on the same data when a Python with ``feast`` is given (``MLO_ANCHOR_PYTHON`` or ``--feast-python``;
   Feast is never a dependency of mlo: install it into a throwaway virtual environment outside the repository);
   it runs at ``--feast-rows`` entity rows, with mlo and pandas timed again at that size.
2. Out of core: the same training frame from entities in a Parquet file, streamed into a Parquet file
   (``to=path``, ``memory_limit``) in a child process, against the in-memory DataFrame in another: the peak
   resident memory of each (``ru_maxrss``).
3. A view larger than memory: ``--view-rows`` (default 20,000,000) feature rows of four floats joined with
   ``--big-rows`` entity rows from a Parquet file within ``--big-limit`` (default 256MB), where mlo joins by
   DuckDB's ASOF JOIN out of core; against pandas ``merge_asof`` (the view and the entities in memory) and mlo's
   in-memory search (its budget raised), each in a fresh process: time, peak memory, values compared.
4. Aggregates over time: a view of four windowed aggregates (sum, count and mean over 7 days, max over 30 days)
   at ``--agg-rows`` entity rows, against pandas (entity rows interleaved with the events, then
   ``groupby(...).rolling("7D")`` per entity), values compared.
5. Online lookup inside ``mlo serve``: p50/p90 of single-row ``/predict`` requests by entity id for a model whose
   signature names a feature view, against the same model served without features (its inputs sent in the
   request): the difference is what the lookup adds.

Run from the repository root:

    .venv/bin/python benchmarks/features.py                # 10M entity rows, a few minutes on 2 cores
    .venv/bin/python benchmarks/features.py --rows 1000000 # smaller
    MLO_ANCHOR_PYTHON=/path/to/feast-venv/bin/python .venv/bin/python benchmarks/features.py
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

FEATURE_ROWS = 1_000_000
ENTITIES = 100_000
PER_VIEW = 10


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_source(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {
        "customer_id": rng.integers(0, ENTITIES, FEATURE_ROWS).astype("int64"),
        "ts": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, FEATURE_ROWS), unit="s"),
    }
    for i in range(PER_VIEW):
        data[f"x{i}"] = rng.normal(size=FEATURE_ROWS)
    return pd.DataFrame(data)


def transform_a(df):
    return pd.DataFrame({f"a{i}": df[f"x{i}"] * 2.0 for i in range(10)})


def transform_b(df):
    return pd.DataFrame({f"b{i}": df[f"x{i}"] + 1.0 for i in range(10)})


def entities(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, ENTITIES, rows).astype("int64"),
            "ts": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 400 * 24 * 3600, rows), unit="s"),
        }
    )


def views():
    import mlo

    src_a, src_b = make_source(1), make_source(2)
    mlo.snapshot(src_a, "source_a", profile=False)
    mlo.snapshot(src_b, "source_b", profile=False)
    va = mlo.FeatureView(
        "view_a", source="source_a", entity="customer_id", timestamp="ts", transform=transform_a
    )
    vb = mlo.FeatureView(
        "view_b", source="source_b", entity="customer_id", timestamp="ts", transform=transform_b
    )
    t0 = time.perf_counter()
    mlo.features.training_frame(entities(1000), [va, vb], snapshot=None)  # computes the views' Parquet files
    return src_a, src_b, va, vb, time.perf_counter() - t0


def bench_training_frame(rows: int, made) -> dict:
    import mlo

    src_a, src_b, va, vb, first = made
    ents = entities(rows)

    from mlo.features.offline import recent

    recent.clear()  # cold: each view's Parquet file read
    t0 = time.perf_counter()
    ours = mlo.features.training_frame(ents, [va, vb], snapshot=None)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()  # warm: the views kept from the call before, as in a notebook's second call
    ours = mlo.features.training_frame(ents, [va, vb], snapshot=None)
    t_mlo = time.perf_counter() - t0

    feats_a = pd.concat([src_a[["customer_id", "ts"]], transform_a(src_a)], axis=1)
    feats_b = pd.concat([src_b[["customer_id", "ts"]], transform_b(src_b)], axis=1)
    t0 = (
        time.perf_counter()
    )  # from the computed features, as mlo starts from its Parquet files: sorts included
    feats_a, feats_b = feats_a.sort_values("ts"), feats_b.sort_values("ts")
    left = ents.reset_index().sort_values("ts")
    theirs = pd.merge_asof(left, feats_a, on="ts", by="customer_id")
    theirs = pd.merge_asof(theirs, feats_b, on="ts", by="customer_id")
    theirs = theirs.set_index("index").sort_index()
    t_pandas = time.perf_counter() - t0

    check = np.random.default_rng(4).choice(rows, min(rows, 100_000), replace=False)
    cols = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    np.testing.assert_array_equal(ours[cols].to_numpy()[check], theirs[cols].to_numpy()[check])
    return {
        "rows": rows,
        "features": 20,
        "first_call_s": first,
        "mlo_s": t_mlo,
        "mlo_cold_s": t_cold,
        "pandas_s": t_pandas,
        "mlo": ours,
    }


OUT_OF_CORE_CHILD = r"""
import json, sys, time
import mlo
ents, out, mode, limit = sys.argv[1:5]


def peak_rss():  # this process's own high-water mark (ru_maxrss would count the parent it was forked from)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


t0 = time.perf_counter()
if mode == "file":
    mlo.features.training_frame(ents, ["view_a", "view_b"], to=out, snapshot=None, memory_limit=limit)
else:
    df = mlo.features.training_frame(ents, ["view_a", "view_b"], snapshot=None)
took = time.perf_counter() - t0
print(json.dumps({"seconds": took, "peak_rss": peak_rss()}))
"""


def bench_out_of_core(rows: int, limit: str) -> dict:
    """Peak memory of a training frame streamed into a file, against the same frame returned in memory."""
    import subprocess

    import duckdb

    folder = tempfile.mkdtemp(prefix="mlo-ooc-")
    ents = os.path.join(folder, "entities.parquet")
    con = duckdb.connect()  # written by DuckDB: no process here holds the entities in memory
    con.execute(
        f"COPY (SELECT (hash(i) % {ENTITIES})::BIGINT AS customer_id, TIMESTAMP '2024-01-01' + "
        f"to_seconds((hash(i * 7) % {400 * 24 * 3600})::BIGINT) AS ts, i AS label FROM range({rows}) t(i)) "
        f"TO '{ents}' (FORMAT parquet)"
    )
    con.close()
    out = {"rows": rows, "memory_limit": limit, "frame_bytes": rows * (3 + 20) * 8}
    for mode in ("file", "memory"):
        proc = subprocess.run(
            [sys.executable, "-c", OUT_OF_CORE_CHILD, ents, os.path.join(folder, "out.parquet"), mode, limit],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if proc.returncode != 0:
            out[mode] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
        else:
            out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


BIG_VIEW_CHILD = r"""
import json, os, sys, time
ents, view_file, out, mode, limit = sys.argv[1:6]


def peak_rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


t0 = time.perf_counter()
if mode == "pandas":  # the view's rows and the entities in memory, merge_asof, back in the entities' order
    import pandas as pd

    e = pd.read_parquet(ents)
    e["row"] = range(len(e))
    f = pd.read_parquet(view_file).sort_values("ts", kind="stable")
    j = pd.merge_asof(e.sort_values("ts", kind="stable"), f, on="ts", by="customer_id", direction="backward")
    j.sort_values("row").drop(columns="row").to_parquet(out, index=False)
else:
    import mlo

    if mode == "memory":  # a budget over the view: the in-memory search, for reference
        os.environ["MLO_FEATURE_VIEW_MB"] = "100000"
    mlo.features.training_frame(ents, ["big"], to=out, snapshot=None, memory_limit=limit)
took = time.perf_counter() - t0
figures = {"seconds": took, "peak_rss": peak_rss()}
if mode != "pandas":  # the join mlo took
    from mlo.features import asof

    big = asof.view_bytes(view_file, ["g0", "g1", "g2", "g3"]) > asof.budget(limit)
    figures["path"] = "DuckDB ASOF" if big else "in-memory"
print(json.dumps(figures))
"""


def bench_big_view(view_rows: int, rows: int, limit: str) -> dict:
    """A view larger than memory: ``view_rows`` feature rows of four floats over ``view_rows / 20`` entities,
    joined with ``rows`` entity rows from a Parquet file within ``limit`` (DuckDB's ASOF JOIN), against pandas
    ``merge_asof`` (which holds the view and the entities in memory) and mlo's in-memory search, each in a fresh
    process: time and peak memory; the three results compared value for value."""
    import subprocess

    import pyarrow.parquet as pq

    import mlo
    from mlo.features.rows import feature_file

    ids = max(view_rows // 20, 1)
    rng = np.random.default_rng(21)
    source = pd.DataFrame(
        {
            "customer_id": rng.integers(0, ids, view_rows).astype("int64"),
            "ts": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 365 * 86400, view_rows), unit="s"),
            **{f"g{i}": rng.random(view_rows) for i in range(4)},
        }
    )
    t0 = time.perf_counter()
    mlo.snapshot(source, "big_events")
    del source
    view = mlo.FeatureView(
        "big", source="big_events", entity="customer_id", timestamp="ts",
        transform=lambda df: df[["g0", "g1", "g2", "g3"]],
    )  # fmt: skip
    path = str(feature_file(view))
    made = time.perf_counter() - t0
    folder = tempfile.mkdtemp(prefix="mlo-big-")
    ents = os.path.join(folder, "entities.parquet")
    pd.DataFrame(
        {
            "customer_id": rng.integers(0, ids, rows).astype("int64"),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 400 * 86400, rows), unit="s"),
            "label": rng.integers(0, 2, rows),
        }
    ).to_parquet(ents, index=False)
    view_bytes = pq.read_metadata(path).num_rows * 6 * 8
    out = {
        "view_rows": view_rows,
        "rows": rows,
        "memory_limit": limit,
        "view_bytes": view_bytes,
        "made_s": made,
    }
    env = {k: v for k, v in os.environ.items() if k != "MLO_FEATURE_VIEW_MB"}
    results = {}
    for mode in ("duckdb", "memory", "pandas"):
        target = os.path.join(folder, f"{mode}.parquet")
        proc = subprocess.run(
            [sys.executable, "-c", BIG_VIEW_CHILD, ents, path, target, mode, limit],
            capture_output=True, text=True, timeout=7200, env=env,
        )  # fmt: skip
        if proc.returncode != 0:
            out[mode] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
            continue
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        results[mode] = pq.read_table(target, columns=["g0", "g1", "g2", "g3"]).to_pandas()
    if "duckdb" in results:
        out["same_values"] = {
            m: bool(results["duckdb"].equals(results[m])) for m in ("memory", "pandas") if m in results
        }
    out["load"] = load()
    return out


def print_peaks(figures: dict, modes: list[tuple[str, str]]) -> None:
    """One line per child process: its peak memory and time (and the join it took), or why it failed."""
    for mode, label in modes:
        got = figures[mode]
        if "error" in got:
            print(f"  {label:36s} failed: {got['error']}")
            continue
        path = f"   ({got['path']} join)" if "path" in got else ""
        print(f"  {label:36s} peak RSS {got['peak_rss'] / 2**20:7.0f} MB   {got['seconds']:7.2f} s{path}")


def bench_aggregates(rows: int) -> dict:
    import mlo

    rng = np.random.default_rng(11)
    n = FEATURE_ROWS
    events = pd.DataFrame(
        {
            "customer_id": rng.integers(0, ENTITIES, n).astype("int64"),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, n), unit="s"),
            "amount": rng.gamma(2.0, 30.0, n).round(2),
        }
    )
    mlo.snapshot(events, "events", profile=False)
    agg = mlo.features.agg
    view = mlo.FeatureView(
        "windows", source="events", entity="customer_id", timestamp="ts",
        aggregations=[agg("amount", "sum", window="7d"), agg("amount", "count", window="7d"),
                      agg("amount", "mean", window="7d"), agg("amount", "max", window="30d")],
    )  # fmt: skip
    ents = entities(rows)
    mlo.features.training_frame(ents.head(1000), [view], snapshot=None)  # the view's Parquet file
    t0 = time.perf_counter()
    ours = mlo.features.training_frame(ents, [view], snapshot=None)
    t_mlo = time.perf_counter() - t0

    t0 = time.perf_counter()  # pandas: entity rows among the events, a time-based rolling window per entity
    both = pd.concat(
        [events.assign(row=-1, kind=0), ents.assign(amount=np.nan, row=np.arange(rows), kind=1)],
        ignore_index=True,
    ).sort_values(["customer_id", "ts", "kind"], kind="stable")  # at a tie, the events come first: (t - w, t]
    rolled = both.groupby("customer_id", sort=False).rolling("7D", on="ts", closed="right")["amount"]
    week = pd.DataFrame({"sum": rolled.sum().to_numpy(), "count": rolled.count().to_numpy(),
                         "mean": rolled.mean().to_numpy()})  # fmt: skip
    month = both.groupby("customer_id", sort=False).rolling("30D", on="ts", closed="right")["amount"].max()
    week["max"] = month.to_numpy()
    keep = (both["kind"] == 1).to_numpy()
    theirs = week[keep].set_axis(both["row"].to_numpy()[keep]).sort_index()
    t_pandas = time.perf_counter() - t0

    np.testing.assert_allclose(
        ours["amount_sum_7d"].to_numpy(), theirs["sum"].fillna(0).to_numpy(), rtol=1e-9
    )
    np.testing.assert_array_equal(ours["amount_count_7d"].to_numpy(), theirs["count"].to_numpy())
    np.testing.assert_allclose(ours["amount_mean_7d"].to_numpy(), theirs["mean"].to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(ours["amount_max_30d"].to_numpy(), theirs["max"].to_numpy())
    return {"rows": rows, "aggregates": 4, "mlo_s": t_mlo, "pandas_s": t_pandas}


FEAST_CHILD = r"""
import json, sys, time
from datetime import timedelta
import pandas as pd
import feast
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

repo = sys.argv[1]
with open(repo + "/feature_store.yaml", "w") as f:
    f.write("project: bench\nregistry: registry.db\nprovider: local\n"
            "online_store:\n  type: sqlite\n  path: online.db\noffline_store:\n  type: file\n"
            "entity_key_serialization_version: 3\n")
store = FeatureStore(repo_path=repo)
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
views = [
    FeatureView(name=name, entities=[customer], ttl=timedelta(days=3650),
                schema=[Field(name=f"{p}{i}", dtype=Float64) for i in range(10)],
                source=FileSource(path=f"{repo}/{name}.parquet", timestamp_field="ts"))
    for name, p in (("view_a", "a"), ("view_b", "b"))
]
store.apply([customer, *views])
ents = pd.read_parquet(repo + "/entities.parquet")
features = [f"view_a:a{i}" for i in range(10)] + [f"view_b:b{i}" for i in range(10)]
t0 = time.perf_counter()
df = store.get_historical_features(entity_df=ents, features=features).to_df()
took = time.perf_counter() - t0
df.sort_values("row")[["row"] + [f.split(":")[1] for f in features]].to_parquet(repo + "/out.parquet")
print(json.dumps({"feast_s": took, "version": feast.__version__}))
"""


def bench_feast(python: str, rows: int, made) -> dict:
    import subprocess

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlo.features.offline import feature_file

    _, _, va, vb, _ = made
    small = bench_training_frame(rows, made)
    repo = tempfile.mkdtemp(prefix="feast-bench-")
    for view in (va, vb):
        table = pq.read_table(feature_file(view))
        ts = table.column("ts").cast(pa.timestamp("us", tz="UTC"))
        pq.write_table(
            table.set_column(table.schema.get_field_index("ts"), "ts", ts), f"{repo}/{view.name}.parquet"
        )
    ents = entities(rows)
    feast_ents = pd.DataFrame(
        {
            "customer_id": ents.customer_id,
            "event_timestamp": ents.ts.dt.tz_localize("UTC"),
            "row": np.arange(rows),
        }
    )
    feast_ents.to_parquet(f"{repo}/entities.parquet")
    proc = subprocess.run([python, "-c", FEAST_CHILD, repo], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        return {
            "rows": rows,
            "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed",
        }
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    theirs = pd.read_parquet(f"{repo}/out.parquet")
    cols = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    ours = small["mlo"][cols].to_numpy(dtype="float64")[theirs["row"].to_numpy()]
    same = bool(np.allclose(ours, theirs[cols].to_numpy(dtype="float64"), equal_nan=True))
    out["rows_returned"] = len(theirs)
    return {"rows": rows, "mlo_s": small["mlo_s"], "mlo_cold_s": small["mlo_cold_s"], "pandas_s": small["pandas_s"],
            **out, "same_values": same}  # fmt: skip


def _post(conn, body: bytes) -> float:
    t0 = time.perf_counter()
    conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200, resp.status
    return (time.perf_counter() - t0) * 1e3


def bench_lookup(requests: int) -> dict:
    from sklearn.linear_model import LinearRegression

    import mlo

    rng = np.random.default_rng(5)
    n = 50_000
    src = pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype="int64"),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="h"),
            "amount": rng.gamma(2.0, 30.0, n),
            "rate": rng.choice([0.9, 1.1], n),
        }
    )
    mlo.snapshot(src, "lookup_source", profile=False)
    view = mlo.FeatureView(
        "usd",
        source="lookup_source",
        entity="customer_id",
        timestamp="ts",
        transform=lambda df: pd.DataFrame(
            {"usd": df.amount * df.rate, "log_usd": np.log1p(df.amount * df.rate)}
        ),
        inputs=["amount", "rate"],
    )
    X = view.apply(src.head(1000))
    model = LinearRegression().fit(X, rng.normal(size=len(X)))
    mlo.register_model(model, "with_features", input_example=X.head(), features=["usd"])
    mlo.register_model(model, "plain", input_example=X.head())
    mlo.features.materialize(["usd"])
    out = {}
    ids = rng.integers(0, n, requests)
    for name, body_of in (
        ("with_features", lambda i: {"records": [{"customer_id": int(i)}]}),
        ("plain", lambda i: {"records": [X.iloc[int(i) % len(X)].to_dict()]}),
    ):
        with mlo.serve(f"{name}@latest", poll=0, log=True) as srv:
            parts = urlsplit(srv.url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            bodies = [json.dumps(body_of(i)).encode() for i in ids]
            for b in bodies[:100]:
                _post(conn, b)  # warm up
            lat = sorted(_post(conn, b) for b in bodies)
            conn.close()
        out[name] = {"p50_ms": statistics.median(lat), "p90_ms": lat[int(0.9 * len(lat))]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="entity rows of the training frame")
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests per server")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--feast-python",
        default=os.environ.get("MLO_ANCHOR_PYTHON"),
        help="a Python that imports feast: compare with its local offline store (default: MLO_ANCHOR_PYTHON)",
    )
    parser.add_argument(
        "--agg-rows", type=int, default=1_000_000, help="entity rows of the aggregates figure"
    )
    parser.add_argument(
        "--memory-limit", default="256MB", help="DuckDB's memory limit in the out-of-core run"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["feast", "out-of-core", "big-view", "aggregates", "lookup"]
    )
    parser.add_argument(
        "--view-rows", type=int, default=20_000_000, help="feature rows of the view larger than memory"
    )
    parser.add_argument(
        "--big-rows", type=int, default=2_000_000, help="entity rows joined with the view larger than memory"
    )
    parser.add_argument(
        "--big-limit", default="256MB", help="memory_limit of the join with the view larger than memory"
    )
    parser.add_argument(
        "--feast-rows", type=int, default=1_000_000, help="entity rows of the Feast comparison"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLO_HOME"] = os.path.join(home, ".mlo")
        os.chdir(home)
        import mlo

        mlo.init(home)
        print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores · {load()} at the start")
        made = views()
        tf = bench_training_frame(args.rows, made)
        tf.pop("mlo")
        print(
            f"\ntraining frame, {tf['rows']:,} entity rows × {tf['features']} features "
            f"(2 views × {FEATURE_ROWS:,} feature rows, {ENTITIES:,} entities)"
        )
        print(f"  mlo, views read from Parquet  {tf['mlo_cold_s']:8.2f} s")
        print(f"  mlo, views kept from a call   {tf['mlo_s']:8.2f} s")
        print(
            f"  pandas merge_asof             {tf['pandas_s']:8.2f} s   ({tf['pandas_s'] / tf['mlo_cold_s']:.1f}× mlo "
            f"cold, {tf['pandas_s'] / tf['mlo_s']:.1f}× warm)"
        )
        print(f"  first call (views' Parquet files made): {tf['first_call_s']:.2f} s")
        print(f"  {load()}")
        ooc = None
        if "out-of-core" not in args.skip:
            ooc = bench_out_of_core(args.rows, args.memory_limit)
            print(
                f"\nout of core: {ooc['rows']:,} entity rows from a Parquet file, a {ooc['frame_bytes'] / 2**30:.2f} GiB "
                f"frame, each way in a fresh process"
            )
            print_peaks(
                ooc, [("file", f"to=path, memory_limit={ooc['memory_limit']}"), ("memory", "in memory")]
            )
            print(f"  {load()}")
        big = None
        if "big-view" not in args.skip:
            big = bench_big_view(args.view_rows, args.big_rows, args.big_limit)
            print(
                f"\na view larger than memory: {big['view_rows']:,} feature rows × 4 features "
                f"({big['view_bytes'] / 2**20:,.0f} MB in memory), {big['rows']:,} entity rows, "
                f"each way in a fresh process (the view's Parquet file made first, in {big['made_s']:.0f} s)"
            )
            print_peaks(
                big,
                [
                    ("duckdb", f"mlo, memory_limit={big['memory_limit']}"),
                    ("memory", "mlo, budget raised"),
                    ("pandas", "pandas merge_asof"),
                ],
            )
            print(f"  same values as DuckDB's: {big.get('same_values')}")
            print(f"  {big['load']}")
        ag = None
        if "aggregates" not in args.skip:
            ag = bench_aggregates(args.agg_rows)
            print(
                f"\naggregates over time, {ag['rows']:,} entity rows × 4 windowed aggregates over {FEATURE_ROWS:,} events"
            )
            print(f"  mlo                      {ag['mlo_s']:8.2f} s")
            print(
                f"  pandas rolling windows   {ag['pandas_s']:8.2f} s   ({ag['pandas_s'] / ag['mlo_s']:.1f}× mlo)"
            )
            print(f"  {load()}")
        feast = None
        if args.feast_python and "feast" not in args.skip:
            feast = bench_feast(args.feast_python, args.feast_rows, made)
            print(f"\nthe same at {feast['rows']:,} entity rows, with Feast's local offline store")
            if "error" in feast:
                print(f"  Feast failed: {feast['error']}")
            else:
                print(
                    f"  mlo (views kept)         {feast['mlo_s']:8.2f} s   (read from Parquet: {feast['mlo_cold_s']:.2f} s)"
                )
                print(
                    f"  pandas merge_asof        {feast['pandas_s']:8.2f} s   ({feast['pandas_s'] / feast['mlo_s']:.1f}× mlo)"
                )
                print(
                    f"  Feast {feast['version']:<18s} {feast['feast_s']:8.2f} s   ({feast['feast_s'] / feast['mlo_s']:.1f}× mlo)"
                    f"; {feast['rows_returned']:,} rows returned, same values as mlo on those: {feast['same_values']}"
                )
        lk = None
        if "lookup" not in args.skip:
            lk = bench_lookup(args.requests)
            print(f"\nsingle-row /predict in mlo serve, {args.requests:,} requests, one keep-alive client")
            for name, label in (
                ("with_features", "by entity id (online lookup)"),
                ("plain", "inputs sent (no features)"),
            ):
                print(f"  {label:32s} p50 {lk[name]['p50_ms']:6.2f} ms   p90 {lk[name]['p90_ms']:6.2f} ms")
            print(f"  the lookup adds {lk['with_features']['p50_ms'] - lk['plain']['p50_ms']:.2f} ms at p50")
        print(f"\n{load()} at the end")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(
                    {"training_frame": tf, "out_of_core": ooc, "big_view": big, "aggregates": ag, "feast": feast, "lookup": lk},
                    f, indent=2, default=str,
                )  # fmt: skip


if __name__ == "__main__":
    main()
