"""The stage journal: what a pipeline stage's kernel records on its run, kept in a file until its starter stores it.

A stage's kernel is started for a run (``MLO_RUN_ID``) by a process that already has the store open: the
pipeline runner. Opening the store in the kernel too (importing SQLAlchemy, connecting, checking the schema)
would cost every stage a fifth of a second over plain papermill, for a few rows. So when the runner names a
journal file (``MLO_STAGE_JOURNAL``), the kernel appends its records of that run there instead, one JSON line
each with a single ``write`` (cells, metric points, tags, artifacts whose bytes are already in the blob store).
The runner stores them as the file grows (:class:`Follower`, about every second, so the stage's cells show while
it runs) and the rest when the kernel has ended (:func:`ingest`), whatever way it ended: a line written before a
``SIGKILL`` is in the file, and a torn last line is skipped.

Cells, tags and artifacts always go to the journal, so the last one written is the one stored (the capture of
the run's cells is rewritten after every cell). Metric points the notebook logs go to the store at the end of
the cell, as anywhere else, so a stage that trains shows its curves while it runs (the notebook that logs pays
for opening the store, not every stage). The system sampler's points go to the journal until something in the
kernel has opened the store anyway.

Standard library only: this module is imported by every stage kernel.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from array import array
from pathlib import Path
from typing import Any

ENV = "MLO_STAGE_JOURNAL"
INPUTS_ENV = "MLO_STAGE_INPUTS"  # JSON list of the paths the runner snapshotted as the stage's inputs
SAMPLED = "system."  # metric keys of the system sampler (mlo.tracking.system_metrics)
STORED = "mlo.journal_stored"  # tag: bytes of the run's journal stored while its kernel runs (see Follower)

_lock = threading.Lock()
_open: dict[str, Journal] = {}


class Journal:
    """An append-only file of records of one run, written by one process (any of its threads)."""

    def __init__(self, path: str, run_id: str):
        self.path = path
        self.run_id = run_id
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._blobs = None

    def append(self, kind: str, **data: Any) -> None:
        line = (json.dumps({"kind": kind, **data}, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(
                self._fd, line
            )  # one write per line: a killed process leaves whole lines (or a torn last)

    def blobs(self, ws):
        """The blob store, without opening the metadata database (the starter checked it before the kernel)."""
        if self._blobs is None:
            self._blobs = ws.open_blobs()
        return self._blobs


def for_run(ws, run_id: str) -> Journal | None:
    """The journal to record ``run_id`` in from this process, or None to write to the store directly."""
    path = os.environ.get(ENV)
    if not path or run_id != os.environ.get("MLO_RUN_ID"):
        return None
    with _lock:
        j = _open.get(path)
        if j is None:
            j = _open[path] = Journal(path, run_id)
    return j


def deferred(ws, run_id: str) -> Journal | None:
    """The journal for sampled points, which go straight to the store once it is open in this process anyway."""
    if "db" in ws.__dict__:  # ``Workspace.db`` is a cached property: present once opened
        return None
    return for_run(ws, run_id)


def stage_inputs(ws, run_id: str) -> set[str] | None:
    """The files the runner snapshotted as inputs of ``run_id`` before its kernel started (what a cell may read
    without a reproducibility warning), while nothing here has opened the store or taken a snapshot of its own;
    None otherwise (ask the store)."""
    if deferred(ws, run_id) is None or "mlo.data.snapshots" in sys.modules:
        return None
    try:
        paths = json.loads(os.environ.get(INPUTS_ENV) or "[]")
    except ValueError:
        return None
    out: set[str] = set()
    for p in paths if isinstance(paths, list) else []:
        path = Path(str(p))
        out.add(os.path.abspath(path))
        if path.is_dir():
            out.update(str(f) for f in path.rglob("*") if f.is_file())
    return out


# -- what the kernel records ------------------------------------------------------------------------------------
def add_cell(ws, run_id: str, **cell: Any) -> None:
    j = for_run(ws, run_id)
    if j is not None:
        j.append("cell", **cell)
    else:
        ws.runs.add_cell(run_id, **cell)


def write_metrics(ws, run_id: str, series: dict) -> None:
    j = deferred(ws, run_id)
    if j is None or not all(k.startswith(SAMPLED) for k in series):
        ws.runs.write_metrics(run_id, series)
        return
    packed = {}
    for key, (steps, values, stamps) in series.items():
        if len(values):
            parts = (_le(steps, "q"), _le(values, "d"), _le(stamps, "q"))
            packed[key] = [base64.b64encode(b).decode() for b in parts]
    if packed:
        j.append("metrics", series=packed)


def set_tags(ws, run_id: str, tags: dict[str, str]) -> None:
    j = for_run(ws, run_id)
    if j is None:
        ws.runs.set_tags(run_id, tags)
    else:
        j.append("tags", tags=tags)


def put_bytes(ws, run_id: str, data: bytes) -> str:
    """Put ``data`` in the blob store; return its digest."""
    j = for_run(ws, run_id)
    return (ws.blobs if j is None else j.blobs(ws)).put_bytes(data)


def add_artifacts(ws, run_id: str, items: list[dict]) -> None:
    j = for_run(ws, run_id)
    if j is None:
        ws.runs.add_artifacts(run_id, items)
    else:
        j.append("artifacts", items=items)


# -- what the starter stores --------------------------------------------------------------------------------------
def _batch(path: str | os.PathLike, start: int) -> tuple[list[dict], int]:
    """The whole records written at or after byte ``start``, and the offset just past the last of them (a line
    still being written, or cut short by a killed writer, is left for later or skipped)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    out = []
    for raw in data[:end].splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("kind"), str):
            out.append(rec)
    return out, start + end


