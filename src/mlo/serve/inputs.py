"""Reading a request's input: the body's shape (records, columns, positional rows), its values checked against
the signature's types before the model runs, and what the model is given and what the log keeps.

A value the signature's type cannot hold is refused here with a 422 that names the column: NaN and infinities
anywhere (JSON has neither; a missing value is ``null``), an integer outside the column's integer type (above
2⁶³ for ``int64``), a number outside a ``float32`` column's range. So neither the model nor the prediction log
ever sees it, and one request cannot turn a logged column into text.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from .service import Deployment


class RequestError(Exception):
    """A request that cannot be served: ``status`` is the HTTP status, the message one line. ``deployment`` is
    the version that was asked, when one was chosen."""

    def __init__(self, status: int, message: str, deployment: Deployment | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.deployment = deployment


def one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- request bodies ------------------------------------------------------------------------------------------
_BODY_HELP = 'send {"records": [{...}, ...]}, {"columns": {"a": [...], ...}} or a list of records'


def parse_body(body: Any) -> tuple[str, Any, int]:
    """``(kind, data, rows)`` of a decoded JSON body: ``("columns", {name: values}, n)`` for records and
    columns, ``("rows", [[...], ...], n)`` for positional rows. Raises a 400 for anything else."""
    data = body
    if isinstance(body, dict):
        keys = [
            k
            for k in ("records", "dataframe_records", "columns", "dataframe_split", "instances", "inputs")
            if k in body
        ]
        if len(keys) != 1:
            raise RequestError(400, f"the body must hold exactly one of records or columns: {_BODY_HELP}")
        key = keys[0]
        data = body[key]
        if key == "columns":
            return _columns(data)
        if key == "dataframe_split":
            if not isinstance(data, dict) or not isinstance(data.get("columns"), list) or "data" not in data:
                raise RequestError(400, 'dataframe_split needs {"columns": [...], "data": [[...], ...]}')
            rows = data["data"]
            if not isinstance(rows, list) or not all(
                isinstance(r, list) and len(r) == len(data["columns"]) for r in rows
            ):
                raise RequestError(
                    400, "dataframe_split: every row of data must be a list with one value per column"
                )
            return _columns({str(c): [r[i] for r in rows] for i, c in enumerate(data["columns"])})
    if not isinstance(data, list):
        raise RequestError(400, f"cannot read a {type(body).__name__} as input: {_BODY_HELP}")
    if not data:
        raise RequestError(400, "no records to predict: the list is empty")
    if all(isinstance(r, dict) for r in data):
        keys: dict[str, None] = {}
        for r in data:
            keys.update(dict.fromkeys(r))
        if len(data) == 1:
            return "columns", {k: [v] for k, v in data[0].items()}, 1
        return "columns", {k: [r.get(k) for r in data] for k in keys}, len(data)
    if any(isinstance(r, dict) for r in data):
        raise RequestError(400, "mixed records and rows: every record must be an object {column: value}")
    return "rows", data, len(data)


def _columns(data: Any) -> tuple[str, dict, int]:
    if not isinstance(data, dict) or not data:
        raise RequestError(400, 'columns must be an object of lists, e.g. {"columns": {"age": [31, 45]}}')
    lengths = set()
    for k, v in data.items():
        if not isinstance(v, list):
            raise RequestError(400, f"column {k!r} must be a list of values, got {type(v).__name__}")
        lengths.add(len(v))
    if len(lengths) != 1:
        raise RequestError(
            400, f"the columns have different lengths ({', '.join(map(str, sorted(lengths)))})"
        )
    n = lengths.pop()
    if n == 0:
        raise RequestError(400, "no records to predict: the columns are empty")
    return "columns", data, n


# -- values against the signature ----------------------------------------------------------------------------
_bounds: dict[pa.DataType, tuple[str, float, float]] = {}


def _bound(type_: pa.DataType | None) -> tuple[str, float, float] | None:
    """``(kind, low, high)`` of a logged numeric type: ``("int", min, max)`` or ``("float", -max, max)``."""
    if type_ is None:
        return None
    hit = _bounds.get(type_)
    if hit is None:
        if pa.types.is_integer(type_):
            info = np.iinfo(type_.to_pandas_dtype())
            hit = ("int", int(info.min), int(info.max))
        elif pa.types.is_floating(type_):
            top = float(np.finfo(type_.to_pandas_dtype()).max)
            hit = ("float", -top, top)
        else:
            hit = ("other", 0, 0)
        _bounds[type_] = hit
    return None if hit[0] == "other" else hit


def _refuse(dep: Deployment, name: str | None, value: Any, type_: pa.DataType | None) -> RequestError:
    where = f"column {name!r}" if name is not None else "the input"
    if isinstance(value, float) and not math.isfinite(value):
        shown = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        return RequestError(
            422,
            f"{where} holds {shown}, which is not a number the model can take: send null for a missing value",
            dep,
        )
    kind, lo, hi = _bound(type_)  # type: ignore[misc]
    if kind == "int":
        span = f"{type_} ({lo} to {hi})"
    else:
        span = f"{type_} (±{hi:.4g})"
    shown = str(value) if len(str(value)) <= 40 else str(value)[:20] + "…"
    return RequestError(422, f"{where} holds {shown}, outside the range of {span}", dep)


def _check_column(dep: Deployment, name: str | None, values: Any, type_: pa.DataType | None) -> None:
    bound = _bound(type_)
    if bound is None:
        for v in values:
            t = type(v)
            if t is float:
                if not math.isfinite(v):
                    raise _refuse(dep, name, v, type_)
            elif t is list or t is dict:
                _walk_non_finite(dep, v)
        return
    kind, lo, hi = bound
    for v in values:
        t = type(v)
        if t is float:
            if not lo <= v <= hi:  # also False for NaN
                raise _refuse(dep, name, v, type_)
        elif t is int and not lo <= v <= hi:
            raise _refuse(dep, name, v, type_)


def _walk_non_finite(dep: Deployment, value: Any) -> None:
    """NaN and infinities anywhere in input that no signature types (nesting is already capped by the body's
    depth limit)."""
    if type(value) is float:
        if not math.isfinite(value):
            raise _refuse(dep, None, value, None)
    elif isinstance(value, list):
        for v in value:
            _walk_non_finite(dep, v)
    elif isinstance(value, dict):
        for v in value.values():
            _walk_non_finite(dep, v)


def check_values(dep: Deployment, kind: str, data: Any) -> None:
    """Refuse (422, naming the column) a value the signature's types cannot hold, before the model runs."""
    names, types = dep.names, dep.types
    if kind == "columns":
        for name, values in data.items():
            if names is None or name in names:  # columns the model does not take are dropped unseen
                _check_column(dep, name, values, types.get(name))
        return
    width = len(names) if names is not None else -1
    if width > 0 and all(type(r) is list and len(r) == width for r in data):
        for name, values in zip(names, zip(*data, strict=True), strict=True):  # type: ignore[arg-type]
            _check_column(dep, name, values, types.get(name))
        return
    _walk_non_finite(dep, data)


