"""Defining feature views: versions by digest, schemas, lineage, and the errors a newcomer meets."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_data import transactions

import mlo
from mlo.errors import InvalidInput, NotFound


def test_a_view_is_versioned_by_its_code_and_its_source(ws):
    mlo.snapshot(transactions(), "transactions")

    def usd(df):
        return pd.DataFrame({"amount_usd": df.amount * df.rate})

    v1 = mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=usd)
    assert (v1.version, v1.created) == (1, True)
    assert v1.features == ["amount_usd"]
    assert v1.output_schema == [{"name": "amount_usd", "dtype": "float64"}]
    assert [c["name"] for c in v1.input_schema] == ["customer_id", "ts", "amount", "rate"]

    # the cell run again: the same version
    again = mlo.FeatureView(
        "spend", source="transactions", entity="customer_id", timestamp="ts", transform=usd
    )
    assert (again.version, again.created) == (1, False)

    # an edited function: the next version
    def usd(df):  # noqa: F811
        return pd.DataFrame({"amount_usd": (df.amount * df.rate).round(1)})

    v2 = mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=usd)
    assert v2.version == 2 and v2.digest != v1.digest and "round(1)" in v2.code

    # new source data, same code: the next version, reading the new snapshot
    mlo.snapshot(transactions(seed=1), "transactions")
    v3 = mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=usd)
    assert v3.version == 3 and v3.source.ref == "snapshot:transactions@2"
    assert mlo.features.get_feature_view("spend").version == 3
    assert mlo.features.get_feature_view("spend@1").code == v1.code

    listing = mlo.features.feature_views()
    assert listing[["name", "version", "source"]].values.tolist() == [
        ["spend", 1, "transactions@1"],
        ["spend", 2, "transactions@1"],
        ["spend", 3, "transactions@2"],
    ]
    up = mlo.lineage("feature:spend@3").upstream("snapshot")
    assert [n.label for n in up] == ["transactions@2"]


def test_a_module_constant_is_part_of_the_version(sqlite_ws):
    mlo.snapshot(transactions(), "transactions")
    ns: dict = {"pd": pd, "SCALE": 2.0}
    exec(
        compile("def scaled(df):\n    return pd.DataFrame({'x': df.amount * SCALE})\n", "<cell>", "exec"), ns
    )
    import linecache

    linecache.cache["<cell>"] = (
        0,
        None,
        ["def scaled(df):\n", "    return pd.DataFrame({'x': df.amount * SCALE})\n"],
        "<cell>",
    )
    a = mlo.FeatureView(
        "scaled", source="transactions", entity="customer_id", timestamp="ts", transform=ns["scaled"]
    )
    ns["SCALE"] = 3.0
    b = mlo.FeatureView(
        "scaled", source="transactions", entity="customer_id", timestamp="ts", transform=ns["scaled"]
    )
    assert (a.version, b.version) == (1, 2)


def test_the_decorator_names_the_view_after_the_function(sqlite_ws):
    mlo.snapshot(transactions(), "transactions")

    @mlo.feature(source="transactions", entity="customer_id", timestamp="ts", inputs=["amount"])
    def big_spender(df):
        return pd.DataFrame({"big": df.amount > 100})

    assert isinstance(big_spender, mlo.FeatureView)
    assert big_spender.ref == "big_spender@1"
    assert big_spender.inputs == ["customer_id", "ts", "amount"]
    assert big_spender.output_schema == [{"name": "big", "dtype": "bool"}]
    assert "big_spender" in big_spender._repr_html_()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"entity": "customer"}, "entity column 'customer' is not in snapshot:transactions@1"),
        ({"timestamp": "amount"}, "must hold datetimes"),
        (
            {"transform": lambda df: df.groupby("customer_id").amount.sum().to_frame()},
            "one row per input row",
        ),
        ({"transform": lambda df: df[["customer_id", "ts"]]}, "no feature columns"),
        ({"transform": lambda df: df.nope}, "failed on snapshot:transactions@1: AttributeError"),
        ({"source": "nothing"}, "nothing"),
        ({"inputs": ["amount", "colour"]}, "inputs colour are not columns"),
    ],
)
def test_bad_definitions_say_what_to_fix_and_record_nothing(sqlite_ws, kwargs, message):
    mlo.snapshot(transactions(), "transactions")
    args = {
        "source": "transactions",
        "entity": "customer_id",
        "timestamp": "ts",
        "transform": lambda df: pd.DataFrame({"x": df.amount}),
        **kwargs,
    }
    with pytest.raises((InvalidInput, NotFound), match=message):
        mlo.FeatureView("bad", **args)
    assert mlo.features.feature_views().empty


def test_an_unknown_view_names_the_defined_ones(sqlite_ws):
    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts",
                    transform=lambda df: pd.DataFrame({"x": df.amount}))  # fmt: skip
    with pytest.raises(NotFound, match="no feature view 'spnd'; defined: spend"):
        mlo.features.get_feature_view("spnd")
    with pytest.raises(InvalidInput, match="version must be a number"):
        mlo.features.get_feature_view("spend@latest")
