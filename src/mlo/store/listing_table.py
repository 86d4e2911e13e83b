"""A whole run listing read from the database straight into the layout of the listing cache (an Arrow table, see
:mod:`mlo.store.listing_cache`): what ``runs()`` of a big workspace reads when there is no cache file to start
from (the first listing after an upgrade, a fresh copy of a team's database, the file removed), and the runs
changed since the file was written.

The database builds one JSON object per run (the listed fields of its row, its listing stamp, an object of its
params and one of its tags); Arrow's JSON reader parses them in C++ into a column per field and a struct column
of params and of tags with a child per key, so no Python object is made per value. Meanwhile a second
connection reads each run's metric keys and the metric values as bare floats (JSON text in SQLite holds 15
significant digits, too few to give a float back), in a snapshot checked against the first one's.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import JSON, LargeBinary, Text, cast, func, literal_column, select, type_coerce
from sqlalchemy.exc import DataError, OperationalError

from ..errors import StoreError
from . import listing_cache as lc
from . import schema as s

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Connection

    from .runs import RunStore

_FIELDS = (*lc.RUN_FIELDS, "stamp")
_INTEGERS = ("start_time", "end_time", "stamp")
# the names of the fields in each run's JSON object: short ones, as they repeat on every line the reader parses;
# params and tags are objects of {key: stored text}
_NAME = {name: str(i) for i, name in enumerate(_FIELDS)} | {"params": "p", "tags": "t"}


def read_table(store: RunStore, conn: Connection, scope: tuple) -> pa.Table:
    """Every listed run of ``scope`` (as :meth:`RunStore.listing` takes it), in listing order, with every param,
    metric and tag, as a table in the cache's layout, read in the snapshot of ``conn``.

    The runs' objects come as a few texts, a line each (see :func:`_lines`), each built in one step of the
    driver, which lets go of the interpreter's lock meanwhile. The metrics are read at the same time on a second
    connection of the store, in a snapshot of its own that must show the listed runs as ``conn`` does: every
    write a listing shows moves the run's listing stamp in its transaction (schema version 7), so the same runs
    with the same stamps in both is the same data. When a commit came between the two snapshots' starts, the
    metrics are read again on ``conn``."""
    metrics = _InThread(_metrics_apart, store, scope) if _second_connection(store) else None
    try:
        parsed = _parse(*_lines(store, conn, scope))
    finally:
        if metrics is not None:
            metrics.join()
    if parsed is None:
        return _empty_table()
    order = _listing_order(parsed)
    # (a failure on the second connection, whatever it was, is met again, and told, by the read on conn)
    got = metrics.value if metrics is not None and metrics.error is None else None
    if got is None or not _same_runs(parsed, order, got[0], got[1]):
        got = _metrics(store, conn, scope)
    return _assemble(parsed, order, *got[2:])


def _listing_order(parsed: pa.Table) -> np.ndarray | None:
    """The positions of the parsed runs newest first (then by id, descending), as the listing orders them; None
    when they came so (the database gives them in no promised order)."""
    import pyarrow.compute as pc

    keys = [(_NAME["start_time"], "descending"), (_NAME["id"], "descending")]
    order = pc.sort_indices(parsed.select([k for k, _ in keys]), sort_keys=keys).to_numpy()
    return None if (order[1:] > order[:-1]).all() else order


def _same_runs(parsed: pa.Table, order: np.ndarray | None, ids: tuple, stamps: np.ndarray) -> bool:
    """Whether ``parsed`` (in ``order``) holds the runs ``ids`` in that order, with these listing stamps."""
    if len(ids) != parsed.num_rows:
        return False
    ours = parsed.select([_NAME["id"], _NAME["stamp"]])
    if order is not None:
        ours = ours.take(order)
    return bool((ours.column(1).to_numpy() == stamps).all()) and bool(
        (ours.column(0).to_numpy() == np.asarray(ids, dtype=object)).all()
    )


def _second_connection(store: RunStore) -> bool:
    """Whether another connection sees the same database (not so for an in-memory SQLite)."""
    return store.db.dialect == "postgresql" or store.db.path is not None


def _metrics_apart(store: RunStore, scope: tuple):
    with store._snapshot() as conn:  # (a snapshot of its own, set up as the first connection's)
        return _metrics(store, conn, scope)


def _metrics(store: RunStore, conn: Connection, scope: tuple):
    """(ids, stamps, keys, grid, present) of the listed runs' metrics, runs in listing order (see
    :meth:`RunStore._metric_grid`)."""
    r = s.runs
    lm = s.latest_metrics
    keys = select(store._json_agg(lm.c.key)).where(lm.c.run_id == r.c.id).scalar_subquery()
    q = store._run_rows_query(*scope).with_only_columns(r.c.id, func.coalesce(r.c.listing_stamp, 0), keys)
    rows = conn.execute(q).cursor.fetchall()
    ids, stamps, layouts = zip(*rows, strict=True) if rows else ((), (), ())
    if scope[1] is None and len(ids) == conn.execute(select(func.count()).select_from(r)).scalar_one():
        # every run is listed: the values of the whole table, without asking of each whether it is listed
        scope = (None, None, None)
    names, grid, present = store._metric_grid(conn, scope, None, ids, layouts)
    return ids, np.array(stamps, dtype=np.int64), names, grid, present


# the runs whose JSON lines SQLite joins into one text per statement: a few statements for a big listing, and a
# text far below SQLite's longest (a billion bytes by default) unless the runs hold huge params or tags
CHUNK_RUNS = 20_000


def _lines(store: RunStore, conn: Connection, scope: tuple) -> tuple[bytes | None, int]:
    """The listed runs' JSON objects, a line each (None: no run), and the length of the longest line in bytes.

    The runs go in chunks (by rowid on SQLite, by id on PostgreSQL), each chunk's lines joined by the database
    into one text: on SQLite a statement then runs in one step of the driver, which lets go of the interpreter's
    lock meanwhile; on PostgreSQL one value crosses the wire instead of a row per run. A chunk whose text would
    pass the database's longest value (a gigabyte) is read a line a row."""
    postgres = store.db.dialect == "postgresql"
    key = s.runs.c.id.collate("C") if postgres else literal_column("runs.rowid")
    line = _run_object(store.db.dialect)
    if not postgres:
        line = cast(line, LargeBinary)  # bytes: the driver hands them over without decoding them
    query = store._run_rows_query(*scope).with_only_columns(line.label("o"), key.label("k"))
    parts: list[bytes] = []
    longest, last = 0, None
    while True:
        chunk = query.order_by(None).order_by(key).limit(CHUNK_RUNS)
        if last is not None:
            chunk = chunk.where(key > last)
        sub = chunk.subquery()
        if postgres:
            text, size = func.string_agg(sub.c.o, literal_column("E'\\n'")), func.octet_length(sub.c.o)
        else:
            text = cast(func.group_concat(sub.c.o, literal_column("char(10)")), LargeBinary)
            size = func.length(sub.c.o)
        joined = select(text, func.max(size), func.max(sub.c.k), func.count())
        try:
            with conn.begin_nested() if postgres else nullcontext():  # (an error there ends the transaction)
                got, size, last_key, count = conn.execute(joined).one()
            if got is not None:
                parts.append(got.encode() if isinstance(got, str) else got)
        except (DataError, OperationalError) as exc:  # longer than the database's longest value
            if "too big" not in str(exc) and getattr(exc.orig, "sqlstate", None) != "54000":
                raise  # (54000: a PostgreSQL program limit, such as a text of a gigabyte)
            rows = [(o.encode() if isinstance(o, str) else o, k) for o, k in conn.execute(chunk)]
            parts.extend(o for o, _ in rows)
            size = max((len(o) for o, _ in rows), default=0)
            last_key, count = (rows[-1][1] if rows else None), len(rows)
        longest = max(longest, size or 0)
        if count < CHUNK_RUNS:
            break
        last = last_key
    return (b"\n".join(parts), longest) if parts else (None, 0)


