"""``DriftReport``: the outcome of ``mlo.drift`` — per-column results, the dataset verdict, and its renderings."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd

from ..errors import GateFailed

# statuses of a column, and whether a column with that status counts in the share of drifted columns
STATUSES = {
    "ok": True,  # compared
    "constant": True,  # one and the same value on both sides: compared, no drift
    "single_row": True,  # one value on a side: compared, but the test has almost no power
    "all_nan": True,  # no value on a side: only the missing-value rates are compared
    "missing_column": True,  # in the reference, absent from the current data: drifted
    "type_changed": True,  # e.g. numbers in the reference, text in the current data: drifted
    "empty": False,  # no rows on a side
    "skipped": False,  # free text, datetimes, unsupported values: not compared unless a method is given
    "error": False,  # the comparison failed; the note says why
}

COLUMNS = [
    "column",
    "kind",
    "method",
    "statistic",
    "p_value",
    "threshold",
    "drifted",
    "missing_ref",
    "missing_cur",
    "note",
    "role",
    "status",
    "value_drift",
    "missing_drift",
    "unseen",
    "p_adjusted",
    "exact",
    "rows_ref",
    "rows_cur",
    "error_bound",
]


@dataclass
class ColumnResult:
    column: str
    kind: str
    method: str | None = None
    statistic: float = math.nan
    p_value: float = math.nan
    threshold: float = math.nan
    drifted: bool = False
    missing_ref: float = math.nan  # share of missing values
    missing_cur: float = math.nan
    note: str = ""
    role: str = "feature"  # feature | prediction | target
    status: str = "ok"
    value_drift: bool | None = None  # the distribution test alone
    missing_drift: bool = False  # the missing-value rate changed
    unseen: int = 0  # values of the current data never seen in the reference
    p_adjusted: float = math.nan  # after the multiple-testing correction, when one was asked for
    exact: bool = True  # False when computed from a profile approximately
    rows_ref: int = 0
    rows_cur: int = 0
    error_bound: float = math.nan  # from sketches: the statistic is within this of the exact one
    plot: dict | None = field(default=None, repr=False)

    @property
    def counted(self) -> bool:
        return self.role == "feature" and STATUSES.get(self.status, False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnResult:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in (
            "statistic",
            "p_value",
            "threshold",
            "missing_ref",
            "missing_cur",
            "p_adjusted",
            "error_bound",
        ):
            v = kw.get(k)
            kw[k] = math.nan if v is None else float(v)
        return cls(**kw)


@dataclass
class DriftReport:
    """What changed between a reference and a current dataset, column by column.

    Attributes
    ----------
    dataset_drift : bool
        True when at least ``drift_share`` of the compared feature columns drifted.
    share_drifted : float
        Drifted feature columns / compared feature columns.
    columns : pandas.DataFrame
        One row per column: column, kind, method, statistic, p_value, threshold, drifted, missing_ref,
        missing_cur, note, then role, status, value_drift, missing_drift, unseen, p_adjusted, exact, rows_ref,
        rows_cur.
    id : str or None
        The id of the stored report in the workspace (None when not saved).
    """

    results: list[ColumnResult]
    reference: dict[str, Any]
    current: dict[str, Any]
    drift_share: float = 0.5
    mode: str = "exact"
    correction: str | None = None
    multivariate: dict[str, Any] | None = None
    id: str | None = None
    created_at: str | None = None
    seconds: float | None = None

    # -- the verdict --------------------------------------------------------------------------------------------
    @property
    def features(self) -> list[ColumnResult]:
        return [r for r in self.results if r.counted]

    @property
    def n_columns(self) -> int:
        """Feature columns that were compared (skipped, empty and failed columns do not count)."""
        return len(self.features)

    @property
    def n_drifted(self) -> int:
        return sum(r.drifted for r in self.features)

    @property
    def share_drifted(self) -> float:
        n = self.n_columns
        return self.n_drifted / n if n else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.n_columns > 0 and self.share_drifted >= self.drift_share

    @property
    def drifted_columns(self) -> list[str]:
        return [r.column for r in self.features if r.drifted]

    @property
    def prediction_drift(self) -> bool | None:
        """Whether the model's outputs drifted (None when no prediction was given)."""
        preds = [r for r in self.results if r.role == "prediction"]
        return any(r.drifted for r in preds) if preds else None

    @property
    def target_drift(self) -> bool | None:
        targets = [r for r in self.results if r.role == "target"]
        return any(r.drifted for r in targets) if targets else None

    @property
    def passed(self) -> bool:
        """False when the dataset drifted, the predictions drifted, or the multivariate test found drift."""
        if self.dataset_drift or self.prediction_drift:
            return False
        return not (self.multivariate and self.multivariate.get("drifted"))

    @property
    def columns(self) -> pd.DataFrame:
        rows = [[getattr(r, c) for c in COLUMNS] for r in self.results]
        df = pd.DataFrame(rows, columns=COLUMNS)
        for c in ("statistic", "p_value", "threshold", "missing_ref", "missing_cur", "p_adjusted"):
            df[c] = df[c].astype("float64")
        return df

    def column(self, name: str) -> ColumnResult:
        for r in self.results:
            if r.column == name:
                return r
        raise KeyError(name)

    def raise_for_drift(self) -> DriftReport:
        """Raise :class:`mlo.GateFailed` when the report did not pass (so a notebook run or a CLI call fails);
        return the report otherwise."""
        if self.passed:
            return self
        raise GateFailed(self.verdict() + (f" (drift report {self.id})" if self.id else ""))

    def verdict(self) -> str:
        parts = []
        if self.dataset_drift:
            names = self.drifted_columns
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            parts.append(
                f"dataset drift: {self.n_drifted} of {self.n_columns} columns drifted "
                f"({self.share_drifted:.0%} ≥ {self.drift_share:.0%}): {shown}"
            )
        if self.prediction_drift:
            parts.append(
                "prediction drift: " + ", ".join(r.column for r in self.results if r.role == "prediction")
            )
        if self.multivariate and self.multivariate.get("drifted"):
            parts.append(f"multivariate drift (domain classifier AUC {self.multivariate['statistic']:.3f})")
        if not parts:
            return (
                f"no dataset drift: {self.n_drifted} of {self.n_columns} columns drifted "
                f"({self.share_drifted:.0%} < {self.drift_share:.0%})"
            )
        return "; ".join(parts)

    # -- serialization ------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The headline numbers (what the workspace lists)."""
        return {
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "n_drifted": self.n_drifted,
            "n_columns": self.n_columns,
            "drifted_columns": self.drifted_columns[:50],
            "prediction_drift": self.prediction_drift,
            "passed": self.passed,
            "mode": self.mode,
            "reference": self.reference.get("ref") or self.reference.get("label"),
            "current": self.current.get("ref") or self.current.get("label"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.summary(),
            "drift_share": self.drift_share,
            "correction": self.correction,
            "reference": self.reference,
            "current": self.current,
            "multivariate": self.multivariate,
            "target_drift": self.target_drift,
            "created_at": self.created_at,
            "seconds": self.seconds,
            "columns": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftReport:
        return cls(
            results=[ColumnResult.from_dict(c) for c in d.get("columns", [])],
            reference=d.get("reference") or {},
            current=d.get("current") or {},
            drift_share=d.get("drift_share", 0.5),
            mode=d.get("mode", "exact"),
            correction=d.get("correction"),
            multivariate=d.get("multivariate"),
            id=d.get("id"),
            created_at=d.get("created_at"),
            seconds=d.get("seconds"),
        )

    @classmethod
    def load(cls, report_id: str) -> DriftReport:
        """A stored drift report, by id or unique id prefix."""
        from .. import workspace

        _, payload = workspace.current(create=False).reports.load(report_id, "drift")
        return cls.from_dict(payload)

    # -- rendering ----------------------------------------------------------------------------------------------
    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """A standalone HTML page (inline SVG, no JavaScript); written to ``path`` when given."""
        from ..report.drift import drift_page
        from ..report.html import write_text

        html = drift_page(self)
        if path is not None:
            write_text(path, html)
        return html

    def _repr_html_(self) -> str:
        from ..report.drift import drift_html

        return drift_html(self)

    def to_text(self) -> str:
        from ..report.drift import drift_text

        return drift_text(self)

    def __repr__(self) -> str:
        state = "DRIFT" if not self.passed else "no drift"
        return (
            f"<DriftReport {state}: {self.n_drifted}/{self.n_columns} columns drifted "
            f"({self.share_drifted:.0%}), {self.reference.get('label')} → {self.current.get('label')}>"
        )
