"""Keeping a validation report: the store row, its lineage edges, and the headline numbers in the active run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .. import workspace
from ..tracking import session
from .report import ValidationReport

if TYPE_CHECKING:
    from .suite import VersionRef

KIND = "validation"


def _should_store(store: bool | None, version: VersionRef | None, run) -> bool:
    if store is not None:
        return bool(store)
    return version is not None or run is not None or workspace.find_home() is not None


def keep(
    report: ValidationReport, version: VersionRef | None, store: bool | None, inputs: list[str] | None = None
) -> None:
    """Store ``report`` (setting ``report.id`` and ``report.run_id``), link it to the model version, the run and
    the ``inputs`` it read (reference snapshots), and log its numbers in the active run."""
    run = session.active_run()
    report.run_id = run.id if run is not None else None
    if not _should_store(store, version, run):
        return
    ws = run._ws if run is not None else workspace.current()
    report.id = ws.reports.save(
        KIND,
        report.summary(),
        report.to_dict(),
        subject=version.node if version else None,
        run_id=report.run_id,
        passed=report.passed,
    )
    node = f"report:{report.id}"
    edges = []
    if version is not None:
        edges.append((node, version.node, "evidence"))
    if run is not None:
        edges.append((f"run:{run.id}", node, "report"))
    edges.extend((src, node, "reference") for src in inputs or [])
    if edges:
        ws.lineage.link(edges)
    if run is not None:
        metrics = {"validation.passed": 1.0 if report.passed else 0.0}
        for r in report.rows:
            if r.value is not None and math.isfinite(r.value):
                metrics[f"validation.{r.name}"] = r.value
        session.log_metrics(metrics)
