"""``Run``: a handle on one tracked run, for reading what it logged and (while it lives) logging more."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound
from .records import Artifact, Cell, to_datetime

if TYPE_CHECKING:
    import pandas as pd

    from ..workspace import Workspace

TERMINAL = ("finished", "failed", "killed")


def decode_param(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class Run:
    """One run. Attributes that can change (status, params, metrics, …) are read from the store on access."""

    def __init__(self, ws: Workspace, run_id: str, row: dict | None = None):
        self._ws = ws
        self.id = run_id
        self._row_cache = row

    # -- identity and state -----------------------------------------------------------------------------------
    def _row(self, fresh: bool = False) -> dict:
        if fresh or self._row_cache is None:
            self._row_cache = self._ws.runs.run_row(self.id)
        return self._row_cache

    @property
    def name(self) -> str:
        return self._row()["name"]

    @property
    def experiment(self) -> str:
        return self._row()["experiment"]

    @property
    def status(self) -> str:
        """``running``, ``finished``, ``failed`` or ``killed``."""
        return self._row(fresh=True)["status"]

    @property
    def lifecycle(self) -> str:
        """``active``, ``archived`` or ``deleted`` (see :func:`mlo.delete_run`)."""
        return self._row(fresh=True)["lifecycle"]

    @property
    def note(self) -> str | None:
        """The run's Markdown note (:meth:`set_note`), or None."""
        return self._row(fresh=True)["note"]

    def set_note(self, text: str) -> None:
        """Replace the run's Markdown note (an empty text removes it)."""
        from .lifecycle import set_note

        set_note(text, run=self)

    @property
    def parent_id(self) -> str | None:
        return self._row()["parent_id"]

    @property
    def start_time(self):
        return to_datetime(self._row()["start_time"])

    @property
    def end_time(self):
        return to_datetime(self._row(fresh=True)["end_time"])

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (to now while running)."""
        import time

        row = self._row(fresh=True)
        end = row["end_time"] or int(time.time() * 1e6)
        return (end - row["start_time"]) / 1e6

    @property
    def user(self) -> str | None:
        return self._row()["user"]

    @property
    def source(self) -> str | None:
        """The notebook or script the run came from, when known."""
        return self._row(fresh=True)["source"]

    # -- what was logged --------------------------------------------------------------------------------------
    def _flush(self) -> None:
        from . import session

        session.flush(self.id)

    @property
    def params(self) -> dict[str, Any]:
        from ..store import schema

        return {k: decode_param(v) for k, v in self._ws.runs.key_values(schema.params, self.id).items()}

    @property
    def tags(self) -> dict[str, str]:
        from ..store import schema

        return self._ws.runs.key_values(schema.tags, self.id)

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value (highest step) of every metric."""
        self._flush()
        return self._ws.runs.latest_metrics(self.id)

    def history(self, key: str) -> pd.DataFrame:
        """Every logged point of metric ``key``: a DataFrame with ``step``, ``value``, ``timestamp`` (UTC)."""
        import pandas as pd

        from .metrics import check_key

        check_key(key)
        self._flush()
        series = self._ws.runs.metric_series(self.id, key)
        if series is None:
            known = ", ".join(sorted(self._ws.runs.latest_metrics(self.id))) or "none"
            raise NotFound(f"run {self.id} has no metric {key!r} (it has: {known})")
        steps, values, stamps = series
        return pd.DataFrame(
            {
                "step": steps,
                "value": values,
                "timestamp": pd.to_datetime(stamps, unit="us", utc=True),
            }
        )

    def system_metrics(self) -> pd.DataFrame:
        """The run's ``system.*`` samples (CPU, memory, I/O, GPUs): one row per sample (``timestamp``, UTC), one
        column per key without its ``system.`` prefix; empty when none were taken."""
        import pandas as pd

        self._flush()
        keys = sorted(k for k in self._ws.runs.latest_metrics(self.id) if k.startswith("system."))
        columns = {}
        for key in keys:
            _steps, values, stamps = self._ws.runs.metric_series(self.id, key)
            columns[key.removeprefix("system.")] = pd.Series(
                values, index=pd.to_datetime(stamps, unit="us", utc=True)
            )
        frame = pd.DataFrame(columns)
        frame.index.name = "timestamp"
        return frame

    def load_model(self, path: str = "model", *, trust: bool = False) -> Any:
        """The model autolog stored with this run (``mlo.autolog(log_models=True)``, the default). A pickle (a
        model skops cannot hold) loads only with ``trust=True``, as in the registry."""
        from .logged_model import load_model

        if not isinstance(path, str) or not path.strip():
            raise InvalidInput(f"path must be the folder of a logged model, e.g. 'model', got {path!r}")
        return load_model(self, path.strip("/"), trust=trust)

    @property
    def artifacts(self) -> list[Artifact]:
        blobs = self._ws.blobs
        return [
            Artifact(a["path"], a["digest"], a["size"], a["media_type"], to_datetime(a["created_at"]), blobs)
            for a in self._ws.runs.artifacts(self.id)
        ]

    def artifact(self, path: str) -> Artifact:
        for a in self.artifacts:
            if a.path == path:
                return a
        raise NotFound(f"run {self.id} has no artifact {path!r}; see run.artifacts")

    @property
    def cells(self) -> list[Cell]:
        """The notebook cells that ran while this run was active, in execution order."""
        return [
            Cell(
                c["seq"],
                c["source"],
                c["execution_count"],
                bool(c["success"]),
                c["duration"],
                to_datetime(c["started_at"]),
                c["error"],
            )
            for c in self._ws.runs.cells(self.id)
        ]

    @property
    def git(self) -> dict | None:
        """``commit``, ``branch``, ``dirty``, ``diff_digest`` of the code's repository, or None outside git."""
        from . import session

        session.wait_for_capture(self.id)
        row = self._row(fresh=True)
        if row["git_commit"] is None:
            return None
        return {
            "commit": row["git_commit"],
            "branch": row["git_branch"],
            "dirty": bool(row["git_dirty"]),
            "diff_digest": row["git_diff_digest"],
        }

    def git_diff(self) -> str:
        """The uncommitted changes (``git diff HEAD``) when the run started; empty when the tree was clean."""
        git = self.git
        if not git or not git["diff_digest"]:
            return ""
        return self._ws.blobs.get_bytes(git["diff_digest"]).decode("utf-8", "replace")

    @property
    def env(self) -> dict:
        """Python version, platform and installed packages of the process that ran it."""
        from . import session

        session.wait_for_capture(self.id)
        digest = self._row(fresh=True)["env_digest"]
        return json.loads(self._ws.blobs.get_bytes(digest)) if digest else {}

    # -- logging through the handle ---------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        from . import session

        session.log_params({key: value}, run=self)

    def log_params(self, params: dict[str, Any]) -> None:
        from . import session

        session.log_params(params, run=self)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        from . import session

        session.writer(self).metrics.add(key, value, step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from . import session

        session.writer(self).metrics.add_many(metrics, step)

    def set_tags(self, tags: dict[str, Any]) -> None:
        from . import session

        session.set_tags(tags, run=self)

    def end(self, status: str = "finished") -> None:
        from . import session

        session.end_run(status, run=self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        from . import session

        if exc_type is None:
            status = "finished"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "killed"
        else:
            status = "failed"
        if session.is_live(self.id):
            session.end_run(status, run=self)

    # -- display ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        row = self._row(fresh=True)
        return {
            "id": self.id,
            "name": row["name"],
            "experiment": row["experiment"],
            "status": row["status"],
            "lifecycle": row["lifecycle"],
            "note": row["note"],
            "start_time": to_datetime(row["start_time"]).isoformat(),
            "end_time": row["end_time"] and to_datetime(row["end_time"]).isoformat(),
            "duration": self.duration,
            "parent_id": row["parent_id"],
            "user": row["user"],
            "source": row["source"],
            "git": self.git,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "cells": [c.to_dict() for c in self.cells],
        }

    def __repr__(self) -> str:
        row = self._row()
        return f"Run(id={self.id!r}, name={row['name']!r}, experiment={row['experiment']!r}, status={self.status!r})"

    def _repr_html_(self) -> str:
        from ..report.runs import run_html

        return run_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def check_status(status: str) -> str:
    """A final run status in mlo's lower-case spelling (``"FINISHED"``, as MLflow writes it, is ``"finished"``)."""
    word = status.strip().lower() if isinstance(status, str) else status
    if word not in TERMINAL:
        raise InvalidInput(f"run status must be one of {', '.join(TERMINAL)}, got {status!r}")
    return word
