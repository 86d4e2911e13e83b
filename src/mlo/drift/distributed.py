"""Sketches of Dask DataFrames: one :class:`~mlo.drift.mergeable.DatasetSketch` per partition, computed where the
partition lives, merged pairwise in a tree on the workers, and the small result brought back.

``dask.compute`` runs the graph on the active ``dask.distributed`` client when there is one (``Client(...)`` made
in this process), else on Dask's default scheduler. Only the sketches travel, never the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidInput
from .mergeable import DatasetSketch, centers_of, sketch_frame


def _merge(a: DatasetSketch, b: DatasetSketch) -> DatasetSketch:
    return a.merge(b)


def _tree(frame: Any, columns: list[str] | None, accuracy: float, centers: Mapping[str, float] | None):
    """The delayed sketch of a Dask DataFrame."""
    import dask

    if columns is not None:
        known = {str(c) for c in frame.columns}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise InvalidInput(f"columns not in the Dask DataFrame: {', '.join(map(repr, unknown))}")
        frame = frame[[c for c in frame.columns if str(c) in set(columns)]]
    parts = [dask.delayed(sketch_frame)(p, None, accuracy, centers) for p in frame.to_delayed()]
    if not parts:
        return dask.delayed(sketch_frame)(frame._meta, None, accuracy, centers)
    merge = dask.delayed(_merge, pure=True)
    while len(parts) > 1:
        pairs = [merge(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def first_partition_centers(frame: Any) -> dict[str, float]:
    """Bucket centres from the first partition of a Dask DataFrame: its columns' means (one partition read)."""
    import dask

    if frame.npartitions == 0:
        return {}
    return dask.compute(dask.delayed(centers_of)(frame.to_delayed()[0]))[0]


def sketch_dask(
    frame: Any,
    columns: Iterable[str] | None = None,
    accuracy: float = 1e-3,
    centers: Mapping[str, float] | None = None,
) -> DatasetSketch:
    """The merged sketch of a Dask DataFrame."""
    return sketch_many([frame], columns, accuracy, centers)[0]


def sketch_many(
    frames: list[Any],
    columns: Iterable[str] | None = None,
    accuracy: float = 1e-3,
    centers: Mapping[str, float] | None = None,
) -> list[DatasetSketch]:
    """Sketches of several Dask DataFrames in one ``dask.compute`` (their partitions run side by side)."""
    try:
        import dask
    except ImportError:  # pragma: no cover - a Dask frame implies Dask
        raise InvalidInput("Dask DataFrames need Dask: pip install 'mlo-workbench[dask]'") from None
    names = None if columns is None else [str(c) for c in columns]
    trees = [_tree(f, names, accuracy, centers) for f in frames]
    return list(dask.compute(*trees))
