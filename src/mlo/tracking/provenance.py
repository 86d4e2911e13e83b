"""Which run, and which cell, last bound an object: so ``register_model(model)`` after a ``%%mlo run`` cell
links the version to the run that trained it, and a snapshot knows the cell that produced its data.

The notebook's cell recorder (``mlo.jupyter.cells``) binds the values each cell assigns or changes; the registry
and snapshots ask. Objects are held weakly: provenance never keeps a value alive.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Binding:
    run_id: str | None  # the run the cell ran in (None: outside any run)
    seq: int  # the cell's position in the kernel's history
    execution_count: int | None
    name: str  # the variable it was bound to


@dataclass(frozen=True)
class SnapshotNote:
    """A snapshot taken of an object, with what bound the object when it was taken (None: not known yet)."""

    ref: weakref.ref | None
    snapshot_id: str
    name: str
    version: int
    binding: Binding | None


_lock = threading.RLock()  # a weakref callback may run while the lock is held
_bindings: dict[int, tuple[weakref.ref, Binding]] = {}
_notes: list[SnapshotNote] = []


def bind(obj: Any, binding: Binding) -> None:
    """Record that ``binding`` is the latest cell to bind (or change) ``obj``."""
    try:
        ref = weakref.ref(obj, _forget(id(obj)))
    except TypeError:  # ints, strings, tuples: values, not things a run produces
        return
    with _lock:
        _bindings[id(obj)] = (ref, binding)


def _forget(key: int):
    def callback(_ref) -> None:
        with _lock:
            entry = _bindings.get(key)
            if entry is not None and entry[0]() is None:
                del _bindings[key]

    return callback


def lookup(obj: Any) -> Binding | None:
    """The latest binding of ``obj`` recorded in this process, or None."""
    with _lock:
        entry = _bindings.get(id(obj))
    if entry is None or entry[0]() is not obj:
        return None
    return entry[1]


def run_of(obj: Any) -> str | None:
    """The run whose cell last bound ``obj`` (None when it was bound outside a run, or never seen)."""
    b = lookup(obj)
    return b.run_id if b is not None else None


def note_snapshot(obj: Any, snapshot_id: str, name: str, version: int) -> None:
    """Called by ``mlo.snapshot`` for in-memory data: the recorder turns these into replay pins."""
    try:
        ref = weakref.ref(obj)
    except TypeError:
        ref = None
    with _lock:
        _notes.append(SnapshotNote(ref, snapshot_id, name, version, lookup(obj)))


def drain_notes() -> list[SnapshotNote]:
    with _lock:
        notes, _notes[:] = list(_notes), []
    return notes


def clear() -> None:
    with _lock:
        _bindings.clear()
        _notes.clear()
