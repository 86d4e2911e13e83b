"""Point-in-time training frames: each entity row gets the latest feature value at or before its time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_data import transactions

import mlo
from mlo.errors import InvalidInput


def _usd(df):
    return pd.DataFrame({"amount_usd": df.amount * df.rate})


def _leaky(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature rows whose value *is* the label of the entity row just before them: a join that looks one row
    ahead (or ignores time) reproduces the label exactly."""
    rng = np.random.default_rng(seed)
    rows, ents = [], []
    for cid in range(1, 31):
        t = pd.Timestamp("2024-03-01") + pd.Timedelta(hours=int(rng.integers(0, 48)))
        for _ in range(8):
            label = int(rng.integers(0, 2))
            ents.append({"customer_id": cid, "event_time": t, "label": label})
            # the feature row that reveals the label lands one second *after* the entity row
            rows.append({"customer_id": cid, "ts": t + pd.Timedelta(seconds=1), "score": float(label)})
            # and an exact tie: a value at the entity row's very time is known then (as of = at or before)
            t = t + pd.Timedelta(hours=int(rng.integers(1, 30)))
    return pd.DataFrame(rows), pd.DataFrame(ents).sample(frac=1.0, random_state=seed)


def test_the_join_never_reads_the_future_and_matches_pandas_merge_asof(ws):
    feats, ents = _leaky()
    mlo.snapshot(feats, "scores")
    mlo.FeatureView("leak", source="scores", entity="customer_id", timestamp="ts",
                    transform=lambda df: pd.DataFrame({"score": df.score}))  # fmt: skip
    tf = mlo.features.training_frame(ents, ["leak"], timestamp="event_time")

    # the entities come back as given (order, index, columns), with the feature added
    pd.testing.assert_frame_equal(tf[ents.columns.tolist()], ents)
    # every value is the previous row's label, never this row's: a leaky join would agree with the label
    assert (tf.score == tf.label).mean() < 0.75
    # the first row of each customer has nothing before it
    first = tf.sort_values("event_time").groupby("customer_id").head(1)
    assert first.score.isna().all()

    expected = (
        pd.merge_asof(
            ents.reset_index().sort_values("event_time"),
            feats.sort_values("ts"),
            left_on="event_time",
            right_on="ts",
            by="customer_id",
            direction="backward",
            allow_exact_matches=True,
        )
        .set_index("index")
        .loc[ents.index]
    )
    np.testing.assert_array_equal(tf.score.to_numpy(), expected.score.to_numpy())

    # and the result is a snapshot whose lineage names the feature version it used
    assert tf.attrs["snapshot"] == "snapshot:training_frame@1"
    up = mlo.lineage(tf.attrs["snapshot"]).upstream()
    assert [n.label for n in up] == ["leak@1", "scores@1"]


def test_a_value_stamped_exactly_at_the_entity_time_is_used(sqlite_ws):
    feats = pd.DataFrame(
        {"k": ["a", "a"], "ts": pd.to_datetime(["2024-01-01", "2024-01-02"]), "v": [1.0, 2.0]}
    )
    mlo.snapshot(feats, "f")
    mlo.FeatureView("v", source="f", entity="k", timestamp="ts", transform=lambda df: df[["v"]])
    ents = pd.DataFrame(
        {
            "k": ["a", "a", "b"],
            "ts": pd.to_datetime(["2024-01-02 00:00:00", "2024-01-01 23:59:00", "2024-02-01 00:00:00"]),
        }
    )
    tf = mlo.features.training_frame(ents, ["v"], snapshot=None)
    assert tf.v.tolist()[:2] == [2.0, 1.0] and np.isnan(tf.v.iloc[2])
    assert "snapshot" not in tf.attrs


def test_several_views_columns_and_timezones(sqlite_ws):
    tx = transactions()
    mlo.snapshot(tx, "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=_usd)

    @mlo.feature(source="transactions", entity="customer_id", timestamp="ts")
    def sizes(df):
        return pd.DataFrame({"big": df.amount > 80, "log_amount": np.log1p(df.amount)})

    rng = np.random.default_rng(3)
    ents = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 22, 200),
            "ts": pd.Timestamp("2024-01-01", tz="Europe/Paris")
            + pd.to_timedelta(rng.integers(0, 3000, 200), unit="h"),
        }
    )
    tf = mlo.features.training_frame(ents, ["spend", "sizes:big"], snapshot="train")
    assert list(tf.columns) == ["customer_id", "ts", "amount_usd", "big"]
    assert tf.ts.dt.tz is not None  # the entities' own column, untouched

    # the same rows by pandas, with the entity times in UTC (naive source times are UTC)
    feats = pd.concat([tx[["customer_id", "ts"]], _usd(tx), sizes.apply(tx)], axis=1).sort_values("ts")
    left = ents.assign(t=ents.ts.dt.tz_convert("UTC").dt.tz_localize(None)).reset_index().sort_values("t")
    expected = pd.merge_asof(left, feats, left_on="t", right_on="ts", by="customer_id").set_index("index")
    expected = expected.loc[ents.index]
    np.testing.assert_array_equal(tf.amount_usd.to_numpy(), expected.amount_usd.to_numpy())
    assert (
        tf.big.astype(object).where(tf.big.notna(), None).tolist()
        == expected.big.astype(object).where(expected.big.notna(), None).tolist()
    )
    assert {n.label for n in mlo.lineage("snapshot:train").upstream("feature")} == {"spend@1", "sizes@1"}


