"""mlo features / mlo materialize from a terminal."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner
from feature_data import transactions

import mlo
from mlo.cli import main


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_and_materialize_from_a_terminal(sqlite_ws):
    r = cli("features")
    assert r.exit_code == 0 and "no feature views yet" in r.stdout
    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts",
                    transform=lambda df: pd.DataFrame({"amount_usd": df.amount * df.rate}))  # fmt: skip
    r = cli("features")
    assert r.exit_code == 0 and "spend" in r.stdout and "transactions@1" in r.stdout
    rows = json.loads(cli("features", "spend", "--format", "json").stdout)
    assert [(v["name"], v["version"], v["features"]) for v in rows] == [("spend", 1, "amount_usd")]
    r = cli("materialize")
    assert r.exit_code == 0 and r.stdout.strip() == "spend: 20 entities"
    assert json.loads(cli("materialize", "spend", "--as-of", "2000-01-01", "--format", "json").stdout) == {
        "spend": 0
    }
    r = cli("materialize", "nope")
    assert (
        r.exit_code == 2 and "no feature view 'nope'" in r.output and len(r.output.strip().splitlines()) == 1
    )
