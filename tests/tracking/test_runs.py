import math

import pytest

import mlo
from mlo.errors import InvalidInput, NotFound


def test_run_lifecycle_and_context_manager(ws):
    with mlo.start_run("baseline", experiment="churn") as run:
        assert mlo.active_run() == run
        assert run.status == "running"
    assert mlo.active_run() is None
    assert run.status == "finished"
    assert run.name == "baseline" and run.experiment == "churn"
    assert run.end_time >= run.start_time and run.duration >= 0


def test_exception_in_block_marks_run_failed(ws):
    with pytest.raises(ZeroDivisionError):
        with mlo.start_run("boom") as run:
            1 / 0  # noqa: B018
    assert run.status == "failed"


def test_start_end_and_explicit_status(ws):
    run = mlo.start_run()
    assert run.name.startswith("run-")
    mlo.end_run("killed")
    assert run.status == "killed"
    with pytest.raises(InvalidInput, match="status"):
        mlo.end_run("weird")


def test_second_run_needs_nested(ws):
    with mlo.start_run("outer") as outer:
        with pytest.raises(InvalidInput, match="still active"):
            mlo.start_run("inner")
        with mlo.start_run("inner", nested=True) as inner:
            assert mlo.active_run() == inner
        assert inner.parent_id == outer.id
        assert mlo.active_run() == outer


def test_params_round_trip_with_types_and_overwrite(ws):
    with mlo.start_run(params={"C": 1.0, "n": 3}) as run:
        mlo.log_params({"model": "rf", "flag": True, "layers": [1, 2], "none": None, "obj": object})
        mlo.log_param("n", 5)
    p = run.params
    assert p["C"] == 1.0 and p["n"] == 5 and p["model"] == "rf" and p["flag"] is True
    assert p["layers"] == [1, 2] and p["none"] is None and "object" in p["obj"]


def test_metrics_steps_history_and_latest(ws):
    with mlo.start_run() as run:
        for i in range(5):
            mlo.log_metric("loss", 1.0 / (i + 1))
        mlo.log_metric("acc", 0.5, step=10)
        mlo.log_metric("acc", 0.4, step=2)  # an older step logged late does not become the latest
        mlo.log_metrics({"f1": 0.7, "nan": float("nan")}, step=3)
    h = run.history("loss")
    assert list(h.columns) == ["step", "value", "timestamp"]
    assert h.step.tolist() == [0, 1, 2, 3, 4]
    assert h.value.iloc[-1] == pytest.approx(0.2)
    assert str(h.timestamp.dt.tz) == "UTC"
    m = run.metrics
    assert m["acc"] == 0.5 and m["f1"] == 0.7 and math.isnan(m["nan"]) and m["loss"] == pytest.approx(0.2)
    with pytest.raises(NotFound, match="has no metric 'nope'"):
        run.history("nope")


def test_bad_metric_values_are_refused_whole(ws):
    with mlo.start_run() as run:
        with pytest.raises(InvalidInput, match="must be a number"):
            mlo.log_metric("acc", "high")
        with pytest.raises(InvalidInput, match="must be a number"):
            mlo.log_metrics({"good": 1.0, "bad": None})
        with pytest.raises(InvalidInput, match="step must be an integer"):
            mlo.log_metric("acc", 1.0, step=1.5)
        with pytest.raises(InvalidInput, match="non-empty string"):
            mlo.log_metric("", 1.0)
        mlo.log_metric("kept", 1.0)
    assert run.metrics == {"kept": 1.0}


def test_metrics_flush_by_size_while_running(ws, monkeypatch):
    monkeypatch.setenv("MLO_FLUSH_POINTS", "100")
    with mlo.start_run() as run:
        for i in range(250):
            mlo.log_metric("x", i)
        # two flushes happened by size: another reader sees them without an explicit flush
        assert ws.runs.latest_metrics(run.id)["x"] == 199
    assert len(run.history("x")) == 250


def test_arrays_of_points_are_logged_in_one_call(ws):
    import numpy as np

    losses = np.linspace(1.0, 0.1, 7)
    with mlo.start_run() as run:
        mlo.log_metric("loss", losses[:4])  # steps 0..3
        mlo.log_metric("loss", list(losses[4:]))  # go on from the last step: 4..6
        mlo.log_metrics({"a": np.arange(3.0), "b": [np.nan, 2.0, 1.0]}, step=np.array([10, 5, 20]))
        mlo.log_metrics({"a": [7.0, 8.0]}, step=30)  # the first step, then one per point
        mlo.log_metric("a", 9.0)  # a single point goes on after the arrays
    h = run.history("loss")
    assert h.step.tolist() == list(range(7)) and h.value.tolist() == losses.tolist()
    assert run.history("a").step.tolist() == [10, 5, 20, 30, 31, 32]
    assert run.history("a").value.tolist() == [0.0, 1.0, 2.0, 7.0, 8.0, 9.0]
    assert math.isnan(run.history("b").value.iloc[0])
    assert run.metrics["loss"] == losses[-1] and run.metrics["a"] == 9.0 and run.metrics["b"] == 1.0


