"""Pipelines executed for real: papermill kernels, the run cache, gates, killed stages, parallel and Dask."""

from __future__ import annotations

import json
import os
import textwrap
import xml.etree.ElementTree as ET

import nbformat
import pandas as pd
from click.testing import CliRunner
from notebooks_on_disk import write_notebook

import mlo
from mlo.cli import main
from mlo.pipeline import run
from strict import need


def statuses(result):
    return {t.name: t.status for t in result.tasks}


def stage_runs(name_prefix):
    df = mlo.runs(where=f"name like '{name_prefix}%'")
    return df.sort_values("start_time").reset_index(drop=True)


def test_run_cache_and_what_invalidates_it(project):
    first = run(project / "pipeline.yaml", log=None)
    assert first.exit_code == 0, first.tasks
    assert statuses(first) == dict.fromkeys(["prepare", "train[C=0.5]", "train[C=2.0]", "validate"], "ok")

    # every stage is a run, child of the pipeline run, with its params, notebook and outs
    trains = stage_runs("train[")
    assert sorted(trains["params.C"]) == [0.5, 2.0] and set(trains.status) == {"finished"}
    assert set(mlo.runs(where="name like 'pipeline:%'").run_id) == {first.run_id}
    train = mlo.get_run(trains.run_id[0])
    assert train.parent_id == first.run_id and train.metrics["score"] > 0
    assert "notebook.ipynb" in [a.path for a in train.artifacts]
    prepare = mlo.get_run(stage_runs("prepare").run_id[0])
    lin = mlo.lineage(prepare.id)
    assert sorted(n.label for n in lin.upstream()) == ["raw.csv@1"]
    assert "data-train.parquet@1" in [n.label for n in lin.downstream()]
    assert train.experiment == "shop"

    # nothing changed: everything from the cache, no kernel, no stage run, and no pipeline run for running nothing
    n_runs = len(mlo.runs())
    again = run(project / "pipeline.yaml", log=None)
    assert set(statuses(again).values()) == {"cached"} and again.run_id is None
    assert len(mlo.runs()) == n_runs
    assert all("cached (run" in t.message for t in again.tasks)

    # a deleted out is restored from the cache, byte for byte
    out = project / "data" / "train.parquet"
    data = out.read_bytes()
    out.unlink()
    r = run(project / "pipeline.yaml", log=None)
    assert set(statuses(r).values()) == {"cached"} and out.read_bytes() == data
    assert "restored 1 out" in r.tasks[0].message

    # outputs and execution counts are not code: still cached
    nb_path = project / "nb" / "train.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise")]
    nb.cells[1].execution_count = 42
    nbformat.write(nb, nb_path)
    assert set(statuses(run(project / "pipeline.yaml", log=None)).values()) == {"cached"}

    # a one-character code change re-runs that stage and what follows it, not what came before
    nb.cells[1].source = nb.cells[1].source.replace("* C", "*  C")
    nbformat.write(nb, nb_path)
    r = run(project / "pipeline.yaml", log=None)
    assert statuses(r) == {"prepare": "cached", "train[C=0.5]": "ok", "train[C=2.0]": "ok", "validate": "ok"}

    # a changed dep (raw.csv) re-runs from the first stage
    with open(project / "raw.csv", "a") as fh:
        fh.write("1000\n")
    os.utime(project / "raw.csv", ns=(1, 1))  # even an old timestamp does not fool the digest
    r = run(project / "pipeline.yaml", log=None)
    assert statuses(r)["prepare"] == "ok"
    # --force executes everything
    assert set(statuses(run(project / "pipeline.yaml", force=True, log=None)).values()) == {"ok"}


def test_a_gate_fails_its_stage_skips_dependants_and_exits_1(project):
    (project / "pipeline.yaml").write_text(
        (project / "pipeline.yaml").read_text()
        + "  report:\n    notebook: nb/train.ipynb\n    needs: [validate]\n"
    )
    junit = project / "junit.xml"
    r = run(project / "pipeline.yaml", params={"validate.min_score": 10**6}, junit=junit, log=None)
    assert r.exit_code == 1
    gate = next(t for t in r.tasks if t.name == "validate")
    assert gate.status == "gate" and gate.cell is not None
    assert (
        gate.message.startswith(f"gate failed in cell {gate.cell}: score ")
        and "below 1000000" in gate.message
    )
    assert statuses(r)["report"] == "skipped"
    assert mlo.get_run(gate.run_id).status == "failed"
    assert mlo.get_run(gate.run_id).tags["mlo.failure"] == gate.message
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "1",
        "0",
        "1",
    )
    failure = suite.find("testcase[@name='validate']/failure")
    assert failure.get("type") == "GateFailed" and "below 1000000" in failure.get("message")
    # the failing notebook is kept, with the error in it
    executed = nbformat.read(gate.notebook, as_version=4)
    assert any(o.get("ename") == "GateFailed" for c in executed.cells for o in c.get("outputs", []))


