"""Cheap fingerprints of the values a cell binds: type, size, dtypes and a hash of a fixed sample.

Recorded for every cell at capture time and again when ``mlo reproduce`` replays it, so the first cell whose
values differ tells where a reproduction diverged. A fingerprint costs well under a millisecond for a
DataFrame of millions of rows: it hashes at most :data:`SAMPLE` evenly spaced rows or elements, never the whole
value. Equal fingerprints do not prove equal values; different ones prove different values.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import blake3

SAMPLE = 64
MAX_TEXT = 1 << 16
_SKIP_TYPES = ("module", "function", "builtin_function_or_method", "type", "method", "ABCMeta")


def fingerprint(value: Any) -> dict[str, Any] | None:
    """``{"type", "size"?, "dtype"?, "hash"?}`` of ``value``, or None for values not worth comparing
    (modules, functions, classes: their cells' sources are compared instead)."""
    kind = type(value).__name__
    if kind in _SKIP_TYPES or callable(value) and not hasattr(value, "get_params"):
        return None
    try:
        return _fingerprint(value, kind)
    except Exception:  # a value whose protocols misbehave: its type alone
        return {"type": kind}


def _fingerprint(value: Any, kind: str) -> dict[str, Any]:
    if value is None or isinstance(value, (bool, int, str, bytes)):
        data = value if isinstance(value, bytes) else repr(value).encode()
        return {"type": kind, "size": _len(value), "hash": _hash(data[:MAX_TEXT], len(data))}
    if isinstance(value, float):
        return {"type": kind, "hash": _hash(_float_text(value))}
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        return _frame(value, kind, pd)
    if np is not None and isinstance(value, np.ndarray):
        return _array(value, kind, np)
    if np is not None and isinstance(value, np.generic):
        return {"type": kind, "hash": _hash(repr(value.item()).encode())}
    if hasattr(value, "get_params") and hasattr(value, "fit"):
        return _estimator(value, kind)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        items = sorted(value.items(), key=repr) if isinstance(value, dict) else value
        if isinstance(value, (set, frozenset)):
            items = sorted(value, key=repr)
        sample = _sample_list(list(items))
        return {"type": kind, "size": len(value), "hash": _hash(repr(sample).encode()[:MAX_TEXT])}
    return {"type": kind}


def _frame(value, kind: str, pd) -> dict[str, Any]:
    n = len(value)
    step = max(1, n // SAMPLE)
    sample = value.iloc[::step].iloc[:SAMPLE]
    hashed = pd.util.hash_pandas_object(sample, index=True).to_numpy().tobytes()
    dtypes = [str(t) for t in value.dtypes] if isinstance(value, pd.DataFrame) else [str(value.dtype)]
    cols = [str(c) for c in value.columns] if isinstance(value, pd.DataFrame) else [str(value.name)]
    shape = list(value.shape)
    return {
        "type": kind,
        "size": shape,
        "dtype": dtypes,
        "hash": _hash(hashed + repr(cols).encode(), n),
    }


def _array(value, kind: str, np) -> dict[str, Any]:
    flat = value.reshape(-1) if value.flags.c_contiguous else value.ravel()
    n = flat.size
    step = max(1, n // (SAMPLE * 16))
    sample = np.ascontiguousarray(flat[::step][: SAMPLE * 16])
    data = sample.tobytes() if value.dtype != object else repr(sample.tolist()).encode()
    return {"type": kind, "size": list(value.shape), "dtype": str(value.dtype), "hash": _hash(data, n)}


def _estimator(value, kind: str) -> dict[str, Any]:
    """Params plus the learned state (attributes ending in ``_``), each by its own fingerprint."""
    params = value.get_params(deep=False)
    learned = {
        k: fingerprint(v)
        for k, v in sorted(vars(value).items())
        if k.endswith("_") and not k.startswith("_") and not callable(v)
    }
    text = repr(sorted((k, _stable(v)) for k, v in params.items())) + repr(sorted(learned.items()))
    return {"type": kind, "hash": _hash(text.encode())}


def _stable(v: Any) -> Any:
    """A param's value as text that is the same in every process (no memory addresses)."""
    if hasattr(v, "get_params") and hasattr(v, "fit"):
        return fingerprint(v)
    if isinstance(v, (list, tuple)):
        return [_stable(x) for x in v]
    if callable(v):
        return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', type(v).__name__)}"
    text = repr(v)
    return type(v).__name__ if " at 0x" in text else text


def _sample_list(items: list) -> list:
    if len(items) <= SAMPLE:
        return [_short(x) for x in items]
    step = len(items) // SAMPLE
    return [_short(x) for x in items[::step][:SAMPLE]]


def _short(x: Any) -> Any:
    fp = fingerprint(x) if not isinstance(x, (int, str, float, bool, type(None))) else None
    return fp if fp is not None else x


def _float_text(x: float) -> bytes:
    return b"nan" if math.isnan(x) else repr(x).encode()


def _len(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _hash(data: bytes, salt: int | None = None) -> str:
    h = blake3.blake3(data)
    if salt is not None:
        h.update(str(salt).encode())
    return h.hexdigest()[:16]


def difference(before: dict | None, after: dict | None) -> str | None:
    """What differs between two fingerprints, in words; None when they agree."""
    if before == after:
        return None
    if before is None or after is None:
        return "is missing" if after is None else "was not bound in the original"
    if before.get("type") != after.get("type"):
        return f"type {before.get('type')} → {after.get('type')}"
    if before.get("size") != after.get("size"):
        return f"size {_fmt(before.get('size'))} → {_fmt(after.get('size'))}"
    if before.get("dtype") != after.get("dtype"):
        return f"dtypes {before.get('dtype')} → {after.get('dtype')}"
    return "values differ"


def _fmt(size: Any) -> str:
    if isinstance(size, list):
        return " × ".join(f"{s:,}" for s in size)
    return f"{size:,}" if isinstance(size, int) else str(size)
