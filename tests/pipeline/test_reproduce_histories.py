"""mlo reproduce on notebook histories driven cell by cell through real kernels: every hazard a person's habits
create (out-of-order and edited cells, failures, changed and deleted data, local modules, reloads, sweeps,
unseeded randomness), each with the verdict it must give, and the workspace left as it was."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from histories import CSV_CHANGED, FIT, LOAD, READ, SCENARIOS, cell, delete, find_run, play, write
from kernel_session import KernelSession

import mlo
from mlo.cli import main
from mlo.pipeline.reproduce import reproduce

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_verdict_is_right(scenario, sqlite_ws, tmp_path):
    out = play(scenario, tmp_path)
    assert out.status == scenario.status, out.summary
    assert scenario.causes <= out.causes, out.summary
    assert out.status != "reproduced" or scenario.status == "reproduced"  # never a false "reproduced"


def _state():
    """What a person sees of the workspace: runs, snapshot versions, model versions, aliases, lineage."""
    from sqlalchemy import select

    from mlo.store import schema as s

    ws = mlo.workspace.current()
    runs = mlo.runs()
    with ws.db.read() as conn:
        lineage = sorted(conn.execute(select(s.lineage.c.src, s.lineage.c.dst)).all())
        aliases = sorted(conn.execute(select(s.model_aliases)).all())
    return (
        sorted(runs.run_id),
        mlo.snapshots()[["name", "version"]].values.tolist(),
        mlo.models()[["name", "version"]].values.tolist() if len(mlo.models()) else [],
        aliases,
        lineage,
    )


def test_a_reproduction_leaves_the_workspace_as_it_was(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n")
    with KernelSession(tmp_path) as k:
        k.ok(LOAD)
        k.ok(READ)
        k.ok(
            "import numpy as np, mlo\nfrom sklearn.linear_model import LogisticRegression\n"
            "X = np.arange(40.0).reshape(-1, 2)\ny = (X[:, 0] > 20).astype(int)"
        )
        k.ok("%%mlo run first\n%mlo metric a=1")
        k.ok("first = mlo.runs(where=\"name = 'first'\").run_id[0]")
        k.ok(
            "%%mlo run train\nmlo.snapshot(df.assign(z=1), 'features')\n"
            "model = LogisticRegression().fit(X, y)\nacc = float(model.score(X, y))\n"
            "%mlo metric acc=$acc\nmv = mlo.register_model(model, 'clf')\n"
            "mlo.set_alias('clf', 'staging', mv.version)\ninner = mlo.reproduce(first)\n"
            "assert inner.status in ('reproduced', 'skipped'), inner.explain()"
        )
    run_id = find_run("train")
    (tmp_path / "raw.csv").write_text("x\n5\n6\n7\n")  # the replay's snapshot of features differs now
    before = _state()
    rep = reproduce(run_id)
    assert rep.reproduced, rep.explain()
    assert _state() == before  # no run listed, no snapshot or model version, no alias moved, no lineage
    replay = mlo.get_run(rep.reproduction)
    assert replay.tags["mlo.reproduces"] == run_id
    assert mlo.get_run(rep.compared).tags["mlo.reproduces"] == run_id  # its children too
    assert "mlo/models/clf.json" in [a.path for a in mlo.get_run(rep.compared).artifacts]
    assert len(mlo.runs(where=f"tags.mlo.reproduces = '{run_id}'", include="reproductions")) == 2
    # the inner reproduction ran once, in the original (its replay and the replayed "first"); the outer
    # replay skipped it
    first = find_run("first")
    assert len(mlo.runs(where=f"tags.mlo.reproduces = '{first}'", include="reproductions")) == 2
    assert not list(tmp_path.glob("mlo-reproduce-*"))


def test_the_replay_is_a_slice_and_errors_cite_the_original_cells(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n")
    with KernelSession(tmp_path) as k:
        k.ok(LOAD)
        k.ok("import time\ntime.sleep(2)\nfigure_done = True")  # In [2]: slow, and nothing the run uses
        k.ok(READ)  # In [3]
        k.ok("unused = [i ** 2 for i in range(10)]")
        k.ok(FIT)
    run_id = find_run("fit")
    rep = reproduce(run_id)
    assert rep.reproduced and rep.cells == {"history": 5, "replayed": 3, "replaced": 0}
    assert rep.seconds["replay"] < 20
    nb = json.loads(mlo.get_run(rep.reproduction).artifact("notebook.ipynb").read_text())
    sources = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any("sleep" in "".join(s) for s in sources)  # the slow cell is not replayed

    (tmp_path / "raw.csv").unlink()
    rep = reproduce(run_id)
    assert rep.status == "failed" and rep.exit_code == 1
    assert "FileNotFoundError in In [3] of the original notebook" in rep.message
    assert [c.kind for c in rep.causes][0] == "missing-input" and rep.causes[0].cell == "In [3]"


def test_warnings_at_capture_name_the_cause_once_with_the_fix(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n")
    saved = tmp_path / "explore.ipynb"
    env = {"MLO_NOTEBOOK": str(saved)}
    with KernelSession(tmp_path, env=env) as k:
        k.ok(LOAD, cell_id="load")
        k.ok(READ, cell_id="read")
        k.ok("factor = 2", cell_id="factor")
        k.ok("import numpy as np\nnoise = float(np.random.rand())", cell_id="noise")
        # the notebook as saved: "factor" edited since it ran, "noise" deleted
        import nbformat

        nb = nbformat.v4.new_notebook()
        for cid, src in [("load", LOAD), ("read", READ), ("factor", "factor = 3"), ("run", "")]:
            c = nbformat.v4.new_code_cell(src)
            c.id = cid
            nb.cells.append(c)
        nbformat.write(nb, saved)
        first = k.ok(
            "%%mlo run fit\nm = float(df.x.mean()) * factor + noise\n%mlo metric m=$m", cell_id="run"
        )
        again = k.ok("%%mlo run fit2\nm = float(df.x.mean()) * factor + noise\n%mlo metric m=$m")
    text = "\n".join(first.warnings)
    assert "In [2] reads raw.csv, which no snapshot keeps" in text
    assert "In [3], which binds `factor` and has been edited since it ran" in text
    assert "In [4], which binds `noise`, `np` and is no longer in the notebook" in text
    assert "In [4] uses randomness without a seed" in text
    assert "%mlo snapshot raw.csv" in first.stderr and "np.random.seed(0)" in first.stderr
    assert again.warnings == []  # once per cause


def test_a_model_registered_after_its_run_cell_links_to_that_run(sqlite_ws, tmp_path):
    with KernelSession(tmp_path) as k:
        k.ok("%load_ext mlo\nimport numpy as np, mlo\nfrom sklearn.linear_model import LogisticRegression")
        k.ok("X = np.arange(40.0).reshape(-1, 2)\ny = (X[:, 0] > 20).astype(int)")
        k.ok("%%mlo run train\nmodel = LogisticRegression(C=0.5).fit(X, y)\n%mlo metric acc=1.0")
        k.ok("%%mlo run other\n%mlo metric acc=0.5")
        k.ok("%mlo register model --name clf")
        k.ok("mv = mlo.register_model(model, 'clf')")
        k.ok("copy = LogisticRegression().fit(X, y)")  # fitted outside any run
        k.ok("mv3 = mlo.register_model(copy, 'clf')")
        bad = k.run("%mlo register model --name clf --run nope")
    train = find_run("train")
    versions = mlo.models("clf").sort_values("version")
    assert versions.run_id.tolist()[:2] == [train, train]
    assert versions.run_id.isna().tolist()[2]
    assert mlo.get_run(train).id in str(mlo.lineage(f"model:clf@{1}").to_dict())
    assert bad.status == "error" and bad.ename == "UsageError" and "nope" in bad.evalue


def test_cli_json_and_a_run_that_cannot_be_rebuilt(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n")
    with KernelSession(tmp_path) as k:
        k.ok(LOAD)
        k.ok(READ)
        k.ok(FIT)
    (tmp_path / "raw.csv").write_text(CSV_CHANGED)
    r = CliRunner().invoke(main, ["reproduce", find_run("fit")[:8], "--format", "json"])
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    assert out["status"] == "different" and out["reproduced"] is False
    assert {c["kind"] for c in out["causes"]} >= {"input", "diverged"}
    assert out["runs"][0]["checks"][-1]["key"] == "mean"
    r = CliRunner().invoke(main, ["reproduce", find_run("fit")])
    assert r.exit_code == 1 and "raw.csv, which changed since the run" in r.stdout and "fix:" in r.stdout
    with mlo.start_run("script") as bare:
        mlo.log_metric("m", 1.0)
    r = CliRunner().invoke(main, ["reproduce", bare.id, "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["status"] == "error"


def test_history_survives_reload_and_recovers_cells_before_load(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n")
    with KernelSession(tmp_path) as k:
        k.ok("import pandas as pd")
        k.ok(READ)
        k.ok("%load_ext mlo")
        k.ok("%reload_ext mlo")
        k.ok(FIT)
    from mlo.tracking.history import History

    h = History.of_run(mlo.get_run(find_run("fit")))
    assert [(c.execution_count, c.recovered, c.success) for c in h.cells] == [
        (1, True, None),
        (2, True, None),
        (3, False, True),
        (4, False, True),
        (5, False, True),
    ]
    assert list(h.cells[1].reads) == [str(tmp_path / "raw.csv")]  # named in the recovered cell
    assert h.cells[-1].fingerprints["m"]["type"] == "float"


def test_a_deleted_data_file_and_a_snapshot_taken_inside_the_run(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text("x\n1\n2\n3\n4\n")
    with KernelSession(tmp_path) as k:
        k.ok(LOAD)
        k.ok(READ)
        k.ok("df = df[df.x > 1]")
        k.ok("%%mlo run fit\nimport mlo\nmlo.snapshot(df, 'clean')\nm = float(df.x.mean())\n%mlo metric m=$m")
    rep_before = reproduce(find_run("fit"))
    assert rep_before.reproduced and rep_before.cells["replaced"] == 0
    (tmp_path / "raw.csv").unlink()
    rep = reproduce(find_run("fit"))
    assert rep.reproduced and rep.cells["replaced"] == 1, rep.explain()
    assert any("replaced by the snapshot" in n and "clean@1" in n for n in rep.notes)


def test_edited_module_and_data_in_one_history(sqlite_ws, tmp_path):
    """The module is restored as imported; the changed data file is the reported cause."""
    steps = [
        write("features.py", "def double(x):\n    return x * 2\n"),
        cell(LOAD),
        cell(READ),
        cell("from features import double"),
        cell("%%mlo run fit\nm = float(double(df.x).mean())\n%mlo metric mean=$m"),
        write("features.py", "def double(x):\n    return x * 7\n"),
        delete("raw.csv"),
        write("raw.csv", CSV_CHANGED),
    ]
    from histories import Scenario

    out = play(Scenario("both", "", steps, "fit", "different", {"input"}), tmp_path)
    assert out.status == "different" and "input" in out.causes and "code" not in out.causes, out.summary


def test_llm_calls_are_replayed_from_the_record_when_the_endpoint_is_gone(sqlite_ws, tmp_path):
    """A run that asked an LLM reproduces without the endpoint: the replay answers from what the run recorded,
    byte for byte (mlo.llm's record/replay), so the metric comes out the same."""
    from mlo.llm.fake_endpoint import FakeEndpoint

    with FakeEndpoint() as endpoint, KernelSession(tmp_path) as k:
        k.ok("%load_ext mlo\nimport mlo.llm")
        k.ok(f"URL = {endpoint.url!r}")
        k.ok(
            "%%mlo run ask\nreply = mlo.llm.chat('Say hi', base_url=URL, model='fake-model', api_key='k')\n"
            "n = len(reply.text)\n%mlo metric chars=$n"
        )
        asked = len(endpoint.requests)
    assert asked == 1
    rep = reproduce(find_run("ask"))  # the endpoint is closed: a live call would fail
    assert rep.reproduced, rep.explain()
    assert [c.key for c in rep.checks] == ["chars"]