def _run_object(dialect: str):
    """The JSON text of one run: ``{"p": {params}, "t": {tags}, "0": id, …}`` (see ``_NAME``)."""
    r = s.runs
    fields = [(name, r.c[name]) for name in lc.RUN_FIELDS]
    fields.append(("stamp", func.coalesce(r.c.listing_stamp, 0)))
    per_run = {
        kind: select(_object_agg(dialect, table)).where(table.c.run_id == r.c.id).scalar_subquery()
        for kind, table in (("params", s.params), ("tags", s.tags))
    }
    label = {name: literal_column(f"'{short}'") for name, short in _NAME.items()}
    if dialect == "postgresql":
        empty = cast(literal_column("'{}'"), JSON)
        pairs = [(label[kind], func.coalesce(column, empty)) for kind, column in per_run.items()]
        pairs += [(label[name], column) for name, column in fields]
        return cast(func.json_build_object(*chain.from_iterable(pairs)), Text)
    # SQLite: the objects spliced in as text (a JSON value keeps its JSON type through a subquery in some SQLite
    # versions only), then the row's fields as json_object writes them, less its opening brace
    row = func.json_object(*chain.from_iterable((label[name], column) for name, column in fields))
    text = type_coerce(literal_column(f"""'{{"{_NAME["params"]}":'"""), Text)
    text = text.concat(func.coalesce(per_run["params"], "{}"))
    text = text.concat(literal_column(f"""',"{_NAME["tags"]}":'"""))
    return text.concat(func.coalesce(per_run["tags"], "{}")).concat(",").concat(func.substr(row, 2))


