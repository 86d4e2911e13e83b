"""``GET /mlo/api/compare``: the compare widget's chart data over REST (what the ``mlo ui`` compare page draws),
and what a hostile stranger sends it: unknown views, metrics and params, malformed filters and brushes."""

from __future__ import annotations

import json

import pytest

import mlo
from mlo.ui.api import answer


@pytest.fixture
def sweep(sqlite_ws):
    ids = []
    for i in range(9):
        params = {"lr": [0.1, 0.01, 0.001][i % 3], "model": "rf" if i % 2 else "lin", "seed": i // 3}
        if i % 2:
            params["depth"] = 3 + i
        with mlo.start_run(f"r{i}", experiment="sweep", params=params) as run:
            for step in range(4):
                mlo.log_metric("loss", 1.0 / (step + 1) + i / 100, step=step)
            mlo.log_metric("acc", 0.5 + i / 40)
        ids.append(run.id)
    with mlo.start_run("other", experiment="elsewhere", params={"lr": 1.0}):
        mlo.log_metric("acc", 0.1)
    return sqlite_ws.home, ids


def get(home, **query):
    q = {k: v if isinstance(v, list) else [str(v)] for k, v in query.items()}
    reply = answer(home, "compare", q)
    return reply.status, reply.data


def test_the_views_answer_the_widgets_chart_data(sweep):
    home, ids = sweep
    status, data = get(home, experiment="sweep")
    assert status == 200 and data["total"] == 9
    assert data["metrics"] == ["metrics.acc", "metrics.loss"] and "params.lr" in data["groups"]
    status, data = get(home, view="scatter", experiment="sweep", metric="metrics.acc", param="params.lr")
    assert status == 200 and data["x"] == "lr" and len(data["points"]) == 9
    assert {p["id"] for p in data["points"]} == set(ids)  # the other experiment is left out
    status, data = get(home, view="scatter", experiment="sweep", metric="metrics.acc", group="params.model")
    assert {p["group"] for p in data["points"]} == {"rf", "lin"}
    status, data = get(home, view="parallel", experiment="sweep", metric="metrics.acc")
    assert data["best"] == ids[8] and len(data["rows"]) == 9  # runs without depth keep their line
    assert data["state"]["axes"] == ["params.depth", "params.lr", "params.model", "params.seed"]
    status, data = get(
        home,
        view="parallel",
        experiment="sweep",
        metric="metrics.acc",
        axis=["params.seed", "params.lr"],
        log_axis=["params.lr"],
    )
    assert data["state"] == {"axes": ["params.seed", "params.lr"], "log": ["params.lr"]}
    status, data = get(home, view="importance", experiment="sweep", metric="metrics.acc")
    assert status == 200 and data["kind"] == "importance" and data["runs"] == 9
    status, data = get(
        home, view="histories", experiment="sweep", runs=",".join(ids[:4]), group="params.model"
    )
    assert data["grouped"] and {line["color_key"] for line in data["charts"][0]["lines"]} == {"rf", "lin"}
    assert data["values"][0]["metric"] == "acc"
    status, data = get(home, view="histories", experiment="sweep", runs=[ids[0], ids[1][:10]])
    assert [line["id"] for line in data["charts"][0]["lines"]] == ids[:2] and data["live"] == []


def test_brushes_become_a_filter_and_a_count(sweep):
    home, ids = sweep
    brush = {"params.lr": {"lo": 0.005, "hi": 0.2}, "params.depth": {"lo": 0, "hi": 100, "missing": True}}
    status, data = get(home, view="brush", experiment="sweep", brush=json.dumps(brush))
    assert status == 200 and data["total"] == 6
    assert set(data["runs"]) == {ids[i] for i in range(9) if i % 3 != 2}
    assert "params.lr >= 0.005" in data["where"] and "params.depth is null" in data["where"]
    status, data = get(
        home, view="brush", experiment="sweep", where="params.model = 'rf'", brush=json.dumps(brush)
    )
    assert data["total"] == 3  # inside the brushes and the page's filter


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({"view": "drop"}, "view is one of"),
        ({"view": "scatter", "metric": "metrics.acc'); drop table runs; --"}, "no metric"),
        ({"view": "scatter", "metric": "metrics.acc", "param": "params.nope"}, "no param 'params.nope'"),
        ({"view": "histories", "group": "tags.`x`"}, "no group"),
        ({"view": "scatter", "where": "params.lr >>> 1"}, ""),
        ({"view": "brush", "brush": "{not json"}, "brush takes JSON"),
        ({"view": "brush", "brush": '{"params.lr": {"lo": "1; drop"}}'}, "finite numbers"),
        ({"view": "brush", "brush": '{"run_id": {"values": ["x"]}}'}, "cannot brush"),
        ({"view": "brush", "brush": "[1]"}, "a brush is a dict"),
        ({"view": "histories", "runs": "zzzzzzzz"}, ""),
        ({"view": "histories", "runs": ",".join(f"r{i}" for i in range(65))}, "at most 64 runs"),
    ],
)
def test_hostile_queries_are_one_line_errors_and_change_nothing(sweep, query, text):
    home, ids = sweep
    status, data = get(home, experiment="sweep", **query)
    assert 400 <= status < 500, data
    assert text in data["error"] and "\n" not in data["error"]
    assert get(home, experiment="sweep")[1]["total"] == 9  # nothing lost
