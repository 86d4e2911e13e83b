"""DriftReport: the verdict, the columns table, JSON, HTML, the gate, and what the workspace keeps."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.drift.report import COLUMNS


def frames(n_cols: int, n: int, drifted: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_cols`` columns (every fifth categorical); the first ``drifted`` of them shift in the current frame."""
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i in range(n_cols):
        shift = i < drifted
        if i % 5 == 4:
            ref[f"c{i}"] = rng.choice(["a", "b", "c", "d"], n)
            cur[f"c{i}"] = rng.choice(["a", "b", "c", "d"], n, p=[0.7, 0.1, 0.1, 0.1] if shift else None)
        else:
            ref[f"x{i}"] = rng.normal(0, 1, n)
            cur[f"x{i}"] = rng.normal(0.5 if shift else 0.0, 1, n)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def test_verdict_share_and_columns_table():
    ref, cur = frames(10, 3000, drifted=6)
    r = mlo.drift(ref, cur, save=False)
    df = r.columns
    assert df.columns.tolist() == COLUMNS and len(df) == 10
    assert df.columns[:10].tolist() == [
        "column", "kind", "method", "statistic", "p_value", "threshold", "drifted", "missing_ref", "missing_cur", "note"
    ]  # fmt: skip
    assert df.drifted.tolist() == [True] * 6 + [False] * 4
    assert (r.n_drifted, r.n_columns, r.share_drifted, r.dataset_drift) == (6, 10, 0.6, True)
    assert r.drifted_columns == df.column[:6].tolist()
    assert not mlo.drift(ref, cur, drift_share=0.7, save=False).dataset_drift
    assert mlo.drift(*frames(10, 3000, drifted=5), save=False).dataset_drift  # exactly 50% is drift
    assert not mlo.drift(*frames(10, 3000, drifted=4), save=False).dataset_drift


def test_to_dict_is_json_and_round_trips():
    ref, cur = frames(6, 500, drifted=2)
    cur.loc[0, "c4"] = "new"
    r = mlo.drift(ref, cur, save=False)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["dataset_drift"] == r.dataset_drift and d["share_drifted"] == r.share_drifted
    assert [c["column"] for c in d["columns"]] == r.columns.column.tolist()
    again = mlo.DriftReport.from_dict(d)
    pd.testing.assert_frame_equal(again.columns, r.columns)
    assert again.to_html() == r.to_html()


def test_raise_for_drift_is_the_gate():
    ref, cur = frames(4, 2000, drifted=3)
    drifted = mlo.drift(ref, cur, save=False)
    with pytest.raises(
        mlo.GateFailed, match=r"dataset drift: 3 of 4 columns drifted \(75% ≥ 50%\): x0, x1, x2"
    ):
        drifted.raise_for_drift()
    assert mlo.GateFailed.exit_code == 1
    calm = mlo.drift(ref, ref, save=False)
    assert calm.passed and calm.raise_for_drift() is calm


def test_html_is_small_self_contained_and_shows_every_column(tmp_path):
    ref, cur = frames(100, 5000, drifted=30)
    r = mlo.drift(ref, cur, save=False)
    path = tmp_path / "drift.html"
    html = r.to_html(path)
    assert path.read_text(encoding="utf-8") == html
    assert len(html.encode()) <= 300_000, len(html.encode())
    assert "<script" not in html.lower() and "http" not in html.replace("http-equiv", "")
    assert html.count("<svg") == 100 and html.count('class="dr"') == 30
    assert "30 of 100 columns drifted (30%)" in html
    fragment = r._repr_html_()
    assert fragment.startswith("<style>") and "<html" not in fragment
    # drifted rows first, in column order
    names = re.findall(r'<td class="c">([^<]+)<', fragment)
    assert names[:30] == r.drifted_columns and len(names) == 100


def test_text_summary():
    ref, cur = frames(5, 2000, drifted=3)
    text = mlo.drift(ref, cur, save=False).to_text()
    lines = text.splitlines()
    assert lines[0].startswith("DRIFT: dataset drift: 3 of 5 columns drifted")
    assert lines[1].startswith("reference  DataFrame (2,000 rows × 5)")
    assert sum("DRIFT" in line.split() for line in lines[4:]) == 3 and len(lines) == 9


