"""Cell capture and the ``%mlo`` magics in real Jupyter kernels (papermill), and runs of processes that die.

The kernel inherits the test's environment, so ``MLO_HOME`` (set by ``sqlite_ws``) points it at the test's
workspace; what the kernel wrote is read back here through the Python API.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap

import nbformat
import pytest

import mlo
from strict import need

papermill = pytest.importorskip("papermill")
from papermill.exceptions import PapermillExecutionError  # noqa: E402


def notebook(*cells: str, allow_errors: tuple[int, ...] = ()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if i in allow_errors:  # nbclient keeps going after this cell (papermill still reports error outputs)
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    return nb


def execute(tmp_path, nb: nbformat.NotebookNode, name: str = "nb") -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh python3 kernel (working folder tmp_path); return the executed notebook."""
    from jupyter_client.kernelspec import KernelSpecManager

    need(
        "python3" in KernelSpecManager().find_kernel_specs(),
        "no python3 Jupyter kernel (pip install ipykernel)",
    )
    assert os.environ.get("MLO_HOME"), "the kernel must be pointed at the test workspace"
    src, out = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(
        str(src), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False
    )
    return nbformat.read(out, as_version=4)


def executed_code_cells(tmp_path, name: str = "nb") -> list:
    """Code cells of what papermill wrote, also after an error (it adds markdown cells around the failing one)."""
    return [
        c for c in nbformat.read(tmp_path / f"{name}.out.ipynb", as_version=4).cells if c.cell_type == "code"
    ]


def only_run(experiment: str) -> mlo.Run:
    df = mlo.runs(experiment=experiment)
    assert len(df) == 1, df[["name", "status"]]
    return mlo.get_run(df.run_id.iloc[0])


# -- (a) the %%mlo run flow ------------------------------------------------------------------------------------------
BASELINE = """\
%%mlo run baseline
import numpy as np
from sklearn.linear_model import LogisticRegression

C = 1.0
X = np.arange(20.0).reshape(-1, 1)
y = (X[:, 0] > 9).astype(int)
model = LogisticRegression(C=C).fit(X, y)
%mlo metric acc=0.91"""


@pytest.mark.kernel
def test_mlo_run_cell_is_one_tracked_run(sqlite_ws, tmp_path):
    need(
        importlib.util.find_spec("sklearn") is not None,
        "scikit-learn is not installed (pip install -e '.[dev]')",
    )
    nb = execute(
        tmp_path,
        notebook(
            "%load_ext mlo",
            "%mlo experiment churn",
            BASELINE,
            "int(model.predict([[15.0]])[0])",
        ),
    )
    assert nb.cells[3].outputs[0]["data"]["text/plain"] == "1"  # the run cell's names live in the notebook

    df = mlo.runs()
    assert len(df) == 1, df
    assert df.experiment.tolist() == ["churn"] and df.name.tolist() == ["baseline"]
    run = mlo.get_run(df.run_id.iloc[0])
    assert run.status == "finished"
    assert run.params == {"C": 1.0}
    assert run.metrics == {"acc": 0.91}
    assert run.end_time >= run.start_time

    cells = run.cells
    assert len(cells) == 1, [c.source for c in cells]
    cell = cells[0]
    assert cell.source == BASELINE
    assert isinstance(cell.execution_count, int) and cell.execution_count == nb.cells[2].execution_count
    assert cell.success is True and cell.error is None
    assert cell.duration >= 0


