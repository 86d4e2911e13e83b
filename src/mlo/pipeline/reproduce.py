"""``mlo reproduce RUN``: can this result be reproduced? Rebuild the notebook that made a run, execute it in a
fresh kernel against the same data, and compare the metrics.

The notebook is the run's executed notebook when it has one (pipeline stages, ``mlo run``), re-run with the same
parameters; otherwise it is rebuilt from what the run captured: the cells that ran before it in the notebook
(its context) and the cells that ran inside it. The data is the same: every snapshot the run read is pinned (a
``load_snapshot("train")`` in the notebook loads the version the original read, not today's), and files and
folders it read are restored into the fresh working folder. ``data={"train": "train@4"}`` swaps an input to ask
"does it still hold on other data?".
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import workspace
from ..errors import GateFailed, InvalidInput
from ..tracking import session
from ..tracking.run import Run
from .plan import Task
from .spec import Stage

CONTEXT_ARTIFACT = "mlo/context.json"
NOTEBOOK_ARTIFACT = "notebook.ipynb"


@dataclass
class MetricCheck:
    key: str
    original: float
    reproduced: float | None
    match: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "original": self.original,
            "reproduced": self.reproduced,
            "match": self.match,
        }


@dataclass
class Reproduction:
    original: str  # run id
    reproduction: str | None  # the new run
    compared: (
        str | None
    )  # the run whose metrics were compared (the reproduction or its child of the same name)
    checks: list[MetricCheck] = field(default_factory=list)
    status: str = "ok"  # ok | error
    message: str = ""
    notebook: str | None = None
    rtol: float = 1e-6
    atol: float = 1e-9
    inputs: dict[str, str] = field(default_factory=dict)  # snapshot name -> id it ran on

    @property
    def reproduced(self) -> bool:
        return self.status == "ok" and bool(self.checks) and all(c.match for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 2 if self.status == "error" else (0 if self.reproduced else 1)

    def raise_for_mismatch(self) -> None:
        if not self.reproduced:
            raise GateFailed(self.summary())

    def summary(self) -> str:
        if self.status == "error":
            return f"could not reproduce run {self.original[:10]}: {self.message}"
        if not self.checks:
            return f"run {self.original[:10]} has no metrics to compare"
        bad = [c.key for c in self.checks if not c.match]
        if not bad:
            return (
                f"reproduced run {self.original[:10]}: {len(self.checks)} metrics match (rtol {self.rtol:g})"
            )
        return f"run {self.original[:10]} did not reproduce: {', '.join(bad)} differ"

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "reproduction": self.reproduction,
            "compared": self.compared,
            "reproduced": self.reproduced,
            "status": self.status,
            "message": self.message,
            "notebook": self.notebook,
            "rtol": self.rtol,
            "atol": self.atol,
            "inputs": self.inputs,
            "checks": [c.to_dict() for c in self.checks],
        }

    def _repr_html_(self) -> str:
        from ..report.pipeline import reproduction_html

        return reproduction_html(self)


def _close(a: float, b: float | None, rtol: float, atol: float) -> bool:
    if b is None:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def _cells_notebook(run: Run) -> dict:
    """A notebook from the run's context and captured cells."""
    sources: list[str] = ["%load_ext mlo"]
    context = next((a for a in run.artifacts if a.path == CONTEXT_ARTIFACT), None)
    if context is not None:
        sources += [c["source"] for c in json.loads(context.read_text())["cells"]]
    sources += [c.source for c in run.cells if c.success]
    if len(sources) == 1:
        raise InvalidInput(
            f"run {run.id[:10]} captured no cells and has no executed notebook: it cannot be rebuilt "
            "(runs started from notebooks with %load_ext mlo, pipelines and `mlo run` can)"
        )
    cells = [
        {
            "id": f"c{i:04d}",
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": src,
        }
        for i, src in enumerate(sources)
        if src.strip()
    ]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _stored_notebook(run: Run) -> dict | None:
    art = next((a for a in run.artifacts if a.path == NOTEBOOK_ARTIFACT), None)
    if art is None:
        return None
    nb = json.loads(art.read_text())
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    # papermill re-injects the parameters; drop the cell it injected last time
    nb["cells"] = [
        c for c in nb["cells"] if "injected-parameters" not in (c.get("metadata", {}).get("tags") or [])
    ]
    return nb


def _inputs(ws: workspace.Workspace, run: Run) -> list:
    from ..data.snapshots import Snapshot

    with ws.db.read() as conn:
        edges = ws.lineage.edges_touching([f"run:{run.id}"], conn)
    ids = [a.partition(":")[2] for a, b, rel in edges if b == f"run:{run.id}" and a.startswith("snapshot:")]
    return [Snapshot(ws, ws.snapshots.get(i)) for i in dict.fromkeys(ids)]


