"""Exactness of data digests and of the round trip through Parquet: every change shows, nothing is lost."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlo
from mlo.data import codec
from mlo.data.digest import digest, float_sum


def d(obj) -> str:
    if isinstance(obj, pd.DataFrame):
        return digest(codec.encode_frame(obj))
    if isinstance(obj, pa.Table):
        return digest(codec.encode_table(obj))
    return digest(codec.encode_array(obj))


def rich_frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "f64": rng.normal(size=n),
            "f32": rng.normal(size=n).astype("float32"),
            "i64": rng.integers(-5, 5, n),
            "u8": rng.integers(0, 255, n).astype("uint8"),
            "flag": rng.random(n) > 0.5,
            "text": pd.Series([f"s{i % 7}" if i % 5 else None for i in range(n)]),
            "obj_text": pd.Series(
                [f"o{i}" if i % 4 else (None if i % 8 else np.nan) for i in range(n)], dtype=object
            ),
            "cat": pd.Categorical(
                [["lo", "mid", "hi"][i % 3] if i % 6 else None for i in range(n)],
                categories=["hi", "mid", "lo", "unused"],
                ordered=True,
            ),
            "when": pd.date_range("2024-03-30", periods=n, freq="7h", tz="Europe/Paris"),
            "naive": pd.date_range("2024-01-01", periods=n, freq="D"),
            "span": pd.to_timedelta(np.arange(n), unit="s"),
            "Int": pd.array([i if i % 3 else None for i in range(n)], dtype="Int64"),
            "Flt": pd.array([i / 2 if i % 4 else None for i in range(n)], dtype="Float64"),
            "Bool": pd.array([bool(i % 2) if i % 5 else None for i in range(n)], dtype="boolean"),
            "nan_float": np.where(np.arange(n) % 9 == 0, np.nan, np.arange(n, dtype=float)),
        }
    )


def roundtrip(obj):
    snap = mlo.snapshot(obj, "rt")
    return mlo.load_snapshot(snap.ref)


# -- the digest sees every change -------------------------------------------------------------------------------------
def test_one_cell_in_the_last_row_changes_the_digest():
    df = pd.DataFrame({"a": np.arange(100_000, dtype=float), "b": ["x"] * 100_000})
    base = d(df)
    for col, value in (("a", -1.0), ("b", "y")):
        other = df.copy()
        other.loc[len(df) - 1, col] = value
        assert d(other) != base


@pytest.mark.parametrize("col", list(rich_frame().columns))
def test_a_change_in_any_column_type_changes_the_digest(col):
    df = rich_frame()
    base = d(df)
    other = df.copy()
    other[col] = (
        other[col].iloc[::-1].to_numpy() if col != "cat" else other[col].iloc[::-1].reset_index(drop=True)
    )
    assert d(other) != base


def test_column_order_names_dtypes_and_index_all_count():
    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    base = d(df)
    assert d(df[["b", "a"]]) != base
    assert d(df.rename(columns={"a": "A"})) != base
    assert d(df.astype({"a": "int32"})) != base
    assert d(df.astype({"a": "Int64"})) != base
    assert d(df.set_axis([10, 11, 12])) != base
    assert d(df.set_axis(pd.Index([0, 1, 2], name="id"))) != base
    assert d(df.set_axis(pd.Index(["0", "1", "2"]))) != base
    # a RangeIndex and the same labels as a plain index are different indexes
    assert d(df.set_axis(pd.Index([0, 1, 2]))) != base
    assert d(df.copy()) == base


def test_a_shuffled_copy_differs_and_sorting_back_restores_the_digest():
    df = rich_frame(200)
    shuffled = df.sample(frac=1.0, random_state=3)
    assert d(shuffled) != d(df)
    assert d(shuffled.sort_index().reset_index(drop=True)) == d(df)


def test_none_nan_and_na_are_told_apart_in_object_columns():
    a = pd.DataFrame({"x": pd.Series(["a", None], dtype=object)})
    b = pd.DataFrame({"x": pd.Series(["a", np.nan], dtype=object)})
    c = pd.DataFrame({"x": pd.Series(["a", pd.NA], dtype=object)})
    assert len({d(a), d(b), d(c)}) == 3


def test_memory_layout_does_not_change_the_digest():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(1000, 4))
    c_order = pd.DataFrame(values, columns=list("abcd"))
    f_order = pd.DataFrame(np.asfortranarray(values), columns=list("abcd"))
    sliced = pd.DataFrame(np.vstack([values, values]), columns=list("abcd")).iloc[:1000]
    assert d(c_order) == d(f_order) == d(sliced)
    # nulls hide arbitrary bytes under them; the digest must not see them
    s1 = pd.array([1, 2, 3], dtype="Int64")
    s2 = pd.array([1, 99, 3], dtype="Int64")
    s1[1] = pd.NA
    s2[1] = pd.NA
    assert d(pd.DataFrame({"x": s1})) == d(pd.DataFrame({"x": s2}))
    # NaN payloads differ between producers (0/0 gives a negative NaN on x86); all NaNs are one value
    weird = np.array([1.0, np.nan, 3.0])
    weird.view(np.uint64)[1] = 0xFFF8000000000001
    assert d(pd.DataFrame({"x": weird})) == d(pd.DataFrame({"x": [1.0, np.nan, 3.0]}))
    # ... but -0.0 is not 0.0
    assert d(pd.DataFrame({"x": [0.0]})) != d(pd.DataFrame({"x": [-0.0]}))


def test_arrow_chunking_does_not_change_the_digest():
    t1 = pa.table(
        {"a": pa.chunked_array([[1, 2], [3, None]]), "s": pa.chunked_array([["x"], ["y", None, "z"]])}
    )
    t2 = pa.table({"a": [1, 2, 3, None], "s": ["x", "y", None, "z"]})
    assert d(t1) == d(t2)
    assert d(t2.slice(1)) == d(pa.table({"a": [2, 3, None], "s": ["y", None, "z"]}))
    assert d(t2) != d(t2.slice(1))


def test_the_same_data_has_the_same_digest_in_another_process():
    code = textwrap.dedent("""
        import numpy as np, pandas as pd
        from mlo.data import codec
        from mlo.data.digest import digest, float_sum
        df = pd.DataFrame({"a": np.arange(1000) * 0.5, "b": [f"v{i % 13}" for i in range(1000)]})
        df["c"] = pd.Categorical(df["b"])
        print(digest(codec.encode_frame(df)))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    df = pd.DataFrame({"a": np.arange(1000) * 0.5, "b": [f"v{i % 13}" for i in range(1000)]})
    df["c"] = pd.Categorical(df["b"])
    assert out == d(df)


