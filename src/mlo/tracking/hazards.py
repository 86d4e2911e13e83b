"""What threatens a run's reproducibility, found in its history: each hazard names the cell, says what is wrong
and gives the one command that fixes it. Shown once per cause while the notebook runs, and again in the verdict
of ``mlo reproduce`` when a reproduction does not match.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .history import History

KINDS = ("edited", "deleted", "failed", "unseeded", "unsnapshotted")


@dataclass(frozen=True)
class Hazard:
    kind: str  # one of KINDS
    key: str  # what makes two hazards the same cause
    message: str
    fix: str
    cell: str | None = None  # "In [7]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.message} — fix: {self.fix}"


def _names(flow_names: set[str], limit: int = 3) -> str:
    names = sorted(flow_names)
    text = ", ".join(f"`{n}`" for n in names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find(
    history: History,
    targets: set[int],
    *,
    snapshot_sources: set[str] | Callable[[], set[str]] = frozenset(),
    notebook_cells: dict[str, str] | None | Callable[[], dict[str, str] | None] = None,
) -> list[Hazard]:
    """The hazards of a run whose own cells are at ``targets`` in ``history``.

    ``snapshot_sources`` are the files the run has snapshots of; ``notebook_cells`` maps the cell ids of the
    notebook as saved on disk to their sources (None when the notebook file is not known). Either may be a
    function, called only when needed.
    """
    from .replay import plan

    cells = history.cells
    sources = _Lazy(snapshot_sources)
    # the replay if every file it read had changed: what is still read from outside is at risk
    worst = plan(history, targets, changed=lambda path, state: path not in sources())
    saved = _Lazy(notebook_cells)
    out: list[Hazard] = []
    seeded_before = _seeded_positions(history)
    for i in worst.positions:
        cell = cells[i]
        flow = history.flow(cell)
        outside = i not in targets
        if i in worst.substitutions:
            continue
        # a cell outside the run, since edited or deleted
        if outside and not flow.setup:
            later = [c for c in cells[i + 1 :] if cell.cell_id and c.cell_id == cell.cell_id]
            edited = any(_norm(c.source) != _norm(cell.source) for c in later)
            gone = False
            notebook_cells = saved()
            if notebook_cells is not None and not edited:
                nb_sources = saved.derived(lambda cells: {_norm(s) for s in cells.values()})
                if cell.cell_id and cell.cell_id in notebook_cells:
                    edited = _norm(notebook_cells[cell.cell_id]) != _norm(cell.source)
                elif _norm(cell.source) not in nb_sources:
                    gone = True
            if edited or gone:
                what = f"binds {_names(flow.binds)}" if flow.binds else "runs before it"
                kind = "edited" if edited else "deleted"
                state = "has been edited" if edited else "is no longer in the notebook (edited or deleted)"
                out.append(
                    Hazard(
                        kind,
                        f"{kind}:{cell.seq}",
                        f"the run depends on {cell.label}, which {what} and {state} since it ran",
                        "run the notebook top to bottom (Run All, or `mlo run NOTEBOOK.ipynb`) "
                        "before the run you keep",
                        cell.label,
                    )
                )
        if cell.success is False and outside:
            out.append(
                Hazard(
                    "failed",
                    f"failed:{cell.seq}",
                    f"the run depends on {cell.label}, which failed ({cell.error}); what it bound before "
                    "failing is used",
                    f"fix {cell.label} and re-run it, then the run",
                    cell.label,
                )
            )
        # randomness without a seed
        unseeded = list(flow.unseeded)
        if cell.rng and not seeded_before[i]:
            unseeded.append("the global random generator")
        for what in dict.fromkeys(unseeded):
            out.append(
                Hazard(
                    "unseeded",
                    f"unseeded:{cell.seq}:{what}",
                    f"{cell.label} uses randomness without a seed ({what}): each run gives different results",
                    "seed it: `np.random.seed(0)` / `random.seed(0)` before it, or pass `random_state=0` "
                    "(`np.random.default_rng(0)`)",
                    cell.label,
                )
            )
    # files read that no snapshot keeps
    for path in worst.reads:
        if path in sources():
            continue
        cell = cells[worst.readers[path]]
        rel = history.relative(path)
        out.append(
            Hazard(
                "unsnapshotted",
                f"unsnapshotted:{path}",
                f"{cell.label} reads {rel}, which no snapshot keeps: if the file changes, the run cannot "
                "be reproduced",
                f"`%mlo snapshot {_quote(rel)}` (or `mlo.snapshot({rel!r}, ...)`) before the run",
                cell.label,
            )
        )
    return out


class _Lazy:
    """A value, or a function computing it on first use."""

    def __init__(self, value):
        self._value, self._fn, self._derived = None, None, {}
        if callable(value):
            self._fn = value
        else:
            self._value = value

    def __call__(self):
        if self._fn is not None:
            self._value, self._fn = self._fn(), None
        return self._value

    def derived(self, fn):
        if fn.__code__ not in self._derived:
            self._derived[fn.__code__] = fn(self())
        return self._derived[fn.__code__]


def _seeded_positions(history: History) -> list[bool]:
    """Per position: whether a seed call ran at or before it."""
    out, seeded = [], False
    for cell in history.cells:
        seeded = seeded or history.flow(cell).seeds
        out.append(seeded)
    return out


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _quote(path: str) -> str:
    return f'"{path}"' if any(ch.isspace() for ch in path) else path


def notebook_cells(path: str | os.PathLike | None, cwd: str | None = None) -> dict[str, str] | None:
    """Cell id → source of the code cells of the notebook at ``path`` as saved, or None when unreadable."""
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute() and cwd:
        candidates = [Path(cwd) / p, Path(cwd) / p.name]
        p = next((c for c in candidates if c.is_file()), p)
    try:
        nb = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    out = {}
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out[cell.get("id") or f"#{i}"] = "".join(src) if isinstance(src, list) else src
    return out
