"""The point-in-time join in DuckDB, for a view whose feature rows do not fit in memory.

A view is searched in memory (:mod:`.pointintime`) while its sorted rows fit the budget (:func:`budget`); past it,
DuckDB joins it out of core instead: the entity rows' keys and times (numbered in their order) go to a Parquet
file, and one ``ASOF LEFT JOIN`` of them with the view's sorted file (:func:`~.rows.feature_file`) writes each
entity row's feature values, in the entities' order, within ``memory_limit`` and spilling to the workspace's
``tmp/``. The view's file holds one row per (entity, time), the last written, so the result is the very one of the
in-memory search; it is then read back batch by batch beside the entities.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInput
from .entities import BATCH_ROWS, _quote, _sql_path, first_line, require_duckdb
from .pointintime import NO_TIME, _describe, _kind

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b)?\s*$", re.IGNORECASE)


def _bytes(size: str) -> int | None:
    m = _SIZE.match(str(size))
    if not m:
        return None
    unit = (m.group(2) or "b").lower()
    base = 1024 if "i" in unit else 1000  # as DuckDB reads them: MB is 1000², MiB 1024²
    return int(float(m.group(1)) * base ** "bkmgt".index(unit[0]))


def budget(memory_limit: str | None = None) -> int:
    """Bytes a view's sorted rows may take in memory: ``MLO_FEATURE_VIEW_MB`` when set, else ``memory_limit`` (or
    ``MLO_DUCKDB_MEMORY_LIMIT``), else ``MLO_FEATURE_CACHE_MB`` (default 1024)."""
    limit = memory_limit or os.environ.get("MLO_DUCKDB_MEMORY_LIMIT")
    if not os.environ.get("MLO_FEATURE_VIEW_MB") and limit and (size := _bytes(limit)) is not None:
        return size
    name = "MLO_FEATURE_VIEW_MB" if os.environ.get("MLO_FEATURE_VIEW_MB") else "MLO_FEATURE_CACHE_MB"
    text = os.environ.get(name) or "1024"
    try:
        mb = float(text)
    except ValueError:
        raise InvalidInput(f"{name} takes a number of MB, got {text!r}") from None
    if name == "MLO_FEATURE_CACHE_MB" and mb <= 0:  # 0 keeps no view between calls; it still joins in memory
        mb = 1024
    return int(mb * 2**20)


def view_bytes(path: Path, columns: list[str]) -> int:
    """What the view's rows (its entity, time and ``columns``) take in memory, from the file's own sizes."""
    meta = pq.ParquetFile(path).metadata
    top = [meta.schema.column(i).path.split(".")[0] for i in range(meta.num_columns)]
    wanted = {*columns, *top[:2]}  # the entity and the time come first
    total = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for i in range(rg.num_columns):
            if top[i] in wanted:
                total += max(rg.column(i).total_uncompressed_size, 8 * rg.num_rows)
    return total + 16 * meta.num_rows  # the runs' starts and ends, the keys' index


class AsofJoin:
    """The views joined by DuckDB for one training frame: :meth:`run` over every entity row once, then
    :meth:`take` their features batch by batch, in the entities' order."""

    def __init__(self, parts: list[tuple[Any, list[str], Path]]):
        self.parts = parts  # (view, columns, sorted file)
        self.readers: list[_Rows] = []

    def run(self, con, scratch: Path, batches: Iterable[tuple[dict[str, np.ndarray], np.ndarray]]) -> None:
        """Join every entity row of ``batches`` (``({entity column: keys}, UTC microseconds)``, in order) with
        each view, into files in ``scratch``."""
        entities = scratch / "asof-entities.parquet"
        columns = list(dict.fromkeys(view.entity for view, _, _ in self.parts))
        kinds = _write_entities(entities, columns, batches)
        for i, (view, cols, path) in enumerate(self.parts):
            _check_kinds(kinds.get(view.entity), path, view)
            out = scratch / f"asof-{i}.parquet"
            picked = ", ".join(f"f.{_quote(c)} AS v{j}" for j, c in enumerate(cols))
            key = f"k{columns.index(view.entity)}"
            sql = (
                f"COPY (SELECT {picked} FROM read_parquet('{_sql_path(entities)}') e "
                f"ASOF LEFT JOIN read_parquet('{_sql_path(path)}') f "
                f"ON e.{key} = f.{_quote(view.entity)} AND e.ts >= f.{_quote(view.timestamp)} "
                f"ORDER BY e.rn) TO '{_sql_path(out)}' (FORMAT parquet)"
            )
            try:
                con.execute(sql)
            except require_duckdb().OutOfMemoryException as exc:
                raise InvalidInput(
                    f"joining feature view {view.ref} needs more memory than DuckDB was given: raise memory_limit= "
                    f"({first_line(exc)})"
                ) from None
            except require_duckdb().Error as exc:
                raise InvalidInput(
                    f"cannot join the entities with feature view {view.ref} on {view.entity!r}: {first_line(exc)}"
                ) from None
            self.readers.append(_Rows(out, cols, pq.read_schema(path)))

    def take(self, n: int) -> list[list[tuple[Any, Any]]]:
        """The next ``n`` entity rows' features, per view: pairs as :meth:`~.offline.Joiner.features` gives
        them."""
        return [rows.take(n) for rows in self.readers]