def test_an_error_or_a_killed_kernel_exits_2_and_retries_are_honoured(sqlite_ws, tmp_path):
    write_notebook(tmp_path / "boom.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    write_notebook(
        tmp_path / "flaky.ipynb",
        """
        import pathlib
        p = pathlib.Path("attempts.txt")
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        assert n >= 2, "first attempt fails"
    """,
    )
    write_notebook(tmp_path / "after.ipynb", "print('never')")
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent("""
        stages:
          boom: {notebook: boom.ipynb}
          flaky: {notebook: flaky.ipynb, retries: 1}
          after: {notebook: after.ipynb, needs: [boom]}
    """)
    )
    r = run(tmp_path / "pipeline.yaml", jobs=2, log=None)
    assert r.exit_code == 2
    boom = next(t for t in r.tasks if t.name == "boom")
    assert boom.status == "error" and "kernel died" in boom.message
    flaky = next(t for t in r.tasks if t.name == "flaky")
    assert flaky.status == "ok" and flaky.attempts == 2
    assert statuses(r)["after"] == "skipped"
    assert mlo.runs(where="name = 'boom'").status.tolist() == ["failed"]


def test_jobs_run_independent_notebooks_side_by_side(sqlite_ws, tmp_path):
    stages = {}
    for i in range(4):
        write_notebook(
            tmp_path / f"n{i}.ipynb",
            "import time, mlo\ntime.sleep(0.5)\nmlo.log_metric('i', i)",
            params="i = 0",
        )
        stages[f"s{i}"] = {"notebook": f"n{i}.ipynb", "params": {"i": i}}
    (tmp_path / "pipeline.yaml").write_text(json.dumps({"stages": stages}))
    r = run(tmp_path / "pipeline.yaml", jobs=4, log=None)
    assert r.exit_code == 0 and len(r.tasks) == 4
    runs = mlo.runs(where="name like 's%'")
    assert sorted(runs["metrics.i"]) == [0, 1, 2, 3]
    # they overlapped in time: each started before another had finished
    spans = sorted(zip(runs.start_time, runs.end_time, strict=True))
    assert any(spans[k + 1][0] < spans[k][1] for k in range(3))


def test_the_dask_executor_on_a_local_cluster(sqlite_ws, tmp_path):
    need(_has_dask(), "Dask is not installed (pip install 'mlo-workbench[dask]')")
    write_notebook(tmp_path / "sq.ipynb", "import mlo\nmlo.log_metric('sq', x * x)", params="x = 1")
    (tmp_path / "pipeline.yaml").write_text("stages:\n  sq: {notebook: sq.ipynb, matrix: {x: [2, 3]}}\n")
    r = run(tmp_path / "pipeline.yaml", executor="dask", jobs=2, log=None)
    assert r.exit_code == 0, r.tasks
    assert sorted(mlo.runs(where="name like 'sq[%'")["metrics.sq"]) == [4, 9]
    assert set(statuses(run(tmp_path / "pipeline.yaml", executor="dask", log=None)).values()) == {"cached"}


def _has_dask() -> bool:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        return False
    return True


def test_cli_pipeline_run_and_run_notebook(project):
    cli = CliRunner()
    r = cli.invoke(
        main, ["pipeline", "run", str(project / "pipeline.yaml"), "-j", "2", "-p", "prepare.rows=10"]
    )
    assert r.exit_code == 0, r.output
    assert "✓ prepare" in r.stdout and "pipeline passed: 4 ok" in r.stdout
    assert len(pd.read_parquet(project / "data" / "train.parquet")) == 10
    r = cli.invoke(
        main, ["pipeline", "run", str(project / "pipeline.yaml"), "-p", "validate.min_score=5", "-q"]
    )
    assert r.exit_code == 1 and r.stdout.startswith("pipeline gate failed"), r.output
    assert r.stderr.startswith("mlo: validate: gate failed in cell")
    r = cli.invoke(main, ["pipeline", "run", str(project / "nope.yaml")])
    assert r.exit_code == 2 and "no pipeline file" in r.stderr

    r = cli.invoke(main, ["run", str(project / "nb" / "train.ipynb"), "-p", "C", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    single = mlo.runs(where="name = 'train'").iloc[0]
    assert single["params.C"] == 3.0 and single["metrics.score"] > 0
    r = cli.invoke(main, ["run", str(project / "nb" / "train.ipynb"), "-p", "C", "'x'"])
    assert r.exit_code == 2 and "expects float" in r.stderr and r.stderr.count("\n") == 1


def test_stage_kernels_write_metrics_at_the_end_of_every_cell(sqlite_ws, tmp_path):
    """A kernel stopped hard at shutdown must not take the metrics it buffered with it."""
    write_notebook(
        tmp_path / "m.ipynb",
        "import mlo\nmlo.log_metric('auc', 0.75)",
        "from mlo import workspace\n"
        "stored = workspace.current().runs.latest_metrics(mlo.active_run().id)  # the store, not the buffer\n"
        "assert stored == {'auc': 0.75}, stored",
    )
    (tmp_path / "pipeline.yaml").write_text("stages:\n  m: {notebook: m.ipynb}\n")
    r = run(tmp_path / "pipeline.yaml", log=None)
    assert r.exit_code == 0, r.tasks[0].message