# -- what the model is given ---------------------------------------------------------------------------------
def model_input(dep: Deployment, kind: str, data: Any) -> tuple[Any, dict[str, list] | None]:
    """What the model is given and the feature values to log (by logged feature name)."""
    if dep.dense is not None and dep.names is not None:
        X = _dense(dep, kind, data)
        if X is not None:
            if kind == "columns":
                return X, {n: data[n] for n in dep.names}
            return X, _logged_rows(dep, data)
    if kind == "columns":
        X = pd.DataFrame(data)
        if dep.names is None:
            return X, data
        if dep.kind == "frame":
            return X, {n: data.get(n) for n in dep.names}
        return X, None
    rows = data
    if dep.kind == "frame":
        X = rows
    else:
        try:
            X = np.asarray(rows)
        except ValueError as exc:
            raise RequestError(400, f"the rows do not form a table ({one_line(exc)})", dep) from None
    return X, _logged_rows(dep, rows)


def _logged_rows(dep: Deployment, rows: list) -> dict[str, list] | None:
    if dep.names is not None and all(isinstance(r, list) and len(r) == len(dep.names) for r in rows):
        return {n: [r[i] for r in rows] for i, n in enumerate(dep.names)}
    return None


def _dense(dep: Deployment, kind: str, data: Any) -> pd.DataFrame | None:
    """For a model whose inputs are all of one numeric dtype: the input as one 2-D block, which scikit-learn
    checks much faster than a frame built column by column (about 0.8 ms less per single-row request with 10
    float columns). None when the values do not all fit (missing columns, text, booleans, nulls, floats for an
    integer column): the general path then builds the frame and the signature check says what is wrong."""
    assert dep.names is not None and dep.dense is not None
    ok = (int, float) if dep.dense.kind == "f" else (int,)
    names = dep.names
    if kind == "columns":
        if any(n not in data for n in names):
            return None
        cols = [data[n] for n in names]
        if not all(type(v) in ok for c in cols for v in c):
            return None
        try:
            block = np.array(cols, dtype=dep.dense).T
        except (OverflowError, ValueError, TypeError):
            return None
    else:
        width = len(names)
        if not all(type(r) is list and len(r) == width and all(type(v) in ok for v in r) for r in data):
            return None
        try:
            block = np.array(data, dtype=dep.dense)
        except (OverflowError, ValueError, TypeError):
            return None
    return pd.DataFrame(block, columns=list(names))


def as_list(out: Any) -> list:
    if isinstance(out, pd.DataFrame):
        return out.to_numpy().tolist()
    if isinstance(out, list):
        return out
    tolist = getattr(out, "tolist", None)
    values = (
        tolist() if callable(tolist) else list(out) if isinstance(out, tuple) else np.asarray(out).tolist()
    )
    return values if isinstance(values, list) else [values]
