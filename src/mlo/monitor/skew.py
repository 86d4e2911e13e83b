"""The training/serving skew check: served feature values recomputed offline, and every mismatch reported.

A server of a model whose signature names feature views logs, with each prediction, the feature values the model
was given and what they were made from (the entity id, and the view's inputs when the request sent them). The
check takes a sample of those records and recomputes each one offline from the registered definition: from the
logged inputs by the view's transform, or, for values looked up by entity, the point-in-time value as of the
request's time (:func:`mlo.features.training_frame`; an aggregate, as of the materialization it was served
from). A served value that differs is skew: a helper changed in the
serving environment, a stale materialization, a transform that is not a function of its row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import workspace
from ..errors import InvalidInput
from ..registry.versions import resolve
from .log import read_log

MAX_EXAMPLES = 20


@dataclass
class SkewReport:
    """What :func:`feature_skew` found: ``.passed`` (no mismatch), ``.checked``, ``.mismatches`` per feature,
    ``.examples`` (a DataFrame of mismatched values), ``.id`` of the stored report."""

    model: str
    version: int
    checked: int
    mismatches: dict[str, int]
    examples: pd.DataFrame
    id: str | None = None
    views: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(self.mismatches.values())

    @property
    def mismatch_rate(self) -> float:
        return max(self.mismatches.values(), default=0) / self.checked if self.checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "passed": self.passed,
            "checked": self.checked,
            "mismatches": dict(self.mismatches),
            "mismatch_rate": self.mismatch_rate,
            "views": self.views,
            "examples": self.examples.astype(object).where(self.examples.notna(), None).to_dict("records"),
        }

    def _repr_html_(self) -> str:
        from html import escape

        from ..report.html import STYLE, table

        verdict = (
            "no skew"
            if self.passed
            else f"skew in {sum(1 for v in self.mismatches.values() if v)} feature(s)"
        )
        rows = [[k, v, f"{v / self.checked:.1%}" if self.checked else ""] for k, v in self.mismatches.items()]
        head = (
            f"<div class='mlo-h'>Feature skew of {escape(self.model)} v{self.version}: {escape(verdict)}</div>"
            f"<div class='mlo-m'>{self.checked:,} served records recomputed offline</div>"
        )
        return f"{STYLE}<div>{head}{table(['feature', 'mismatches', 'rate'], rows, numeric={1, 2})}</div>"

    def __repr__(self) -> str:
        return (
            f"<SkewReport {self.model} v{self.version}: {self.checked} checked, mismatches {self.mismatches}>"
        )


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return False
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        return float(a) == float(b)  # exact: one definition gives the same bytes
    return a == b


def feature_skew(ref: Any, *, sample: int = 200, since: Any = None, seed: int = 0) -> SkewReport:
    """Recompute a sample of a model's served feature values offline and count the mismatches.

    Parameters
    ----------
    ref : str
        The model version whose log to check: ``"churn@production"``, ``"churn/3"`` or ``"churn"`` (latest).
    sample : int
        How many logged predictions to recompute (at most; drawn at random with ``seed``).
    since : datetime, str or timedelta, optional
        Only predictions logged since then.

    Returns
    -------
    SkewReport
        Also stored as a ``feature_skew`` report about the model version (``.passed``: no mismatch).
    """
    from ..features.offline import training_frame
    from ..features.views import FeatureView

    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
        raise InvalidInput(f"sample must be a positive number of records, got {sample!r}")
    ws = workspace.current(create=False)
    text = ref if isinstance(ref, str) and ("@" in ref or "/" in ref) else f"{ref}@latest"
    row = resolve(ws, text)
    from ..registry.versions import ModelVersion

    mv = ModelVersion(ws, row)
    sig = mv.signature
    if sig is None or not sig.features:
        raise InvalidInput(f"model {mv.ref} names no feature views: register it with features=[...]")
    log = read_log(mv.name, since=since)
    log = log[(log["version"] == mv.version) & log["error"].isna()] if len(log) else log
    if len(log) > sample:
        log = log.sample(sample, random_state=seed)
    log = log.sort_index()
    mismatches: dict[str, int] = {}
    examples = []
    views = []
    for spec in sig.features:
        view = FeatureView._from_row(ws, ws.features.get(spec["view"], int(spec["version"])))
        views.append({"view": view.name, "version": view.version})
        inputs = [] if view.aggregated else [c for c in view.inputs if c not in (view.entity, view.timestamp)]
        cols = [f"f.{c}" for c in inputs]
        computed = (
            log[cols].notna().all(axis=1)
            if inputs and all(c in log for c in cols)
            else pd.Series(False, log.index)
        )
        expected = pd.DataFrame(index=log.index, columns=spec["columns"], dtype=object)
        at_request = log[computed]
        if len(at_request):
            raw = pd.DataFrame({c: at_request[f"f.{c}"].to_numpy() for c in inputs}, index=at_request.index)
            if f"f.{view.entity}" in log and at_request[f"f.{view.entity}"].notna().all():
                raw[view.entity] = at_request[f"f.{view.entity}"].to_numpy()
            raw[view.timestamp] = pd.to_datetime(at_request["ts"], utc=True).dt.tz_localize(None).to_numpy()
            out = view.apply(raw)
            for c in spec["columns"]:
                expected.loc[at_request.index, c] = out[c].to_numpy()
        looked_up = log[~computed]
        if len(looked_up) and f"f.{view.entity}" in log:
            when = pd.to_datetime(looked_up["ts"], utc=True)
            if view.aggregated:  # a served aggregate is as of its materialization, whose window ended then
                done = ws.features.materialization(view.name) or {}
                if done.get("as_of") is not None:
                    when = pd.Series(pd.Timestamp(done["as_of"], unit="us", tz="UTC"), index=looked_up.index)
            ents = pd.DataFrame(
                {view.entity: looked_up[f"f.{view.entity}"].to_numpy(), view.timestamp: when.to_numpy()}
            )
            ents[view.entity] = ents[view.entity].astype(view.input_schema[0]["dtype"], errors="ignore")
            tf = training_frame(ents, [f"{view.ref}:{c}" for c in spec["columns"]], snapshot=None)
            for c in spec["columns"]:
                expected.loc[looked_up.index, c] = tf[c].to_numpy()
        for c in spec["columns"]:
            served = log[f"f.{c}"] if f"f.{c}" in log else pd.Series(None, index=log.index)
            bad = [i for i in log.index if not _same(served[i], expected.at[i, c])]
            mismatches[c] = len(bad)
            for i in bad[: MAX_EXAMPLES - len(examples)]:
                examples.append(
                    {"id": log.at[i, "id"], "ts": log.at[i, "ts"], "feature": c, "view": view.ref,
                     "served": served[i], "offline": expected.at[i, c],
                     "how": "request inputs" if computed[i] else "online lookup"}
                )  # fmt: skip
    report = SkewReport(
        mv.name,
        mv.version,
        len(log),
        mismatches,
        pd.DataFrame(examples, columns=["id", "ts", "feature", "view", "served", "offline", "how"]),
        views=views,
    )
    summary = {k: report.to_dict()[k] for k in ("checked", "mismatches", "mismatch_rate", "views")}
    report.id = ws.reports.save(
        "feature_skew",
        summary,
        report.to_dict(),
        subject=f"model:{mv.name}/{mv.version}",
        passed=report.passed,
    )
    return report