# -- (b) %mlo start … %mlo end, with a failing cell in between -------------------------------------------------
@pytest.mark.kernel
def test_start_end_captures_every_cell_in_order(sqlite_ws, tmp_path):
    cells = [
        "%load_ext mlo\nimport mlo",
        "before = 'not captured'",
        "%mlo start r --experiment flow",
        "a = 1",
        "import time\ntime.sleep(0.2)\nb = a + 1",
        "mlo.log_metric('loss', 0.5)\nmlo.log_metric('loss', 0.25)",
        "raise ValueError('bad data')",
        "mlo.log_param('b', b)",
        "c = b * 10",
        "%mlo end",
        "after = 'not captured either'",
    ]
    with pytest.raises(PapermillExecutionError) as info:
        execute(tmp_path, notebook(*cells, allow_errors=(6,)))
    assert info.value.ename == "ValueError" and "bad data" in info.value.evalue
    code = executed_code_cells(tmp_path)
    # every cell ran, the failing one included
    assert [c.execution_count for c in code] == list(range(1, len(cells) + 1))

    run = only_run("flow")
    assert run.name == "r"
    assert run.status == "finished"
    assert run.params == {"b": 2}
    assert run.history("loss").value.tolist() == [0.5, 0.25]

    captured = run.cells
    assert [c.source for c in captured] == cells[2:10]
    counts = [c.execution_count for c in captured]
    assert counts == [code[i].execution_count for i in range(2, 10)]
    assert all(isinstance(n, int) for n in counts) and counts == sorted(set(counts))
    assert all(c.duration >= 0 for c in captured)
    assert captured[2].duration >= 0.15  # the cell that slept
    assert [c.seq for c in captured] == sorted(c.seq for c in captured)
    assert [c.started_at for c in captured] == sorted(c.started_at for c in captured)
    assert [c.success for c in captured] == [True, True, True, True, False, True, True, True]
    assert captured[4].error.startswith("ValueError") and "bad data" in captured[4].error
    assert all(c.error is None for i, c in enumerate(captured) if i != 4)


@pytest.mark.kernel
def test_failing_mlo_run_cell_marks_the_run_failed(sqlite_ws, tmp_path):
    body = "%%mlo run doomed --experiment fail\nlr = 0.1\nmlo.log_metric('loss', 1.5)\nraise RuntimeError('diverged')"
    with pytest.raises(PapermillExecutionError) as info:
        execute(tmp_path, notebook("%load_ext mlo\nimport mlo", body, "never = 'reached'"))
    assert info.value.ename == "RuntimeError" and "diverged" in info.value.evalue
    code = executed_code_cells(tmp_path)
    assert code[2].execution_count is None  # papermill stopped at the failing cell

    run = only_run("fail")
    assert run.name == "doomed"
    assert run.status == "failed"
    assert run.params == {"lr": 0.1}
    assert run.metrics == {"loss": 1.5}  # logged before the error: kept
    [cell] = run.cells
    assert cell.source == body
    assert cell.success is False
    assert cell.error.startswith("RuntimeError") and "diverged" in cell.error
    assert cell.execution_count == code[1].execution_count


# -- (c) reloading the extension ---------------------------------------------------------------------------------
@pytest.mark.kernel
def test_reload_ext_does_not_record_cells_twice(sqlite_ws, tmp_path):
    execute(
        tmp_path,
        notebook(
            "%load_ext mlo",
            "%reload_ext mlo",
            "%reload_ext mlo",
            "%load_ext mlo",  # already loaded: a no-op
            "%mlo start once --experiment reload",
            "x = 41",
            "%mlo end",
            "%%mlo run cell --experiment reload\ny = 2",
        ),
    )
    df = mlo.runs(experiment="reload", order_by="start_time asc")
    assert df.name.tolist() == ["once", "cell"]
    once, cell = (mlo.get_run(rid) for rid in df.run_id)
    assert [c.source for c in once.cells] == ["%mlo start once --experiment reload", "x = 41", "%mlo end"]
    assert [c.source for c in cell.cells] == ["%%mlo run cell --experiment reload\ny = 2"]
    assert once.status == cell.status == "finished"


# -- (d) bad arguments ---------------------------------------------------------------------------------------------
def _usage_error_line(cell) -> str:
    """The one line a UsageError prints in the kernel (IPython shows it on stderr, without a traceback)."""
    assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    text = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("UsageError: "), text
    return lines[0]


