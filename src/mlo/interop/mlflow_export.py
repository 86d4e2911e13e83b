"""``mlo export mlflow``: write the workspace's runs and model versions into an MLflow tracking store, so MLflow's
UI lists them and ``mlflow.pyfunc.load_model`` loads the models.

Runs keep their experiment, name, status, user, start and end times, params (as text, MLflow's only kind), tags,
every metric's full history and their artifacts; a run's parent becomes ``mlflow.parentRunId``. A scikit-learn
model version is written by MLflow's own ``mlflow.sklearn.log_model`` (an MLmodel folder with the sklearn and
pyfunc flavors), registered under the same name, and its aliases follow.

Exporting is idempotent: an exported run carries the tag ``mlo.run_id`` and an exported model version the tag
``mlo.model_version``, and what carries them is skipped the next time. MLflow writes a run in several calls; a run
whose export was cut short (still ``RUNNING`` in MLflow) is deleted and written again. Runs that came from MLflow
(``mlo.imported_from``) and runs still running are not exported.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MloError
from .mlflow_import import PROVENANCE, _check_uri, _client, _quiet

RUN_TAG = "mlo.run_id"
MODEL_TAG = "mlo.model_version"
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
BATCH = 1000  # MLflow's log_batch limit on metrics


@dataclass
class ExportSummary:
    """What :func:`export_mlflow` wrote."""

    tracking_uri: str
    runs: int = 0
    skipped: int = 0  # exported before, imported from MLflow, or still running
    metric_points: int = 0
    artifacts: int = 0
    model_versions: int = 0
    aliases: int = 0
    left: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"exported {self.runs} run(s) ({self.metric_points:,} metric points, {self.artifacts} artifacts), "
            f"{self.model_versions} model version(s) and {self.aliases} alias(es) to {self.tracking_uri}; "
            f"{self.skipped} run(s) skipped ({self.seconds:.1f} s)"
            + "".join(f"\n  not exported: {why}" for why in self.left)
        )


def _exported_runs(client) -> dict[str, Any]:
    """``{mlo run id: MLflow run}`` of the runs exported before."""
    out = {}
    for exp in client.search_experiments():
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            for r in page:
                if RUN_TAG in r.data.tags:
                    out[r.data.tags[RUN_TAG]] = r
            token = page.token
            if not token:
                break
    return out


def _export_run(client, run, exp_id: str, parent: str | None, artifacts: bool, summary: ExportSummary) -> str:
    from mlflow.entities import Metric, Param

    tags = {k: v for k, v in run.tags.items()}
    tags[RUN_TAG] = run.id
    if run.user:
        tags.setdefault("mlflow.user", run.user)
    if parent:
        tags["mlflow.parentRunId"] = parent
    start_ms = int(run.start_time.timestamp() * 1000)
    created = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name=run.name)
    rid = created.info.run_id
    params = [Param(k, v if isinstance(v, str) else str(v)) for k, v in run.params.items()]
    points = []
    for key in run.metrics:
        h = run.history(key)
        stamps = (h["timestamp"].astype("int64") // 1_000_000).tolist()  # ns → ms
        points.extend(
            Metric(key, float(v), int(t), int(s))
            for s, v, t in zip(h["step"].tolist(), h["value"].tolist(), stamps, strict=True)
        )
    for i in range(0, len(params), 100):
        client.log_batch(rid, params=params[i : i + 100])
    for i in range(0, len(points), BATCH):
        client.log_batch(rid, metrics=points[i : i + BATCH])
    summary.metric_points += len(points)
    if artifacts and run.artifacts:
        with tempfile.TemporaryDirectory(prefix="mlo-mlflow-") as tmp, _quiet():
            for a in run.artifacts:
                a.download(Path(tmp) / a.path)
            client.log_artifacts(rid, tmp)
        summary.artifacts += len(run.artifacts)
    end = run.end_time
    client.set_terminated(rid, _STATUS[run.status], end_time=int(end.timestamp() * 1000) if end else None)
    return rid


def _types(model) -> list[str]:
    """The types of ``model`` that skops does not trust by default: the registry loaded it under its own trust
    rules, so MLflow's skops file (its default format) records them as trusted for this model."""
    import skops.io as sio

    return sio.get_untrusted_types(data=sio.dumps(model))


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "numpy")]


