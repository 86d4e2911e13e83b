"""The lineage graph: what is recorded when, how references resolve, and how it renders and exports."""

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.data import lineage as lineage_mod


def frame(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, 2, n)})


def labels(nodes):
    return sorted(n.label for n in nodes)


def test_inputs_and_outputs_of_runs(ws):
    raw = mlo.snapshot(frame(), "raw")  # outside a run: in memory for the runs that follow
    with mlo.start_run("prepare") as prepare:
        df = mlo.load_snapshot("raw")
        train = mlo.snapshot(df.iloc[:15], "train", role="output")
        mlo.snapshot(df.iloc[15:], "test", role="output")
    with mlo.start_run("fit") as fit:
        mlo.load_snapshot("train")
        mlo.snapshot(frame(3), "preds", role="output")

    lin = mlo.lineage(prepare.id)
    assert lin.root.kind == "run" and lin.root.label == "prepare"
    assert labels(lin.upstream()) == ["raw@1"]
    assert labels(lin.downstream()) == ["fit", "preds@1", "test@1", "train@1"]
    assert labels(lin.downstream(kind="snapshot")) == ["preds@1", "test@1", "train@1"]

    lin = mlo.lineage("snapshot:preds")
    assert labels(lin.upstream()) == ["fit", "prepare", "raw@1", "train@1"]
    assert lin.downstream() == []
    # an edge per relation, pointing the way the data flows
    rel = {(lin.nodes[e.src].label, lin.nodes[e.dst].label, e.relation) for e in lin.edges}
    assert rel == {
        ("raw@1", "prepare", "input"),
        ("prepare", "train@1", "output"),
        ("train@1", "fit", "input"),
        ("fit", "preds@1", "output"),
    }
    # the same graph by every kind of reference
    for ref in (
        f"run:{fit.id}",
        fit.id[:10],
        "train",
        "train@1",
        f"snapshot:train@{train.digest[:8]}",
        train.id,
    ):
        assert mlo.lineage(ref).root.id in {f"run:{fit.id}", train.node}
    assert mlo.lineage(raw.ref).root.id == raw.node
    assert mlo.lineage("raw", depth=1).downstream()[0].label == "prepare"
    assert len(mlo.lineage("raw", depth=1).downstream()) == 1


def test_a_run_that_names_no_input_gets_the_data_in_memory(sqlite_ws):
    mlo.snapshot(frame(), "features")
    mlo.snapshot(frame(seed=1), "features")  # v2 replaces v1 in memory
    mlo.snapshot(frame(5), "labels")
    with mlo.start_run("a") as a:
        pass
    with mlo.start_run("b") as b:
        mlo.snapshot(frame(7), "explicit")  # b names its own input
    assert labels(mlo.lineage(a.id).upstream()) == ["features@2", "labels@1"]
    assert labels(mlo.lineage(b.id).upstream()) == ["explicit@1"]
    mlo.data.snapshots.clear_scope()
    with mlo.start_run("c") as c:
        pass
    assert mlo.lineage(c.id).upstream() == []


def test_loading_inside_a_run_links_at_once(sqlite_ws):
    mlo.snapshot(frame(), "d")
    run = mlo.start_run("live")
    mlo.load_snapshot("d@1")
    assert labels(mlo.lineage(run.id).upstream()) == ["d@1"]  # visible while the run is still going
    mlo.end_run()


