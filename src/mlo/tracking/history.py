"""A kernel's execution history as mlo records it: every top-level cell in the order it ran, with what it read,
bound and left behind. Stored with each run as the artifact ``mlo/capture.json``; ``mlo reproduce`` replays the
slice of it that the run's results depend on.

Cells that ran before ``%load_ext mlo`` are recovered from IPython's own input history (their outcome is not
known: ``success`` is None). Failed cells stay in the record with their error. Each cell carries the files it
read and wrote (path, size, modification time, and a digest for files up to :data:`DIGEST_LIMIT`), whether it
advanced a global random generator, and fingerprints of the values it bound (:mod:`mlo.tracking.fingerprint`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import dataflow

CAPTURE_ARTIFACT = "mlo/capture.json"
LEGACY_CONTEXT_ARTIFACT = "mlo/context.json"
FORMAT = 1
DIGEST_LIMIT = (
    256 << 20
)  # files up to this size are hashed when read; larger ones are known by size and mtime


@dataclass
class FileState:
    size: int
    mtime_ns: int
    digest: str | None = None

    @classmethod
    def of(cls, path: str | os.PathLike, *, digest: bool = True) -> FileState | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        d = hash_path(path) if digest and st.st_size <= DIGEST_LIMIT else None
        return cls(st.st_size, st.st_mtime_ns, d)

    def same_as(self, other: FileState | None) -> bool:
        """Whether ``other`` (the file as it is now) holds the same content, as far as both records tell."""
        if other is None:
            return False
        if self.digest and other.digest:
            return self.digest == other.digest
        return self.size == other.size and self.mtime_ns == other.mtime_ns


def hash_path(path: str | os.PathLike) -> str | None:
    import blake3

    try:
        return blake3.blake3(max_threads=1).update_mmap(os.fspath(path)).hexdigest()
    except (OSError, ValueError):
        return None


@dataclass
class Execution:
    """One top-level cell execution."""

    seq: int
    source: str  # the raw text, magics included
    execution_count: int | None = None
    code: str | None = None  # the text IPython ran (magics transformed); None: same as source
    success: bool | None = True  # None: ran before mlo was loaded, outcome unknown
    error: str | None = None
    started_at: float | None = None
    duration: float | None = None
    cell_id: str | None = None
    runs: list[str] = field(default_factory=list)  # runs the cell ran in
    reads: dict[str, FileState] = field(default_factory=dict)  # absolute path -> state when read
    writes: list[str] = field(default_factory=list)
    fingerprints: dict[str, dict | None] = field(default_factory=dict)
    rng: bool = False  # advanced the global random generator of `random` or numpy
    recovered: bool = False

    @property
    def label(self) -> str:
        """How the notebook shows the cell: ``In [7]``."""
        return f"In [{self.execution_count}]" if self.execution_count is not None else f"cell #{self.seq + 1}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": self.seq, "source": self.source, "success": self.success}
        for key in ("execution_count", "code", "error", "started_at", "duration", "cell_id"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        for key in ("runs", "writes", "fingerprints"):
            value = getattr(self, key)
            if value:
                d[key] = value
        if self.reads:
            d["reads"] = {
                p: {"size": s.size, "mtime_ns": s.mtime_ns, "digest": s.digest} for p, s in self.reads.items()
            }
        if self.rng:
            d["rng"] = True
        if self.recovered:
            d["recovered"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Execution:
        d = dict(d)
        d["reads"] = {p: FileState(**s) for p, s in (d.get("reads") or {}).items()}
        d.setdefault("success", None if d.get("recovered") else True)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Pin:
    """A value that was snapshotted: the cell that bound it can be replaced by loading the snapshot."""

    seq: int
    name: str  # variable
    snapshot: str  # snapshot id
    ref: str  # name@version


@dataclass
class History:
    cells: list[Execution] = field(default_factory=list)
    cwd: str | None = None
    notebook: str | None = None
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {path, blob, size}
    pins: list[Pin] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)  # top-level packages the kernel had imported
    length: int | None = None  # cells the kernel had run when a subset of them was stored
    _flows: dict[int, dataflow.CellFlow] = field(default_factory=dict, repr=False)
    _json: dict[int, str] = field(default_factory=dict, repr=False)  # a recorded cell never changes

    # -- analysis -------------------------------------------------------------------------------------------
    @property
    def ran(self) -> int:
        """How many cells the kernel had run (the stored record may keep fewer)."""
        return self.length if self.length is not None else len(self.cells)

    def flow(self, cell: Execution) -> dataflow.CellFlow:
        cached = self._flows.get(id(cell))
        if cached is None:
            code = cell.code if cell.code is not None else dataflow.transform(cell.source)
            cached = self._flows[id(cell)] = dataflow.analyze(code)
        return cached

    def flows(self, cells: list[Execution] | None = None) -> list[dataflow.CellFlow]:
        return [self.flow(c) for c in (self.cells if cells is None else cells)]

    def file_deps(self, cells: list[Execution] | None = None) -> dict[int, set[int]]:
        """Position → earlier positions that wrote a file the cell read."""
        cells = self.cells if cells is None else cells
        writers: dict[str, int] = {}
        deps: dict[int, set[int]] = {}
        for i, cell in enumerate(cells):
            for path in cell.reads:
                if path in writers:
                    deps.setdefault(i, set()).add(writers[path])
            for path in cell.writes:
                writers[path] = i
        return deps

    def slice(self, targets: set[int], cells: list[Execution] | None = None) -> list[int]:
        cells = self.cells if cells is None else cells
        return dataflow.backward_slice(self.flows(cells), targets, file_deps=self.file_deps(cells))

    def positions_of_run(self, run_ids: set[str]) -> set[int]:
        return {i for i, c in enumerate(self.cells) if run_ids.intersection(c.runs)}

    def reads_of(self, positions: list[int]) -> set[str]:
        """The files the cells at ``positions`` read."""
        return {p for i in positions for p in self.cells[i].reads}

    def relative(self, path: str) -> str:
        """``path`` relative to the kernel's working folder (``../data/raw.csv`` when it lies beside it)."""
        if not self.cwd:
            return path
        try:
            return os.path.relpath(path, self.cwd)
        except ValueError:  # another drive
            return path

    # -- storage --------------------------------------------------------------------------------------------
    def to_bytes(self, positions: list[int] | None = None) -> bytes:
        """The record as JSON: every cell, or those at ``positions`` (a run keeps the cells its results depend
        on; each keeps its place in the kernel's history as ``seq``)."""
        keep = range(len(self.cells)) if positions is None else positions
        parts = []
        for i in keep:
            cell = self.cells[i]
            text = self._json.get(id(cell))
            if text is None:
                text = self._json[id(cell)] = json.dumps(cell.to_dict(), separators=(",", ":"), default=str)
            parts.append(text)
        seqs = {self.cells[i].seq for i in keep}
        head = {
            "format": FORMAT,
            "length": (max(keep) + 1) if len(keep) else 0,
            "cwd": self.cwd,
            "notebook": self.notebook,
            "modules": self.modules,
            "pins": [asdict(p) for p in self.pins if self.cells[p.seq].seq in seqs] if self.pins else [],
            "imported": sorted(self.imported),
        }
        body = json.dumps(head, separators=(",", ":"), default=str)
        return (body[:-1] + ',"cells":[' + ",".join(parts) + "]}").encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        cells = [Execution.from_dict(c) for c in d.get("cells", [])]
        position = {c.seq: i for i, c in enumerate(cells)}  # a kept subset: pins refer to positions here
        pins = [Pin(**{**p, "seq": position[p["seq"]]}) for p in d.get("pins") or [] if p["seq"] in position]
        return cls(
            cells=cells,
            cwd=d.get("cwd"),
            notebook=d.get("notebook"),
            modules=dict(d.get("modules") or {}),
            pins=pins,
            imported=list(d.get("imported") or []),
            length=d.get("length"),
        )

    @classmethod
    def of_run(cls, run) -> History | None:
        """The history a run recorded: its capture artifact, or for runs recorded before it existed, the cells
        that ran before it (``mlo/context.json``) followed by its own cells. None when it captured no cells."""
        arts = {a.path: a for a in run.artifacts}
        if CAPTURE_ARTIFACT in arts:
            return cls.from_dict(json.loads(arts[CAPTURE_ARTIFACT].read_text()))
        cells: list[Execution] = []
        if LEGACY_CONTEXT_ARTIFACT in arts:
            for c in json.loads(arts[LEGACY_CONTEXT_ARTIFACT].read_text())["cells"]:
                cells.append(Execution(len(cells), c["source"], c.get("execution_count")))
        for c in run.cells:
            cells.append(
                Execution(
                    len(cells),
                    c.source,
                    c.execution_count,
                    success=c.success,
                    error=c.error,
                    runs=[run.id],
                )
            )
        if not any(run.id in c.runs for c in cells):
            return None
        source = run.source
        return cls(cells=cells, cwd=str(Path(source).parent) if source else None, notebook=source)
