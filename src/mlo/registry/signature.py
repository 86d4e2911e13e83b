"""Model signatures: what a model version takes (named, typed columns, or an array of a shape) and what it gives.

A signature is inferred at registration from the input example (the model is called on it once, which also
tells the output), otherwise from the run's input data snapshot (restricted to the columns the model was fit
on), otherwise from the model's own ``feature_names_in_`` (names without types). Loaded models check every input
against it before calling the model, so a missing column or a wrong dtype is a one-line error that names the
column, not a traceback from deep inside numpy.

Dtypes are compared by kind (integer, float, boolean, string, category, datetime, …): widening is fine (int32
into an int64 column, integers into a float column), anything else is refused with what to do about it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.dtypes import dtype_kind
from ..errors import InvalidInput
from .errors import SignatureError

MAX_CLASSES = 100
EXAMPLE_ROWS = 5

# what an input of a given kind may be given as
_ACCEPTS = {
    "integer": {"integer"},
    "float": {"integer", "float"},
    "boolean": {"boolean"},
    "string": {"string", "category"},
    "category": {"category", "string"},
    "datetime": {"datetime"},
    "timedelta": {"timedelta"},
    "complex": {"integer", "float", "complex"},
}
_OBJECT_KINDS = {  # pandas.api.types.infer_dtype of an object column -> kind
    "string": "string",
    "empty": None,
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "timedelta": "timedelta",
    "timedelta64": "timedelta",
    "categorical": "category",
}
_HINTS = {
    "integer": "astype('int64')",
    "float": "astype('float64')",
    "boolean": "astype(bool)",
    "string": "astype(str)",
    "category": "astype('category')",
    "datetime": "pd.to_datetime(...)",
    "timedelta": "pd.to_timedelta(...)",
}


def kind_of(dtype: Any) -> str:
    """The kind of a numpy/pandas dtype: integer, float, boolean, string, category, datetime, timedelta,
    complex or object."""
    kind = dtype_kind(dtype)
    return "object" if kind == "other" else kind


def kind_of_name(dtype: str) -> str:
    """The kind of a dtype given by name (as stored in a snapshot's schema)."""
    try:
        return kind_of(pd.api.types.pandas_dtype(dtype))
    except (TypeError, ValueError):
        text = dtype.lower()
        for prefix, kind in (
            ("int", "integer"),
            ("uint", "integer"),
            ("float", "float"),
            ("bool", "boolean"),
            ("str", "string"),
            ("large_string", "string"),
            ("dictionary", "category"),
            ("category", "category"),
            ("datetime", "datetime"),
            ("timestamp", "datetime"),
            ("timedelta", "timedelta"),
            ("duration", "timedelta"),
        ):
            if text.startswith(prefix):
                return kind
        return "object"


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: its name, the dtype it was seen with (None when unknown) and its kind."""

    name: str
    dtype: str | None
    kind: str = "object"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "kind": self.kind}


@dataclass(frozen=True)
class Signature:
    """What a model version takes and gives.

    Attributes
    ----------
    type : str
        ``"frame"`` (named columns), ``"array"`` (an n-d array of one dtype) or ``"any"`` (not checked).
    columns : list of ColumnSpec
        For ``"frame"``: the input columns, in the order the model sees them.
    dtype, shape : str, list
        For ``"array"``: the dtype and the shape, -1 for any number of rows.
    outputs : dict
        ``kind`` (label, number, array, frame, unknown) with ``dtype``, ``classes`` (labels), ``shape``.
    source : str
        Where it came from: ``input_example``, ``snapshot:<name>@<version>``, ``model`` or ``given``.
    features : tuple of dict
        The feature views whose values some input columns are: ``{"view", "version", "id", "entity",
        "columns"}`` each (see :mod:`mlo.features`); serving fills those columns by entity id.
    """

    type: str
    columns: tuple[ColumnSpec, ...] = ()
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    outputs: dict = field(default_factory=dict)
    source: str = "given"
    features: tuple = ()

    # -- conversions ----------------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "outputs": dict(self.outputs), "source": self.source}
        if self.type == "frame":
            d["columns"] = [c.to_dict() for c in self.columns]
        if self.type == "array":
            d["dtype"] = self.dtype
            d["shape"] = list(self.shape or [])
        if self.features:
            d["features"] = [dict(f) for f in self.features]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        if not isinstance(d, dict):
            raise InvalidInput(f"a signature is a dict or Signature, got {type(d).__name__}")
        if "type" not in d:  # shorthand: {"age": "int64", "plan": "object"}
            if not all(isinstance(v, str) for v in d.values()):
                raise InvalidInput(
                    "signature= takes a Signature, its to_dict(), or {column: dtype} like {'age': 'int64'}"
                )
            cols = tuple(ColumnSpec(str(k), v, kind_of_name(v)) for k, v in d.items())
            return cls("frame", columns=cols, source="given")
        kind = d["type"]
        if kind not in ("frame", "array", "any"):
            raise InvalidInput(f"signature type must be frame, array or any, got {kind!r}")
        cols = tuple(
            ColumnSpec(
                str(c["name"]), c.get("dtype"), c.get("kind") or kind_of_name(c.get("dtype") or "object")
            )
            for c in d.get("columns") or []
        )
        shape = tuple(int(x) for x in d["shape"]) if d.get("shape") is not None else None
        features = tuple(dict(f) for f in d.get("features") or [] if isinstance(f, dict))
        return cls(
            kind,
            cols,
            d.get("dtype"),
            shape,
            dict(d.get("outputs") or {}),
            d.get("source") or "given",
            features,
        )

    @classmethod
    def coerce(cls, value: Any) -> Signature:
        if isinstance(value, Signature):
            return value
        return cls.from_dict(value)

    # -- enforcement ----------------------------------------------------------------------------------------------
    def enforce(self, X: Any, label: str = "the model") -> Any:
        """``X`` checked against the signature: for a frame signature, a DataFrame with exactly the signature's
        columns in its order (extra columns dropped); raises :class:`SignatureError` naming what is wrong."""
        if self.type == "frame":
            return self._enforce_frame(X, label)
        if self.type == "array":
            return self._enforce_array(X, label)
        return X

    def _enforce_frame(self, X: Any, label: str) -> pd.DataFrame:
        names = self.names
        if isinstance(X, pd.DataFrame):
            df = X
        elif isinstance(X, dict):
            try:
                df = pd.DataFrame(X) if any(_is_listlike(v) for v in X.values()) else pd.DataFrame([X])
            except ValueError as exc:
                raise SignatureError(f"{label}: cannot read the dict input as columns ({exc})") from None
        elif isinstance(X, list) and X and all(isinstance(r, dict) for r in X):
            df = pd.DataFrame(X)
        elif isinstance(X, (np.ndarray, list)):
            arr = np.asarray(X, dtype=object) if isinstance(X, list) else X
            if arr.ndim != 2 or arr.shape[1] != len(names):
                raise SignatureError(
                    f"{label} takes a table with columns {_list(names)}; got an array of shape {arr.shape} "
                    f"— pass a DataFrame (or a 2-D array with {len(names)} columns in that order)"
                )
            df = pd.DataFrame(arr, columns=names)
            if arr.dtype == object:
                df = df.infer_objects()
        elif isinstance(X, pd.Series):
            raise SignatureError(
                f"{label} takes a table with columns {_list(names)}; got a Series — use series.to_frame().T "
                "for one row or a DataFrame"
            )
        else:
            raise SignatureError(
                f"{label} takes a DataFrame with columns {_list(names)}; got {type(X).__name__}"
            )
        present = {str(c): c for c in df.columns}
        missing = [n for n in names if n not in present]
        if missing:
            raise SignatureError(
                f"{label} needs column{'s' if len(missing) > 1 else ''} {_list(missing)}, missing from the input "
                f"(it takes {_list(names)})"
            )
        problems = []
        for spec in self.columns:
            problem = _check_column(df[present[spec.name]], spec)
            if problem:
                problems.append(problem)
        if problems:
            raise SignatureError(f"{label}: " + "; ".join(problems))
        cols = [present[n] for n in names]
        if list(df.columns) == cols:
            return df
        out = df[cols]
        out.columns = names
        return out

    def _enforce_array(self, X: Any, label: str) -> Any:
        shape = self.shape or ()
        arr_shape = getattr(X, "shape", None)
        if arr_shape is None:
            try:
                X = np.asarray(X)
            except Exception:
                raise SignatureError(f"{label} takes an array; got {type(X).__name__}") from None
            arr_shape = X.shape
        if shape and (
            len(arr_shape) != len(shape)
            or any(want not in (-1, got) for want, got in zip(shape, arr_shape, strict=True))
        ):
            want = "(" + ", ".join("n" if s == -1 else str(s) for s in shape) + ")"
            raise SignatureError(f"{label} takes an array of shape {want}; got shape {tuple(arr_shape)}")
        if self.dtype is not None:
            expected = kind_of_name(self.dtype)
            if isinstance(X, pd.DataFrame):
                kinds = {kind_of(t) for t in X.dtypes}
            else:
                kinds = {kind_of(getattr(X, "dtype", np.asarray(X).dtype))}
            bad = [k for k in kinds if k != "object" and k not in _ACCEPTS.get(expected, {k})]
            if bad:
                raise SignatureError(
                    f"{label} takes {self.dtype} values; got {', '.join(sorted(bad))} "
                    f"(convert with .{_HINTS.get(expected, 'astype(...)')})"
                )
        return X

    # -- display ----------------------------------------------------------------------------------------------
    def describe(self) -> str:
        """One line: ``age: int64, plan: str → label (0, 1)``."""
        if self.type == "frame":
            ins = ", ".join(f"{c.name}: {c.dtype or 'any'}" for c in self.columns)
        elif self.type == "array":
            shape = "×".join("n" if s == -1 else str(s) for s in self.shape or ())
            ins = f"array[{shape}] of {self.dtype or 'any'}"
        else:
            ins = "any"
        return f"{ins} → {describe_outputs(self.outputs)}"

    def __str__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        from ..report.models import signature_html

        return signature_html(self)


def describe_outputs(outputs: dict) -> str:
    kind = outputs.get("kind", "unknown")
    if kind == "label" and outputs.get("classes") is not None:
        classes = outputs["classes"]
        shown = ", ".join(str(c) for c in classes[:6]) + (", …" if len(classes) > 6 else "")
        return f"label ({shown})" + (" + probabilities" if outputs.get("probabilities") else "")
    if kind == "array" and outputs.get("shape"):
        return "array[" + "×".join("n" if s == -1 else str(s) for s in outputs["shape"]) + "]"
    if kind == "frame":
        return "table (" + ", ".join(outputs.get("columns", [])[:6]) + ")"
    return kind + (f" ({outputs['dtype']})" if outputs.get("dtype") else "")


def _is_listlike(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray, pd.Series))


def _list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _check_column(col: pd.Series, spec: ColumnSpec) -> str | None:
    """What is wrong with a column for ``spec``, or None."""
    expected = spec.kind
    if spec.dtype is None or expected == "object":
        return None
    got = kind_of(col.dtype)
    if got == "object":
        inferred = pd.api.types.infer_dtype(col, skipna=True)
        got_kind = _OBJECT_KINDS.get(inferred, "object")
        if got_kind is None:  # all missing
            return None
        if got_kind in _ACCEPTS.get(expected, set()):
            return None
        sample = next((v for v in col if v is not None and not _is_nan(v)), None)
        return (
            f"column {spec.name!r} must be {expected} ({spec.dtype}), got object values like {sample!r} "
            f"(convert with df[{spec.name!r}].{_HINTS.get(expected, 'astype(...)')})"
        )
    if got in _ACCEPTS.get(expected, {expected}):
        return None
    if expected == "integer" and got == "float":
        nulls = int(col.isna().sum())
        if nulls:
            return (
                f"column {spec.name!r} has {nulls} missing value{'s' if nulls > 1 else ''}, but the model takes "
                f"{spec.dtype} values, which cannot be missing (fill them first)"
            )
    return (
        f"column {spec.name!r} must be {expected} ({spec.dtype}), got {col.dtype} "
        f"(convert with df[{spec.name!r}].{_HINTS.get(expected, 'astype(...)')})"
    )


def _is_nan(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# -- inference ------------------------------------------------------------------------------------------------------
def as_frame_or_array(example: Any) -> Any:
    """An input example as a DataFrame (tables, dicts, records) or a numpy array."""
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame()
    if isinstance(example, dict):
        if any(_is_listlike(v) for v in example.values()):
            return pd.DataFrame(example)
        return pd.DataFrame([example])
    if isinstance(example, list) and example and all(isinstance(r, dict) for r in example):
        return pd.DataFrame(example)
    try:
        return np.asarray(example)
    except Exception:
        raise InvalidInput(
            f"input_example must be a DataFrame, a dict of columns, a list of records or an array, "
            f"got {type(example).__name__}"
        ) from None


def from_frame(df: pd.DataFrame, source: str) -> Signature:
    cols = tuple(ColumnSpec(str(c), str(t), kind_of(t)) for c, t in zip(df.columns, df.dtypes, strict=True))
    return Signature("frame", cols, source=source)


def from_example(example: Any, source: str = "input_example") -> Signature:
    data = as_frame_or_array(example)
    if isinstance(data, pd.DataFrame):
        return from_frame(data, source)
    shape = (-1, *data.shape[1:]) if data.ndim >= 1 else ()
    return Signature("array", dtype=str(data.dtype), shape=shape, source=source)


def outputs_of(model: Any, out: Any = None) -> dict[str, Any]:
    """The output description of ``model``, from its prediction ``out`` when there is one."""
    d: dict[str, Any] = {"kind": "unknown"}
    classes = getattr(model, "classes_", None)
    if classes is not None and np.ndim(classes) == 1:
        cl = list(np.asarray(classes))
        d = {"kind": "label", "classes": [_json_value(c) for c in cl[:MAX_CLASSES]], "n_classes": len(cl)}
        if out is not None and hasattr(out, "dtype"):
            d["dtype"] = str(out.dtype)
        if callable(getattr(model, "predict_proba", None)):
            d["probabilities"] = True
        return d
    if out is not None:
        if isinstance(out, pd.DataFrame):
            return {"kind": "frame", "columns": [str(c) for c in out.columns]}
        arr = out if isinstance(out, np.ndarray) else None
        if arr is None:
            try:
                arr = np.asarray(out)
            except Exception:
                return {"kind": type(out).__name__}
        k = kind_of(arr.dtype)
        if arr.ndim <= 1:
            return {"kind": "number" if k in ("integer", "float") else "value", "dtype": str(arr.dtype)}
        return {"kind": "array", "dtype": str(arr.dtype), "shape": [-1, *arr.shape[1:]]}
    if "sklearn" in type(model).__module__ or hasattr(model, "_estimator_type"):
        try:
            from sklearn.base import is_regressor

            if is_regressor(model):
                return {"kind": "number"}
        except Exception:
            pass
    return d


def from_snapshot(schema: list[dict], model: Any, source: str) -> Signature | None:
    """A frame signature from a snapshot's schema: the columns the model was fit on, when they can be told
    apart from the rest (the target, ids, …); None when they cannot."""
    by_name = {str(c["name"]): c for c in schema}
    names = feature_names(model)
    if names is not None:
        if not all(n in by_name for n in names):
            return None
        chosen = [by_name[n] for n in names]
    else:
        n = getattr(model, "n_features_in_", None)
        if n is None or n != len(schema):
            return None
        chosen = list(schema)
    cols = tuple(ColumnSpec(str(c["name"]), str(c["dtype"]), kind_of_name(str(c["dtype"]))) for c in chosen)
    return Signature("frame", cols, outputs=outputs_of(model), source=source)


def from_model(model: Any) -> Signature | None:
    """Names without dtypes, from ``feature_names_in_``; None when the model does not know its columns."""
    names = feature_names(model)
    if names is None:
        return None
    cols = tuple(ColumnSpec(n, None, "object") for n in names)
    return Signature("frame", cols, outputs=outputs_of(model), source="model")


def feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    return [str(n) for n in names]


def example_to_json(example: Any) -> dict | None:
    """The first rows of an input example as JSON (for model cards and smoke tests)."""
    data = as_frame_or_array(example)
    if isinstance(data, pd.DataFrame):
        head = data.head(EXAMPLE_ROWS)
        return {
            "type": "frame",
            "columns": [str(c) for c in head.columns],
            "data": json.loads(head.to_json(orient="values", date_format="iso", default_handler=str)),
        }
    if data.dtype.kind in "biufcUSb" or data.dtype == object:
        head = data[:EXAMPLE_ROWS] if data.ndim else data
        try:
            return {"type": "array", "data": json.loads(json.dumps(head.tolist(), default=str))}
        except (TypeError, ValueError):
            return None
    return None


def example_from_json(d: dict | None, signature: Signature | None) -> Any:
    """Rebuild a stored example: a DataFrame with the signature's dtypes, or an array."""
    if not d:
        return None
    if d.get("type") == "frame":
        df = pd.DataFrame(d["data"], columns=d["columns"])
        if signature is not None and signature.type == "frame":
            for c in signature.columns:
                if c.dtype and c.name in df.columns:
                    try:
                        df[c.name] = df[c.name].astype(c.dtype)
                    except (TypeError, ValueError):
                        pass
        return df
    arr = np.asarray(d["data"])
    if signature is not None and signature.dtype:
        try:
            arr = arr.astype(signature.dtype)
        except (TypeError, ValueError):
            pass
    return arr
