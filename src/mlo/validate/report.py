"""``ValidationReport``: the outcome of :func:`mlo.validate`, one row per check result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import GateFailed, NotFound

if TYPE_CHECKING:
    import pandas as pd

OPS = (">=", "<=", "between")


def compare(value: float | None, op: str, bound: Any) -> bool:
    """Whether ``value`` satisfies ``op bound``; a missing or NaN value never does."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if op == ">=":
        return value >= bound
    if op == "<=":
        return value <= bound
    lo, hi = bound
    return lo <= value <= hi


def _clean(v: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None, containers recursively."""
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if v is None or isinstance(v, (bool, int, str)):
        return v
    return str(v)


def fmt_bound(op: str | None, bound: Any) -> str:
    if op is None or bound is None:
        return ""
    if op == "between":
        return f"in [{bound[0]:.4g}, {bound[1]:.4g}]"
    return f"{'≥' if op == '>=' else '≤'} {bound:.4g}"


@dataclass
class CheckResult:
    """One row of a report: what was measured (``value``), the bound it had to meet and whether it did.

    ``passed`` is None when the check could not apply (``detail`` says why); such a row does not fail the report.
    ``data`` holds the evidence behind the value (the slice table, the per-group fairness table, …).
    """

    name: str
    check: str
    value: float | None
    op: str | None
    bound: Any
    passed: bool | None
    detail: str = ""
    data: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "skipped" if self.passed is None else ("passed" if self.passed else "failed")

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "name": self.name,
                "check": self.check,
                "value": self.value,
                "op": self.op,
                "bound": self.bound,
                "passed": self.passed,
                "status": self.status,
                "detail": self.detail,
                "data": self.data,
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        """The row :meth:`to_dict` described."""
        return cls(
            d["name"],
            d["check"],
            d.get("value"),
            d.get("op"),
            d.get("bound"),
            d.get("passed"),
            d.get("detail", ""),
            d.get("data") or {},
        )

    def headline(self) -> str:
        """``name: value op bound`` in one short phrase."""
        if self.value is None:
            return f"{self.name}: {self.detail}" if self.detail else self.name
        return f"{self.name}: {self.value:.4g} {fmt_bound(self.op, self.bound)}".rstrip()


class ValidationReport:
    """The outcome of one validation: rows of :class:`CheckResult`, and where it was stored.

    Attributes
    ----------
    passed : bool
        True when no row failed (rows that could not apply are not failures).
    rows : list of CheckResult
        One per measured value, in the order of the checks.
    id : str or None
        The stored report's id (``ws.reports.get(id)``), None when not stored.
    model_version : str or None
        ``"<name>/<version>"`` of the model version this report is evidence for.
    run_id : str or None
        The run that was active when the report was made.
    """

    def __init__(
        self,
        rows: list[CheckResult],
        *,
        model_version: str | None = None,
        run_id: str | None = None,
        n_rows: int | None = None,
        timing: dict | None = None,
        id: str | None = None,
        importance: dict[str, Any] | None = None,
    ):
        self.rows = list(rows)
        self.model_version = model_version
        self.run_id = run_id
        self.n_rows = n_rows
        self.timing = dict(timing or {})
        self.id = id
        self.importance: dict[str, Any] | None = importance

    @property
    def passed(self) -> bool:
        return not any(r.passed is False for r in self.rows)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.rows if r.passed is False]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.rows:
            if r.name == name:
                return r
        raise NotFound(f"no check {name!r} in this report; it has {', '.join(self.names) or 'none'}")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def summary(self) -> dict[str, Any]:
        """The flat record kept in the store's report row (what promotion policies read)."""
        return {
            "passed": self.passed,
            "n_checks": len(self.rows),
            "n_failed": len(self.failures),
            "n_skipped": sum(r.passed is None for r in self.rows),
            "checks": self.names,
            "failed": [r.name for r in self.failures],
            "model_version": self.model_version,
            "n_rows": self.n_rows,
        }

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "id": self.id,
                **self.summary(),
                "run_id": self.run_id,
                "timing": self.timing,
                "rows": [r.to_dict() for r in self.rows],
                **({"importance": self.importance} if self.importance else {}),
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ValidationReport:
        """The report :meth:`to_dict` described (a stored report's payload)."""
        rows = [CheckResult.from_dict(r) for r in d.get("rows", [])]
        return cls(
            rows,
            model_version=d.get("model_version"),
            run_id=d.get("run_id"),
            n_rows=d.get("n_rows"),
            timing=d.get("timing"),
            id=d.get("id"),
            importance=d.get("importance"),
        )

    @classmethod
    def load(cls, report_id: str) -> ValidationReport:
        """A stored validation report, by id or unique id prefix."""
        from .. import workspace

        _, payload = workspace.current(create=False).reports.load(report_id, "validation")
        return cls.from_dict(payload)

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame: name, check, value, op, bound, passed, detail."""
        import pandas as pd

        cols = ["name", "check", "value", "op", "bound", "passed", "detail"]
        return pd.DataFrame([[getattr(r, c) for c in cols] for r in self.rows], columns=cols)

    def raise_for_failures(self) -> ValidationReport:
        """Raise :class:`mlo.GateFailed` when a check failed; return the report otherwise (to chain)."""
        if self.passed:
            return self
        failed = self.failures
        shown = "; ".join(r.headline() for r in failed[:3]) + ("; …" if len(failed) > 3 else "")
        where = f" for {self.model_version}" if self.model_version else ""
        stored = f" (report {self.id})" if self.id else ""
        raise GateFailed(
            f"validation{where} failed {len(failed)} of {len(self.rows)} checks: {shown}{stored}; "
            "fix the model or data, or change the bounds deliberately"
        )

    def __repr__(self) -> str:
        state = "passed" if self.passed else f"FAILED {len(self.failures)}"
        of = f" {self.model_version}" if self.model_version else ""
        return f"<ValidationReport{of}: {state} of {len(self.rows)} checks>"

    def _repr_html_(self) -> str:
        from ..report.validation import render

        return render(self)