def _object_agg(dialect: str, table):
    if dialect == "postgresql":
        return func.json_object_agg(table.c.key, table.c.value)
    return func.json_group_object(table.c.key, table.c.value)


class _InThread(threading.Thread):
    """``fn(*args)`` on a thread of its own; once joined, ``value`` is what it returned, or ``error`` what it raised."""

    def __init__(self, fn, *args):
        super().__init__(name="mlo-listing-read", daemon=True)
        self.fn, self.args = fn, args
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # handed to the caller
            self.error = exc
        finally:
            self.args = ()


def _parse(data: bytes | None, longest: int) -> pa.Table | None:
    """Arrow's JSON reader over the runs' objects, one a line (in C++, without the interpreter's lock)."""
    import pyarrow as pa
    import pyarrow.json as pj

    if data is None:
        return None
    # a block of the reader must hold a whole line (a run with huge params)
    block = max(1 << 20, 2 * longest + 2)
    known = pa.schema([(_NAME[name], pa.int64() if name in _INTEGERS else pa.string()) for name in _FIELDS])
    try:
        return pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(block_size=block),
            parse_options=pj.ParseOptions(explicit_schema=known, unexpected_field_behavior="infer"),
        )
    except pa.ArrowInvalid as exc:  # text that is not UTF-8 (written by another program), say
        raise StoreError(f"the run listing could not be read from the database: {exc}") from None


def _assemble(parsed: pa.Table, order: np.ndarray | None, metric_names: list, grid, present) -> pa.Table:
    """The cache's table: the run fields and the stamp, then a column per param, metric and tag key (keys in code
    point order), params and tags dictionary-encoded, metrics null where a run lacks the key; the parsed runs
    taken in ``order`` (None: as they are), the metrics' rows being in listing order already."""
    import pyarrow as pa

    def in_order(array):
        return array if order is None else array.take(order)

    arrays = [in_order(parsed.column(_NAME[name]).combine_chunks()) for name in _FIELDS]
    names = list(_FIELDS)
    for kind in lc.KINDS:
        if kind == "metrics":
            for j, key in enumerate(metric_names):
                names.append(f"metrics.{key}")
                arrays.append(pa.array(grid[:, j], pa.float64(), mask=~present[:, j]))
            continue
        column = parsed.column(_NAME[kind])
        children = dict(zip((f.name for f in column.type), column.flatten(), strict=True))
        for key in sorted(children):
            names.append(f"{kind}.{key}")
            arrays.append(in_order(children[key].combine_chunks().dictionary_encode()))
    return pa.Table.from_arrays(arrays, names=names)


def _empty_table() -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {name: pa.array([], pa.int64() if name in _INTEGERS else pa.string()) for name in _FIELDS}
    )
