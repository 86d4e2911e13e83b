"""Aggregates over time: each row sees only its entity's events in ``(t - window, t]``, in training frames and in
the online table alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_data import post

import mlo
from mlo.errors import InvalidInput

DAY = pd.Timedelta(days=1)


@pytest.fixture(autouse=True)
def _trusted_functions(tmp_path):
    """The model served here is a function defined in this file, stored as a pickle: trusted in mlo.toml."""
    (tmp_path / "mlo.toml").write_text('[registry]\ntrusted_flavors = ["cloudpickle"]\n')


def _leaky(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events whose amounts are distinct powers of two, placed around each entity row's time: exactly at it (in),
    one second after it (a leak from the future), exactly seven days before it (just out), one second later than
    that (just in), and eight days before (out). Any wrong boundary changes the sum by a power of two, and every
    sum is exact."""
    rng = np.random.default_rng(seed)
    events, ents = [], []
    power = 0
    for cid in range(1, 13):
        t = pd.Timestamp("2024-05-01") + pd.Timedelta(hours=int(rng.integers(0, 500)))
        for offset in (
            pd.Timedelta(0),
            pd.Timedelta(seconds=1),
            -7 * DAY,
            -7 * DAY + pd.Timedelta(seconds=1),
            -8 * DAY,
        ):
            events.append({"customer_id": cid, "ts": t + offset, "amount": float(2**power), "n": 1})
            power = (power + 1) % 50
        ents.append({"customer_id": cid, "when": t})
        ents.append({"customer_id": cid, "when": t - 30 * DAY})  # nothing in its window
    return pd.DataFrame(events).sample(frac=1.0, random_state=seed), pd.DataFrame(ents)


def _brute(events: pd.DataFrame, ents: pd.DataFrame, column: str, window: pd.Timedelta) -> list[list[float]]:
    out = []
    for cid, t in zip(ents.customer_id, ents["when"], strict=True):
        mine = events[(events.customer_id == cid) & (events.ts <= t) & (events.ts > t - window)]
        out.append(mine.sort_values("ts")[column].tolist())
    return out


def _view(**kw):
    return mlo.FeatureView(
        "spend",
        source="events",
        entity="customer_id",
        timestamp="ts",
        aggregations=[
            mlo.features.agg("amount", "sum", window="7d"),
            mlo.features.agg("amount", "count", window="7d"),
            mlo.features.agg("amount", "mean", window="7d"),
            mlo.features.agg("amount", "min", window="7d"),
            mlo.features.agg("amount", "max", window="7d", name="biggest_week"),
            mlo.features.agg("n", "sum", window="1d"),
        ],
        **kw,
    )


def test_windows_take_only_the_events_before_the_row_and_inside_the_window(ws):
    events, ents = _leaky()
    mlo.snapshot(events, "events")
    view = _view()
    assert view.features == [
        "amount_sum_7d", "amount_count_7d", "amount_mean_7d", "amount_min_7d", "biggest_week", "n_sum_1d"
    ]  # fmt: skip
    assert [c["dtype"] for c in view.output_schema] == [
        "float64",
        "int64",
        "float64",
        "float64",
        "float64",
        "int64",
    ]
    tf = mlo.features.training_frame(ents, ["spend"], timestamp="when")

    windows = _brute(events, ents, "amount", 7 * DAY)
    assert [len(w) for w in windows[:2]] == [2, 0]  # the events at t and at t - 7d + 1s
    np.testing.assert_array_equal(tf.amount_sum_7d, [sum(w) for w in windows])
    np.testing.assert_array_equal(tf.amount_count_7d, [len(w) for w in windows])
    np.testing.assert_array_equal(tf.amount_mean_7d, [sum(w) / len(w) if w else np.nan for w in windows])
    np.testing.assert_array_equal(tf.amount_min_7d, [min(w) if w else np.nan for w in windows])
    np.testing.assert_array_equal(tf.biggest_week, [max(w) if w else np.nan for w in windows])
    np.testing.assert_array_equal(tf.n_sum_1d, [len(w) for w in _brute(events, ents, "n", DAY)])
    assert tf.amount_count_7d.dtype == "int64" and tf.n_sum_1d.dtype == "int64"
    html = view._repr_html_()
    assert "sum(amount)" in html and "(7d before, as of]" in html and "<details>" not in html  # no transform
    # the leak (one second after) would make every sum odd in a different power: none of them is used
    leaks = events.sort_values(["customer_id", "ts"]).groupby("customer_id").amount.nth(4)
    assert not set(leaks) & {a for w in windows for a in w}


