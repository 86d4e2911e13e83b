"""``mlo demo``: the example notebook executed end to end with papermill, tracked on the embedded store."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import InvalidInput

DEMO_NOTEBOOK = "churn.ipynb"


def run_demo(directory: Path, notebooks: Path, log=print) -> int:
    """Execute ``notebooks/churn.ipynb`` into ``directory`` with a workspace there; return an exit code."""
    import papermill

    source = notebooks / DEMO_NOTEBOOK
    if not source.is_file():
        raise InvalidInput(
            f"no {DEMO_NOTEBOOK} in {notebooks}: run `mlo demo` from the project folder or pass --notebooks"
        )
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    home = directory / ".mlo"
    output = directory / DEMO_NOTEBOOK.replace(".ipynb", ".out.ipynb")
    # the kernel inherits these: its runs land in the demo workspace and know their notebook
    os.environ["MLO_HOME"] = str(home)
    os.environ["MLO_NOTEBOOK"] = str(source.resolve())
    os.environ.pop("MLO_STORE", None)
    os.environ.pop("MLO_ARTIFACTS", None)
    from . import workspace

    workspace.reset_cache()
    workspace.init(directory)
    log(f"Running {source} with papermill (workspace: {home}) …")
    t0 = time.time()
    papermill.execute_notebook(
        str(source), str(output), cwd=str(directory), progress_bar=False, parameters={"n_customers": 4000}
    )
    log(f"Executed in {time.time() - t0:.1f} s → {output}\n")

    from .report.text import runs_text
    from .tracking.query import runs

    df = runs(experiment="churn")
    log(runs_text(df))
    log(
        f"\nWhere the results are:\n"
        f"  workspace        {home}  (metadata: {home / 'mlo.db'}, blobs: {home / 'blobs'})\n"
        f"  executed notebook {output}\n"
        f"Try:\n"
        f"  MLO_HOME={home} .venv/bin/mlo runs --where \"metrics.auc > 0.7\" --order-by 'metrics.auc desc'\n"
        f"  MLO_HOME={home} .venv/bin/mlo show {df.iloc[-1]['run_id'][:10]} --cells"
    )
    return 0