def test_reports_are_stored_linked_and_logged(sqlite_ws):
    ref, cur = frames(4, 1500, drifted=3)
    snap_ref = mlo.snapshot(ref, "train")
    snap_cur = mlo.snapshot(cur, "live")
    with mlo.start_run("monitor") as run:
        r = mlo.drift("train", "snapshot:live@1")
    assert r.id and r.reference["ref"] == "snapshot:train@1" and r.current["ref"] == "snapshot:live@1"
    record = sqlite_ws.reports.get(r.id)
    assert (record.kind, record.subject, record.run_id, record.passed) == (
        "drift",
        snap_cur.node,
        run.id,
        False,
    )
    assert record.summary["n_drifted"] == 3 and record.summary["dataset_drift"] is True
    assert sqlite_ws.reports.list(kind="drift", subject=snap_cur.node)[0].id == r.id
    with sqlite_ws.db.read() as conn:
        edges = set(sqlite_ws.lineage.edges_touching([f"report:{r.id}"], conn))
    assert edges == {
        (snap_ref.node, f"report:{r.id}", "reference"),
        (snap_cur.node, f"report:{r.id}", "current"),
        (f"run:{run.id}", f"report:{r.id}", "report"),
    }
    got = mlo.get_run(run.id).metrics
    assert got["drift.share_drifted"] == 0.75 and got["drift.n_drifted"] == 3
    loaded = mlo.DriftReport.load(r.id[:12])
    assert loaded.id == r.id
    pd.testing.assert_frame_equal(loaded.columns, r.columns)


def test_dataframes_outside_a_run_are_stored_without_links(sqlite_ws):
    ref, cur = frames(3, 300, drifted=0)
    r = mlo.drift(ref, cur)
    record = sqlite_ws.reports.get(r.id)
    assert (record.subject, record.run_id, record.passed) == (None, None, True)
    assert mlo.drift(ref, cur, save=False).id is None


def test_files_can_be_compared(sqlite_ws, tmp_path):
    ref, cur = frames(3, 300, drifted=3)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    r = mlo.drift(str(tmp_path / "ref.parquet"), tmp_path / "cur.csv", save=False)
    assert r.dataset_drift and r.reference["label"].endswith("ref.parquet")
    with pytest.raises(mlo.NotFound, match="no-such-thing"):
        mlo.drift("no-such-thing", cur, save=False)


def test_target_and_prediction_columns_are_reported_apart():
    ref, cur = frames(4, 2000, drifted=0)
    rng = np.random.default_rng(5)
    ref["y"], cur["y"] = rng.integers(0, 2, 2000), rng.integers(0, 2, 2000)
    ref["score"], cur["score"] = rng.random(2000), rng.random(2000) ** 3
    r = mlo.drift(ref, cur, target="y", prediction="score", save=False)
    roles = dict(zip(r.columns.column, r.columns.role, strict=True))
    assert roles == {"x0": "feature", "x1": "feature", "x2": "feature", "x3": "feature", "y": "target",
                     "score": "prediction"}  # fmt: skip
    assert r.n_columns == 4 and not r.dataset_drift
    assert r.prediction_drift is True and r.target_drift is False and not r.passed
    with pytest.raises(mlo.GateFailed, match="prediction drift: score"):
        r.raise_for_drift()
    with pytest.raises(mlo.InvalidInput, match="prediction column 'nope' is not in the reference"):
        mlo.drift(ref, cur, prediction="nope", save=False)


def test_prediction_drift_of_a_fitted_model():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    y = (X.a + X.b > 0).astype(int)
    model = sklearn.LogisticRegression().fit(X, y)
    cur = X.assign(a=X.a + 0.8)
    r = mlo.drift(X, cur, prediction=model, save=False)
    pred = r.column("prediction")
    assert pred.role == "prediction" and pred.kind == "numeric" and pred.drifted
    same = mlo.drift(X, X.sample(frac=1, random_state=0), prediction=model, save=False)
    assert same.prediction_drift is False
    pairs = mlo.drift(X, cur, prediction=(model.predict(X), model.predict(cur)), save=False)
    assert pairs.column("prediction").kind == "categorical" and pairs.prediction_drift


def test_multivariate_domain_classifier_sees_a_change_of_correlation():
    rng = np.random.default_rng(3)
    n = 4000
    a = rng.normal(size=n)
    ref = pd.DataFrame({"a": a, "b": a * 0.9 + rng.normal(0, 0.3, n), "c": rng.choice(["u", "v"], n)})
    a2 = rng.normal(size=n)
    cur = pd.DataFrame({"a": a2, "b": -a2 * 0.9 + rng.normal(0, 0.3, n), "c": rng.choice(["u", "v"], n)})
    r = mlo.drift(ref, cur, multivariate=True, save=False)
    assert not r.dataset_drift  # every marginal is the same
    mv = r.multivariate
    assert mv["method"] == "domain_classifier" and mv["statistic"] > 0.8 and mv["drifted"]
    assert not r.passed and "domain classifier" in r.to_text()
    same = mlo.drift(ref, ref.sample(frac=1, random_state=1), multivariate=True, save=False).multivariate
    assert 0.4 < same["statistic"] < 0.55 and not same["drifted"]


def test_progress_bar_on_request_and_not_on_small_data(capsys):
    pytest.importorskip("tqdm")
    ref, cur = frames(6, 500, drifted=0)
    mlo.drift(ref, cur, save=False)
    assert "drift" not in capsys.readouterr().err
    mlo.drift(ref, cur, progress=True, save=False)
    err = capsys.readouterr().err
    assert "drift:   0%" in err and "0/6 [" in err  # the bar is cleared once done
