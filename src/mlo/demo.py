"""``mlo demo``: the example pipeline (prepare → train → validate → promote → monitor) end to end on the embedded
store, in a folder of its own; run it again and the unchanged stages come from the cache.

The example notebooks ship inside the package (``mlo/examples`` in the wheel), so the demo runs after
``pip install mlo-workbench`` anywhere; in a source checkout they are the repository's ``notebooks/``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import InvalidInput

PIPELINE = "pipeline.yaml"
PROJECT_FILES = ("pipeline.yaml", "mlo.toml")


def examples_dir() -> Path:
    """The example notebooks: installed with the package, or the ``notebooks/`` folder of a source checkout."""
    installed = Path(__file__).parent / "examples"
    if (installed / PIPELINE).is_file():
        return installed
    checkout = Path(__file__).resolve().parents[2] / "notebooks"  # src/mlo/demo.py → the repository
    if (checkout / PIPELINE).is_file():
        return checkout
    raise InvalidInput(
        "the example notebooks are not installed with this mlo (a wheel built without them?): pass --notebooks"
    )


def run_demo(directory: Path, notebooks: Path | None = None, log=print, jobs: int = 2) -> int:
    """Copy the demo pipeline from ``notebooks`` (default: :func:`examples_dir`) into ``directory``, run it there
    with a workspace of its own, and print where the results are. Returns the pipeline's exit code."""
    notebooks = examples_dir() if notebooks is None else notebooks
    source = notebooks / PIPELINE
    if not source.is_file():
        raise InvalidInput(
            f"no {PIPELINE} in {notebooks}: run `mlo demo` from the project folder or pass --notebooks"
        )
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted(notebooks.glob("0*.ipynb")) + [notebooks / f for f in PROJECT_FILES]:
        if path.is_file():
            shutil.copy2(path, directory / path.name)
    home = directory / ".mlo"
    os.environ["MLO_HOME"] = str(home)  # the kernels inherit it: their runs land in the demo workspace
    os.environ.pop("MLO_STORE", None)
    os.environ.pop("MLO_ARTIFACTS", None)
    from . import workspace

    workspace.reset_cache()
    workspace.init(directory)
    from .pipeline.run import run

    log(f"The demo pipeline in {directory} (workspace {home})\n")
    result = run(directory / PIPELINE, jobs=jobs, log=log)
    if result.exit_code != 0:
        for t in result.tasks:
            if t.failed:
                log(f"\n{t.name}: {t.message}\n  executed notebook: {t.notebook}")
        return result.exit_code

    from .registry import models
    from .report.text import runs_text
    from .tracking.query import runs

    df = runs(
        experiment="churn", columns=["name", "status", "params.max_depth", "metrics.auc", "metrics.accuracy"]
    )
    log("\nRuns of experiment churn:")
    log(runs_text(df.head(12)))
    versions = models("churn")
    production = versions[versions["aliases"].astype(str).str.contains("production")]
    if len(production):
        log(f"\nchurn@production is version {int(production.iloc[-1]['version'])}")
    log(
        "\nWhere the results are:\n"
        f"  executed notebooks  {home / 'executions'}\n"
        f"  workspace           {home}  (metadata {home / 'mlo.db'}, blobs {home / 'blobs'})\n"
        f"Try, in {directory} (the workspace is found from there, like git's):\n"
        "  mlo runs --experiment churn --order-by 'metrics.auc desc'\n"
        "  mlo models churn\n"
        "  mlo lineage model:churn@production\n"
        "  mlo audit churn\n"
        "  mlo pipeline run -j 2   # again: every stage from the cache"
    )
    return 0
