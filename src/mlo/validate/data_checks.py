"""Data checks: the rows being scored against what the model expects.

The expectation comes from the model version's signature, a snapshot (its schema and profile), or a reference
DataFrame, reduced to one :class:`ColumnSpec` per column. Four rows come out: ``schema`` (missing columns, changed
kinds), ``nulls`` (share of missing values above the reference's), ``ranges`` (numeric values outside the
reference's [min, max]) and ``unseen`` (categories the reference never had). A row whose information the reference
lacks is skipped, not passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.profile import kind_of
from ..errors import InvalidInput
from .base import Check, number
from .context import Context
from .report import CheckResult

FAMILY = {"categorical": "text", "text": "text"}
# the registry's signature kinds, as the profile's kinds
SIGNATURE_KINDS = {
    "integer": "numeric",
    "float": "numeric",
    "complex": "numeric",
    "string": "text",
    "category": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "timedelta": "other",
    "object": "other",
}
MAX_CATEGORIES = 10_000  # a reference column with more distinct values is free text: no unseen-category check


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    dtype: str | None = None
    null_rate: float | None = None
    lo: float | None = None
    hi: float | None = None
    categories: frozenset | None = None


def _kind_from_dtype(dtype: Any) -> str:
    if dtype is None:
        return "other"
    try:
        return kind_of(pd.api.types.pandas_dtype(dtype))
    except (TypeError, ValueError):
        text = str(dtype).lower()
        if text in ("string", "str", "utf8", "large_string"):
            return "text"
        if "int" in text or "float" in text or "double" in text or "decimal" in text:
            return "numeric"
        if "bool" in text:
            return "boolean"
        if "date" in text or "time" in text:
            return "datetime"
        return "other"


def spec_from_dict(d: dict) -> ColumnSpec:
    """A column of a signature or a snapshot profile (the fields of ``mlo.data.profile``)."""
    name = str(d.get("name"))
    kind = d.get("kind") or _kind_from_dtype(d.get("dtype"))
    kind = SIGNATURE_KINDS.get(kind, kind)
    null_rate = d.get("null_rate")
    if null_rate is None and d.get("count"):
        null_rate = (d.get("nulls") or 0) / d["count"]
    lo = hi = None
    if kind == "numeric" and d.get("min") is not None and d.get("max") is not None:
        lo, hi = float(d["min"]), float(d["max"])
    categories = None
    given = d.get("categories", d.get("values"))
    if given is not None:
        categories = frozenset(given)
    elif d.get("top") is not None and not d.get("other") and not d.get("sampled") and kind != "numeric":
        categories = frozenset(
            v for v, _ in d["top"]
        )  # the top values are every value only when none is left over
    return ColumnSpec(name, kind, d.get("dtype"), null_rate, lo, hi, categories)


def specs_from_frame(df: pd.DataFrame) -> list[ColumnSpec]:
    specs = []
    n = len(df)
    for c in df.columns:
        s = df[c]
        kind = kind_of(s.dtype)
        nulls = int(s.isna().sum())
        lo = hi = None
        categories = None
        if kind == "numeric" and n - nulls:
            arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        elif kind in ("categorical", "text", "boolean"):
            uniq = pd.unique(s.dropna())
            if len(uniq) <= MAX_CATEGORIES:
                categories = frozenset(uniq.tolist() if hasattr(uniq, "tolist") else list(uniq))
        specs.append(ColumnSpec(str(c), kind, str(s.dtype), nulls / n if n else None, lo, hi, categories))
    return specs


def _profile_list(profile: Any) -> list[dict]:
    if isinstance(profile, dict):
        return [{"name": k, **v} if "name" not in v else v for k, v in profile.items()]
    return list(profile or [])


def resolve_reference(ref: Any) -> tuple[list[ColumnSpec], str]:
    """Column specs and a short description of where they came from."""
    if isinstance(ref, pd.DataFrame):
        return specs_from_frame(ref), f"a reference DataFrame of {len(ref)} rows"
    if isinstance(ref, str):
        from ..data.snapshots import get_snapshot

        return resolve_reference(get_snapshot(ref))
    if hasattr(ref, "profile") and hasattr(ref, "schema") and not isinstance(ref, dict):
        by_name = {str(p.get("name")): p for p in _profile_list(ref.profile)}
        cols = [dict(col) for col in (ref.schema or [])] or list(by_name.values())
        specs = [spec_from_dict({**by_name.get(str(col.get("name")), {}), **col}) for col in cols]
        label = getattr(ref, "name", None)
        version = getattr(ref, "version", None)
        where = f"snapshot {label}@{version}" if label and version is not None else "the snapshot"
        return specs, where
    sig = getattr(ref, "signature", None) if not isinstance(ref, (dict, list)) else None
    if sig is not None:
        specs, _ = resolve_reference(sig)
        return specs, "the model signature"
    if hasattr(ref, "to_dict") and not isinstance(ref, (dict, pd.DataFrame)):
        ref = ref.to_dict()
    if isinstance(ref, dict):
        for key in ("inputs", "columns", "schema"):
            if isinstance(ref.get(key), list):
                cols = ref[key]
                profile = {str(p.get("name")): p for p in _profile_list(ref.get("profile"))}
                where = "the model signature"
                if not profile:
                    profile, where = _source_profile(ref.get("source"), where)
                specs = [spec_from_dict({**profile.get(str(c.get("name")), {}), **c}) for c in cols]
                return specs, where
        if ref.get("type") in ("array", "any"):
            return [], "the model signature"
    if isinstance(ref, list) and all(isinstance(c, dict) and "name" in c for c in ref):
        return [spec_from_dict(c) for c in ref], "the given schema"
    raise InvalidInput(
        f"checks.data cannot read a reference from {type(ref).__name__}; pass a snapshot, a DataFrame, or a "
        "signature (a list of {'name', 'dtype'} columns)"
    )


def _source_profile(source: Any, where: str) -> tuple[dict[str, dict], str]:
    """The profile of the snapshot a signature was taken from (``source="snapshot:train@3"``), when it exists:
    it adds null rates, ranges and categories to the signature's names and types."""
    if not isinstance(source, str) or not source.startswith("snapshot:"):
        return {}, where
    from ..data.snapshots import get_snapshot
    from ..errors import MloError

    try:
        snap = get_snapshot(source[len("snapshot:") :])
    except MloError:
        return {}, where
    return {str(p.get("name")): p for p in _profile_list(snap.profile)}, f"{where} ({source})"


