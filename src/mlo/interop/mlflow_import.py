"""``mlo import mlflow``: copy an MLflow tracking store's experiments and runs into the workspace.

MLflow is read through its own client (``mlflow-skinny``, the ``mlflow`` extra, imported only here), so any
tracking URI it understands works: a SQLite or PostgreSQL store, a ``./mlruns`` folder, an ``http(s)://``
tracking server. For each run: the name, status, user, start and end times, params, tags, every metric's full
history (step, value and time of each point) and the artifacts (copied into the blob store).

Importing is idempotent: every imported run carries the tag ``mlo.imported_from`` = ``mlflow:<MLflow run id>``,
and runs that carry it are skipped the next time, so an import can be run again to pick up new runs. A run is
recorded in one transaction (its blobs stored first), so an import cut short leaves no half run behind; runs that
are still running in MLflow are left for a later import. Parent runs become parents (``mlflow.parentRunId``).

Also imported: a run's dataset inputs (snapshots when their file is readable here, references in the lineage
otherwise: :mod:`.mlflow_datasets`), the experiments' traces (:mod:`.mlflow_traces`), and registered model
versions — scikit-learn ones as mlo model versions; every other flavor (pyfunc, xgboost, lightgbm, transformers,
…) as an opaque copy: a run ``<name>/<version> (MLflow model)`` under experiment ``mlflow-models``, a child of
the run that logged it, holding the model's folder (its ``MLmodel`` first) as artifacts and its flavors as tags.
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
    model_versions: int = 0
    model_versions_skipped: int = 0  # imported before
    models_as_artifacts: int = 0  # versions of other flavors, kept as their MLflow folder
    aliases: int = 0
    datasets_snapshotted: int = 0
    datasets_referenced: int = 0
    traces: int = 0
    trace_spans: int = 0
    traces_skipped: int = 0
    left: list[str] = field(default_factory=list)  # model versions and aliases not imported, and why
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"imported {self.runs} run(s) from {len(self.experiments)} experiment(s) of {self.tracking_uri}: "
            f"{self.params} params, {self.metric_points:,} metric points, {self.artifacts} artifacts "
            f"({self.artifact_bytes:,} bytes); {self.model_versions} model version(s), {self.aliases} alias(es), "
            f"{self.models_as_artifacts} model(s) of other flavors as artifacts; datasets: "
            f"{self.datasets_snapshotted} snapshotted, {self.datasets_referenced} referenced; {self.traces} "
            f"trace(s) ({self.trace_spans} spans, {self.traces_skipped} imported before); "
            f"{self.skipped} run(s) and {self.model_versions_skipped} version(s) already imported, {self.running} "
            f"run(s) still running ({self.seconds:.1f} s)"
            + "".join(f"\n  not imported: {why}" for why in self.left)
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


def _load_sklearn(ws, local: Path, sk: dict, trust: bool) -> tuple[Any, str | None]:
    """The scikit-learn model in a downloaded MLflow model folder, or ``(None, why not)``. A skops file loads when
    the types it holds are ones the registry trusts (or ``trust``); a pickle only with ``trust``, as it runs code."""
    from ..registry.flavors import _allowed, trusted_patterns

    path = local / str(sk.get("pickled_model", ""))
    fmt = sk.get("serialization_format", "cloudpickle")
    if fmt == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=path)
        unknown = [t for t in untrusted if not _allowed(t, trusted_patterns(ws.config))]
        if unknown and not trust:
            return (
                None,
                f"it holds types the registry does not trust ({', '.join(unknown)}): --trust-models",
            )
        return sio.load(path, trusted=untrusted), None
    if not trust:
        return (
            None,
            f"it is a {fmt} file, and loading one runs code: import with --trust-models if you trust it",
        )
    import cloudpickle

    with path.open("rb") as fh:
        return cloudpickle.load(fh), None


def _download_model(client, name: str, version: str, tmp: str) -> tuple[Path, dict]:
    """A model version's folder, downloaded, and the flavors its ``MLmodel`` names."""
    import yaml
    from mlflow.artifacts import download_artifacts

    uri = client.get_model_version_download_uri(name, version)
    local = Path(download_artifacts(artifact_uri=uri, dst_path=tmp))
    meta = yaml.safe_load((local / "MLmodel").read_text()) if (local / "MLmodel").is_file() else {}
    return local, (meta or {}).get("flavors") or {}