def test_other_kinds_plug_in(sqlite_ws):
    """Other parts of mlo (the registry, reports) add node kinds; unknown nodes still show."""
    with mlo.start_run("train") as run:
        mlo.snapshot(frame(), "train-data")
    rid = sqlite_ws.reports.save("drift", {"share": 0.1}, {"columns": []}, run_id=run.id, passed=True)
    sqlite_ws.lineage.link(
        [(f"run:{run.id}", "model:churn/1", "model"), (f"run:{run.id}", f"report:{rid}", "report")]
    )
    lin = mlo.lineage(run.id)
    kinds = {n.kind: n for n in lin.downstream()}
    assert kinds["report"].label == "drift report" and kinds["report"].detail == "passed"
    assert kinds["model"].label == "churn/1"  # no describer registered for models here: shown by its id

    lineage_mod.register_kind(
        "widget",
        resolve=lambda ws, text: f"widget:{text}",
        describe=lambda ws, ids: {i: {"label": f"W{i}", "detail": "d"} for i in ids},
    )
    try:
        sqlite_ws.lineage.link([(f"run:{run.id}", "widget:7", "made")])
        lin = mlo.lineage("widget:7")
        assert lin.root.label == "W7" and labels(lin.upstream()) == ["train", "train-data@1"]
    finally:
        lineage_mod._RESOLVE.pop("widget")
        lineage_mod._DESCRIBE.pop("widget")


def test_bad_references(sqlite_ws):
    with pytest.raises(mlo.InvalidInput, match="unknown lineage node kind 'dataset'"):
        mlo.lineage("dataset:x")
    with pytest.raises(mlo.NotFound, match="no snapshot named 'nothing'"):
        mlo.lineage("nothing")
    with pytest.raises(mlo.NotFound, match="no run with id"):
        mlo.lineage("run:0123456789")
    with pytest.raises(mlo.InvalidInput):
        mlo.lineage("  ")


def _fan_out(n_runs: int):
    mlo.snapshot(frame(), "raw")
    with mlo.start_run("prepare"):
        mlo.load_snapshot("raw")
        mlo.snapshot(frame(10), "train", role="output")
    for i in range(n_runs):
        with mlo.start_run(f"model-{i:02d}"):
            mlo.load_snapshot("train")
            mlo.snapshot(frame(2, seed=i), f"scores-{i:02d}", role="output")


def test_svg_is_valid_and_readable_at_30_nodes(sqlite_ws):
    _fan_out(14)  # raw, prepare, train, 14 runs, 14 outputs = 31 nodes
    lin = mlo.lineage("train")
    assert len(lin.nodes) == 31
    svg = lin.to_svg()
    root = ET.fromstring(svg)  # well-formed XML
    width, height = float(root.get("width")), float(root.get("height"))
    assert width < 1800 and height < 900  # fits a notebook without becoming a ribbon
    boxes = []
    for rect in root.iter("{http://www.w3.org/2000/svg}rect"):
        if rect.get("width") == "184":
            boxes.append(tuple(float(rect.get(k)) for k in ("x", "y", "width", "height")))
    assert len(boxes) == 31
    for i, (x1, y1, w1, h1) in enumerate(boxes):  # no two nodes overlap
        for x2, y2, w2, h2 in boxes[i + 1 :]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "model-13" in texts and "train@1" in texts
    html = lin._repr_html_()
    assert "Lineage of snapshot train@1" in html and "2 upstream · 28 downstream" in html
    assert len(html) < 60_000


def test_dot_json_and_text_exports(sqlite_ws):
    _fan_out(2)
    lin = mlo.lineage("scores-01")
    dot = lin.to_dot()
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert len(re.findall(r" -> ", dot)) == len(lin.edges) == 4
    assert 'label="input"' in dot and 'shape="cylinder"' in dot
    data = json.loads(lin.to_json())
    assert data["root"] == lin.root.id and len(data["nodes"]) == 5 and data["downstream"] == []
    assert {e["relation"] for e in data["edges"]} == {"input", "output"}
    text = lin.to_text()
    assert "snapshot train@1 --input--> run model-01" in text and "downstream: none" in text


def test_max_nodes_truncates_and_says_so(sqlite_ws):
    _fan_out(6)
    lin = mlo.lineage("train", max_nodes=5)
    assert len(lin.nodes) == 5 and lin.truncated
    assert "truncated" in lin._repr_html_() and "truncated" in lin.to_text()