def test_bad_requests_say_what_to_fix(sqlite_ws):
    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=_usd)
    ents = pd.DataFrame({"customer_id": [1], "ts": pd.to_datetime(["2024-02-01"])})
    cases = [
        (ents.rename(columns={"ts": "when"}), ["spend"], "no timestamp column 'ts'"),
        (ents.rename(columns={"customer_id": "cid"}), ["spend"], "no column 'customer_id'"),
        (ents.assign(ts="2024"), ["spend"], "not datetimes"),
        (ents, ["spend:amount"], "has no feature 'amount'"),
        (ents, [], "features takes a list"),
        (ents.assign(amount_usd=1.0), ["spend"], "already have columns named like features"),
        (ents.assign(customer_id="x"), ["spend"], "cannot join the entities with the features"),
        ({"customer_id": 1}, ["spend"], "entities must be a DataFrame"),
    ]
    for entities, features, message in cases:
        with pytest.raises(InvalidInput, match=message):
            mlo.features.training_frame(entities, features)
    assert mlo.snapshots().empty or "training_frame" not in set(mlo.snapshots().name)


def test_the_feature_cache_is_rebuilt_when_removed(sqlite_ws):
    mlo.snapshot(transactions(), "transactions")
    view = mlo.FeatureView(
        "spend", source="transactions", entity="customer_id", timestamp="ts", transform=_usd
    )
    ents = pd.DataFrame({"customer_id": [1, 2], "ts": pd.to_datetime(["2024-03-01", "2024-03-01"])})
    first = mlo.features.training_frame(ents, ["spend"], snapshot=None)
    for f in (sqlite_ws.home / "features").iterdir():
        f.unlink()
    again = mlo.features.training_frame(ents, [view], snapshot=None)
    pd.testing.assert_frame_equal(first, again)


def test_a_tie_in_the_source_is_won_by_its_later_row_offline_and_online(sqlite_ws):
    feats = pd.DataFrame(
        {
            "k": [1, 1, 1, 2],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02"]),
            "v": [1.0, 2.0, 3.0, 4.0],
        }
    )
    mlo.snapshot(feats.sample(frac=1.0, random_state=0).sort_values("v", kind="stable"), "f")
    mlo.FeatureView("v", source="f", entity="k", timestamp="ts", transform=lambda df: df[["v"]])
    ents = pd.DataFrame(
        {"k": [1, 1, 2, 3], "ts": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-02"])}
    )
    tf = mlo.features.training_frame(ents, ["v"], snapshot=None)
    assert tf.v.tolist()[:3] == [3.0, 1.0, 4.0] and np.isnan(tf.v.iloc[3])
    mlo.features.materialize(["v"])
    assert mlo.features.lookup("v", [1, 2]).v.tolist() == [3.0, 4.0]


def test_random_frames_match_pandas_merge_asof(sqlite_ws):
    rng = np.random.default_rng(7)
    n = 20_000
    feats = pd.DataFrame(
        {
            "k": rng.integers(0, 300, n),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.permutation(10 * n)[:n], unit="min"),
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n),
        }
    )
    mlo.snapshot(feats, "f")
    mlo.FeatureView("ab", source="f", entity="k", timestamp="ts", transform=lambda df: df[["a", "b"]])
    mlo.FeatureView(
        "twice", source="f", entity="k", timestamp="ts", transform=lambda df: (df[["a"]] * 2).add_suffix("2")
    )
    ents = pd.DataFrame(
        {"k": rng.integers(0, 320, 150_000),
         "ts": pd.Timestamp("2023-12-31") + pd.to_timedelta(rng.integers(0, 12 * n, 150_000), unit="min")}
    )  # fmt: skip
    tf = mlo.features.training_frame(ents, ["ab", "twice"], snapshot=None)  # two views on two threads
    expected = (
        pd.merge_asof(ents.reset_index().sort_values("ts"), feats.sort_values("ts"), on="ts", by="k")
        .set_index("index")
        .loc[ents.index]
    )
    np.testing.assert_array_equal(tf.a.to_numpy(), expected.a.to_numpy())
    np.testing.assert_array_equal(tf.b.to_numpy(), expected.b.to_numpy())
    np.testing.assert_array_equal(tf.a2.to_numpy(), expected.a.to_numpy() * 2)


def test_views_read_once_are_kept_within_their_budget(sqlite_ws, monkeypatch):
    from mlo.features.offline import recent

    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=_usd)
    ents = pd.DataFrame({"customer_id": [1, 2], "ts": pd.to_datetime(["2024-03-01", "2024-03-01"])})
    recent.clear()
    first = mlo.features.training_frame(ents, ["spend"], snapshot=None)
    assert len(recent.items) == 1
    pd.testing.assert_frame_equal(mlo.features.training_frame(ents, ["spend"], snapshot=None), first)
    assert len(recent.items) == 1
    monkeypatch.setenv("MLO_FEATURE_CACHE_MB", "0")
    recent.clear()
    pd.testing.assert_frame_equal(mlo.features.training_frame(ents, ["spend"], snapshot=None), first)
    assert not recent.items
