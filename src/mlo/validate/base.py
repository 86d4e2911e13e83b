"""The base of every check: arguments stored at construction (and checked there), work done in ``evaluate``."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidInput
from .context import Context
from .report import CheckResult, compare


def number(value: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float within [low, high], or InvalidInput naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise InvalidInput(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        rng = (
            f" between {low} and {high}"
            if low is not None and high is not None
            else (f" >= {low}" if low is not None else (f" <= {high}" if high is not None else ""))
        )
        raise InvalidInput(f"{what} must be a finite number{rng}, got {value!r}")
    return v


def bound_of(min_: Any, max_: Any, what: str) -> tuple[str, Any]:
    """(op, bound) from optional min and max."""
    lo = None if min_ is None else number(min_, f"{what} min")
    hi = None if max_ is None else number(max_, f"{what} max")
    if lo is None and hi is None:
        raise InvalidInput(f"{what}: give a bound, min= or max=")
    if lo is not None and hi is not None:
        if lo > hi:
            raise InvalidInput(f"{what}: min={lo} is above max={hi}")
        return "between", [lo, hi]
    return (">=", lo) if lo is not None else ("<=", hi)


def column_label(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec):
        return "+".join(spec)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name:
        return name
    cols = getattr(spec, "columns", None)
    if cols is not None:
        return "+".join(str(c) for c in cols)
    return "values"


class Check:
    """A validation check. Subclasses set ``kind`` and implement :meth:`evaluate`."""

    kind = "check"

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidInput(f"check name must be a non-empty string, got {name!r}")
        self.name = name

    def evaluate(self, ctx: Context) -> list[CheckResult]:  # pragma: no cover - abstract
        raise NotImplementedError

    def row_name(self, default: str, part: str | None = None) -> str:
        """The row's name: ``default``, or the user's ``name`` (with ``.part`` for checks with several rows)."""
        if not self.name:
            return default
        return f"{self.name}.{part}" if part else self.name

    def row(
        self,
        name: str,
        value: float | None,
        op: str | None,
        bound: Any,
        detail: str = "",
        data: dict | None = None,
        passed: bool | None | str = "compare",
    ) -> CheckResult:
        """A result row; ``passed`` is computed from value, op and bound unless given."""
        if passed == "compare":
            passed = compare(value, op, bound) if op is not None else None
        if value is not None and not isinstance(value, int):
            value = float(value)
        return CheckResult(
            name=name,
            check=self.kind,
            value=value,
            op=op,
            bound=bound,
            passed=passed,
            detail=detail,
            data=data or {},
        )

    def _params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and v is not None}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


def _short(v: Any) -> str:
    """A repr that stays one short line for arrays, Series and frames."""
    if hasattr(v, "shape") and hasattr(v, "dtype") or hasattr(v, "columns"):
        name = getattr(v, "name", None)
        label = f" {name!r}" if isinstance(name, str) else ""
        return f"<{type(v).__name__}{label} of {len(v)}>"
    if callable(v) and not isinstance(v, type):
        return getattr(v, "__name__", type(v).__name__)
    return repr(v)