def test_bad_arrays_of_points_are_refused_whole_and_start_no_run(ws):
    import numpy as np

    cases = [
        (lambda: mlo.log_metric("q", ["high"]), "numbers only"),
        (lambda: mlo.log_metric("q", ["1.5"]), "numbers only"),  # text, as for a single point
        (lambda: mlo.log_metric("q", [1.0, None]), "numbers only"),
        (lambda: mlo.log_metric("q", np.ones((2, 2))), "1-D array"),
        (lambda: mlo.log_metric("q", [1.0, 2.0], step=[1.5, 2.5]), "array of integers"),
        (lambda: mlo.log_metric("q", [1.0], step=[1, 2]), "one per point"),
        (lambda: mlo.log_metrics({"a": [1.0], "b": [1.0, 2.0]}), "one length"),
        (lambda: mlo.log_metrics({"a": [1.0], "b": 2.0}), "every metric as an array"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()
    assert mlo.active_run() is None
    with mlo.start_run() as run:
        with pytest.raises(InvalidInput, match="one length"):
            mlo.log_metrics({"kept": [1.0], "b": [1.0, 2.0]})
        mlo.log_metric("kept", [1.0, 2.0])
    assert run.history("kept").value.tolist() == [1.0, 2.0]


def test_small_and_large_flushes_store_the_same_points(ws, monkeypatch):
    """A few points are packed without numpy, many with it: the stored series and latest values are equal."""
    from mlo.tracking import metrics

    def log() -> str:
        with mlo.start_run() as run:
            for i, v in enumerate([0.5, float("nan"), -1e300, 3.0]):
                mlo.log_metric("x", v, step=[3, 1, 3, 2][i], timestamp=1_700_000_000.123456 + i)
            mlo.log_metric("y", 1.0, timestamp=1_700_000_000.5)
            mlo.log_metric("y", 2.0, step=0, timestamp=1_700_000_000.5)  # same step and time: the later wins
        return run.id

    small = log()
    monkeypatch.setattr(metrics, "SMALL_FLUSH", -1)
    large = log()
    for key in ("x", "y"):
        a, b = ws.runs.metric_series(small, key), ws.runs.metric_series(large, key)
        assert [p.tobytes() for p in a] == [p.tobytes() for p in b]
    from sqlalchemy import select

    from mlo.store import schema

    lm = schema.latest_metrics
    q = select(lm.c.key, lm.c.value, lm.c.step, lm.c.timestamp, lm.c.n).order_by(lm.c.key)
    with ws.db.read() as conn:
        rows = {rid: [tuple(r) for r in conn.execute(q.where(lm.c.run_id == rid))] for rid in (small, large)}
    assert rows[small] == rows[large] and rows[small][1][1:3] == (2.0, 0)


def test_logging_without_a_run_starts_one(ws):
    mlo.log_metric("auto", 1.0)
    run = mlo.active_run()
    assert run is not None and run.status == "running"
    mlo.end_run()
    assert run.metrics == {"auto": 1.0}


def test_tags(ws):
    with mlo.start_run(tags={"team": "core"}) as run:
        mlo.set_tags({"stage": "dev", "n": 3})
        mlo.set_tag("stage", "prod")
    assert run.tags == {"team": "core", "stage": "prod", "n": "3"}


def test_get_run_by_id_and_prefix(ws):
    with mlo.start_run("a") as run:
        pass
    assert mlo.get_run(run.id) == run
    assert mlo.get_run(run.id[:-4]).id == run.id
    with pytest.raises(NotFound, match="no run with id"):
        mlo.get_run("doesnotexist")
    with pytest.raises(InvalidInput):
        mlo.get_run("")


def test_experiments_separate_runs(ws):
    mlo.set_experiment("one")
    with mlo.start_run("r1"):
        pass
    with mlo.start_run("r2", experiment="two"):
        pass
    assert mlo.runs(experiment="one").name.tolist() == ["r1"]
    assert sorted(mlo.runs().experiment) == ["one", "two"]
    with pytest.raises(NotFound, match="no experiment named"):
        mlo.runs(experiment="three")


def test_run_to_dict_and_html(ws):
    with mlo.start_run("shown", params={"C": 1}) as run:
        mlo.log_metric("acc", 0.9)
    d = run.to_dict()
    assert d["params"] == {"C": 1} and d["metrics"] == {"acc": 0.9} and d["status"] == "finished"
    html = run._repr_html_()
    assert "shown" in html and "finished" in html and "acc" in html and "<script" not in html
