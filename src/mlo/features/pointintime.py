"""The point-in-time search: each entity row's place in a view's feature rows, by entity and time.

A view's feature rows are kept sorted by (entity, time) (:func:`mlo.features.offline.feature_file`), so the rows
of one entity are one contiguous run, in time order. For an entity row ``(key, t)`` the run is found by a hash of
the keys, and the feature rows at or before ``t`` by a binary search inside the run, vectorised over every entity
row at once. Nothing is sorted at query time: the entity rows keep their order (no sort and no scatter back), a
batch of them is independent of the others (so entities stream through in batches of any size), and the same
search serves the training frame, the online values and the windowed aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InvalidInput

NO_TIME = np.iinfo(np.int64).min  # a missing time: before everything, so it matches nothing


@dataclass
class ViewIndex:
    """A view's feature rows, sorted by (entity, time): the keys' runs and the rows' times in microseconds."""

    name: str
    table: pa.Table | None  # the value columns, in the sorted order (None when they are all in ``block``)
    times: np.ndarray  # int64 microseconds (UTC)
    keys: pd.Index  # one per run, unique
    starts: np.ndarray
    ends: np.ndarray
    key_kind: str  # "number" | "text" | "other"
    # float columns side by side, and a row of NaN after them where a row with no match points: a row's values are
    # gathered together, one memory access each
    block: np.ndarray | None = None
    block_columns: tuple[str, ...] = ()

    def nbytes(self) -> int:
        held = [self.times, self.starts, self.ends, self.keys.to_numpy()]
        size = sum(a.nbytes for a in held) + (self.block.nbytes if self.block is not None else 0)
        return size + (self.table.nbytes if self.table is not None else 0)

    @classmethod
    def build(
        cls,
        name: str,
        keys: np.ndarray,
        times: np.ndarray,
        table: pa.Table | None,
        block: np.ndarray | None = None,
        block_columns: tuple[str, ...] = (),
    ) -> ViewIndex:
        n = len(keys)
        if n:
            change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
            starts = np.concatenate([[0], change]).astype(np.int64)
            ends = np.concatenate([change, [n]]).astype(np.int64)
        else:
            starts = ends = np.zeros(0, dtype=np.int64)
        uniq = keys[starts] if n else keys[:0]
        return cls(name, table, times, pd.Index(uniq), starts, ends, _kind(uniq), block, tuple(block_columns))


def _kind(values: np.ndarray) -> str:
    if values.dtype.kind in "iufb":
        return "number"
    if values.dtype.kind in "OUS":
        sample = [v for v in values[:1000] if v is not None and v is not pd.NA and v == v]
        if all(isinstance(v, str) for v in sample):
            return "text"
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in sample):
            return "number"
    return "other"


def _bisect(times: np.ndarray, lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per row, the first position in ``[lo, hi)`` whose time is after ``t`` (``hi`` when none): a binary search
    over every row at once, each round on the rows whose range is not yet empty."""
    lo = lo.copy()
    hi = hi.copy()
    active = np.flatnonzero(lo < hi)
    while active.size:
        a, b = lo[active], hi[active]
        mid = (a + b) >> 1
        after = times[mid] > t[active]
        a = np.where(after, a, mid + 1)
        b = np.where(after, mid, b)
        lo[active] = a
        hi[active] = b
        active = active[a < b]
    return lo


@dataclass
class Located:
    """Where each entity row falls in a view: its entity's run ``[start, end)`` and ``upto``, the first feature row
    after its time (so ``upto - 1`` is the latest at or before it, when ``upto > start``)."""

    start: np.ndarray
    end: np.ndarray
    upto: np.ndarray
    times: np.ndarray


def locate(index: ViewIndex, keys: np.ndarray, times: np.ndarray, entity: str) -> Located:
    """The runs and positions of entity rows ``(keys, times)`` (times in int64 microseconds, ``NO_TIME`` when
    missing) in ``index``."""
    kind = _kind(keys)
    if len(index.keys) and len(keys) and kind != index.key_kind:
        raise InvalidInput(
            f"cannot join the entities with the features: the entities' {entity!r} holds "
            f"{_describe(kind)} and the feature view {index.name}'s holds {_describe(index.key_kind)}"
        )
    try:
        run = index.keys.get_indexer(keys)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot join the entities with the features on {entity!r}: {exc}") from None
    hit = (run >= 0) & (times != NO_TIME)
    if not len(index.keys):  # a view with no rows: nothing matches
        run = np.zeros(len(run), dtype=np.int64)
        start = end = np.zeros(len(run), dtype=np.int64)
    else:
        start = np.where(hit, index.starts[run], 0)
        end = np.where(hit, index.ends[run], 0)
    return Located(start, end, _bisect(index.times, start, end, times), times)


def _describe(kind: str) -> str:
    return {"number": "numbers", "text": "text"}.get(kind, "values of another type")


def latest(index: ViewIndex, where: Located, columns: list[str]) -> dict[str, np.ndarray | pa.Array]:
    """The latest feature row at or before each entity row's time, per column: null where there is none (as
    Arrow); or, for a view held as a float ``block``, one 2-D array (NaN where there is none) under the key
    ``tuple(columns)``."""
    found = where.upto > where.start
    if index.block is not None and tuple(columns) == index.block_columns:
        last = len(index.block) - 1
        return {index.block_columns: index.block.take(np.where(found, where.upto - 1, last), axis=0)}
    rows = pa.array(where.upto - 1, type=pa.int64(), mask=~found)
    return {c: index.table.column(c).take(rows).combine_chunks() for c in columns}


def window_start(index: ViewIndex, where: Located, window_us: int) -> np.ndarray:
    """Per entity row, the first feature row inside the window ``(t - window, t]``."""
    with np.errstate(over="ignore"):
        floor = np.where(where.times == NO_TIME, NO_TIME, where.times - window_us)
    return _bisect(index.times, where.start, where.upto, floor)
