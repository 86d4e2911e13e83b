"""The drift gate in a real notebook run: papermill fails on drift, passes without it. (The magic's gate failing
is tested in-process in test_cli_and_magic.py.)"""

from __future__ import annotations

import os

import nbformat
import pytest

import mlo
from strict import need

papermill = pytest.importorskip("papermill")
from papermill.exceptions import PapermillExecutionError  # noqa: E402

SETUP = """\
import numpy as np, pandas as pd
import mlo
rng = np.random.default_rng(0)
ref = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.choice(["x", "y"], 2000)})
cur = pd.DataFrame({"a": rng.normal(shift, size=2000), "b": rng.choice(["x", "y"], 2000)})"""


def run_notebook(tmp_path, shift: float, gate: str, name: str):
    from jupyter_client.kernelspec import KernelSpecManager

    need(
        "python3" in KernelSpecManager().find_kernel_specs(),
        "no python3 Jupyter kernel (pip install ipykernel)",
    )
    assert os.environ.get("MLO_HOME"), "the kernel must be pointed at the test workspace"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("shift = 0.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(gate)]
    nb.cells.append(nbformat.v4.new_code_cell("print('after the gate')"))
    src, out = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(
        str(src),
        str(out),
        parameters={"shift": shift},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


@pytest.mark.kernel
def test_the_gate_fails_a_papermill_run_on_drift_and_passes_otherwise(sqlite_ws, tmp_path):
    gate = "with mlo.start_run('check'):\n    report = mlo.drift(ref, cur)\nreport.raise_for_drift()\nreport"
    ok = run_notebook(tmp_path, 0.0, gate + "\n%load_ext mlo\n%mlo drift ref cur --gate --no-save", "calm")
    outputs = ok.cells[-1].outputs
    assert outputs and outputs[0]["text"] == "after the gate\n"
    gate_cell = next(c for c in ok.cells if c.source.startswith(gate))
    htmls = [o["data"]["text/html"] for o in gate_cell.outputs if "text/html" in o.get("data", {})]
    assert len(htmls) == 1  # the magic's report is the cell's value
    assert "Drift report" in htmls[0] and "<svg" in htmls[0] and "<script" not in htmls[0]

    with pytest.raises(PapermillExecutionError) as info:
        run_notebook(tmp_path, 1.0, gate, "drifted")
    assert info.value.ename == "GateFailed"
    assert "dataset drift: 1 of 2 columns drifted (50% ≥ 50%): a" in info.value.evalue
    reports = sqlite_ws.reports.list(kind="drift")
    assert [r.passed for r in reports] == [False, True]  # newest first
    runs = mlo.runs()
    assert len(runs) == 2 and set(runs["metrics.drift.n_drifted"]) == {0.0, 1.0}