def _export_models(ws, client, uri: str, runs_done: dict[str, str], summary: ExportSummary) -> None:
    import mlflow
    import mlflow.sklearn

    from ..registry.api import load_model
    from ..registry.flavors import is_sklearn

    done: set[str] = set()
    for rm in client.search_registered_models():
        quoted = rm.name.replace("'", "\\'")
        for mv in client.search_model_versions(f"name='{quoted}'"):
            if MODEL_TAG in (mv.tags or {}):
                done.add(mv.tags[MODEL_TAG])
    numbers: dict[tuple[str, int], str] = {}  # (name, mlo version) → MLflow version
    for rm in client.search_registered_models():
        quoted = rm.name.replace("'", "\\'")
        for mv in client.search_model_versions(f"name='{quoted}'"):
            tag = (mv.tags or {}).get(MODEL_TAG, "")
            name, _, v = tag.rpartition("/")
            if name and v.isdigit():
                numbers[(name, int(v))] = str(mv.version)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        for row in sorted(ws.models.versions(), key=lambda r: (r.name, r.version)):
            ref = f"{row.name}/{row.version}"
            if ref in done or str((row.tags or {}).get(PROVENANCE, "")).startswith("mlflow:"):
                continue
            try:
                model = load_model(ref).raw
            except MloError as exc:
                summary.left.append(f"model {ref}: {exc}")
                continue
            if not is_sklearn(model):
                summary.left.append(
                    f"model {ref}: only scikit-learn models are exported ({type(model).__name__})"
                )
                continue
            owner = runs_done.get(row.run_id)
            ended = client.get_run(owner).info if owner else None  # start_run resumes it: put its end back
            with _quiet():
                if owner:
                    mlflow.start_run(run_id=owner)
                try:
                    info = mlflow.sklearn.log_model(
                        model,
                        name="model",
                        registered_model_name=row.name,
                        skops_trusted_types=_types(model),
                        pip_requirements=_requirements(),  # not inferred: MLflow would load the model to guess
                    )
                finally:
                    if owner:
                        mlflow.end_run()
                        client.set_terminated(owner, ended.status, end_time=ended.end_time)
            version = str(info.registered_model_version)
            client.set_model_version_tag(row.name, version, MODEL_TAG, ref)
            numbers[(row.name, row.version)] = version
            summary.model_versions += 1
    finally:
        mlflow.set_tracking_uri(previous)
    for name, aliases in ws.models.aliases().items():
        current = client.get_registered_model(name).aliases if any(k[0] == name for k in numbers) else {}
        for alias, version in aliases.items():
            target = numbers.get((name, version))
            if target is None or str(current.get(alias)) == str(target):
                continue
            client.set_registered_model_alias(name, alias, target)
            summary.aliases += 1


def export_mlflow(
    tracking_uri: str,
    experiments: Sequence[str] | None = None,
    *,
    artifacts: bool = True,
    models: bool = True,
) -> ExportSummary:
    """Write the workspace's runs (and scikit-learn model versions, with their aliases) into an MLflow store;
    what was exported before is skipped.

    Parameters
    ----------
    tracking_uri : str
        The MLflow store: ``sqlite:///mlflow.db``, ``postgresql://…``, ``http://host:5000`` (created when it is a
        new SQLite file or folder).
    experiments : list of str, optional
        Only the runs of these experiments; default all.
    artifacts, models : bool
        Also the runs' artifacts; also the registered models.
    """
    from .. import workspace
    from ..tracking.query import runs as list_runs
    from ..tracking.session import get_run

    t0 = time.perf_counter()
    uri = tracking_uri.strip() if isinstance(tracking_uri, str) else tracking_uri
    if not (isinstance(uri, str) and uri.startswith("sqlite:///")):
        uri = _check_uri(tracking_uri)
    client = _client(uri)
    ws = workspace.current()
    summary = ExportSummary(uri)
    before = _exported_runs(client)
    runs_done = {k: r.info.run_id for k, r in before.items() if r.info.status != "RUNNING"}
    for r in before.values():
        if r.info.status == "RUNNING":  # an export cut short: written again
            client.delete_run(r.info.run_id)
    frame = list_runs(experiment=list(experiments) if experiments else None)
    frame = frame.sort_values("start_time")
    exp_ids: dict[str, str] = {}
    for run_id in frame["run_id"]:
        run = get_run(run_id)
        if run.id in runs_done or run.status not in _STATUS or PROVENANCE in run.tags:
            summary.skipped += 1
            continue
        exp = exp_ids.get(run.experiment)
        if exp is None:
            found = client.get_experiment_by_name(run.experiment)
            exp = exp_ids[run.experiment] = (
                found.experiment_id if found else client.create_experiment(run.experiment)
            )
        runs_done[run.id] = _export_run(
            client, run, exp, runs_done.get(run.parent_id or ""), artifacts, summary
        )
        summary.runs += 1
    if models:
        _export_models(ws, client, uri, runs_done, summary)
    summary.seconds = time.perf_counter() - t0
    return summary
