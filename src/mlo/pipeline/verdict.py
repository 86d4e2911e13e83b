"""The verdict of ``mlo reproduce``: what was compared, whether it matched, and why not.

A reproduction compares each run of the original (the run, and every child of a sweep) with the run its replay
made: the status, the params, the metrics, and for a failed run the error. It reproduces when every comparable
value matches; a run with nothing to compare (no metrics, no error) is its own verdict, never a success. When it
does not reproduce, the causes say which input differs, which cell first diverged, whether the notebook is not
deterministic, which package versions changed, each with the command that fixes it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import GateFailed

STATUSES = {
    "reproduced": "every compared value matches",
    "different": "the replay ran, and values differ",
    "failed": "the replay could not run the run's cells to the end",
    "nothing": "the run has no metrics or error to compare",
    "error": "the run could not be rebuilt",
    "skipped": "a reproduction does not start another one",
}


@dataclass
class ValueCheck:
    kind: str  # status | param | metric | error
    key: str
    original: Any
    reproduced: Any
    match: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunComparison:
    original: str  # run id
    name: str
    reproduced: str | None  # the run the replay made, None when it made none
    checks: list[ValueCheck] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return self.reproduced is not None and all(c.match for c in self.checks)

    @property
    def comparable(self) -> int:
        """Results compared: metrics, and the error of a failed run (status and params are not results)."""
        return sum(c.kind in ("metric", "error") for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "name": self.name,
            "reproduced": self.reproduced,
            "match": self.match,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass
class Cause:
    kind: str  # input | missing-input | diverged | nondeterministic | unseeded | package | code | failed-cell | replay
    message: str
    fix: str | None = None
    cell: str | None = None  # "In [7]" of the original notebook

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return self.message + (f" — fix: {self.fix}" if self.fix else "")


@dataclass
class Reproduction:
    original: str  # run id
    status: str = ""  # see STATUSES; set by decide() once compared
    message: str = ""
    runs: list[RunComparison] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    notes: list[str] = field(
        default_factory=list
    )  # what the replay did differently, when it reproduced anyway
    reproduction: str | None = None  # the run that holds the replay
    notebook: str | None = None  # the replayed notebook, as stored on the reproduction's run
    inputs: dict[str, str] = field(default_factory=dict)  # snapshot name -> name@version it ran on
    cells: dict[str, int] = field(default_factory=dict)  # {"history": n, "replayed": m, "replaced": k}
    replays: int = 1
    rtol: float = 1e-6
    atol: float = 1e-9
    seconds: dict[str, float] = field(default_factory=dict)

    # -- verdict --------------------------------------------------------------------------------------------
    @property
    def reproduced(self) -> bool:
        return self.status == "reproduced"

    @property
    def exit_code(self) -> int:
        """0 reproduced, 2 could not be rebuilt (bad input), 1 otherwise (the check failed)."""
        return 0 if self.reproduced else (2 if self.status == "error" else 1)

    @property
    def compared(self) -> str | None:
        """The run whose values were compared with the original itself."""
        return self.runs[0].reproduced if self.runs else None

    @property
    def checks(self) -> list[ValueCheck]:
        """The metric checks of the original run itself."""
        return [c for c in self.runs[0].checks if c.kind == "metric"] if self.runs else []

    def decide(self) -> None:
        """Set the status from the comparisons (a failed replay has already set ``failed``)."""
        if self.status in ("error", "skipped", "failed"):
            return
        if any(not r.match for r in self.runs):
            self.status = "different"
        elif not sum(r.comparable for r in self.runs):
            self.status = "nothing"
        else:
            self.status = "reproduced"
            self.notes += [str(c) for c in self.causes]  # what changed did not change the results
            self.causes = []

    def raise_for_mismatch(self) -> None:
        if not self.reproduced:
            raise GateFailed(self.summary())

    # -- words ----------------------------------------------------------------------------------------------
    def summary(self) -> str:
        rid = self.original[:10]
        if self.status == "error":
            return f"could not reproduce run {rid}: {self.message}"
        if self.status == "skipped":
            return f"reproduction of run {rid} skipped: {self.message}"
        if self.status == "nothing":
            return (
                f"run {rid} has nothing to compare: it logged no metrics (log one with mlo.log_metric, or "
                "%mlo metric) — the replay ran, but nothing shows it gives the same results"
            )
        if self.status == "failed":
            return f"run {rid} did not reproduce: {self.message}"
        checks = [c for r in self.runs for c in r.checks]
        if self.status == "reproduced":
            n = sum(r.comparable for r in self.runs)
            what = f"{n} value{'s match' if n != 1 else ' matches'}"
            if len(self.runs) > 1:
                what += f" across {len(self.runs)} runs"
            return f"reproduced run {rid}: {what} (rtol {self.rtol:g})"
        bad = [c for c in checks if not c.match]
        missing = [r.name for r in self.runs if r.reproduced is None]
        parts = []
        if missing:
            parts.append(f"the replay made no run for {', '.join(missing)}")
        if bad:
            names = list(dict.fromkeys(_what(c) for c in bad))
            parts.append(", ".join(names) + (" differ" if len(names) > 1 else " differs"))
        return f"run {rid} did not reproduce: {'; '.join(parts)}"

    def explain(self) -> str:
        """The summary, then each cause and its fix, one per line."""
        lines = [self.summary()]
        lines += [f"  - {c}" for c in self.causes]
        lines += [f"  · {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "status": self.status,
            "reproduced": self.reproduced,
            "summary": self.summary(),
            "message": self.message,
            "reproduction": self.reproduction,
            "compared": self.compared,
            "notebook": self.notebook,
            "inputs": self.inputs,
            "cells": self.cells,
            "replays": self.replays,
            "rtol": self.rtol,
            "atol": self.atol,
            "runs": [r.to_dict() for r in self.runs],
            "checks": [c.to_dict() for c in self.checks],
            "causes": [c.to_dict() for c in self.causes],
            "notes": self.notes,
            "seconds": self.seconds,
        }

    def _repr_html_(self) -> str:
        from .render import reproduction_html

        return reproduction_html(self)

    def __repr__(self) -> str:
        return f"Reproduction({self.explain()!r})"


def _what(c: ValueCheck) -> str:
    return {"param": f"param {c.key}", "status": "status", "error": "error"}.get(c.kind, c.key)


# -- comparing values -------------------------------------------------------------------------------------------
def close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not _number(a) or not _number(b):
        return a == b
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float))


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def error_kind(error: str | None) -> tuple[str, str] | None:
    """``("ValueError", "first line of the message")`` of a recorded error, addresses blanked."""
    if not error:
        return None
    kind, _, message = error.partition(":")
    first = message.strip().splitlines()[0] if message.strip() else ""
    return kind.strip(), _ADDRESS.sub("0x…", first)


def compare_runs(
    original,
    reproduced,
    *,
    rtol: float,
    atol: float,
    compare_params: bool = True,
    original_error: str | None = None,
    reproduced_error: str | None = None,
) -> RunComparison:
    """Compare two :class:`~mlo.tracking.run.Run` handles (``reproduced`` may be None)."""
    cmp = RunComparison(original.id, original.name, reproduced.id if reproduced is not None else None)
    status = original.status
    if reproduced is None:
        cmp.checks.append(ValueCheck("status", "status", status, None, False))
        return cmp
    got = reproduced.status
    cmp.checks.append(ValueCheck("status", "status", status, got, status == got))
    if compare_params:
        mine, theirs = original.params, reproduced.params
        for key in sorted(set(mine) | set(theirs)):
            a, b = mine.get(key), theirs.get(key)
            cmp.checks.append(ValueCheck("param", key, a, b, close(a, b, rtol, atol)))
    got_metrics = reproduced.metrics
    for key, value in sorted(original.metrics.items()):
        if key.startswith("system."):  # how the machine ran it (CPU, memory, I/O), not what it computed
            continue
        b = got_metrics.get(key)
        cmp.checks.append(ValueCheck("metric", key, value, b, b is not None and close(value, b, rtol, atol)))
    if status == "failed":
        a, b = error_kind(original_error), error_kind(reproduced_error)
        same = a is not None and b is not None and a[0] == b[0]
        cmp.checks.append(
            ValueCheck("error", "error", original_error, reproduced_error, same or (a is None and b is None))
        )
    return cmp
