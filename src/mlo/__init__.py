"""mlo: a notebook-first MLOps workbench.

``import mlo`` gives the whole Python API; ``%load_ext mlo`` adds the ``%mlo`` magics in IPython/Jupyter.
"""

from __future__ import annotations

from .data.lineage import Lineage, lineage
from .data.snapshots import Snapshot, get_snapshot, load_snapshot, snapshot, snapshots
from .errors import AmbiguousRef, CorruptBlob, GateFailed, InvalidInput, MloError, NotFound, StoreError
from .tracking.autolog import autolog
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
from .workspace import Workspace, init

__version__ = "0.1.0"

__all__ = [
    "AmbiguousRef",
    "CorruptBlob",
    "GateFailed",
    "InvalidInput",
    "Lineage",
    "MloError",
    "NotFound",
    "Run",
    "Snapshot",
    "StoreError",
    "Workspace",
    "active_run",
    "autolog",
    "end_run",
    "flush",
    "get_run",
    "get_snapshot",
    "init",
    "lineage",
    "load_snapshot",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "record_cell",
    "runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "snapshot",
    "snapshots",
    "start_run",
]


def load_ipython_extension(ipython):  # %load_ext mlo
    from .jupyter.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .jupyter.magics import unload_ipython_extension as unload

    unload(ipython)
