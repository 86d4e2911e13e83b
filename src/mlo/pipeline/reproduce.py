"""``mlo reproduce RUN``: can this result be reproduced? Replay what made a run in a fresh kernel, on the same
inputs, and compare.

What is replayed:

- a run whose notebook was executed whole (a pipeline stage, ``mlo run``): that notebook, with the papermill
  parameters it declared and was given;
- a run from an interactive notebook: the slice of the kernel's history its results depend on (def/use over
  the cells in the order they ran, see :mod:`mlo.tracking.replay`), so unrelated or slow cells are not run
  again. A child of a sweep is replayed through the run that holds its history.

Inputs are pinned: every snapshot the run read is the version it read; files it read are restored at the same
path relative to the notebook's folder (from their snapshot, else as they are now, and a change is reported); a
cell whose data file changed but whose values were snapshotted loads the snapshot instead; local modules are
restored from their content captured at import. The replay runs in a temporary folder that is removed, and in
reproduction mode (``MLO_REPRODUCTION``): it registers nothing, moves no alias, adds no snapshot version or
lineage, and its runs are tagged ``mlo.reproduces`` and left out of listings.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import workspace
from ..errors import InvalidInput
from ..store.addresses import short
from ..tracking import access, session
from ..tracking.fingerprint import difference
from ..tracking.history import FileState, History
from ..tracking.run import Run
from .plan import Task
from .spec import Stage
from .verdict import Cause, Reproduction, compare_runs

NOTEBOOK_ARTIFACT = "notebook.ipynb"

__all__ = ["Reproduction", "reproduce"]


def reproduce(
    run_ref: str,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    data: dict[str, str] | None = None,
    timeout: float | None = None,
    workdir: str | os.PathLike | None = None,
    runs: int = 1,
    keep: bool = False,
) -> Reproduction:
    """Replay what made ``run_ref`` in a fresh kernel on the same inputs; compare status, params and metrics.

    Parameters
    ----------
    run_ref : str
        A run id or unique prefix.
    rtol, atol : float
        How close each metric must come (``math.isclose``).
    data : dict, optional
        Snapshot name → reference to run on instead of what the original read ("does it hold on other data?").
    timeout : float, optional
        Seconds a cell may run.
    workdir : path, optional
        The folder to replay in (kept); a temporary folder, removed afterwards, by default.
    runs : int
        Replay this many times (2 tells a nondeterministic notebook from a changed input).
    keep : bool
        Keep the temporary folder (its path is in the verdict's ``notebook``).

    Returns
    -------
    Reproduction
        ``.reproduced``, ``.status``, ``.runs`` (the comparisons), ``.causes``; ``exit_code`` 0 when it
        reproduced, 1 when it did not, 2 when it could not be rebuilt.
    """
    if not isinstance(runs, int) or runs < 1:
        raise InvalidInput(f"runs must be a positive integer, got {runs!r}")
    started = time.perf_counter()
    if workspace.reproducing():
        return Reproduction(
            str(run_ref), "skipped", "this notebook is itself being replayed for a reproduction"
        )
    ws = workspace.current(create=False)
    original = session.get_run(run_ref)
    rep = Reproduction(original.id, rtol=rtol, atol=atol, replays=runs)
    if original.status == "running":
        rep.message = "it is still running: end it first (%mlo end, or mlo.end_run())"
        return rep
    if original.status == "killed":
        rep.message = (
            "it was killed before it ended (its kernel died or was stopped): its results are partial"
        )
        return rep
    job = _Job.of(ws, original, rep)
    if job is None:
        return rep
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlo-reproduce-"))
    try:
        with access.unobserved():  # the files restored here are not what the calling cell read
            job.prepare(folder, data or {})
            replays = [job.replay(i, timeout) for i in range(runs)]
        job.verdict(replays)
    finally:
        if not workdir and not keep:
            shutil.rmtree(folder, ignore_errors=True)
    rep.seconds["total"] = time.perf_counter() - started
    rep.seconds["overhead"] = rep.seconds["total"] - rep.seconds.get("replay", 0.0)
    return rep


@dataclass
class _Replay:
    root: Run | None  # the run holding the replay
    failed: str | None  # what stopped it, in the original's cell numbers
    history: History | None  # what the replay kernel recorded
    counterpart: Run | None = None  # the replay's run for the anchor


@dataclass
class _Job:
    """One reproduction: what to replay (``anchor``: the run itself, or the ancestor holding its history)."""

    ws: workspace.Workspace
    original: Run
    rep: Reproduction
    anchor: Run
    path: list[int]  # child positions from the anchor down to the original
    notebook: dict | None = None  # the stored notebook (whole-notebook replays)
    params: dict[str, Any] = field(default_factory=dict)
    history: History | None = None  # the recorded history (sliced replays)
    positions: list[int] = field(default_factory=list)  # history positions the replay executes
    sources: list[str] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    nbdir: Path | None = None
    targets: set[int] = field(default_factory=set)
    substituted: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, ws, original: Run, rep: Reproduction) -> _Job | None:
        run, path = original, []
        while True:
            nb = _stored_notebook(run)
            history = History.of_run(run)
            if nb is not None:  # replayed whole; its history (when recorded) tells what it read
                return cls(
                    ws, original, rep, run, path, notebook=nb, params=_declared_params(nb), history=history
                )
            if history is not None:
                return cls(ws, original, rep, run, path, history=history)
            if run.parent_id is None:
                break
            parent = Run(ws, run.parent_id)
            path.insert(0, _children(ws, parent).index(run))
            run = parent
        rep.status = "error"
        rep.message = (
            f"run {original.id[:10]} captured no cells and has no executed notebook, so there is nothing to "
            "replay: runs started in a notebook with %load_ext mlo, pipeline stages and `mlo run` can be "
            "reproduced"
        )
        return None

    # -- the replay folder ----------------------------------------------------------------------------------
    def prepare(self, folder: Path, data: dict[str, str]) -> None:
        from ..data import files
        from ..data.snapshots import Snapshot, get_snapshot

        ws, rep = self.ws, self.rep
        inputs = _inputs(ws, self.anchor)
        for snap in inputs:
            self.pins[snap.name] = snap.id
        for name, ref in data.items():
            if name not in self.pins:
                known = ", ".join(sorted(self.pins)) or "none"
                raise InvalidInput(
                    f"run {self.original.id[:10]} read no snapshot named {name!r}; it read: {known}"
                )
            before = Snapshot(ws, ws.snapshots.get(self.pins[name]))
            swap = get_snapshot(ref)
            if (before.kind in ("file", "folder")) != (swap.kind in ("file", "folder")):
                raise InvalidInput(
                    f"--data {name}={ref}: {ref} is a {swap.kind}, the run read a {before.kind}"
                )
            self.pins[name] = swap.id
            if swap.id != before.id:
                rep.causes.append(
                    Cause(
                        "input",
                        f"input {name} is {swap.name}@{swap.version} (digest {short(swap.digest)}) instead of "
                        f"{before.name}@{before.version} (digest {short(before.digest)}), as asked",
                    )
                )
        base = self._base()
        restored: dict[str, object] = {}  # original path -> snapshot restored there
        snaps = {sid: Snapshot(ws, ws.snapshots.get(sid)) for sid in self.pins.values()}
        for name, sid in self.pins.items():
            snap = snaps[sid]
            rep.inputs[name] = f"{snap.name}@{snap.version}"
        if self.notebook is None:
            self._plan(restored_sources={s.source for s in snaps.values() if s.source})
        elif self.history is not None:
            self.positions = [i for i, c in enumerate(self.history.cells) if not c.recovered]
        depth = self._depth(base, [s.source for s in snaps.values() if s.source])
        self.nbdir = folder.joinpath(*(["w"] * depth))
        self.nbdir.mkdir(parents=True, exist_ok=True)
        for name, sid in self.pins.items():
            snap = snaps[sid]
            if snap.kind in ("file", "folder") and snap.source:
                original_source = Snapshot(ws, ws.snapshots.get(_first_pin(inputs, name))).source
                dest = self._inside(folder, base, original_source or snap.source)
                files.restore(ws, snap.kind, snap.blob, snap.name, dest)
                restored[os.path.abspath(original_source or snap.source)] = snap
        if self.history is not None:
            self._restore_reads(folder, base, restored)
            self._restore_modules(folder, base)

    def _base(self) -> Path | None:
        tags = self.anchor.tags
        if self.notebook is not None and tags.get("mlo.workdir"):  # where the stage's kernel ran
            return Path(tags["mlo.workdir"])
        if self.history is not None and self.history.cwd:
            return Path(self.history.cwd)
        if tags.get("mlo.workdir"):
            return Path(tags["mlo.workdir"])
        source = self.anchor.source
        return Path(source).parent if source else None

    def _depth(self, base: Path | None, extra: list[str]) -> int:
        """How many folders up from the notebook's the replay reaches (``../data/x.csv`` is one)."""
        if base is None:
            return 0
        paths = list(extra)
        if self.history is not None:
            paths += list(self.history.reads_of(self.positions))
            paths += [m["path"] for m in self.history.modules.values()]
        depth = 0
        for p in paths:
            rel = os.path.relpath(p, base).split(os.sep)
            ups = len(rel) - len(list(_strip_up(rel)))
            if ups <= 3:  # further up is outside the project: read in place
                depth = max(depth, ups)
        return depth

    def _inside(self, folder: Path, base: Path | None, path: str) -> Path:
        """Where a file the original read at ``path`` goes in the replay folder: the same path relative to the
        notebook's folder when that stays inside the replay folder, else beside the notebook."""
        assert self.nbdir is not None
        if base is not None:
            dest = (self.nbdir / os.path.relpath(path, base)).resolve()
            if dest == folder.resolve() or folder.resolve() in dest.parents:
                return dest
        return self.nbdir / Path(path).name

    def _plan(self, restored_sources: set[str]) -> None:
        from ..tracking.replay import plan

        h = self.history
        assert h is not None
        self.targets = h.positions_of_run({self.anchor.id})
        restored = {os.path.abspath(p) for p in restored_sources}

        def changed(path: str, state: FileState) -> bool:
            return path not in restored and not state.same_as(FileState.of(path))

        p = plan(h, self.targets, changed)
        self.positions = p.positions
        self.sources = [p.source_of(h, i) for i in p.positions]
        self.substituted = set(p.substitutions)
        self.rep.cells = {
            "history": h.ran,
            "replayed": len(p.positions),
            "replaced": len(p.substitutions),
        }
        for i, pins in p.substitutions.items():
            cell = h.cells[i]
            names = ", ".join(f"{x.name} = {x.ref}" for x in pins)
            self.rep.causes.append(
                Cause(
                    "input",
                    f"{cell.label} read a file that changed or is gone since the run: replaced by the snapshot "
                    f"its values were kept in ({names})",
                    cell=cell.label,
                )
            )

    def _restore_reads(self, folder: Path, base: Path | None, restored: dict[str, object]) -> None:
        h = self.history
        assert h is not None
        for i in self.positions:
            if i in self.substituted:
                continue
            cell = h.cells[i]
            for path, state in cell.reads.items():
                if path in restored or any(path.startswith(p + os.sep) for p in restored):
                    continue
                restored[path] = None
                rel = h.relative(path)
                now = FileState.of(path)
                if now is None:
                    self.rep.causes.append(
                        Cause(
                            "missing-input",
                            f"{cell.label} reads {rel}, which no longer exists and no snapshot keeps",
                            f"restore {rel}, or snapshot the data it held (`%mlo snapshot {rel}`) next time",
                            cell.label,
                        )
                    )
                    continue
                if not state.same_as(now):
                    self.rep.causes.append(
                        Cause(
                            "input",
                            f"{cell.label} reads {rel}, which changed since the run "
                            f"({_state_text(state)} → {_state_text(now)}) and no snapshot keeps",
                            f"`%mlo snapshot {rel}` before a run, so a reproduction reads what it read",
                            cell.label,
                        )
                    )
                dest = self._inside(folder, base, path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)

    def _restore_modules(self, folder: Path, base: Path | None) -> None:
        h = self.history
        assert h is not None
        for name, mod in h.modules.items():
            dest = self._inside(folder, base, mod["path"])
            if dest.exists():
                continue
            if not self.ws.blobs.exists(mod["blob"]):
                self.rep.causes.append(Cause("code", f"the source of module {name} was not kept"))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(self.ws.blobs.get_bytes(mod["blob"]))

    # -- the replay -----------------------------------------------------------------------------------------
    def replay(self, index: int, timeout: float | None) -> _Replay:
        from . import execute as ex

        assert self.nbdir is not None
        ws, rep, original = self.ws, self.rep, self.original
        nb = self._notebook()
        path = self.nbdir / f"reproduce-{original.id[:10]}-{index + 1}.ipynb"
        path.write_text(json.dumps(nb), encoding="utf-8")
        stage = Stage(name=f"reproduce:{original.name}", notebook=path, timeout=timeout)
        kernel = nb["metadata"].get("kernelspec", {}).get("name") or "python3"
        task = Task(stage, stage.name, self.params, [], kernel, "")
        env = {
            "MLO_REPRODUCTION": original.id,
            "MLO_SNAPSHOT_PINS": json.dumps(self.pins),
            "MLO_CAPTURE_WARNINGS": "0",  # the verdict explains; the replay's own notebook stays quiet
            "MLO_LLM_REPLAY": self.anchor.id,  # LLM calls answered from what the run recorded (mlo.llm.record)
        }
        t0 = time.perf_counter()
        r = ex.execute(
            ws,
            self.nbdir,
            task,
            None,
            experiment=original.experiment,
            parent_id=None,
            extra_tags={session.REPRODUCES_TAG: original.id},
            env=env,
        )
        rep.seconds["replay"] = rep.seconds.get("replay", 0.0) + time.perf_counter() - t0
        if r.notebook:  # stored on the reproduction's run; the copy in the workspace goes
            Path(r.notebook).unlink(missing_ok=True)
            Path(r.notebook).with_suffix(".kernel.log").unlink(missing_ok=True)
        root = session.get_run(r.run_id)
        if index == 0:
            rep.reproduction = root.id
            rep.notebook = f"run {root.id[:10]}: {NOTEBOOK_ARTIFACT}"
        history = History.of_run(root)
        failed = None
        if r.failed:
            failed = self._cite(r.message, r.cell, history)
        return _Replay(root, failed, history)

    def _notebook(self) -> dict:
        if self.notebook is not None:
            return json.loads(json.dumps(self.notebook))
        h = self.history
        assert h is not None
        cells = []
        for i, source in zip(self.positions, self.sources, strict=True):
            cell = h.cells[i]
            meta: dict[str, Any] = {"mlo": {"seq": cell.seq, "execution_count": cell.execution_count}}
            if cell.success is not True and i not in self.substituted:
                meta["tags"] = ["raises-exception"]  # it failed (or its outcome is unknown): go on as it did
            cells.append(
                {
                    "id": f"c{len(cells):04d}",
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": meta,
                    "outputs": [],
                    "source": source,
                }
            )
        return {
            "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }

    def _cite(self, message: str, cell: int | None, replayed: History | None) -> str:
        """A replay error in the original notebook's terms: its cell and execution count."""
        if cell is None:
            return message
        kind = message.split(" in cell", 1)[0]
        detail = message.split(":", 1)[1].strip() if ":" in message else message
        if self.notebook is not None:  # the same notebook: the same execution counts
            return f"{kind} in In [{cell}] of the original notebook: {detail}"
        if self.history is None:
            return message
        k = cell - 1  # the replay kernel numbers its cells from 1, one per replayed cell
        if 0 <= k < len(self.positions):
            orig = self.history.cells[self.positions[k]]
            return f"{kind} in {orig.label} of the original notebook: {detail}"
        return message

    # -- the verdict ----------------------------------------------------------------------------------------
    def verdict(self, replays: list[_Replay]) -> None:
        rep = self.rep
        first = replays[0]
        for r in replays:
            r.counterpart = self._counterpart(r)
        target = _descend(self.ws, first.counterpart, self.path)
        self._compare(self.original, target)
        if first.failed and not (rep.runs and rep.runs[0].match):
            rep.status, rep.message = "failed", first.failed
        rep.decide()
        if not rep.reproduced and rep.status != "nothing":
            self._explain(replays)

    def _counterpart(self, r: _Replay) -> Run | None:
        """The replay's run for the anchor."""
        if r.root is None:
            return None
        if self.notebook is not None:
            return r.root
        h = self.history
        if h is None or r.history is None or not self.targets:
            return None
        first = min(self.targets)
        k = self.positions.index(first)
        if k >= len(r.history.cells):
            return None
        orig_runs = h.cells[first].runs
        at = orig_runs.index(self.anchor.id) if self.anchor.id in orig_runs else 0
        theirs = [x for x in r.history.cells[k].runs if x != r.root.id]
        return Run(self.ws, theirs[at]) if at < len(theirs) else None

    def _compare(self, original: Run, replayed: Run | None) -> None:
        cmp = compare_runs(
            original,
            replayed,
            rtol=self.rep.rtol,
            atol=self.rep.atol,
            original_error=_error_of(original),
            reproduced_error=_error_of(replayed) if replayed is not None else None,
        )
        self.rep.runs.append(cmp)
        mine = _children(self.ws, original)
        theirs = _children(self.ws, replayed) if replayed is not None else []
        for i, child in enumerate(mine):
            self._compare(child, theirs[i] if i < len(theirs) else None)

    def _explain(self, replays: list[_Replay]) -> None:
        """Why it did not reproduce: the first cell whose values differ, nondeterminism, randomness without a
        seed, package versions (inputs were explained while preparing)."""
        from ..tracking import hazards

        rep = self.rep
        first = replays[0]
        diverged = self._diverged(self._aligned(self.history, first.history))
        if diverged:
            rep.causes.append(diverged)
        if len(replays) > 1:
            again = self._diverged(self._aligned(first.history, replays[1].history), between_replays=True)
            runs_differ = _metrics_of(first.counterpart) != _metrics_of(replays[1].counterpart)
            if again or runs_differ:
                where = f" from {again.cell} on" if again and again.cell else ""
                rep.causes.append(
                    Cause(
                        "nondeterministic",
                        f"two replays on the same inputs differ from each other{where}: the notebook is not "
                        "deterministic",
                        "seed every source of randomness (np.random.seed, random_state=…) and avoid "
                        "time- or order-dependent code",
                        again.cell if again else None,
                    )
                )
        if self.history is not None:
            for hz in hazards.find(self.history, self.targets):
                if (
                    hz.kind in ("unseeded", "failed")
                    and hz.cell
                    and any(self.history.cells[i].label == hz.cell for i in self.positions)
                ):
                    kind = "unseeded" if hz.kind == "unseeded" else "failed-cell"
                    rep.causes.append(Cause(kind, hz.message, hz.fix, hz.cell))
        rep.causes.extend(self._packages(first.root))

    def _aligned(self, a: History | None, b: History | None) -> list[tuple[Any, Any]]:
        """Pairs of cells (original or first replay, replay) that ran the same code."""
        if a is None or b is None:
            return []
        if a is self.history and self.notebook is None:
            left = [a.cells[i] for i in self.positions]
        else:
            left = [c for c in a.cells if not c.recovered]
        right = [c for c in b.cells if not c.recovered]
        return list(zip(left, right, strict=False))

    def _diverged(self, pairs: list[tuple[Any, Any]], between_replays: bool = False) -> Cause | None:
        for k, (a, b) in enumerate(pairs):
            if self.notebook is None and not between_replays and self.positions[k] in self.substituted:
                continue
            for name, fp in a.fingerprints.items():
                why = difference(fp, b.fingerprints.get(name))
                if why:
                    label = a.label if not between_replays else self._label(k, a)
                    return Cause(
                        "diverged",
                        f"{label} is the first cell whose values differ: `{name}` {why}",
                        None,
                        label,
                    )
        return None

    def _label(self, k: int, cell) -> str:
        if self.history is not None and self.notebook is None and k < len(self.positions):
            return self.history.cells[self.positions[k]].label
        return cell.label

    def _packages(self, root: Run | None) -> list[Cause]:
        if root is None:
            return []
        before = self.original.env.get("packages") or {}
        after = root.env.get("packages") or {}
        imported = set(self.history.imported) if self.history is not None else set()
        dists = _distributions_of(imported) if imported else set(before)
        changed = [
            (name, before.get(name), after.get(name))
            for name in sorted(dists)
            if name in before and before.get(name) != after.get(name)
        ]
        if not changed:
            return []
        text = ", ".join(f"{n} {a} → {b or 'missing'}" for n, a, b in changed[:6])
        more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        pins = " ".join(f"{n}=={a}" for n, a, _ in changed[:6])
        return [
            Cause(
                "package",
                f"package versions differ from the run's: {text}{more}",
                f"pip install {pins}",
            )
        ]


# -- helpers --------------------------------------------------------------------------------------------------
def _strip_up(parts: list[str]):
    it = iter(parts)
    for p in it:
        if p != "..":
            yield p
            yield from it
            return


def _first_pin(inputs: list, name: str) -> str:
    return next(s.id for s in inputs if s.name == name)


def _state_text(state: FileState) -> str:
    if state.digest:
        return f"digest {short(state.digest)}"
    return f"{state.size:,} bytes"


def _stored_notebook(run: Run) -> dict | None:
    art = next((a for a in run.artifacts if a.path == NOTEBOOK_ARTIFACT), None)
    if art is None:
        return None
    nb = json.loads(art.read_text())
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    # papermill injects the parameters again; drop the cell it injected last time
    nb["cells"] = [
        c for c in nb["cells"] if "injected-parameters" not in (c.get("metadata", {}).get("tags") or [])
    ]
    return nb


def _declared_params(nb: dict) -> dict[str, Any]:
    """The parameters papermill gave the notebook (recorded in its metadata), and no other value."""
    return dict((nb.get("metadata", {}).get("papermill") or {}).get("parameters") or {})


def _inputs(ws: workspace.Workspace, run: Run) -> list:
    from ..data.snapshots import Snapshot

    with ws.db.read() as conn:
        edges = ws.lineage.edges_touching([f"run:{run.id}"], conn)
    ids = [a.partition(":")[2] for a, b, rel in edges if b == f"run:{run.id}" and a.startswith("snapshot:")]
    out = {}
    for i in dict.fromkeys(ids):
        snap = Snapshot(ws, ws.snapshots.get(i))
        out[snap.name] = snap  # one per name: the newest the run read
    return list(out.values())


def _children(ws: workspace.Workspace, run: Run | None) -> list[Run]:
    from sqlalchemy import select

    from ..store import schema as s

    if run is None:
        return []
    with ws.db.read() as conn:
        ids = (
            conn.execute(
                select(s.runs.c.id)
                .where(s.runs.c.parent_id == run.id)
                .order_by(s.runs.c.start_time, s.runs.c.id)
            )
            .scalars()
            .all()
        )
    return [Run(ws, i) for i in ids]


def _descend(ws: workspace.Workspace, run: Run | None, path: list[int]) -> Run | None:
    for i in path:
        kids = _children(ws, run)
        run = kids[i] if i < len(kids) else None
    return run


def _error_of(run: Run | None) -> str | None:
    """The error that failed a run: its last failed cell's, or the stage's recorded failure."""
    if run is None:
        return None
    for cell in reversed(run.cells):
        if not cell.success and cell.error:
            return cell.error
    failure = run.tags.get("mlo.failure")
    if failure:
        kind, _, rest = failure.partition(" in cell ")
        return f"{kind}: {rest.split(':', 1)[1].strip() if ':' in rest else rest}"
    return None


def _metrics_of(run: Run | None) -> dict[str, float]:
    """What a run computed: its metrics less the ``system.*`` samples of the machine that ran it."""
    metrics = run.metrics if run is not None else {}
    return {k: v for k, v in metrics.items() if not k.startswith("system.")}


def _distributions_of(modules: set[str]) -> set[str]:
    from importlib.metadata import packages_distributions

    mapping = packages_distributions()
    return {d.lower() for m in modules for d in mapping.get(m, [])}
