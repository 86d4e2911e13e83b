"""The lifecycle of runs and experiments: archive, delete (soft), restore, purge for good; notes on runs; the
list of experiments.

Archived and deleted runs leave default listings (``mlo.runs()``, ``%mlo runs``, ``mlo runs``, the compare
widget, the lab panel); ``include="archived"``, ``"deleted"`` or ``"all"`` brings them back. Deleting a run
deletes its descendants too (a pipeline run's stages, nested runs); restoring brings them back. A deleted run is
removed for good only by :func:`purge` (``mlo gc``), after a grace period, and never while a registered model
version, a snapshot or the lineage of one still needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from .. import workspace
from ..errors import InvalidInput
from ..store.lifecycle import LifecycleStore, PurgeResult, check_include
from ..store.runs import now_us
from . import session
from .run import Run

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_GRACE = timedelta(days=30)


def _store() -> tuple[workspace.Workspace, LifecycleStore]:
    ws = workspace.current(create=False)
    return ws, LifecycleStore(ws.db)


def _run_ids(ws: workspace.Workspace, runs: str | Run | Iterable[str | Run]) -> list[str]:
    if isinstance(runs, str) or isinstance(runs, Run):
        items = [runs]
    elif isinstance(runs, (list, tuple, set, frozenset)):
        items = list(runs)
    else:
        raise InvalidInput(
            f"name runs by id, unique id prefix or Run (or a list of them), got {type(runs).__name__} {runs!r:.40}"
        )
    if not items:
        raise InvalidInput("name at least one run (an id or a unique id prefix)")
    session.reap(ws)  # a run left "running" by a dead process reads killed, and may then be deleted
    out = []
    for item in items:
        ref = item.id if hasattr(item, "id") else item
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"a run is named by its id or a unique id prefix, got {item!r}")
        out.append(ws.runs.resolve_run_id(ref))
    return out


# -- runs -------------------------------------------------------------------------------------------------------
def delete_run(run: str | Run | Iterable[str | Run]) -> list[str]:
    """Delete runs (ids, unique id prefixes or :class:`Run` objects) and their descendants, softly: they leave
    default listings and stay restorable with :func:`restore_run` until a purge (``mlo gc``) after the grace
    period. A running run is refused. Returns the ids that changed."""
    ws, store = _store()
    return store.set_runs(_run_ids(ws, run), "deleted")


def archive_run(run: str | Run | Iterable[str | Run]) -> list[str]:
    """Archive runs and their descendants: kept for good, out of default listings (``include="archived"``
    shows them). Returns the ids that changed."""
    ws, store = _store()
    return store.set_runs(_run_ids(ws, run), "archived")


def restore_run(run: str | Run | Iterable[str | Run]) -> list[str]:
    """Bring deleted or archived runs (and their descendants) back to the default listings. Returns the ids
    that changed."""
    ws, store = _store()
    return store.set_runs(_run_ids(ws, run), "active")


# -- experiments --------------------------------------------------------------------------------------------------
def _experiment_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"name an experiment, got {name!r}")
    return name.strip()


def delete_experiment(name: str) -> bool:
    """Delete an experiment softly: it and its runs leave default listings, no run can start in it, and
    :func:`restore_experiment` brings it back until a purge (``mlo gc``) removes it after the grace period.
    Returns whether it changed."""
    _, store = _store()
    return store.set_experiment(_experiment_name(name), "deleted")


def archive_experiment(name: str) -> bool:
    """Archive an experiment: it and its runs are kept, out of default listings; no run can start in it."""
    _, store = _store()
    return store.set_experiment(_experiment_name(name), "archived")


def restore_experiment(name: str) -> bool:
    """Bring a deleted or archived experiment back (with its runs, apart from those deleted one by one)."""
    _, store = _store()
    return store.set_experiment(_experiment_name(name), "active")


def experiments(include: str | Iterable[str] | None = None) -> pd.DataFrame:
    """Experiments as a DataFrame: ``name, runs, last_run, created_at`` (and ``lifecycle``, ``deleted_at`` when
    ``include`` asks for archived or deleted ones), by name. ``runs`` counts the runs a listing shows."""
    import pandas as pd

    included = check_include(include)
    ws = workspace.current()
    rows = ws.runs.experiments(included)
    df = pd.DataFrame(
        rows, columns=["id", "name", "lifecycle", "created_at", "deleted_at", "runs", "last_run"]
    )
    for c in ("created_at", "last_run", "deleted_at"):
        df[c] = pd.to_datetime(df[c].astype("float64"), unit="us", utc=True)
    df["runs"] = df["runs"].astype("int64")
    columns = ["name", "runs", "last_run", "created_at", "id"]
    if included:
        columns[1:1] = ["lifecycle"]
        columns.append("deleted_at")
    return df[columns].reset_index(drop=True)


# -- notes ------------------------------------------------------------------------------------------------------------
def set_note(text: str, run: str | Run | None = None) -> None:
    """Set the Markdown note of ``run`` (an id, a unique prefix or a :class:`Run`; default: the active run),
    replacing the previous one; an empty text removes it. The note shows on the run's page and in
    ``mlo show``."""
    if not isinstance(text, str):
        raise InvalidInput(f"a note is Markdown text, got {type(text).__name__}")
    if run is None:
        active = session.active_run()
        if active is None:
            raise InvalidInput("no active run to annotate: pass run=<run id>")
        run_id, ws = active.id, active._ws
    else:
        ws = workspace.current(create=False)
        run_id = _run_ids(ws, run)[0]
    LifecycleStore(ws.db).set_note(run_id, text.strip() or None)


def note(run: str | Run) -> str | None:
    """The Markdown note of ``run``, or None."""
    ws = workspace.current(create=False)
    return LifecycleStore(ws.db).note(_run_ids(ws, run)[0])


# -- purge ------------------------------------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h|d|w)?\s*$")
_UNIT = {None: 1, "s": 1, "sec": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def grace_seconds(older_than: float | str | timedelta) -> float:
    """A grace period as seconds: a number of seconds, a :class:`~datetime.timedelta` or text such as
    ``"30d"``, ``"12h"``, ``"90min"``."""
    if isinstance(older_than, timedelta):
        seconds = older_than.total_seconds()
    elif isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
        seconds = float(older_than)
    elif isinstance(older_than, str) and (m := _DURATION.match(older_than.lower())):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise InvalidInput(
            f"older_than={older_than!r}: give seconds, a timedelta or text such as '30d' or '12h'"
        )
    if seconds < 0:
        raise InvalidInput(f"older_than={older_than!r} is negative")
    return seconds


def purge(older_than: float | str | timedelta = DEFAULT_GRACE, *, dry_run: bool = False) -> PurgeResult:
    """Remove for good the runs deleted at least ``older_than`` ago (default 30 days), and the runs of
    experiments deleted that long ago, with their params, metrics, tags, artifacts' records, cells and lineage;
    then the deleted experiments left empty.

    A run stays (still deleted, listed in ``kept`` with the reason) while something refers to it: a registered
    model version, a snapshot taken in it, the lineage of a snapshot or model, a report about a model or cited
    in the registry's audit log; and so do its ancestors. The blobs its artifacts used are reclaimed by
    ``mlo gc`` once nothing else refers to them. ``dry_run`` says what would go and removes nothing.
    """
    seconds = grace_seconds(older_than)
    _, store = _store()
    return store.purge(now_us() - int(seconds * 1_000_000), dry_run=dry_run)


def purge_step(ws, *, dry_run: bool = False) -> dict:
    """``mlo gc``'s first step: purge what was deleted over 30 days ago, so its blobs go in the same sweep."""
    from ..store.lifecycle import LifecycleStore

    cutoff = now_us() - int(grace_seconds(DEFAULT_GRACE) * 1_000_000)
    result = LifecycleStore(ws.db).purge(cutoff, dry_run=dry_run)
    note = f"{len(result.experiments)} experiments" if result.experiments else ""
    if result.kept:
        note += (", " if note else "") + f"{len(result.kept)} deleted runs kept (something refers to them)"
    return {
        "found": len(result.runs) + len(result.kept),
        "removed": len(result.runs),
        "kept": len(result.kept),
        "note": note,
    }


__all__ = [
    "archive_experiment",
    "archive_run",
    "delete_experiment",
    "delete_run",
    "experiments",
    "note",
    "purge",
    "restore_experiment",
    "restore_run",
    "set_note",
]
