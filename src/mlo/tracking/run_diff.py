"""What differs between two runs, as plain records: params, latest metrics, the code cells that ran (a unified
diff of their sources in execution order), the environment (Python, platform and package versions) and git (commit,
branch, uncommitted changes)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .run import Run

_MISSING = object()
# the environment's scalar fields worth comparing (packages are compared one by one)
ENV_FIELDS = ("python", "implementation", "platform", "machine", "cpus")


def _pairs(a: dict, b: dict, only_differing: bool) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        same = va == vb
        if only_differing and same:
            continue
        rows.append(
            {
                "key": key,
                "a": None if va is _MISSING else va,
                "b": None if vb is _MISSING else vb,
                "only": "a" if vb is _MISSING else "b" if va is _MISSING else None,
                "same": same,
            }
        )
    return rows


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: None if v != v else v for k, v in metrics.items()}  # NaN is not JSON


def _source(run: Run) -> list[str]:
    lines: list[str] = []
    for cell in sorted(run.cells, key=lambda c: c.seq):
        lines.append(f"# In [{cell.execution_count if cell.execution_count is not None else ' '}]")
        lines.extend(cell.source.splitlines())
    return lines


def diff_runs(a: Run, b: Run, context: int = 3) -> dict[str, Any]:
    """The differences between runs ``a`` and ``b``.

    Returns ``{"a", "b", "params", "metrics", "env", "packages", "git", "cells"}``: ``params`` and ``metrics`` list
    every key with both values (``same`` tells whether they agree, ``only`` names the run that alone has it);
    ``env`` and ``packages`` list only what differs; ``git`` has both sides; ``cells`` is a unified diff of the
    two runs' cell sources (a list of lines, empty when they ran the same code).
    """
    if a.id == b.id:
        raise InvalidInput("give two different runs to diff")
    env_a, env_b = a.env, b.env
    packages = _pairs(env_a.get("packages") or {}, env_b.get("packages") or {}, only_differing=True)
    env = _pairs(
        {k: env_a[k] for k in ENV_FIELDS if k in env_a},
        {k: env_b[k] for k in ENV_FIELDS if k in env_b},
        only_differing=True,
    )
    git_a, git_b = a.git, b.git
    cells = list(
        difflib.unified_diff(
            _source(a), _source(b), f"run {a.id[:10]}", f"run {b.id[:10]}", n=context, lineterm=""
        )
    )
    return {
        "a": {"id": a.id, "name": a.name, "experiment": a.experiment, "status": a.status},
        "b": {"id": b.id, "name": b.name, "experiment": b.experiment, "status": b.status},
        "params": _pairs(a.params, b.params, only_differing=False),
        "metrics": _pairs(_finite(a.metrics), _finite(b.metrics), only_differing=False),
        "env": env,
        "packages": packages,
        "packages_compared": bool(env_a.get("packages")) and bool(env_b.get("packages")),
        "git": {"a": git_a, "b": git_b, "same": git_a == git_b},
        "cells": cells,
    }
