"""Feature views from notebook cells: defined, re-run, edited and listed through a real IPython shell."""

from __future__ import annotations

import pandas as pd
from feature_data import transactions
from IPython.core.error import UsageError

import mlo

CELL = """
@mlo.feature(source="transactions", entity="customer_id", timestamp="ts")
def spend(df):
    return pd.DataFrame({"amount_usd": df.amount * df.rate})
"""


def test_a_notebook_defines_reruns_and_edits_a_view(shell):
    shell.ip.user_ns["tx"] = transactions()
    shell.run("import mlo\nimport pandas as pd\nsnap = mlo.snapshot(tx, 'transactions')")
    shell.run(CELL)
    assert shell.ip.user_ns["spend"].ref == "spend@1"
    shell.run(CELL)  # run again: the same version
    assert shell.ip.user_ns["spend"].ref == "spend@1"
    shell.run(CELL.replace("df.amount * df.rate", "(df.amount * df.rate).round(2)"))  # edited
    assert shell.ip.user_ns["spend"].ref == "spend@2"
    assert "round(2)" in shell.ip.user_ns["spend"].code

    listing = shell.run("%mlo features")
    assert isinstance(listing, pd.DataFrame)
    assert listing[["name", "version", "source"]].values.tolist() == [
        ["spend", 1, "transactions@1"],
        ["spend", 2, "transactions@1"],
    ]
    assert shell.run("%mlo features nope").empty
    lin = shell.run("%mlo lineage feature:spend@1")
    assert [n.label for n in lin.upstream()] == ["transactions@1"]

    shell.run(
        "ents = pd.DataFrame({'customer_id': [1, 2], 'ts': pd.to_datetime(['2024-03-01', '2024-03-01'])})\n"
        "train = mlo.features.training_frame(ents, ['spend'])"
    )
    assert shell.ip.user_ns["train"].attrs["snapshot"] == "snapshot:training_frame@1"
    assert shell.run("%mlo materialize spend") == {"spend": 20}
    assert shell.run("%mlo materialize --as-of 2024-01-02")["spend"] >= 0


def test_bad_feature_input_is_a_one_line_usage_error(shell):
    shell.ip.user_ns["tx"] = transactions()
    shell.run("import mlo\nimport pandas as pd\nsnap = mlo.snapshot(tx, 'transactions')")
    for line, fragment in (
        ("%mlo materialize nope", "no feature view 'nope'"),
        ("%mlo materialize --as-of yesterdayish", "as_of must be a datetime"),
        (CELL.replace('"ts"', '"when"'), "timestamp column 'when' is not in"),
    ):
        err = shell.fails(line)
        assert isinstance(err, (UsageError, mlo.MloError)), (line, err)
        assert fragment in str(err) and "\n" not in str(err).strip(), (line, str(err))
    assert mlo.features.feature_views().empty
