"""What ``mlo.drift`` compares: DataFrames, snapshot refs, files, or a reference's stored profile."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput, NotFound

FILE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".feather": "feather"}


@dataclass
class Source:
    """One side of a comparison: its data (or only its profile) and how to name it."""

    label: str
    frame: pd.DataFrame | None = None
    profile: list[dict] | None = None
    snapshot: Any = None  # mlo.data.snapshots.Snapshot
    rows: int | None = None
    sketch: Any = None  # mlo.drift.mergeable.DatasetSketch, when the side is known by its sketch
    _load: Any = field(default=None, repr=False)

    @property
    def node(self) -> str | None:
        return self.snapshot.node if self.snapshot is not None else None

    @property
    def columns(self) -> list[str]:
        if self.frame is not None:
            return [str(c) for c in self.frame.columns]
        if self.sketch is not None:
            return self.sketch.names
        return [p["name"] for p in self.profile or []]

    def load(self) -> pd.DataFrame:
        if self.frame is None:
            if self._load is None:
                raise InvalidInput(f"{self.label} is only a profile; its rows are not available")
            self.frame = _as_frame(self._load(), self.label)
            self.rows = len(self.frame)
        return self.frame

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "rows": self.rows, "columns": len(self.columns)}
        if self.snapshot is not None:
            out.update(ref=self.snapshot.ref, node=self.snapshot.node, digest=self.snapshot.digest)
        return out


def _as_frame(obj: Any, label: str) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        frame = obj
    elif isinstance(obj, pd.Series):
        frame = obj.to_frame(name=obj.name if obj.name is not None else "value")
    elif isinstance(obj, np.ndarray) and obj.ndim in (1, 2):
        frame = pd.DataFrame(obj.reshape(len(obj), -1))
    else:
        try:
            import pyarrow as pa

            if isinstance(obj, pa.Table):
                return obj.to_pandas()
        except ImportError:  # pragma: no cover - pyarrow comes with pandas' Parquet support
            pass
        raise InvalidInput(
            f"{label}: expected a DataFrame, a snapshot ref or a file path, got {type(obj).__name__}"
        )
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    if frame.columns.has_duplicates:
        dups = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InvalidInput(f"{label}: column names must be unique; rename {', '.join(map(repr, dups))}")
    return frame


def read_file(path: str | os.PathLike) -> pd.DataFrame:
    p = Path(path)
    fmt = FILE_SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{p}: cannot read {p.suffix or 'files without a suffix'}; use .parquet or .csv")
    if fmt == "parquet":
        return pd.read_parquet(p)
    if fmt == "feather":
        return pd.read_feather(p)
    return pd.read_csv(p, sep="\t" if fmt == "tsv" else ",")


def _looks_like_file(text: str) -> bool:
    return Path(text).suffix.lower() in FILE_SUFFIXES and Path(text).is_file()


def resolve(obj: Any, what: str) -> Source:
    """A :class:`Source` for a DataFrame, a snapshot (ref or object), a file path or a list of column profiles."""
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if _looks_like_file(text):
            frame = read_file(text)
            return Source(label=text, frame=frame, rows=len(frame))
        return _snapshot_source(text, what)
    if hasattr(obj, "profile") and hasattr(obj, "node") and hasattr(obj, "ref"):
        return _snapshot_source(obj, what)
    if isinstance(obj, list) and (not obj or isinstance(obj[0], dict)):
        if not all(isinstance(p, dict) and "name" in p for p in obj):
            raise InvalidInput(
                f"{what}: a profile is a list of column dicts with a 'name' (see mlo.data.profile)"
            )
        rows = int(obj[0].get("count") or 0) if obj else 0
        return Source(label="profile", profile=obj, rows=rows)
    frame = _as_frame(obj, what)
    return Source(label="DataFrame", frame=frame, rows=len(frame))


def _snapshot_source(ref: Any, what: str) -> Source:
    from ..data.snapshots import get_snapshot, load_snapshot

    try:
        snap = get_snapshot(ref.removeprefix("snapshot:") if isinstance(ref, str) else ref)
    except NotFound as exc:
        hint = " (or a path to a .parquet/.csv file)" if isinstance(ref, str) else ""
        raise NotFound(f"{what}: {exc}{hint}") from None
    return Source(
        label=snap.ref,
        profile=list(snap.profile),
        snapshot=snap,
        rows=snap.rows,
        _load=lambda: load_snapshot(snap),
    )