def _import_opaque(ws, mv, key: str, local: Path, flavors: dict, runs_done: dict[str, str]) -> str:
    """A model version of a flavor mlo does not load, kept whole as the artifacts of a run of its own."""
    import json

    from ..tracking.session import _media_type

    items = []
    files = sorted(p for p in local.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name != "MLmodel")  # the MLmodel first
    for path in files:
        rel = "model/" + path.relative_to(local).as_posix()
        items.append(
            {
                "path": rel,
                "digest": ws.blobs.put_file(path),
                "size": path.stat().st_size,
                "media_type": _media_type(rel),
            }
        )
    created = int(mv.creation_timestamp or time.time() * 1000)
    run_id = new_id(created / 1000.0)
    tags = {
        **(mv.tags or {}),
        PROVENANCE: f"mlflow:models/{key}",
        "mlo.mlflow.model": key,
        "mlo.mlflow.flavors": ", ".join(flavors) or "none",
        "mlo.mlflow.source": str(mv.source or ""),
    }
    ws.runs.import_run(
        {
            "id": run_id,
            "experiment_id": ws.runs.experiment_id("mlflow-models"),
            "name": f"{key} (MLflow model)",
            "status": "finished",
            "start_time": created * 1000,
            "end_time": int(mv.last_updated_timestamp or created) * 1000,
            "parent_id": runs_done.get(mv.run_id or ""),
            "user": getattr(mv, "user_id", None),
            "source": None,
            "git_commit": None,
        },
        {"flavors": json.dumps(json.dumps(sorted(flavors)))},
        tags,
        {},
        items,
    )
    return run_id


def _import_models(ws, client, summary: ImportSummary, runs_done: dict[str, str], trust: bool) -> None:
    """Registered models: each version not imported before becomes the next mlo version of the same name, with
    its tags, description and run; then the aliases follow their versions."""
    from ..errors import MloError
    from ..registry.aliases import set_alias
    from ..registry.api import register_model

    imported: dict[str, int] = {}
    for v in ws.models.versions():
        source = (v.tags or {}).get(PROVENANCE, "")
        if source.startswith("mlflow:models/"):
            imported[source[len("mlflow:models/") :]] = v.version
    for rm in client.search_registered_models():
        quoted = rm.name.replace("'", "\\'")
        versions = sorted(client.search_model_versions(f"name='{quoted}'"), key=lambda mv: int(mv.version))
        for mv in versions:
            key = f"{rm.name}/{mv.version}"
            if key in imported or f"models/{key}" in runs_done:
                summary.model_versions_skipped += 1
                continue
            try:
                with tempfile.TemporaryDirectory(prefix="mlo-mlflow-") as tmp, _quiet():
                    local, flavors = _download_model(client, rm.name, mv.version, tmp)
                    if "sklearn" not in flavors:
                        runs_done[f"models/{key}"] = _import_opaque(ws, mv, key, local, flavors, runs_done)
                        summary.models_as_artifacts += 1
                        continue
                    model, why = _load_sklearn(ws, local, flavors["sklearn"], trust)
                if model is None:
                    summary.left.append(f"model {key}: {why}")
                    continue
                tags = {**(mv.tags or {}), PROVENANCE: f"mlflow:models/{key}"}
                new = register_model(
                    model,
                    rm.name,
                    tags=tags,
                    run=runs_done.get(mv.run_id),
                    description=mv.description or None,
                )
            except MloError as exc:
                summary.left.append(f"model {key}: {exc}")
                continue
            imported[key] = new.version
            summary.model_versions += 1
        for alias, version in (rm.aliases or {}).items():
            target = imported.get(f"{rm.name}/{version}")
            if target is None:
                continue
            try:
                if set_alias(rm.name, alias, target, reason="imported from MLflow") is not None:
                    summary.aliases += 1
            except MloError as exc:
                summary.left.append(f"alias {rm.name}@{alias}: {exc}")


def import_mlflow(
    tracking_uri: str,
    experiments: Sequence[str] | None = None,
    *,
    artifacts: bool = True,
    models: bool = True,
    trust_models: bool = False,
    traces: bool = True,
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
    models : bool
        Also import the registered models (scikit-learn flavor): versions, their tags and runs, and aliases.
    trust_models : bool
        Load model files that may run code (pickles, skops files with types the registry does not trust).
    traces : bool
        Also import the experiments' traces (default True).
    """
    from .. import workspace
    from .mlflow_datasets import import_inputs
    from .mlflow_traces import import_traces

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
            counts = import_inputs(ws, run, run_id)
            summary.datasets_snapshotted += counts["snapshots"]
            summary.datasets_referenced += counts["references"]
            summary.runs += 1
            summary.params += len(params)
            summary.metric_points += points
            summary.artifacts += len(items)
            summary.artifact_bytes += sum(i["size"] for i in items)
        if traces:
            n, spans, skipped = import_traces(ws, client, exp.experiment_id, done)
            summary.traces += n
            summary.trace_spans += spans
            summary.traces_skipped += skipped
    if models:
        _import_models(ws, client, summary, done, trust_models)
    summary.seconds = time.perf_counter() - t0
    return summary


def _param(value: str) -> str:
    """MLflow keeps every param as text: stored as a JSON string, as mlo stores a text param."""
    import json

    return json.dumps(value)


__all__ = ["ImportSummary", "import_mlflow", "PROVENANCE"]
