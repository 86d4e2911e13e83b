"""The validation gate in a real notebook run: papermill executes a notebook in a fresh python3 kernel that
trains, registers and validates a model; a failed check stops the run at ``raise_for_failures()`` with
``GateFailed``, and the failing report is kept as evidence against the version."""

from __future__ import annotations

import os

import nbformat
import pytest

import mlo

papermill = pytest.importorskip("papermill")
from papermill.exceptions import PapermillExecutionError  # noqa: E402

SETUP = """\
import numpy as np, pandas as pd
import mlo
from mlo import checks
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
n = 3000
sex = pd.Series(rng.choice(["F", "M"], n), name="sex")
X = pd.DataFrame({"charges": rng.normal(np.where(sex == "F", 78.0, 62.0), 20.0), "tenure": rng.integers(1, 72, n)})
y = ((X.charges - 70) / 20 - (X.tenure - 36) / 20 + rng.normal(0, 0.5, n) > 0).astype(int)
run = mlo.start_run("gate", experiment="gate")
model = LogisticRegression().fit(X, y)
mv = mlo.register_model(model, "churn", input_example=X.head())
mlo.set_policy("production", validation=True)"""


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


def execute(tmp_path, nb, name):
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        reason = "no python3 Jupyter kernel (pip install ipykernel)"
        if os.environ.get("MLO_TEST_STRICT") == "1":
            pytest.fail(f"MLO_TEST_STRICT=1: {reason}", pytrace=False)
        pytest.skip(reason)
    assert os.environ.get("MLO_HOME"), "the kernel must be pointed at the test workspace"
    src, out = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, src)
    try:
        papermill.execute_notebook(
            str(src), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False
        )
    finally:
        executed = nbformat.read(out, as_version=4) if out.exists() else None
    return executed


def code_cells(tmp_path, name):
    return [
        c for c in nbformat.read(tmp_path / f"{name}.out.ipynb", as_version=4).cells if c.cell_type == "code"
    ]


@pytest.mark.kernel
def test_failed_gate_stops_the_notebook_and_keeps_the_evidence(sqlite_ws, tmp_path):
    gate = (
        "rep = mlo.validate(model, X, y, model_version=mv, checks=[\n"
        "    checks.threshold('accuracy', 0.7), checks.fairness(sex, max_dp_difference=0.05)])\n"
        "rep.raise_for_failures()"
    )
    with pytest.raises(PapermillExecutionError) as info:
        execute(tmp_path, notebook(SETUP, gate, "mlo.promote('churn', mv.version, 'production')"), "fail")
    assert info.value.ename == "GateFailed"
    assert "fairness.sex.demographic_parity_difference" in info.value.evalue
    cells = code_cells(tmp_path, "fail")
    assert cells[2].execution_count is None  # the promotion cell never ran

    [record] = sqlite_ws.reports.list(kind="validation")
    assert record.passed is False and record.subject == "model:churn/1"
    assert "fairness.sex.demographic_parity_difference" in record.summary["failed"]
    assert "threshold.accuracy" not in record.summary["failed"]
    run = mlo.get_run(record.run_id)
    assert run.name == "gate" and run.metrics["validation.passed"] == 0.0
    assert mlo.get_model_version("churn/1").aliases == []  # nothing reached production


@pytest.mark.kernel
def test_passed_gate_lets_the_notebook_promote(sqlite_ws, tmp_path):
    gate = (
        "rep = mlo.validate(model, X, y, model_version=mv, checks=[\n"
        "    checks.threshold('accuracy', 0.7), checks.fairness(sex, max_dp_difference=0.9, min_dp_ratio=0.1,\n"
        "    max_eo_difference=0.9)])\n"
        "rep.raise_for_failures()"
    )
    execute(
        tmp_path,
        notebook(SETUP, gate, "mlo.promote('churn', mv.version, 'production')\nmlo.end_run()"),
        "pass",
    )
    [record] = sqlite_ws.reports.list(kind="validation")
    assert record.passed is True
    assert mlo.get_model_version("churn@production").version == 1
