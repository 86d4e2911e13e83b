"""``mlo import mlflow``: copy an MLflow tracking store's experiments and runs into the workspace.

MLflow is read through its own client (``mlflow-skinny``, the ``mlflow`` extra, imported only here), so any
tracking URI it understands works: a SQLite or PostgreSQL store, a ``./mlruns`` folder, an ``http(s)://``
tracking server. For each run: the name, status, user, start and end times, params, tags, every metric's full
history (step, value and time of each point) and the artifacts (copied into the blob store).

Importing is idempotent: every imported run carries the tag ``mlo.imported_from`` = ``mlflow:<MLflow run id>``,
and runs that carry it are skipped the next time, so an import can be run again to pick up new runs. A run is
recorded in one transaction (its blobs stored first), so an import cut short leaves no half run behind; runs that
are still running in MLflow are left for a later import. Parent runs become parents (``mlflow.parentRunId``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, NotFound
from ..store.ids import new_id

PROVENANCE = "mlo.imported_from"
_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
PAGE = 1000
_PROGRESS = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@dataclass
class ImportSummary:
    """What :func:`import_mlflow` copied."""

    tracking_uri: str
    experiments: list[str] = field(default_factory=list)
    runs: int = 0
    skipped: int = 0  # imported before
    running: int = 0  # still running in MLflow: left for a later import
    params: int = 0
    metric_points: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"imported {self.runs} run(s) from {len(self.experiments)} experiment(s) of {self.tracking_uri}: "
            f"{self.params} params, {self.metric_points:,} metric points, {self.artifacts} artifacts "
            f"({self.artifact_bytes:,} bytes); {self.skipped} already imported, {self.running} still running "
            f"({self.seconds:.1f} s)"
        )


def _client(tracking_uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise InvalidInput(
            "importing from MLflow needs its client: pip install 'mlo-workbench[mlflow]'"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri)


def _check_uri(tracking_uri: str) -> str:
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise InvalidInput(
            "--tracking-uri must name an MLflow store, e.g. sqlite:///mlflow.db or http://host:5000"
        )
    uri = tracking_uri.strip()
    if "://" not in uri and not Path(uri).exists():
        raise NotFound(
            f"no MLflow store at {uri}: give its tracking URI (sqlite:///mlflow.db, ./mlruns, http://…)"
        )
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        raise NotFound(f"no MLflow database at {uri[len('sqlite:///') :]}: check --tracking-uri")
    return uri


def _experiments(client, names: Sequence[str] | None):
    found = client.search_experiments()
    if not names:
        return found
    by_name = {e.name: e for e in found}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise NotFound(
            f"no MLflow experiment named {missing[0]!r} at this tracking URI (experiments: "
            f"{', '.join(sorted(by_name)) or 'none'})"
        )
    return [by_name[n] for n in names]


def _runs(client, experiment_id: str):
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], max_results=PAGE, page_token=token, order_by=["start_time ASC"]
        )
        yield from page
        token = page.token
        if not token:
            return


def _series(client, run) -> tuple[dict, int]:
    out, points = {}, 0
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        if not history:
            continue
        steps = np.fromiter((m.step for m in history), np.int64, len(history))
        values = np.fromiter((m.value for m in history), np.float64, len(history))
        stamps = np.fromiter((m.timestamp * 1000 for m in history), np.int64, len(history))  # ms → µs
        out[key] = (steps, values, stamps)
        points += len(history)
    return out, points


@contextmanager
def _quiet():
    """No progress bars from MLflow's downloads in mlo's output."""
    old = os.environ.get(_PROGRESS)
    os.environ[_PROGRESS] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_PROGRESS, None)
        else:
            os.environ[_PROGRESS] = old


def _artifacts(ws, client, run_id: str) -> list[dict]:
    """Download a run's artifacts and store them as blobs; the artifact rows to record."""
    from ..tracking.session import _media_type

    if not client.list_artifacts(run_id):
        return []
    items = []
    with tempfile.TemporaryDirectory(prefix="mlo-mlflow-") as tmp, _quiet():
        root = Path(client.download_artifacts(run_id, "", tmp))
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            digest = ws.blobs.put_file(path)
            items.append(
                {"path": rel, "digest": digest, "size": path.stat().st_size, "media_type": _media_type(rel)}
            )
    return items


def import_mlflow(
    tracking_uri: str, experiments: Sequence[str] | None = None, *, artifacts: bool = True
) -> ImportSummary:
    """Copy the runs of an MLflow tracking store into the workspace in force; runs imported before are skipped.

    Parameters
    ----------
    tracking_uri : str
        Where MLflow keeps them: ``sqlite:///mlflow.db``, ``postgresql://…``, ``./mlruns``, ``http://host:5000``.
    experiments : list of str, optional
        Only these experiments (by name); default all active ones.
    artifacts : bool
        Also copy the runs' artifacts into the blob store (default True).
    """
    from .. import workspace

    t0 = time.perf_counter()
    uri = _check_uri(tracking_uri)
    client = _client(uri)
    ws = workspace.current()
    summary = ImportSummary(uri)
    done = {
        v.split(":", 1)[1]: rid for v, rid in ws.runs.tagged(PROVENANCE).items() if v.startswith("mlflow:")
    }
    for exp in _experiments(client, experiments):
        summary.experiments.append(exp.name)
        exp_id = None  # made on its first imported run: MLflow's empty "Default" adds nothing
        for run in _runs(client, exp.experiment_id):
            info = run.info
            if info.run_id in done:
                summary.skipped += 1
                continue
            status = _STATUS.get(info.status)
            if status is None:  # RUNNING or SCHEDULED: import it once it has ended
                summary.running += 1
                continue
            exp_id = exp_id or ws.runs.experiment_id(exp.name)
            tags = {k: v for k, v in run.data.tags.items()}
            tags[PROVENANCE] = f"mlflow:{info.run_id}"
            params = {k: _param(v) for k, v in run.data.params.items()}
            series, points = _series(client, run)
            items = _artifacts(ws, client, info.run_id) if artifacts else []
            start_us = int(info.start_time) * 1000
            end_us = int(info.end_time) * 1000 if info.end_time else start_us
            run_id = new_id(info.start_time / 1000.0)
            parent = done.get(tags.get("mlflow.parentRunId", ""))
            ws.runs.import_run(
                {
                    "id": run_id,
                    "experiment_id": exp_id,
                    "name": info.run_name or tags.get("mlflow.runName") or info.run_id,
                    "status": status,
                    "start_time": start_us,
                    "end_time": end_us,
                    "parent_id": parent,
                    "user": info.user_id or tags.get("mlflow.user"),
                    "source": tags.get("mlflow.source.name"),
                    "git_commit": tags.get("mlflow.source.git.commit"),
                },
                params,
                tags,
                series,
                items,
            )
            done[info.run_id] = run_id
            summary.runs += 1
            summary.params += len(params)
            summary.metric_points += points
            summary.artifacts += len(items)
            summary.artifact_bytes += sum(i["size"] for i in items)
    summary.seconds = time.perf_counter() - t0
    return summary


def _param(value: str) -> str:
    """MLflow keeps every param as text: stored as a JSON string, as mlo stores a text param."""
    import json

    return json.dumps(value)


__all__ = ["ImportSummary", "import_mlflow", "PROVENANCE"]
