"""A view's feature rows: computed once per version into a Parquet file sorted by entity and time, and read
into a :class:`~.pointintime.ViewIndex` for point-in-time lookups (kept in memory for the next call while it
fits)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .pointintime import NO_TIME, ViewIndex
from .views import FeatureView

FORMAT = "s1"  # sorted by (entity, time), one row per pair; the time as UTC microseconds


def utc_us(values: Any) -> np.ndarray:
    """Datetimes (naive are UTC) as int64 microseconds since the epoch; missing ones as ``NO_TIME``."""
    s = pd.Series(values, copy=False)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy().astype("datetime64[us]").view(np.int64)


def feature_file(view: FeatureView) -> Path:
    """The Parquet file of ``view``'s feature rows (entity, timestamp, :attr:`~FeatureView.event_columns`), sorted
    by entity and time; made when missing."""
    folder = view._ws.home / "features"
    path = folder / f"{view.digest}.{FORMAT}.parquet"
    if path.exists():
        return path
    data = view.source.load()
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas()
    events = view.events(data)
    keys = data[view.entity].reset_index(drop=True)
    times = utc_us(data[view.timestamp])
    keep = keys.notna().to_numpy() & (times != NO_TIME)
    codes, _ = pd.factorize(keys, sort=True)
    order = np.lexsort((times, codes))  # stable: among rows of one entity and time, the source order stays
    order = order[keep[order]]
    if not view.aggregated and len(order):  # one row per (entity, time): the last one, as a later write wins
        c, t = codes[order], times[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (c[1:] != c[:-1]) | (t[1:] != t[:-1])
        order = order[last]
    table = pa.Table.from_pandas(events.take(order).reset_index(drop=True), preserve_index=False)
    table = table.add_column(0, view.timestamp, pa.array(times[order].view("datetime64[us]")))
    table = table.add_column(0, view.entity, pa.Array.from_pandas(keys.take(order).reset_index(drop=True)))
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="lz4")  # read at every join: fast to decode beats small
        os.replace(tmp, path)  # whole or not at all
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def feature_frame(view: FeatureView) -> pd.DataFrame:
    """Every feature row of ``view``: entity, timestamp (UTC) and its columns, sorted by entity and time."""
    return pq.read_table(feature_file(view)).to_pandas()


class _Recent:
    """The views read lately, kept while they fit in ``MLO_FEATURE_CACHE_MB`` (default 1024; 0 keeps none): a
    notebook that builds training frames again and again reads each view version's file once. What is kept is
    never written to, and a view version's rows never change (its file is named by its digest)."""

    def __init__(self):
        import threading
        from collections import OrderedDict

        self.items: OrderedDict[tuple, tuple[ViewIndex, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> ViewIndex | None:
        with self.lock:
            hit = self.items.get(key)
            if hit is not None:
                self.items.move_to_end(key)
            return hit[0] if hit else None

    def put(self, key: tuple, index: ViewIndex) -> None:
        budget = int(float(os.environ.get("MLO_FEATURE_CACHE_MB", "1024")) * 2**20)
        size = index.nbytes()
        with self.lock:
            self.items[key] = (index, size)
            while self.items and sum(n for _, n in self.items.values()) > budget:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


recent = _Recent()


def view_index(view: FeatureView, columns: list[str], *, block: bool = True) -> ViewIndex:
    """The sorted feature rows of ``view`` (the ``columns`` asked), ready for point-in-time lookups. Float
    columns are read one at a time into a block of rows (``block=True``), so a view never sits in memory
    twice. Kept for the next call while it fits (:class:`_Recent`)."""
    path = feature_file(view)
    key = (str(path), tuple(columns), block)
    index = recent.get(key)
    if index is None:
        index = _read_index(view, path, columns, block)
        recent.put(key, index)
    return index


def _read_index(view: FeatureView, path: Path, columns: list[str], block: bool) -> ViewIndex:
    pf = pq.ParquetFile(path)
    head = pf.read(columns=[view.entity, view.timestamp])
    keys = head.column(view.entity).to_numpy(zero_copy_only=False)
    times = head.column(view.timestamp).cast(pa.int64()).to_numpy()
    del head
    types = {f.name: f.type for f in pf.schema_arrow}
    if block and columns and all(types[c] == pa.float64() for c in columns):
        values = np.empty((len(times) + 1, len(columns)), dtype=np.float64)
        for i, c in enumerate(columns):
            values[:-1, i] = pf.read(columns=[c]).column(0).to_numpy()
        values[-1] = np.nan
        return ViewIndex.build(view.ref, keys, times, None, values, tuple(columns))
    return ViewIndex.build(view.ref, keys, times, pf.read(columns=columns))