def test_digests_are_the_ones_every_earlier_version_gave():
    """The digest is the data's identity and a pipeline cache key: these values were computed by the code before
    the NaN check summed the stretches it looks at, and must never change."""
    rng = np.random.default_rng(11)
    n = 3_000_000  # several 16 MB stretches per float64 column, a NaN and an infinity in some
    x, y = rng.random(n), rng.normal(size=n)
    y[::1000] = np.nan
    y[5] = -np.inf
    y.view(np.uint64)[2000] = 0x7FF8000000000001  # a NaN with a payload
    df = pd.DataFrame(
        {
            "x": x,
            "y": y,
            "f": rng.random(n).astype("float32"),
            "i": rng.integers(0, 100, n),
            "s": pd.array([f"k{i % 97}" for i in range(n)], dtype="str"),
        }
    )
    sums: dict[str, float] = {}
    assert digest(codec.encode_frame(df), sums) == (
        "f18d31e7ed6da60b948621d95f48f1684022584d531d9b796479cf96397535a2"
    )
    assert d(np.ascontiguousarray(np.stack([x, y]).T)) == (
        "1ff6d4b368d11e311dbfe5752e8429be6120828ebc7957270b09fa3f52836676"
    )
    # the NaN check's by-product: the sums of the float64 columns, not finite where a NaN or infinity is
    assert set(sums) == {"x", "y"} and not np.isfinite(sums["y"])
    assert sums["x"] == float_sum(x) and sums["x"] == pytest.approx(x.sum(), rel=1e-13)


def test_arrays_digest_shape_dtype_and_values():
    a = np.arange(12.0).reshape(3, 4)
    assert d(a) == d(a.copy()) == d(np.asfortranarray(a))
    assert d(a) != d(a.reshape(4, 3))
    assert d(a) != d(a.astype("float32"))
    b = a.copy()
    b[-1, -1] += 1
    assert d(a) != d(b)