def _base_folder(run: Run) -> Path | None:
    tags = run.tags
    if tags.get("mlo.workdir"):  # the folder its kernel ran in (pipelines, mlo run)
        return Path(tags["mlo.workdir"])
    source = run.to_dict().get("source")
    return Path(source).parent if source else None


def reproduce(
    run_ref: str,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    data: dict[str, str] | None = None,
    timeout: float | None = None,
    workdir: str | os.PathLike | None = None,
) -> Reproduction:
    """Re-execute the notebook behind ``run_ref`` in a fresh kernel on the same data; compare its metrics.

    Parameters
    ----------
    run_ref : str
        A run id or unique prefix.
    rtol, atol : float
        How close each metric must come (``math.isclose``).
    data : dict, optional
        Snapshot name → reference to run on instead of what the original read.
    timeout : float, optional
        Seconds a cell may run.
    workdir : path, optional
        The working folder of the new kernel (a fresh temporary folder by default).
    """
    from ..data import files
    from . import execute as ex

    ws = workspace.current(create=False)
    original = session.get_run(run_ref)
    result = Reproduction(original.id, None, None, rtol=rtol, atol=atol)
    metrics = original.metrics
    nb = _stored_notebook(original)
    params = original.params if nb is not None else {}
    if nb is None:
        nb = _cells_notebook(original)

    pins: dict[str, str] = {}
    where: dict[str, Path] = {}  # name -> where the original read that file or folder
    base = _base_folder(original)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlo-reproduce-"))
    folder.mkdir(parents=True, exist_ok=True)
    for snap in _inputs(ws, original):
        pins[snap.name] = snap.id
        if snap.kind in ("file", "folder") and snap.source:
            src = Path(snap.source)
            where[snap.name] = (
                src.relative_to(base) if base is not None and src.is_relative_to(base) else Path(src.name)
            )
    for name, ref in (data or {}).items():
        from ..data.snapshots import get_snapshot

        if name not in pins:
            known = ", ".join(sorted(pins)) or "none"
            raise InvalidInput(f"run {original.id[:10]} read no snapshot named {name!r}; it read: {known}")
        swap = get_snapshot(ref)
        if (name in where) != (swap.kind in ("file", "folder")):
            raise InvalidInput(f"--data {name}={ref}: {ref} is a {swap.kind}, the run read a different kind")
        pins[name] = swap.id
    from ..data.snapshots import Snapshot

    for name, sid in pins.items():
        snap = Snapshot(ws, ws.snapshots.get(sid))
        result.inputs[name] = f"{snap.name}@{snap.version}"
        if name in where:  # the file the notebook reads, at the path it reads it from
            files.restore(ws, snap.kind, snap.blob, snap.name, folder / where[name])

    path = folder / f"reproduce-{original.id[:10]}.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    stage = Stage(name=f"reproduce:{original.name}", notebook=path, timeout=timeout)
    task = Task(
        stage, stage.name, params, [], nb["metadata"].get("kernelspec", {}).get("name") or "python3", ""
    )
    os.environ["MLO_SNAPSHOT_PINS"] = json.dumps(pins)
    try:
        r = ex.execute(
            ws,
            folder,
            task,
            None,
            experiment=original.experiment,
            parent_id=None,
            extra_tags={"mlo.reproduces": original.id},
        )
    finally:
        os.environ.pop("MLO_SNAPSHOT_PINS", None)
    result.reproduction = r.run_id
    result.notebook = r.notebook
    if r.failed:
        result.status, result.message = "error", r.message
        return result
    new = session.get_run(r.run_id)
    compared = new
    same_name = [c for c in _children(ws, new) if c.name == original.name]
    if same_name:
        compared = same_name[-1]
    result.compared = compared.id
    got = compared.metrics
    for key, value in sorted(metrics.items()):
        result.checks.append(MetricCheck(key, value, got.get(key), _close(value, got.get(key), rtol, atol)))
    return result


def _children(ws: workspace.Workspace, run: Run) -> list[Run]:
    from sqlalchemy import select

    from ..store import schema as s

    with ws.db.read() as conn:
        ids = (
            conn.execute(
                select(s.runs.c.id).where(s.runs.c.parent_id == run.id).order_by(s.runs.c.start_time)
            )
            .scalars()
            .all()
        )
    out: list[Run] = []
    for i in ids:
        child = Run(ws, i)
        out.append(child)
        out.extend(_children(ws, child))
    return out