def _write_entities(path: Path, columns: list[str], batches) -> dict[str, str]:
    """The entity rows' number, time and keys into ``path``; the kind of each key column (as the search tells)."""
    writer = None
    rn = 0
    kinds: dict[str, str] = {}
    try:
        for keys, times in batches:
            n = len(times)
            arrays = [
                pa.array(np.arange(rn, rn + n, dtype=np.int64)),
                pa.array(times.view("datetime64[us]"), mask=times == NO_TIME),
            ]
            for c in columns:
                if c not in kinds and len(keys[c]):
                    kinds[c] = _kind(keys[c])
                try:
                    arrays.append(pa.array(keys[c], from_pandas=True))
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise InvalidInput(f"cannot join the entities on {c!r}: {first_line(exc)}") from None
            batch = pa.RecordBatch.from_arrays(
                arrays, names=["rn", "ts", *(f"k{i}" for i in range(len(columns)))]
            )
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema)
            elif batch.schema != writer.schema:
                batch = batch.cast(writer.schema)
            writer.write_batch(batch)
            rn += n
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InvalidInput("the entities hold no rows")
    return kinds


def _check_kinds(kind: str | None, path: Path, view) -> None:
    pf = pq.ParquetFile(path)
    if kind is None or not pf.metadata.num_rows:
        return
    head = next(pf.iter_batches(batch_size=1000, columns=[view.entity]))
    theirs = _kind(head.column(0).to_numpy(zero_copy_only=False))
    if theirs != kind:
        raise InvalidInput(
            f"cannot join the entities with the features: the entities' {view.entity!r} holds "
            f"{_describe(kind)} and the feature view {view.ref}'s holds {_describe(theirs)}"
        )


class _Rows:
    """A joined view's features, read back in runs of any length, as the in-memory search would give them."""

    def __init__(self, path: Path, columns: list[str], schema: pa.Schema):
        self.columns = columns
        self.types = [schema.field(c).type for c in columns]
        self.block = bool(columns) and all(t == pa.float64() for t in self.types)
        pf = pq.ParquetFile(path)
        self.batches = pf.iter_batches(batch_size=BATCH_ROWS)
        self.left: pa.Table = pf.schema_arrow.empty_table()

    def take(self, n: int) -> list[tuple[Any, Any]]:
        parts, have = [self.left], self.left.num_rows
        while have < n:
            batch = next(self.batches)
            parts.append(pa.Table.from_batches([batch]))
            have += batch.num_rows
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        self.left = table.slice(n)
        table = table.slice(0, n)
        # floats as one block, NaN where nothing matched, as :func:`~.pointintime.latest` has them
        if self.block:
            block = np.empty((n, len(self.columns)), dtype=np.float64)
            for j in range(len(self.columns)):
                block[:, j] = table.column(j).to_numpy()
            return [(tuple(self.columns), block)]
        return [
            (c, table.column(j).combine_chunks().cast(t))
            for j, (c, t) in enumerate(zip(self.columns, self.types, strict=True))
        ]