# -- the round trip returns identical data ----------------------------------------------------------------------------
def test_round_trip_of_a_rich_frame_is_identical(sqlite_ws):
    df = rich_frame()
    back = roundtrip(df)
    pd.testing.assert_frame_equal(back, df, check_exact=True, check_freq=True, check_flags=True)
    assert list(back.dtypes.astype(str)) == list(df.dtypes.astype(str))
    assert list(back["cat"].cat.categories) == ["hi", "mid", "lo", "unused"] and back["cat"].cat.ordered
    assert str(back["when"].dtype) == "datetime64[ns, Europe/Paris]" or back["when"].dt.tz is not None
    assert d(back) == d(df)


def test_round_trip_keeps_none_nan_na_and_object_types(sqlite_ws):
    df = pd.DataFrame(
        {
            "strs": pd.Series(["a", None, np.nan, pd.NA], dtype=object),
            "ints": pd.Series([1, None, 3, 2**40], dtype=object),
            "floats": pd.Series([1.5, None, np.nan, 2.0], dtype=object),
            "bytes": pd.Series([b"x", None, b"\x00", b""], dtype=object),
            "empty": pd.Series([None, np.nan, None, None], dtype=object),
        }
    )
    back = roundtrip(df)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    for col in df:
        assert [repr(v) for v in back[col]] == [repr(v) for v in df[col]], col
        assert [type(v) for v in back[col]] == [type(v) for v in df[col]], col


def test_object_columns_without_missing_values(sqlite_ws):
    """pandas hands out read-only arrays for object columns; nothing may write into them."""
    df = pd.DataFrame({"a": pd.Series(["x", "y"], dtype=object), "n": pd.Series([1, 2], dtype=object)})
    back = roundtrip(df)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back["a"].dtype == object and type(back["n"][0]) is int


def test_round_trip_keeps_indexes_and_column_labels(sqlite_ws):
    idx = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"])
    df = pd.DataFrame(np.arange(6).reshape(3, 2), index=idx, columns=pd.Index([0, 1], name="feature"))
    pd.testing.assert_frame_equal(roundtrip(df), df, check_exact=True)

    ts = pd.DataFrame(
        {"v": [1.0, 2.0, 3.0]}, index=pd.date_range("2024-01-01", periods=3, freq="D", name="day")
    )
    back = roundtrip(ts)
    pd.testing.assert_frame_equal(back, ts, check_freq=True)
    assert back.index.freqstr == "D"

    wide = pd.DataFrame(np.ones((2, 3)))  # RangeIndex columns from numpy
    back = roundtrip(wide)
    pd.testing.assert_frame_equal(back, wide)
    assert isinstance(back.columns, pd.RangeIndex)

    cols = pd.DataFrame(
        [[1, 2]], columns=pd.MultiIndex.from_tuples([("x", "a"), ("x", "b")], names=["g", None])
    )
    pd.testing.assert_frame_equal(roundtrip(cols), cols)

    dup = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])
    pd.testing.assert_frame_equal(roundtrip(dup), dup)

    cat_index = pd.DataFrame({"v": [1, 2]}, index=pd.CategoricalIndex(["x", "y"], name="c"))
    pd.testing.assert_frame_equal(roundtrip(cat_index), cat_index)


def test_round_trip_of_empty_and_odd_shapes(sqlite_ws):
    for df in (
        pd.DataFrame(),
        pd.DataFrame({"a": pd.Series([], dtype="float64")}),
        pd.DataFrame(index=pd.RangeIndex(5)),
        pd.DataFrame({"a": [1]}, index=pd.RangeIndex(10, 11)),
        pd.DataFrame({"a": [1, 2, 3]}, index=pd.RangeIndex(0, 6, 2)),
    ):
        pd.testing.assert_frame_equal(roundtrip(df), df)


def test_round_trip_of_series_tables_and_arrays(sqlite_ws):
    s = pd.Series([1.5, None, 3.0], name="price", index=pd.Index(["a", "b", "c"], name="sku"))
    pd.testing.assert_series_equal(roundtrip(s), s)
    unnamed = pd.Series([1, 2, 3])
    pd.testing.assert_series_equal(roundtrip(unnamed), unnamed)

    table = pa.table({"a": [1, None], "s": ["x", None], "t": pa.array([1, 2], pa.timestamp("ms", tz="UTC"))})
    table = table.replace_schema_metadata({"source": "crm"})
    back = roundtrip(table)
    assert back.equals(table) and back.schema.metadata == {b"source": b"crm"}

    for arr in (
        np.arange(10, dtype="int16"),
        np.random.default_rng(0).normal(size=(4, 3, 2)),
        np.array([b"ab", b"c"]),
    ):
        back = roundtrip(arr)
        assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr)