def _store(ws, run_id: str, records: list[dict], mark: int | None) -> int:
    """Store ``records`` on the run in one transaction, with the journal's offset stored so far as the run's
    :data:`STORED` tag (``mark``), or that tag removed (None: the journal is stored whole); return how many."""
    cells, tags, artifacts, metrics = [], {}, {}, []
    for rec in records:
        kind = rec.pop("kind")
        if kind == "cell":
            cells.append(rec)
        elif kind == "tags" and isinstance(rec.get("tags"), dict):
            tags.update({str(k): str(v) for k, v in rec["tags"].items()})
        elif kind == "artifacts":
            for item in rec.get("items") or []:
                artifacts[item["path"]] = item  # the last record of a path wins, as an upsert would
        elif kind == "metrics" and isinstance(rec.get("series"), dict):
            metrics.append(_decode_series(rec["series"]))
    n = len(cells) + len(tags) + len(artifacts) + len(metrics)
    if n or mark is None:
        if mark is not None:
            tags[STORED] = str(mark)
        ws.runs.store_records(
            run_id, cells, metrics, tags, list(artifacts.values()), drop_tags=[STORED] if mark is None else []
        )
    return n


def stored_offset(ws, run_id: str) -> int:
    """How much of the run's journal is stored already (by a starter killed while its kernel ran)."""
    from ..store import schema

    try:
        return max(0, int(ws.runs.key_values(schema.tags, run_id).get(STORED, 0)))
    except ValueError:
        return 0


def ingest(ws, run_id: str, path: str | os.PathLike, start: int | None = None) -> int:
    """Store the records of the journal at ``path`` on run ``run_id`` from byte ``start`` on (by default where a
    :class:`Follower` left it, as the run's :data:`STORED` tag says) and remove the file; return how many.

    Everything goes in one transaction with the removal of that tag, and the file is removed only after it is
    committed: a store fault leaves both for another try, and nothing is stored twice."""
    if start is None:
        start = stored_offset(ws, run_id)
    records, _ = _batch(path, start)
    n = _store(ws, run_id, records, None)
    Path(path).unlink(missing_ok=True)
    return n


class Follower:
    """Stores a running kernel's journal as it grows, every ``every`` seconds on a thread of the starter, so the
    stage's cells, tags and artifacts show while it runs (the last records are stored by :func:`ingest` when the
    kernel has ended). Each batch goes in one transaction with the offset it reaches (the run's :data:`STORED`
    tag), so a starter killed between batches leaves a journal whose stored part is not stored again."""

    def __init__(self, ws, run_id: str, path: str | os.PathLike, every: float = 1.0):
        self.ws, self.run_id, self.path, self.every = ws, run_id, path, every
        self.offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mlo-journal-{run_id[:8]}", daemon=True)

    def __enter__(self) -> Follower:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.step()

    def step(self) -> int:
        """Store what was written since the last step; return how many records (0 when a store fault stopped
        it: the records wait for the next step or the final :func:`ingest`)."""
        try:
            if os.stat(self.path).st_size <= self.offset:
                return 0
            records, end = _batch(self.path, self.offset)
            n = _store(self.ws, self.run_id, records, end) if end > self.offset else 0
        except Exception:  # a missing file, a busy or faulty store: the next step or the final ingest retries
            return 0
        self.offset = end
        return n


def recover(ws, folder: str | os.PathLike, stem: str) -> int:
    """Store the journals ``<stem>.<run id>.journal`` left in ``folder`` by a starter that was killed before it
    could store them (its kernel's cells, tags and artifacts go to the run they were written for); return how
    many records. A journal of a run the store no longer has is removed; one that cannot be stored now (a store
    fault) is kept for the next try."""
    from ..errors import NotFound
    from . import session

    found = {}
    for path in Path(folder).glob(f"{stem}.*.journal"):
        run_id = path.name[len(stem) + 1 : -len(".journal")]
        if "." not in run_id:  # (a task named "<stem>.x" has journals "<stem>.x.<run id>.journal": not these)
            found[path] = run_id
    if found:
        session.reap(ws)  # a run whose starter is gone is marked killed first
    n = 0
    for path, run_id in found.items():
        try:
            status = ws.runs.run_row(run_id)["status"]
        except NotFound:
            path.unlink(missing_ok=True)
            continue
        except Exception:  # a store fault: the file waits for the next try
            continue
        if status != "running":  # a running run's starter is alive and stores its journal itself
            n += ingest(ws, run_id, path)
    return n


def _le(a, typecode: str) -> bytes:
    """Little-endian bytes of a typed array or a numpy array (int64 for ``q``, float64 for ``d``)."""
    if isinstance(a, array) and a.typecode == typecode and a.itemsize == 8:
        if sys.byteorder == "little":
            return a.tobytes()
        b = array(typecode, a)
        b.byteswap()
        return b.tobytes()
    import numpy as np  # only arrays logged as numpy arrays get here, so numpy is loaded already

    return np.ascontiguousarray(a, dtype="<i8" if typecode == "q" else "<f8").tobytes()


def _decode_series(packed: dict) -> dict:
    out = {}
    for key, (steps, values, stamps) in packed.items():
        st, va, ts = array("q"), array("d"), array("q")
        st.frombytes(base64.b64decode(steps))
        va.frombytes(base64.b64decode(values))
        ts.frombytes(base64.b64decode(stamps))
        if sys.byteorder != "little":  # the journal holds little-endian bytes
            st.byteswap(), va.byteswap(), ts.byteswap()
        out[key] = (st, va, ts)
    return out
