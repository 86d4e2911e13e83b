"""What a first snapshot stores and what it costs: the Parquet layout chosen per column, snapshots written the
earlier way still load and dedupe, the sampled profile stays within its stated bound, and the extra memory stays
under half the frame."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlo
from mlo.data import codec
from mlo.data import profile as profile_module
from mlo.data import snapshots as snapshots_module
from mlo.data.digest import digest, float_sum
from mlo.data.profile import profile_frame


def encodings(ws, snap) -> dict[str, set[str]]:
    meta = pq.ParquetFile(ws.blobs.verify(snap.blob)).metadata
    rg = meta.row_group(0)
    return {rg.column(i).path_in_schema: set(rg.column(i).encodings) for i in range(rg.num_columns)}


def test_dictionaries_where_values_repeat_deltas_for_small_integers_and_lz4_where_it_halves(sqlite_ws):
    n = 100_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "id": pd.array([f"user-{i}" for i in range(n)], dtype="str"),  # LZ4 halves ids with a prefix
            "city": pd.array([f"city-{i % 40}" for i in range(n)], dtype="str"),
            "x": rng.random(n),  # random floats: LZ4 saves ~12%, not worth its time
            "price": np.round(rng.random(n) * 100, 2),  # rounded amounts: LZ4 saves ~40%, not worth it either
            "level": np.cumsum(rng.integers(0, 3, n)) / 4.0,  # smooth floats compress best after the split
            "qty": rng.integers(0, 10, n),  # small integers: deltas of a few bits, cheaper than LZ4
            "key": rng.integers(-(2**62), 2**62, n),  # random 64-bit keys do not shrink
            "seq": np.arange(n) * 3,  # sorted integers: deltas of nothing
        }
    )
    df.loc[7, "price"] = np.nan  # a NaN is a value, not a null: the column stays required
    df["opt"] = pd.array([None if i % 9 == 0 else i for i in range(n)], dtype="Int64")  # nulls: nullable
    snap = mlo.snapshot(df, "layout")
    enc = encodings(sqlite_ws, snap)
    assert "RLE_DICTIONARY" not in enc["id"] and "RLE_DICTIONARY" in enc["city"]
    assert "BYTE_STREAM_SPLIT" in enc["level"]
    assert "BYTE_STREAM_SPLIT" not in enc["x"] and "BYTE_STREAM_SPLIT" not in enc["price"]
    assert "DELTA_BINARY_PACKED" in enc["qty"] and "DELTA_BINARY_PACKED" in enc["seq"]
    assert "DELTA_BINARY_PACKED" not in enc["key"]
    parquet = pq.ParquetFile(sqlite_ws.blobs.verify(snap.blob))
    rg = parquet.metadata.row_group(0)
    codecs = {rg.column(i).path_in_schema: rg.column(i).compression for i in range(rg.num_columns)}
    # pyarrow names LZ4_RAW "LZ4"
    assert codecs == {
        "id": "LZ4", "city": "LZ4", "x": "UNCOMPRESSED", "price": "UNCOMPRESSED", "level": "LZ4",
        "qty": "UNCOMPRESSED", "key": "UNCOMPRESSED", "seq": "UNCOMPRESSED",
        "opt": "UNCOMPRESSED",
    }  # fmt: skip
    schema = parquet.schema_arrow
    assert [f.name for f in schema if f.nullable] == ["opt"]
    assert snap.size < 0.5 * snap.nbytes
    pd.testing.assert_frame_equal(snap.load(), df)


def test_a_table_comes_back_with_nullable_fields_though_stored_required(sqlite_ws):
    table = pa.table({"a": np.arange(5000), "b": pa.array([None, "x"] * 2500), "c": np.random.rand(5000)})
    snap = mlo.snapshot(table, "required")
    assert not pq.ParquetFile(sqlite_ws.blobs.verify(snap.blob)).schema_arrow.field("a").nullable
    back = snap.load()
    assert back.equals(table) and back.schema.equals(table.schema, check_metadata=True)
    assert all(f.nullable for f in back.schema)


def test_a_snapshot_written_the_earlier_way_loads_verifies_and_dedupes(sqlite_ws, monkeypatch):
    """Snapshots stored before LZ4 (zstd, a dictionary for every string column, page statistics) stay readable,
    and the same data snapshotted again is the same version: identity is the data's digest, not the bytes."""
    df = pd.DataFrame({"s": pd.array([f"v{i}" for i in range(5000)], dtype="str"), "f": np.arange(5000.0)})

    def earlier(table):
        return {"compression": "zstd", "use_dictionary": ["s"], "use_byte_stream_split": ["f"]}

    with monkeypatch.context() as m:
        m.setattr(snapshots_module, "_parquet_options", earlier)
        old = mlo.snapshot(df, "kept")
    meta = pq.ParquetFile(sqlite_ws.blobs.verify(old.blob)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    pd.testing.assert_frame_equal(mlo.load_snapshot("kept@1"), df)
    again = mlo.snapshot(df.copy(), "kept")
    assert (again.version, again.blob, again.digest) == (1, old.blob, old.digest)
    # the same data under another name finds the stored blob too
    assert mlo.snapshot(df.copy(), "elsewhere").blob == old.blob


def test_the_sampled_profile_is_exact_where_it_says_and_within_its_bound_elsewhere(monkeypatch):
    monkeypatch.setattr(profile_module, "SAMPLE_ROWS", 20_000)
    monkeypatch.setattr(profile_module, "CHUNK_ROWS", 7_777)  # moments merged over many uneven stretches
    rng = np.random.default_rng(5)
    n = 400_000
    x = rng.lognormal(size=n)
    x[::101] = np.nan
    x[5] = np.inf
    df = pd.DataFrame(
        {"x": x, "i": rng.integers(0, 20, n), "t": pd.date_range("2024", periods=n, freq="min")}
    )
    prof = {p["name"]: p for p in profile_frame(df, seed=3)}
    p = prof["x"]
    finite = x[np.isfinite(x)]
    assert p["sampled"] < 20_000 and p["nulls"] == int(np.isnan(x).sum()) and p["count"] == n
    assert (p["min"], p["max"]) == (finite.min(), finite.max())
    assert p["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert p["std"] == pytest.approx(finite.std(ddof=1), rel=1e-9)
    counts = np.asarray(p["histogram"]["counts"])
    assert counts.sum() == finite.size  # scaled to the exact number of finite values
    exact, _ = np.histogram(finite, bins=len(counts), range=(p["min"], p["max"]))
    # the bound of the docs for a sample of m rows: a bin's share within 2 * sqrt(ln(2/0.001) / 2m)
    bound = 2 * np.sqrt(np.log(2 / 0.001) / (2 * p["sampled"]))
    assert np.abs(counts / counts.sum() - exact / exact.sum()).max() <= bound
    q = np.asarray(p["quantiles"]["values"])
    ranks = np.searchsorted(np.sort(finite), q) / finite.size
    assert np.abs(ranks - np.asarray(p["quantiles"]["q"])).max() <= bound / 2 + 1 / finite.size
    t = prof["t"]
    assert (t["min_iso"], t["max_iso"]) == (df.t.min().isoformat(), df.t.max().isoformat())
    top = dict(prof["i"]["top"])
    assert prof["i"]["distinct"] == 20 and sorted(top) == list(range(20))
    exact_counts = np.bincount(df.i, minlength=20)
    assert max(abs(top[k] - exact_counts[k]) for k in top) / n <= bound / 2


def test_an_all_finite_float_column_gets_the_same_moments_the_fast_way(monkeypatch):
    """Large float columns without NaN or infinity skip the null mask and the stretch-wise moments; the figures
    agree with the stretch-wise ones (and numpy's) to rounding, and one NaN or infinity takes the general way."""
    monkeypatch.setattr(profile_module, "SAMPLE_ROWS", 20_000)
    rng = np.random.default_rng(9)
    n = 300_000
    far = 1.7e15 + rng.normal(scale=1e6, size=n)  # a large mean and a small spread: cancellation would show
    small = rng.random(n)
    broken = small.copy()
    broken[123] = np.inf
    df = pd.DataFrame({"far": far, "small": small, "broken": broken, "ints": rng.integers(0, 10**6, n)})
    prof = {p["name"]: p for p in profile_frame(df, seed=1)}
    for name in ("far", "small"):
        x, p = df[name].to_numpy(), prof[name]
        assert p["nulls"] == 0 and p["count"] == n and (p["min"], p["max"]) == (x.min(), x.max())
        assert p["mean"] == pytest.approx(x.mean(), rel=1e-14)
        assert p["std"] == pytest.approx(x.std(ddof=1), rel=1e-9)
    finite = broken[np.isfinite(broken)]
    p = prof["broken"]
    assert p["max"] == finite.max() and p["std"] == pytest.approx(finite.std(ddof=1), rel=1e-9)
    assert prof["ints"]["mean"] == pytest.approx(df.ints.mean(), rel=1e-14)


@pytest.mark.parametrize("case", ["random", "far", "nan", "inf", "constant", "two", "empty"])
def test_the_one_pass_moments_equal_numpy_and_step_aside_for_nan_and_infinity(monkeypatch, case):
    monkeypatch.setattr(profile_module, "_MOMENT_ROWS", 1000)  # many stretches, the last one short
    rng = np.random.default_rng(3)
    x = {
        "random": rng.normal(size=12_345),
        "far": 1.7e15 + rng.normal(scale=1e6, size=12_345),  # cancellation would show in a sum of squares
        "nan": np.where(np.arange(12_345) == 12_000, np.nan, rng.random(12_345)),
        "inf": np.where(np.arange(12_345) == 7, np.inf, rng.random(12_345)),
        "constant": np.full(5000, 2.5),
        "two": np.array([1.0, 4.0]),
        "empty": np.array([]),
    }[case]
    got = profile_module._all_finite_moments(pd.Series(x))
    if case in ("nan", "inf", "empty"):
        assert got is None  # the general way takes them (NaN as a null, infinity left out of the moments)
        return
    n, lo, hi, mean, std = got
    assert (n, lo, hi) == (x.size, x.min(), x.max())
    assert mean == pytest.approx(x.mean(), rel=1e-14) and std == pytest.approx(x.std(ddof=1), rel=1e-10)
    # the digest's sum gives the very same figures, and the sampled rows come along in the same pass
    rows = np.sort(rng.choice(x.size, size=x.size // 3, replace=False))
    sample = np.full(rows.size, np.nan)
    assert profile_module._all_finite_moments(pd.Series(x), float_sum(x), rows, sample) == got
    assert np.array_equal(sample, x[rows])


def test_the_profile_from_the_digests_sums_is_the_profile_without_them(monkeypatch):
    monkeypatch.setattr(profile_module, "SAMPLE_ROWS", 20_000)
    rng = np.random.default_rng(4)
    n = 100_000
    df = pd.DataFrame({"a": rng.random(n), "b": rng.normal(size=n), "i": rng.integers(0, 9, n)})
    df.loc[3, "b"] = np.nan
    sums: dict[str, float] = {}
    digest(codec.encode_frame(df), sums)
    assert set(sums) == {"a", "b"}
    known = {0: sums["a"], 1: sums["b"]}
    assert profile_frame(df, seed=2, sums=known) == profile_frame(df, seed=2)


def test_a_small_frame_is_profiled_exactly():
    df = pd.DataFrame({"x": np.random.default_rng(2).normal(size=5000)})
    (p,) = profile_frame(df)
    assert "sampled" not in p and p["distinct_exact"]
    counts, _ = np.histogram(df.x, bins=len(p["histogram"]["counts"]), range=(df.x.min(), df.x.max()))
    assert p["histogram"]["counts"] == counts.tolist()
    assert p["mean"] == df.x.mean() and p["std"] == df.x.std()


def test_an_arrow_table_is_profiled_a_column_at_a_time(sqlite_ws):
    table = pa.table({"a": np.arange(3000.0), "b": pa.array([f"k{i % 7}" for i in range(3000)])})
    snap = mlo.snapshot(table, "arrow")
    assert snap.profile == json.loads(
        json.dumps(profile_frame(table.to_pandas(), seed=int(snap.digest[:8], 16)))
    )


PEAK = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, pandas as pd
    import mlo

    mlo.init(sys.argv[1])
    rng = np.random.default_rng(0)
    n = 1_500_000
    df = pd.DataFrame({f"x{i}": rng.random(n) for i in range(8)})
    df["n"] = rng.integers(0, 10**6, n)
    df["s"] = pd.array([f"c{i % 5000}" for i in range(n)], dtype="str")
    size = int(df.memory_usage(index=True, deep=True).sum())
    mlo.snapshot(df.head(1000), "warm")

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    base = rss()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # the high-water mark starts again from here
    mlo.snapshot(df, "big")
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    print(json.dumps({"extra": hwm - base, "size": size}))
    """
)


def test_the_first_snapshot_needs_less_than_half_the_frame_in_extra_memory(tmp_path):
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pytest.skip("the kernel's memory high-water mark cannot be reset here")
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(tmp_path)], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["size"] > 100e6
    # the target is 0.5x; the margin covers allocator slack on a busy machine
    assert result["extra"] <= 0.6 * result["size"], result


def test_finite_values_the_sample_missed_are_still_counted(monkeypatch):
    monkeypatch.setattr(profile_module, "SAMPLE_ROWS", 500)
    x = np.full(100_000, np.inf)
    x[[7, 500, 99_999]] = [1.0, 2.0, 3.0]
    (p,) = profile_frame(pd.DataFrame({"x": x}))
    assert (p["min"], p["max"], p["mean"]) == (1.0, 3.0, 2.0)
    assert sum(p["histogram"]["counts"]) == 3 and p["histogram"]["counts"][0] == 1
