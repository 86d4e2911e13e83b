"""The replay plan of a run: which cells of its history to execute again, and which to replace by loading a
snapshot because the file they read has changed.

``plan(history, targets, changed)`` slices the history backwards from the run's own cells (``targets``). A kept
cell that read a file ``changed(path, state)`` says is no longer as it was, and whose values the rest of the
slice needs were all snapshotted (pins), is replaced by loading those snapshots; the slice is then taken again,
since the replaced cell no longer needs what it read. Used by ``mlo reproduce`` (with the files as they are
now) and by the warnings at capture time (assuming every file may change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import dataflow
from .history import FileState, History, Pin


@dataclass
class Plan:
    positions: list[int]  # history positions to execute, in order
    substitutions: dict[int, list[Pin]] = field(
        default_factory=dict
    )  # position -> snapshots it loads instead
    reads: dict[str, FileState] = field(default_factory=dict)  # files the kept cells read from outside
    readers: dict[str, int] = field(default_factory=dict)  # file -> first position that reads it

    def source_of(self, history: History, i: int) -> str:
        """The text to execute for position ``i``."""
        pins = self.substitutions.get(i)
        if not pins:
            return history.cells[i].source
        lines = ["import mlo as _mlo"]
        lines += [f"{p.name} = _mlo.load_snapshot({p.ref!r})" for p in pins]
        return "\n".join(lines)


def _pinned_flow(pins: list[Pin]) -> dataflow.CellFlow:
    return dataflow.CellFlow(defs={p.name for p in pins})


def _flows(history: History, subs: dict[int, list[Pin]]) -> list[dataflow.CellFlow]:
    out = []
    for i, cell in enumerate(history.cells):
        flow = _pinned_flow(subs[i]) if i in subs else history.flow(cell)
        if cell.rng or flow.seeds:  # the global random generator is state every user of it shares
            flow = dataflow.CellFlow(**{**flow.__dict__})
            if cell.rng and not flow.seeds:  # a seed resets the state: what came before does not matter
                flow.uses = flow.uses | {"__rng__"}
            if flow.seeds:
                flow.defs = flow.defs | {"__rng__"}
            elif cell.rng:
                flow.mutates = flow.mutates | {"__rng__"}
        out.append(flow)
    return out


def _file_deps(history: History, subs: dict[int, list[Pin]]) -> dict[int, set[int]]:
    writers: dict[str, int] = {}
    deps: dict[int, set[int]] = {}
    for i, cell in enumerate(history.cells):
        if i not in subs:
            for path in cell.reads:
                if path in writers:
                    deps.setdefault(i, set()).add(writers[path])
        for path in cell.writes:
            writers[path] = i
    return deps


def _stale(
    history: History, keep: list[int], subs: dict[int, list[Pin]], changed: Callable[[str, FileState], bool]
) -> set[int]:
    """Kept positions that read a file (not written by an earlier kept cell) that ``changed`` says changed."""
    out, written = set(), set()
    for i in keep:
        cell = history.cells[i]
        if i not in subs and any(p not in written and changed(p, s) for p, s in cell.reads.items()):
            out.add(i)
        written.update(cell.writes)
    return out


def plan(
    history: History,
    targets: set[int],
    changed: Callable[[str, FileState], bool] = lambda path, state: False,
) -> Plan:
    """The cells to replay for ``targets`` (see the module docstring)."""
    cells = history.cells
    subs: dict[int, list[Pin]] = {}
    pins_at: dict[int, list[Pin]] = {}
    for p in history.pins:
        pins_at.setdefault(p.seq, []).append(p)
    while True:
        flows = _flows(history, subs)
        file_deps = _file_deps(history, subs)
        keep = dataflow.backward_slice(flows, targets, file_deps=file_deps)
        stale = _stale(history, keep, subs, changed)
        added = False
        for i in reversed(keep):  # the latest snapshot of a value first: it makes the most cells unneeded
            if i in subs or i in targets or i not in pins_at:
                continue
            # the cell, or a cell it depends on, read a file that is no longer as it was
            if not stale.intersection(dataflow.backward_slice(flows, {i}, file_deps=file_deps)):
                continue
            needed = flows[i].binds & set().union(*(flows[j].uses for j in keep if j > i))
            pinned = {p.name for p in pins_at[i]}
            if needed <= pinned:
                subs[i] = [p for p in pins_at[i] if p.name in needed] or pins_at[i]
                added = True
                break
        if not added:
            break
    result = Plan(keep, {i: subs[i] for i in keep if i in subs})
    written = set()
    for i in keep:
        cell = cells[i]
        if i not in subs:
            for path, state in cell.reads.items():
                if path not in written and path not in result.reads:
                    result.reads[path] = state
                    result.readers[path] = i
        written.update(cell.writes)
    return result
