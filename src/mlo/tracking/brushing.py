"""Brushes on parallel-coordinates axes as a run filter in the ``where`` syntax (:mod:`mlo.tracking.where`), so
a brushed selection narrows any listing, however large, in the store's own query."""

from __future__ import annotations

import math

from ..errors import InvalidInput


def brush_where(brush: dict) -> str | None:
    """A filter (``where`` syntax) for brushes on parallel-coordinates axes: ``{column: {"lo": a, "hi": b}}``
    keeps runs whose value lies in [a, b], ``{column: {"values": [...]}}`` those with one of the values, and
    ``"missing": true`` in either also keeps the runs that lack the column. None when nothing is brushed."""
    if not isinstance(brush, dict):
        raise InvalidInput(f"a brush is a dict of column → range or values, got {type(brush).__name__}")
    parts = []
    for column, spec in brush.items():
        if not isinstance(spec, dict):
            raise InvalidInput(f"the brush on {column!r} must be a dict with lo/hi or values")
        name = _brush_column(column)
        terms = []
        if "lo" in spec or "hi" in spec:
            lo, hi = _number(spec.get("lo"), column), _number(spec.get("hi"), column)
            bounds = ([f"{name} >= {lo!r}"] if lo is not None else []) + (
                [f"{name} <= {hi!r}"] if hi is not None else []
            )
            if bounds:
                terms.append(" and ".join(bounds) if len(bounds) == 1 else f"({' and '.join(bounds)})")
        if spec.get("values"):
            terms.append(f"{name} in ({', '.join(_literal(v) for v in spec['values'])})")
        if spec.get("missing"):
            terms.append(f"{name} is null")
        if not terms:
            continue
        parts.append(terms[0] if len(terms) == 1 else f"({' or '.join(terms)})")
    return " and ".join(parts) or None


def _brush_column(column: str) -> str:
    if not isinstance(column, str) or not column.startswith(("params.", "metrics.", "tags.")):
        raise InvalidInput(f"cannot brush {column!r}: name a params., metrics. or tags. column")
    kind, _, key = column.partition(".")
    simple = key.replace("_", "a").replace("-", "a").replace("/", "a").replace(".", "a").isalnum()
    return column if simple else f"{kind}.`{key}`"


def _number(value, column: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"the brush on {column!r} needs finite numbers, got {value!r}")
    return float(value)


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
