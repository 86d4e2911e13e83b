"""The whole run listing of a store, kept decoded on disk between calls (an Arrow IPC file under the
workspace's ``cache/``), so ``runs()`` of a big workspace reads from the database only the runs changed since.

The file holds one row per run of the store (every experiment, every lifecycle): the run's listing stamp
(``runs.listing_stamp``, schema version 7, moved by triggers in the transaction of every write a listing shows),
its experiment's id, its row's listed fields, and a column per param, metric and tag key. A listing reads the
(id, stamp) of every run, compares them with the file's, re-reads the runs that are new or whose stamp moved and
drops those gone, all in one snapshot of the database, then answers from the file. Params and tags are
dictionary-encoded (their stored text once per distinct value); metrics are float64 with a null where the run
has no such key and NaN where it logged NaN.

The file is a cache: it is written to a temporary name and renamed over the old one, and any failure to read or
write it (a missing, truncated or foreign file, a full disk, a read-only folder) falls back to reading the
database, losing nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("mlo")

FORMAT = "mlo-run-listing-1"  # the schema metadata of the file: a file of another layout is not read
KINDS = ("params", "metrics", "tags")
# the run fields the file holds, as RunStore.run_rows gives them (the experiment by id, not by name)
RUN_FIELDS = ("id", "experiment_id", "name", "status", "start_time", "end_time", "git_commit", "parent_id",
              "user", "source", "lifecycle")  # fmt: skip


def path_for(home: Path, store_url: str) -> Path:
    """The file of one store (a workspace may point at several stores over time)."""
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return home / "cache" / f"run-listing-{digest}.arrow"


def load(path: Path) -> pa.Table | None:
    """The cached listing, or None when there is none usable."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("mlo: run listing cache %s unreadable (%s); reading the database", path, exc)
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"format") != FORMAT.encode() or table.column_names[: len(RUN_FIELDS) + 1] != [
        *RUN_FIELDS,
        "stamp",
    ]:
        return None
    return table


def save(path: Path, table: pa.Table) -> None:
    """Write the listing atomically (temporary file, then rename); a failure only costs the next read."""
    import pyarrow as pa

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table = table.replace_schema_metadata({"format": FORMAT})
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("mlo: run listing cache %s not written (%s)", path, exc)
        try:
            tmp.unlink()
        except OSError:
            pass


def merge(kept: pa.Table, fresh: pa.Table) -> pa.Table:
    """The rows of ``kept`` then those of ``fresh``, over the union of their key columns (null where a run
    lacks a key), each dictionary column with one dictionary."""
    import pyarrow as pa

    if not kept.num_rows:
        return fresh
    out = pa.concat_tables([kept, fresh], promote_options="permissive")
    return out.unify_dictionaries().combine_chunks()


def key_columns(table: pa.Table, kind: str, wanted) -> list[tuple[str, pa.Array]]:
    """(key, column) of ``kind`` in ``table`` that some row has (a value, NaN included), keys in code point
    order, limited to ``wanted`` unless it is None."""
    prefix = kind + "."
    out = []
    for name in table.column_names:
        if not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        if wanted is not None and key not in wanted:
            continue
        column = table.column(name)
        if column.null_count < len(column):
            out.append((key, column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)))
    out.sort(key=lambda item: item[0])
    return out