def _names(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _features(ctx: Context) -> set[str] | None:
    """The model's input columns: from the signature of the version being validated, else from the model's
    ``feature_names_in_`` (scikit-learn); None when neither says."""
    if ctx.signature is not None:
        try:
            specs, _ = resolve_reference(ctx.signature)
        except InvalidInput:
            specs = []
        if specs:
            return {s.name for s in specs}
    model = getattr(ctx.model, "raw", ctx.model)
    names = getattr(model, "feature_names_in_", None)
    return {str(n) for n in names} if names is not None else None


def _worst(values: dict[str, float]) -> tuple[str, float]:
    k = max(values, key=values.get)
    return k, values[k]


class DataCheck(Check):
    """Data against a reference (see :func:`mlo.checks.data`)."""

    kind = "data"

    def __init__(
        self,
        reference=None,
        *,
        columns=None,
        label=None,
        exclude=None,
        null_tolerance=0.05,
        max_out_of_range=0.01,
        max_unseen=0.01,
        name=None,
    ):
        super().__init__(name)
        self.reference = reference
        self.columns = None if columns is None else [str(c) for c in columns]
        self.exclude = {str(c) for c in _names(label) + _names(exclude)}
        self.left_out_: list[str] = []
        self.null_tolerance = number(null_tolerance, "data null_tolerance", low=0.0, high=1.0)
        self.max_out_of_range = number(max_out_of_range, "data max_out_of_range", low=0.0, high=1.0)
        self.max_unseen = number(max_unseen, "data max_unseen", low=0.0, high=1.0)
        self.specs_: list[ColumnSpec] | None = None
        self.source_ = ""
        self.inputs_: list[str] = []  # lineage nodes the report reads (a reference snapshot)
        if reference is not None:
            if isinstance(reference, str):
                from ..data.snapshots import get_snapshot

                reference = get_snapshot(reference)
            self.specs_, self.source_ = resolve_reference(reference)
            node = getattr(reference, "node", None)
            if isinstance(node, str) and node.startswith("snapshot:"):
                self.inputs_.append(node)

    def _specs(self, ctx: Context) -> tuple[list[ColumnSpec], str]:
        if self.specs_ is not None:
            specs, source = self.specs_, self.source_
        elif ctx.signature is not None:
            specs, source = resolve_reference(ctx.signature)
        else:
            raise InvalidInput(
                "checks.data() has no reference: pass reference=<snapshot or DataFrame>, or validate a registered "
                "model version (model_version=...) whose signature it can read"
            )
        if self.columns is not None:
            return [s for s in specs if s.name in self.columns], source
        left_out = {s.name for s in specs if s.name in self.exclude or s.name == ctx.y_name}
        features = _features(ctx) if self.specs_ is not None else None  # a reference holds more than inputs
        if features is not None:
            left_out |= {s.name for s in specs if s.name not in features}
        self.left_out_ = sorted(left_out)
        return [s for s in specs if s.name not in left_out], source

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        if not isinstance(ctx.X, pd.DataFrame):
            raise InvalidInput("checks.data needs X as a DataFrame with column names")
        specs, source = self._specs(ctx)
        if not specs:
            return [
                self._skip(part, f"{source} names no columns")
                for part in ("schema", "nulls", "ranges", "unseen")
            ]
        X = ctx.X
        present = {str(c): c for c in X.columns}
        n = len(X)

        # schema
        problems: list[str] = []
        for s in specs:
            if s.name not in present:
                problems.append(f"{s.name}: missing")
                continue
            kind = kind_of(X[present[s.name]].dtype)
            if s.kind != "other" and FAMILY.get(kind, kind) != FAMILY.get(s.kind, s.kind):
                problems.append(f"{s.name}: {kind} ({X[present[s.name]].dtype}), expected {s.kind}")
        known = {s.name for s in specs}
        extra = [c for c in present if c not in known] if self.columns is None else []
        detail = "; ".join(problems[:5]) + ("; …" if len(problems) > 5 else "")
        if not problems:
            detail = f"{len(specs)} columns as in {source}"
        if extra:
            detail += f" (extra columns not checked: {', '.join(extra[:5])}{', …' if len(extra) > 5 else ''})"
        if getattr(self, "left_out_", None):
            shown = ", ".join(self.left_out_[:5]) + (", …" if len(self.left_out_) > 5 else "")
            detail += f" (not model inputs, left out: {shown})"
        rows = [
            self.row(
                self.row_name("data.schema", "schema"),
                len(problems),
                "<=",
                0,
                detail,
                {"source": source, "problems": problems, "extra": extra},
            )
        ]
        usable = [
            s for s in specs if s.name in present and not any(p.startswith(f"{s.name}:") for p in problems)
        ]
        col = {s.name: X[present[s.name]] for s in usable}

        # null rates
        with_nulls = [s for s in usable if s.null_rate is not None]
        if with_nulls:
            rates = {s.name: float(col[s.name].isna().mean()) for s in with_nulls}
            excess = {s.name: rates[s.name] - s.null_rate for s in with_nulls}
            worst, value = _worst(excess)
            ref_rate = next(s.null_rate for s in with_nulls if s.name == worst)
            detail = (
                f"worst {worst}: {rates[worst]:.3%} missing vs {ref_rate:.3%} in the reference"
                if value > 0
                else f"no column has more missing values than in {source}"
            )
            data = {"columns": {k: {"rate": rates[k], "reference": rates[k] - excess[k]} for k in rates}}
            rows.append(
                self.row(self.row_name("data.nulls", "nulls"), value, "<=", self.null_tolerance, detail, data)
            )
        else:
            rows.append(self._skip("nulls", f"{source} has no null rates"))

        # ranges
        ranged = [s for s in usable if s.lo is not None and kind_of(col[s.name].dtype) == "numeric"]
        if ranged:
            shares, data = {}, {}
            for s in ranged:
                arr = col[s.name].to_numpy(dtype=np.float64, na_value=np.nan)
                out = int(((arr < s.lo) | (arr > s.hi)).sum())
                shares[s.name] = out / n
                data[s.name] = {
                    "out": out,
                    "min": s.lo,
                    "max": s.hi,
                    "seen_min": float(np.nanmin(arr)) if out else None,
                    "seen_max": float(np.nanmax(arr)) if out else None,
                }
            worst, value = _worst(shares)
            w = next(s for s in ranged if s.name == worst)
            detail = (
                f"worst {worst}: {data[worst]['out']} rows outside [{w.lo:.4g}, {w.hi:.4g}]"
                if value > 0
                else f"every value of {len(ranged)} numeric columns within the range of {source}"
            )
            rows.append(
                self.row(
                    self.row_name("data.ranges", "ranges"),
                    value,
                    "<=",
                    self.max_out_of_range,
                    detail,
                    {"columns": data},
                )
            )
        else:
            rows.append(self._skip("ranges", f"{source} has no numeric ranges"))

        # unseen categories
        categorical = [s for s in usable if s.categories is not None]
        if categorical:
            shares, data = {}, {}
            for s in categorical:
                values = col[s.name]
                valid = values.notna().to_numpy()
                seen = values.isin(list(s.categories)).to_numpy()
                unseen = valid & ~seen
                shares[s.name] = float(unseen.sum() / n)
                examples = pd.unique(values[unseen].head(10_000))[:5].tolist() if unseen.any() else []
                data[s.name] = {"unseen": int(unseen.sum()), "examples": [str(e) for e in examples]}
            worst, value = _worst(shares)
            ex = data[worst]["examples"]
            detail = (
                f"worst {worst}: {data[worst]['unseen']} rows with new categories ({', '.join(ex)})"
                if ex
                else f"every category of {len(categorical)} columns seen in {source}"
            )
            rows.append(
                self.row(
                    self.row_name("data.unseen", "unseen"),
                    value,
                    "<=",
                    self.max_unseen,
                    detail,
                    {"columns": data},
                )
            )
        else:
            rows.append(self._skip("unseen", f"{source} has no category lists"))
        return rows

    def _skip(self, part: str, why: str) -> CheckResult:
        bounds = {
            "schema": 0,
            "nulls": self.null_tolerance,
            "ranges": self.max_out_of_range,
            "unseen": self.max_unseen,
        }
        bound = bounds[part]
        return self.row(self.row_name(f"data.{part}", part), None, "<=", bound, f"skipped: {why}", None, None)
