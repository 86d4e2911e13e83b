"""Abandoned evaluation checkpoints: ``.mlo/evals/<key>.jsonl`` files that no evaluation will pick up again.

An evaluation appends one line per finished row and removes its file when the report is stored, so a file left
behind is an evaluation that was killed. It resumes only when run again with the same arguments (same app
version, data digest, scorers, …); once those moved on, the file is dead weight. A live evaluation touches its
file at every row, so age is the test: a checkpoint untouched for ``older_than`` (default 7 days) is abandoned,
and one with no readable row at all is abandoned after an hour (nothing in it could be resumed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

DEFAULT_AGE = "7d"
UNREADABLE_AGE = 3600.0


def _rows(path: Path) -> int:
    """How many rows a checkpoint holds (0 when none is readable)."""
    n = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            n += isinstance(rec, dict) and "index" in rec
    return n


def abandoned(home: Path, older_than: Any = DEFAULT_AGE, *, now: float | None = None) -> list[dict[str, Any]]:
    """The abandoned checkpoints under a workspace's ``home``: path, bytes, rows, age in days, and why."""
    from ..tracking.lifecycle import grace_seconds

    age = grace_seconds(older_than)
    now = time.time() if now is None else now
    folder = home / "evals"
    out = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.jsonl")):
        try:
            st = p.stat()
            rows = _rows(p)
        except OSError:  # removed meanwhile by the evaluation that finished
            continue
        idle = now - st.st_mtime
        if idle >= age:
            why = "idle"
        elif rows == 0 and idle >= UNREADABLE_AGE:
            why = "unreadable"
        else:
            continue
        out.append(
            {"path": str(p), "bytes": st.st_size, "rows": rows, "days": round(idle / 86400, 1), "why": why}
        )
    return out


def gc_checkpoints(older_than: Any = DEFAULT_AGE, *, dry_run: bool = False) -> dict[str, Any]:
    """Remove the current workspace's abandoned evaluation checkpoints (see the module's text).

    Parameters
    ----------
    older_than : str, float or timedelta
        How long a checkpoint must have been untouched ("7d", "12h", seconds).
    dry_run : bool
        Only say what would be removed.

    Returns
    -------
    dict
        ``found``, ``removed``, ``bytes`` and the ``checkpoints`` (path, bytes, rows, days, why).
    """
    from .. import workspace

    return _collect(workspace.current(create=False), older_than, dry_run)


def _collect(ws, older_than: Any, dry_run: bool) -> dict[str, Any]:
    found = abandoned(ws.home, older_than)
    removed = 0
    for c in found:
        if dry_run:
            continue
        try:
            Path(c["path"]).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return {
        "found": len(found),
        "removed": len(found) if dry_run else removed,
        "bytes": sum(c["bytes"] for c in found),
        "checkpoints": found,
    }


def gc_step(ws, *, dry_run: bool = False) -> dict[str, Any]:
    """``mlo gc``'s step: evaluation checkpoints untouched for 7 days (or unreadable for an hour)."""
    res = _collect(ws, DEFAULT_AGE, dry_run)
    rows = sum(c["rows"] for c in res["checkpoints"])
    note = f"{rows} rows of killed evaluations" if res["found"] else ""
    return {"found": res["found"], "removed": res["removed"], "bytes": res["bytes"], "note": note}
