"""The example notebooks: executed with nbval (cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their stored
outputs) and through ``mlo demo``."""

from __future__ import annotations

import importlib.util
import os
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


@pytest.mark.kernel
def test_notebooks_pass_nbval(tmp_path):
    _need_notebook_deps()
    need(importlib.util.find_spec("nbval") is not None, "nbval is not installed (pip install -e '.[dev]')")
    home = tmp_path / "ws" / ".mlo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLO_", "PYTEST_"))}
    env["MLO_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", str(NOTEBOOKS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    code_cells = sum(
        c.cell_type == "code" for p in NOTEBOOKS.glob("*.ipynb") for c in nbformat.read(p, 4).cells
    )
    assert f"{code_cells} passed" in output and "failed" not in output, output[-3000:]
    # the notebook's runs went to MLO_HOME, not into the repository or the working folder
    assert (home / "mlo.db").is_file()
    assert not (tmp_path / ".mlo").exists() and not (NOTEBOOKS / ".mlo").exists()


@pytest.mark.kernel
def test_demo_runs_the_churn_notebook(tmp_path, monkeypatch):
    _need_notebook_deps()
    from mlo.demo import run_demo

    demo = tmp_path / "demo"
    # run_demo points MLO_HOME (and MLO_NOTEBOOK) at its own workspace: set them here so they are restored
    monkeypatch.setenv("MLO_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MLO_NOTEBOOK", "")
    lines: list[str] = []
    assert run_demo(demo, NOTEBOOKS, log=lines.append) == 0
    assert os.environ["MLO_HOME"] == str(demo / ".mlo")

    df = mlo.runs(experiment="churn", order_by="start_time asc")
    assert df.name.tolist() == ["baseline", "forest-d4", "forest-d8"]
    assert df.status.tolist() == ["finished"] * 3
    assert mlo.runs().experiment.unique().tolist() == ["churn"]

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

    forest = mlo.get_run(df.run_id.iloc[2])
    assert len(forest.history("auc")) == 10
    assert [a.path for a in forest.artifacts] == ["mlo/context.json", "roc.png"]  # context: cells before the run
    assert forest.artifact("roc.png").read_bytes().startswith(b"\x89PNG")

    out = demo / "churn.out.ipynb"
    assert out.is_file() and (demo / ".mlo" / "mlo.db").is_file()
    executed = nbformat.read(out, as_version=4)
    assert any("n_customers = 4000" in c.source for c in executed.cells)  # papermill's injected parameters

    text = "\n".join(lines)
    assert "Where the results are" in text
    assert str(demo / ".mlo") in text and str(out) in text
    for name in ("baseline", "forest-d4", "forest-d8"):
        assert name in text
    assert f"mlo show {df.run_id.iloc[0][:10]} --cells" in text  # points at the baseline, the run with cells