@pytest.mark.kernel
def test_bad_arguments_raise_one_line_usage_errors_and_keep_the_run(sqlite_ws, tmp_path):
    cells = [
        "%load_ext mlo\nimport mlo",
        "%mlo start r --experiment usage",
        "%mlo param C=0.5",
        "mlo.log_metric('loss', 0.25)",
        "%mlo metric acc=high",
        "%mlo metric acc",
        "%mlo metric",
        "%mlo metirc acc=1",
        "%mlo start other",
        "%mlo end --status weird",
        "%%mlo param C=1\nx = 1",
        "assert mlo.active_run() is not None and mlo.active_run().name == 'r'\n%mlo metric acc=0.5",
        "%mlo end",
    ]
    bad = (4, 5, 6, 7, 8, 9, 10)
    nb = execute(tmp_path, notebook(*cells, allow_errors=bad))
    lines = {i: _usage_error_line(nb.cells[i]) for i in bad}
    assert "acc='high' is not a number" in lines[4]
    assert "key=value" in lines[5]
    assert "%mlo metric" in lines[6]
    assert "unknown command 'metirc'" in lines[7] and "'metric'" in lines[7]
    assert "still active" in lines[8]
    assert "weird" in lines[9]
    assert "only %%mlo run" in lines[10]
    for i in set(range(len(cells))) - set(bad):
        assert not any(o.get("name") == "stderr" for o in nb.cells[i].outputs), nb.cells[i].outputs

    assert len(mlo.runs()) == 1  # the refused `%mlo start other` made no run
    run = only_run("usage")
    assert run.name == "r" and run.status == "finished"
    assert run.params == {"C": 0.5}
    assert run.metrics == {"loss": 0.25, "acc": 0.5}
    assert run.history("acc").value.tolist() == [0.5]  # nothing half-logged by the bad calls
    captured = run.cells
    assert [c.source for c in captured] == cells[1:]
    assert [c.success for c in captured] == [i not in bad for i in range(1, len(cells))]
    assert all(c.error.startswith("UsageError") for c in captured if not c.success)


@pytest.mark.kernel
def test_usage_error_stops_papermill_and_leaves_what_was_logged(sqlite_ws, tmp_path):
    with pytest.raises(PapermillExecutionError) as info:
        execute(
            tmp_path,
            notebook(
                "%load_ext mlo\nimport mlo",
                "%mlo start r --experiment stop",
                "%mlo param C=0.5\nmlo.log_metric('loss', 0.25)",
                "%mlo metric acc=high",
                "never = 'reached'",
            ),
        )
    code = executed_code_cells(tmp_path)
    assert info.value.exec_count == code[3].execution_count  # the error is the bad magic's
    assert "acc='high' is not a number" in _usage_error_line(code[3])
    assert code[4].execution_count is None

    run = only_run("stop")
    assert run.status == "finished"  # ended when the kernel shut down, not lost
    assert run.params == {"C": 0.5}
    assert run.metrics == {"loss": 0.25}
    assert [c.success for c in run.cells] == [True, True, False]


@pytest.mark.kernel
def test_usage_error_reaches_the_front_end_as_usage_error(sqlite_ws, tmp_path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = notebook("%load_ext mlo", "%mlo metric acc=high")
    with pytest.raises(CellExecutionError) as info:
        NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert info.value.ename == "UsageError"
    assert "\n" not in info.value.evalue.strip() and "acc='high' is not a number" in info.value.evalue


# -- (e) processes that die ----------------------------------------------------------------------------------------
HOLDER = textwrap.dedent("""\
    import sys, time
    import mlo

    run = mlo.start_run(sys.argv[1], experiment="crash")
    for step in range(3):
        mlo.log_metric("loss", 1.0 / (step + 1))
    mlo.log_param("lr", 0.1)
    mlo.flush()
    print(run.id, flush=True)
    print("ready", flush=True)
    time.sleep(600)
""")


def _start_holder(name: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    run_id = proc.stdout.readline().strip()
    ready = proc.stdout.readline().strip()
    if ready != "ready":
        proc.kill()
        raise AssertionError(f"holder did not start: {run_id!r} {ready!r} {proc.stderr.read()}")
    return proc, run_id


def test_killed_process_run_is_marked_killed_and_keeps_its_metrics(sqlite_ws):
    victim, victim_id = _start_holder("victim")
    survivor = None
    try:
        survivor, survivor_id = _start_holder("survivor")
        assert mlo.get_run(victim_id).status == "running"

        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL

        run = mlo.get_run(victim_id)
        assert run.status == "killed"
        assert run.end_time is not None and run.end_time >= run.start_time
        assert run.history("loss").value.tolist() == [1.0, 0.5, 1.0 / 3]
        assert run.history("loss").step.tolist() == [0, 1, 2]
        assert run.params == {"lr": 0.1}

        alive = mlo.get_run(survivor_id)
        assert alive.status == "running"  # its process lives: not reaped
        assert alive.history("loss").value.tolist() == [1.0, 0.5, 1.0 / 3]
        df = mlo.runs(experiment="crash")
        assert dict(zip(df.name, df.status, strict=True)) == {"victim": "killed", "survivor": "running"}
        assert survivor.poll() is None
    finally:
        for proc in (victim, survivor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    # once the survivor is gone too, it is reaped on the next read
    assert mlo.get_run(survivor_id).status == "killed"
