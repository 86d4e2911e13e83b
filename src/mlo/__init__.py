"""mlo: a notebook-first MLOps workbench.

``import mlo`` gives the whole Python API; ``%load_ext mlo`` adds the ``%mlo`` magics in IPython/Jupyter.
The API is loaded on first use, so ``import mlo`` (and every ``mlo`` command) starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import AmbiguousRef, CorruptBlob, GateFailed, InvalidInput, MloError, NotFound, StoreError

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "Lineage": "mlo.data.lineage",
    "lineage": "mlo.data.lineage",
    "Snapshot": "mlo.data.snapshots",
    "get_snapshot": "mlo.data.snapshots",
    "load_snapshot": "mlo.data.snapshots",
    "snapshot": "mlo.data.snapshots",
    "snapshots": "mlo.data.snapshots",
    "FeatureView": "mlo.features.views",
    "feature": "mlo.features.views",
    "DriftReport": "mlo.drift",
    "drift": "mlo.drift",
    "load_prompt": "mlo.llm.prompts",
    "trace": "mlo.llm.tracing",
    "traces": "mlo.llm.query",
    "ModelVersion": "mlo.registry",
    "audit": "mlo.registry",
    "delete_alias": "mlo.registry",
    "get_model_version": "mlo.registry",
    "load_model": "mlo.registry",
    "model_card": "mlo.registry",
    "models": "mlo.registry",
    "promote": "mlo.registry",
    "register_model": "mlo.registry",
    "rollback": "mlo.registry",
    "set_alias": "mlo.registry",
    "set_policy": "mlo.registry",
    "reproduce": "mlo.pipeline.reproduce",
    "serve": "mlo.serve",
    "compare": "mlo.jupyter.widgets",
    "browse_models": "mlo.jupyter.widgets",
    "autolog": "mlo.tracking.autolog",
    "sweep": "mlo.tracking.sweep",
    "optuna_callback": "mlo.tracking.sweep",
    "log_system_metrics": "mlo.tracking.system_metrics",
    "runs": "mlo.tracking.query",
    "archive_experiment": "mlo.tracking.lifecycle",
    "archive_run": "mlo.tracking.lifecycle",
    "delete_experiment": "mlo.tracking.lifecycle",
    "delete_run": "mlo.tracking.lifecycle",
    "experiments": "mlo.tracking.lifecycle",
    "restore_experiment": "mlo.tracking.lifecycle",
    "restore_run": "mlo.tracking.lifecycle",
    "set_note": "mlo.tracking.lifecycle",
    "Run": "mlo.tracking.run",
    "active_run": "mlo.tracking.session",
    "end_run": "mlo.tracking.session",
    "flush": "mlo.tracking.session",
    "get_run": "mlo.tracking.session",
    "log_artifact": "mlo.tracking.session",
    "log_dict": "mlo.tracking.session",
    "log_figure": "mlo.tracking.session",
    "log_metric": "mlo.tracking.session",
    "log_metrics": "mlo.tracking.session",
    "log_param": "mlo.tracking.session",
    "log_params": "mlo.tracking.session",
    "log_text": "mlo.tracking.session",
    "record_cell": "mlo.tracking.session",
    "set_experiment": "mlo.tracking.session",
    "set_tag": "mlo.tracking.session",
    "set_tags": "mlo.tracking.session",
    "start_run": "mlo.tracking.session",
    "explain": "mlo.validate.explain",
    "maturity": "mlo.governance.maturity",
    "problem": "mlo.governance.problem",
    "status": "mlo.governance.status",
    "ValidationReport": "mlo.validate",
    "checks": "mlo.validate",
    "validate": "mlo.validate",
    "Workspace": "mlo.workspace",
    "init": "mlo.workspace",
}

__all__ = sorted(
    [*_API, "AmbiguousRef", "CorruptBlob", "GateFailed", "InvalidInput", "MloError", "NotFound", "StoreError"]
)


# subpackages used as namespaces: mlo.pipeline.run(...), mlo.data.snapshots, mlo.monitor.log(...),
# mlo.features.training_frame(...),
# mlo.workspace.current(), mlo.llm.chat(...); and mlo.prompts.register(...), which is mlo.llm.prompts
_SUBPACKAGES = {"pipeline", "data", "monitor", "workspace", "llm", "features"}
_NAMESPACES = {"prompts": "mlo.llm.prompts"}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mlo.{name}")
    if name in _NAMESPACES:
        return importlib.import_module(_NAMESPACES[name])
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'mlo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what __getattr__ provides, for type checkers and editors
    from .data.lineage import Lineage, lineage
    from .data.snapshots import Snapshot, get_snapshot, load_snapshot, snapshot, snapshots
    from .drift import DriftReport, drift
    from .features.views import FeatureView, feature
    from .jupyter.widgets import browse_models, compare
    from .llm.prompts import load_prompt
    from .llm.query import traces
    from .llm.tracing import trace
    from .pipeline.reproduce import reproduce
    from .registry import (
        ModelVersion,
        audit,
        delete_alias,
        get_model_version,
        load_model,
        model_card,
        models,
        promote,
        register_model,
        rollback,
        set_alias,
        set_policy,
    )
    from .serve import serve
    from .tracking.autolog import autolog
    from .tracking.lifecycle import (
        archive_experiment,
        archive_run,
        delete_experiment,
        delete_run,
        experiments,
        restore_experiment,
        restore_run,
        set_note,
    )
    from .tracking.query import runs
    from .tracking.run import Run
    from .tracking.session import (
        active_run,
        end_run,
        flush,
        get_run,
        log_artifact,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        record_cell,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )
    from .tracking.sweep import optuna_callback, sweep
    from .tracking.system_metrics import log_system_metrics
    from .validate import ValidationReport, checks, validate
    from .workspace import Workspace, init


def _jupyter_server_extension_points() -> list[dict[str, str]]:  # jupyter server: the REST API
    return [{"module": "mlo.jupyter.server"}]


def load_ipython_extension(ipython):  # %load_ext mlo
    from .jupyter.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .jupyter.magics import unload_ipython_extension as unload

    unload(ipython)
