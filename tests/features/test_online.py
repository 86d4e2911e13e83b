"""Online values: materialize the latest value per entity; lookups by id, under concurrent writes and a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pandas as pd
import pytest
from feature_data import transactions

import mlo
from mlo.errors import InvalidInput


def _usd(df):
    return pd.DataFrame({"amount_usd": df.amount * df.rate, "n": (df.amount > 50).astype("int64")})


def _define(seed: int = 0):
    tx = transactions(seed=seed)
    mlo.snapshot(tx, "transactions")
    view = mlo.FeatureView(
        "spend", source="transactions", entity="customer_id", timestamp="ts", transform=_usd
    )
    return tx, view


def _latest(tx: pd.DataFrame, as_of=None) -> pd.DataFrame:
    rows = tx if as_of is None else tx[tx.ts <= as_of]
    last = rows.sort_values("ts").groupby("customer_id").tail(1).set_index("customer_id").sort_index()
    return pd.concat([last, _usd(last).set_index(last.index)], axis=1)


def test_materialize_writes_each_entitys_latest_value(ws):
    tx, view = _define()
    assert mlo.features.materialize() == {"spend": 20}
    got = mlo.features.lookup("spend", [3, 1, 99, "2"])
    want = _latest(tx)
    assert got.customer_id.tolist() == [3, 1, 99, "2"]
    assert got._found.tolist() == [True, True, False, True]
    # the very bytes the transform computes offline
    assert (
        got.amount_usd[[0, 1, 3]].to_numpy().tobytes() == want.amount_usd.loc[[3, 1, 2]].to_numpy().tobytes()
    )
    assert got.n[[0, 1, 3]].tolist() == want.n.loc[[3, 1, 2]].tolist()

    # as of a past time: the values known then
    cut = pd.Timestamp("2024-01-05")
    mlo.features.materialize(["spend"], as_of=cut)
    past = _latest(tx, cut)
    got = mlo.features.lookup(view, past.index.tolist())
    assert got._found.all()
    assert got.amount_usd.tolist() == past.amount_usd.tolist()
    record = ws.features.materialization("spend")
    assert record["version"] == 1 and record["entities"] == len(past)
    with pytest.raises(InvalidInput, match="as_of must be a datetime"):
        mlo.features.materialize(as_of="not a date")


def test_readers_see_the_old_set_or_the_new_one_never_a_mix(ws):
    """A serving process keeps looking up while the notebook materializes new values again and again."""
    tx, _ = _define(seed=0)
    mlo.features.materialize()
    old = _latest(tx).amount_usd
    tx2, _ = _define(seed=5)  # new source data: version 2 of the view
    new = _latest(tx2).amount_usd
    ids = old.index.tolist()
    seen, errors = [], []
    stop = threading.Event()

    def read():
        try:
            while not stop.is_set():
                got = mlo.features.lookup("spend", ids).set_index("customer_id").amount_usd
                seen.append("old" if got.equals(old) else "new" if got.equals(new) else "mixed")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for view in ("spend@2", "spend@1", "spend@2"):
        mlo.features.materialize([view])
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert seen and "mixed" not in seen
    assert mlo.features.lookup("spend", ids).set_index("customer_id").amount_usd.equals(new)


def test_a_materialization_killed_half_way_leaves_the_old_values(sqlite_ws, tmp_path):
    _define()
    _define(seed=5)  # version 2, with other values
    mlo.features.materialize(["spend@1"])
    before = mlo.features.lookup("spend", list(range(1, 21)))
    script = textwrap.dedent(
        """
        import sys, time
        import mlo
        from mlo.features import online

        rows = online._latest_rows

        def slow(view, cutoff):
            for i, row in enumerate(rows(view, cutoff)):
                if i == 5:
                    print("writing", flush=True)
                    time.sleep(600)
                yield row

        online._latest_rows = slow
        mlo.features.materialize(["spend@2"])  # the workspace is found from MLO_HOME
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        if line != "writing":
            proc.wait(timeout=60)
            pytest.fail(f"the materializing process ended early: {proc.stderr.read()}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    pd.testing.assert_frame_equal(mlo.features.lookup("spend", list(range(1, 21))), before)
    assert sqlite_ws.features.materialization("spend")["version"] == 1
    assert mlo.features.materialize() == {"spend": 20}
    assert sqlite_ws.features.materialization("spend")["version"] == 2
    assert not mlo.features.lookup("spend", list(range(1, 21))).equals(
        before
    )  # the database is not left locked


def test_an_entity_key_is_one_entity_whatever_its_json_type(sqlite_ws):
    from mlo.features.online import entity_key

    assert entity_key(7) == entity_key(7.0) == entity_key("7") == "7"
    assert entity_key(7.5) == "7.5" and entity_key(True) == "True"


def test_gc_keeps_the_stored_transform_and_a_fresh_process_still_applies_it(sqlite_ws):
    from mlo.store.gc import collect

    _, view = _define()
    collect(sqlite_ws, grace=0)
    assert sqlite_ws.blobs.exists(view._row.blob)
    script = (
        "import mlo, pandas as pd\n"
        "v = mlo.features.get_feature_view('spend')\n"
        "print(v.apply(pd.DataFrame({'customer_id': [1], 'ts': [pd.Timestamp('2024-01-01')],"
        " 'amount': [10.0], 'rate': [1.1]})).amount_usd.iloc[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) == 10.0 * 1.1