def test_online_values_are_the_training_values_as_of_the_materialization(ws):
    events, ents = _leaky(seed=1)
    mlo.snapshot(events, "events")
    view = _view()
    as_of = pd.Timestamp("2024-05-15 12:00")
    mlo.features.materialize(["spend"], as_of=as_of)
    ids = sorted(events.customer_id.unique())
    online = mlo.features.lookup("spend", ids)
    offline = mlo.features.training_frame(
        pd.DataFrame({"customer_id": ids, "when": as_of}), [view], timestamp="when", snapshot=None
    )
    for c in view.features:
        assert online[c].dtype == offline[c].dtype, c
        assert online[c].to_numpy().tobytes() == offline[c].to_numpy().tobytes(), c  # the same bytes
    assert online._found.all()

    # by default the window ends now: every event here is long past, so each week is empty
    mlo.features.materialize(["spend"])
    now = mlo.features.lookup("spend", ids)
    assert (
        (now.amount_count_7d == 0).all()
        and (now.amount_sum_7d == 0).all()
        and now.amount_mean_7d.isna().all()
    )


def test_an_aggregate_of_a_transform_and_serving_by_entity(ws):
    pytest.importorskip("uvicorn")
    events, ents = _leaky(seed=2)
    events["rate"] = 2.0
    mlo.snapshot(events, "events")

    @mlo.feature(
        source="events", entity="customer_id", timestamp="ts",
        aggregations=[mlo.features.agg("usd", "sum", window="7d", name="usd_week")],
    )  # fmt: skip
    def usd(df):
        return pd.DataFrame({"usd": df.amount * df.rate})

    assert usd.aggregated and usd.event_columns == ["usd"]
    with pytest.raises(InvalidInput, match="aggregates over time"):
        usd.apply(events)
    train = mlo.features.training_frame(ents, [usd], timestamp="when")
    np.testing.assert_array_equal(
        train.usd_week, [2 * sum(w) for w in _brute(events, ents, "amount", 7 * DAY)]
    )

    as_of = pd.Timestamp("2024-05-20")
    mlo.features.materialize([usd], as_of=as_of)
    mv = mlo.register_model(_echo_week, "weekly", input_example=train[["usd_week"]].head(), features=["usd"])
    with mlo.serve(f"{mv.name}@latest", poll=0) as srv:
        status, body = post(srv.url, {"records": [{"customer_id": 3}, {"customer_id": 5}]})
        assert status == 200, body
        status_inputs, refused = post(srv.url, {"records": [{"amount": 1.0, "rate": 2.0}]})
    at = pd.DataFrame({"customer_id": [3, 5], "when": as_of})
    expected = mlo.features.training_frame(at, [usd], timestamp="when", snapshot=None).usd_week.tolist()
    assert body["predictions"] == expected
    # an aggregate is over the entity's history: a request's own inputs cannot make one
    assert status_inputs == 400 and "customer_id" in refused["error"]

    report = mlo.monitor.feature_skew(mv.ref)
    assert report.checked == 2 and report.passed, report.examples


def _echo_week(X):
    return X["usd_week"].to_numpy()


def test_bad_aggregations_say_what_to_fix(sqlite_ws):
    events, _ = _leaky()
    events["label"] = "x"
    mlo.snapshot(events, "events")
    common = {"source": "events", "entity": "customer_id", "timestamp": "ts"}
    cases = [
        (lambda: mlo.features.agg("amount", "median", window="7d"), "must be one of sum, count"),
        (lambda: mlo.features.agg("amount", "sum", window="a week"), "window takes a length like"),
        (lambda: mlo.features.agg("amount", "sum", window="0d"), "longer than zero"),
        (lambda: mlo.FeatureView("v", **common, aggregations=[mlo.features.agg("nope", "sum", window="1d")]),
         "aggregates 'nope', which is not among the source's columns"),
        (lambda: mlo.FeatureView("v", **common, aggregations=[mlo.features.agg("label", "sum", window="1d")]),
         "sum of 'label' needs numbers"),
        (lambda: mlo.FeatureView("v", **common, aggregations=["amount"]), "make each with mlo.features.agg"),
        (lambda: mlo.FeatureView("v", **common), "needs transform="),
        (lambda: mlo.FeatureView("v", **common, aggregations=[mlo.features.agg("amount", "sum", window="1d"),
                                                              mlo.features.agg("amount", "sum", window="24h",
                                                                               name="amount_sum_1d")]),
         "names two aggregates alike"),
    ]  # fmt: skip
    for make, message in cases:
        with pytest.raises(InvalidInput, match=message):
            make()
    assert mlo.features.feature_views().empty
    # a count works on any column, and a window may be a timedelta
    view = mlo.FeatureView(
        "labels", **common, aggregations=[mlo.features.agg("label", "count", window=pd.Timedelta(hours=36))]
    )
    assert view.features == ["label_count_36h"]
